// The live coordinator's control loop on a modelled clock with in-process fake workers
// (tests/live/fake_workers.h): no processes, no model, trace time advanced as the simulator models
// it. Checks that the plan is carried out (pause, resume, migrate, resize with state moved between
// ranks), that a rank that stops answering is left out, and that the live driver and the simulator
// make the same decisions on the same traces and step speeds ("one engine, two drivers").
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <sstream>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "coordinator/live.h"
#include "coordinator/policy.h"
#include "coordinator/simulator.h"
#include "energy/ledger.h"
#include "tests/browser_check.h"
#include "tests/live/fake_workers.h"
#include "tests/support/scratch_dir.h"

namespace gt {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kSource = fs::path(GT_TEST_DATA_DIR).parent_path().parent_path().string();

class ControlLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeScratchDir("gt-control-loop");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Three sites with three ranks each, plaintext control, a short wall trace hour (the loop's
  // waits scale with it; the modelled clock, not wall time, moves the trace).
  Config MakeConfig(const std::function<void(json&)>& edit = {}) {
    json cfg = testing::LiveTestConfig(kSource, {3, 3, 3}, dir_);
    // GPU power only: the scenarios below (a pause, a rank dying while it trains) were laid out on the
    // plans the policy makes without host power; with it pausing costs more and the plans change.
    for (auto& site : cfg["sites"]) site["gpu"]["host_w"] = 0;
    cfg["runtime"]["transport_security"] = "plain";
    cfg["runtime"]["wall_seconds_per_trace_hour"] = 0.02;
    if (edit) edit(cfg);
    const std::string path = dir_ + "/config.json";
    std::ofstream(path) << cfg.dump(2);
    auto c = LoadConfig(path);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return *c;
  }

  struct Outcome {
    Result<json> report = Internal("not run");
    std::vector<std::pair<UnixSeconds, std::string>> decisions;
  };

  // Runs the live coordinator on fake workers and modelled time.
  Outcome RunLive(const Config& config, int64_t steps, int hang_rank = -1, int64_t hang_from_epoch = -1,
                  const std::function<void(LiveOptions&)>& edit = {}, int* metrics_port = nullptr,
                  const std::function<void(testing::FakeWorkers::Options&)>& edit_fakes = {}) {
    Outcome out;
    auto time = std::make_shared<testing::ModelledTime>(config, steps);
    LiveOptions o;
    o.config = config;
    o.run_dir = dir_ + "/run";
    o.steps = steps;
    // A guard against a hung loop, not a speed check: before a run starts, the coordinator plans
    // every interval the policy pauses through (on the 240 h deadline below, 131 LP solves: 52 s
    // on an idle 2-core box, 106 s in a CI run beside other tests), and the run plans each interval.
    o.timeout_seconds = 300;
    o.ack_timeout = std::chrono::milliseconds(2000);
    o.make_clock = [time](UnixSeconds start) { return time->MakeClock(start); };
    o.observer = [time](const json& e) { time->Observe(e); };
    if (edit) edit(o);
    auto coord = LiveCoordinator::Create(o);
    if (!coord.ok()) {
      out.report = coord.status();
      return out;
    }
    testing::FakeWorkers::Options fo;
    fo.config = config;
    fo.coordinator_endpoint = (*coord)->control_endpoint();
    fo.hang_rank = hang_rank;
    fo.hang_from_epoch = hang_from_epoch;
    fo.compute_seconds = [time] { return time->StepWallSeconds(); };
    if (edit_fakes) edit_fakes(fo);
    if (metrics_port) *metrics_port = (*coord)->metrics_port();
    testing::FakeWorkers workers(fo);
    out.report = (*coord)->Run();
    coord->reset();  // stop is sent; the fakes leave
    workers.Join();
    out.decisions = time->decisions();
    return out;
  }

  // Runs `config` live for 2,000 steps from an empty run directory, and counts the decisions it
  // shares with the simulator on the same traces (SameDecisions; mismatches in `diffs`).
  // `after_end` (may be null): how many of its decisions fall after the simulator's job is done.
  void RunBesideTheSimulator(const Config& config, Outcome* o, int* same, std::string* diffs,
                             int* after_end = nullptr);

  std::string dir_;
};

std::map<std::string, int> ActionKinds(const json& report) {
  std::map<std::string, int> kinds;
  for (const auto& a : report["actions"])
    for (const auto& k : a["actions"]) kinds[k.get<std::string>()]++;
  return kinds;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The files a run leaves for operators' tools: a Perfetto timeline with every step of every rank
// and every plan change, a CodeCarbon emissions.csv whose rows add up to the ledger, status.json.
void ExpectOperatorFiles(const std::string& run_dir, const Ledger& ledger, const json& report) {
  const json trace = json::parse(ReadFile(run_dir + "/trace.json"), nullptr, false);
  ASSERT_TRUE(trace.is_object() && trace.contains("traceEvents")) << "trace.json is not a Chrome trace";
  std::map<std::string, int> by_cat;
  for (const auto& e : trace["traceEvents"]) {
    ASSERT_TRUE(e.contains("ph") && e.contains("pid") && e.contains("tid")) << e.dump();
    if (e["ph"] == "X") {
      ASSERT_GE(e["dur"].get<int64_t>(), 0) << e.dump();
      by_cat[e["cat"].get<std::string>() + (e["pid"] == 0 ? " (coordinator)" : " (ranks)")]++;
    }
  }
  // Every rank of the last stage reports every step; other stages too: at least one span per step.
  EXPECT_GE(by_cat["step (ranks)"], static_cast<int>(report["loss_curve"].size()));
  // Each plan change once on the coordinator's track, and on the tracks of the ranks it stopped or started.
  EXPECT_EQ(by_cat["plan (coordinator)"], static_cast<int>(report["actions"].size()));
  EXPECT_GE(by_cat["plan (ranks)"], by_cat["plan (coordinator)"]);
  // A paused interval shows on the ranks' tracks whenever the run paused.
  int pauses = 0;
  for (const auto& a : report["actions"])
    for (const auto& k : a["actions"]) pauses += k == "pause";
  if (pauses > 0) {
    EXPECT_GT(by_cat["pause (ranks)"], 0) << pauses << " pauses";
  }
  EXPECT_GT(by_cat["checkpoint (ranks)"], 0);

  std::istringstream csv(ReadFile(run_dir + "/emissions.csv"));
  std::string header, line;
  std::getline(csv, header);
  EXPECT_EQ(header,
            "timestamp,project_name,run_id,duration,emissions,emissions_rate,cpu_power,gpu_power,ram_power,"
            "cpu_energy,gpu_energy,ram_energy,energy_consumed,country_name,country_iso_code,region,cloud_provider,"
            "cloud_region,os,python_version,codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,"
            "latitude,ram_total_size,tracking_mode,on_cloud,pue");
  double kg = 0, kwh = 0;
  int rows = 0;
  while (std::getline(csv, line)) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
    ASSERT_EQ(f.size(), 31u) << line;
    kg += std::stod(f[4]);
    kwh += std::stod(f[12]);
    ++rows;
  }
  EXPECT_GT(rows, 0);
  EXPECT_NEAR(kg, ledger.Totals().carbon_kg, 1e-6 * std::max(1.0, kg));
  EXPECT_NEAR(kwh, 1000 * ledger.Totals().demand_mwh, 1e-6 * std::max(1.0, kwh));

  const std::string html = ReadFile(run_dir + "/report.html");
  size_t charts = 0;
  for (size_t p = 0; (p = html.find("<svg class='chart'", p)) != std::string::npos; ++p) ++charts;
  EXPECT_GE(charts, 4u) << "supply vs load, placement, loss, cumulative carbon";
  EXPECT_NE(html.find("Training loss"), std::string::npos);
  auto tag = testing::RenderedBodyTag(run_dir + "/report.html", run_dir);
  if (tag.ok()) {
    EXPECT_NE(tag->find("data-rendered=\"ok\""), std::string::npos) << *tag;
    EXPECT_NE(tag->find("data-errors=\"\""), std::string::npos) << *tag;
  } else {
    EXPECT_EQ(tag.status().code(), Code::kNotFound) << tag.status().ToString();  // no chromium: not checked
  }

  const json status = json::parse(ReadFile(run_dir + "/status.json"), nullptr, false);
  ASSERT_TRUE(status.is_object());
  for (const char* k : {"step", "end_step", "trace_time", "plan", "green_share", "energy_mwh", "carbon_kg", "deadline"})
    EXPECT_TRUE(status.contains(k)) << k;
}

TEST_F(ControlLoopTest, CarriesOutThePlanOnAModelledClock) {
  std::map<std::string, int> kinds;
  int resizes_alone = 0;
  // greentrain at two deadlines (moves and resizes), then Let's-Wait-Awhile at a fixed threshold
  // without batteries (pauses and resumes: since greentrain's plan made before the first run
  // charges the pauses it holds and breaks ties toward the earliest work, its 240 h plan pauses in
  // some runs and not in others, as the box's pace shifts the steps done per interval).
  for (int deadline : {240, 72, 120}) {
    SCOPED_TRACE("deadline " + std::to_string(deadline) + " h");
    Config config = MakeConfig([&](json& c) {
      c["job"]["deadline_hours"] = deadline;
      if (deadline == 120) {
        c["policy"]["name"] = "suspend-resume";
        c["policy"]["carbon_threshold"] = 150;
        for (auto& s : c["sites"]) s.erase("battery");
      }
    });
    fs::remove_all(dir_ + "/run");
    Outcome o = RunLive(config, 1500);
    ASSERT_TRUE(o.report.ok()) << o.report.status().ToString();
    const json& r = *o.report;
    EXPECT_TRUE(r["follows_plan"].get<bool>());
    EXPECT_EQ(r["policy_proposals_ignored"], 0);
    // Every step trained once, in order, whatever the plan did.
    ASSERT_EQ(r["loss_curve"].size(), 1500u);
    for (size_t i = 0; i < r["loss_curve"].size(); ++i) ASSERT_EQ(r["loss_curve"][i]["step"], i);
    for (const auto& [k, n] : ActionKinds(r)) kinds[k] += n;
    std::map<int64_t, std::string> checkpoint_at;  // step -> kind
    for (const auto& c : r["checkpoints"]) checkpoint_at[c.value("step", int64_t{-1})] = c.value("kind", std::string());
    for (const auto& a : r["actions"]) {
      bool migrates = false;
      for (const auto& k : a["actions"]) migrates |= k == "migrate";
      if (a["actions"] == json::array({"resize"})) {
        // A resize keeps the state in the ranks' memory: no checkpoint at its halt unless the
        // engine's rule asked for one there anyway (the simulator books the same).
        ++resizes_alone;
        auto c = checkpoint_at.find(a.value("step", int64_t{-1}));
        EXPECT_TRUE(c == checkpoint_at.end() || c->second == "periodic" || c->second == "forecast") << a.dump();
      }
      const json via = a.value("state_via", json::object());
      if (migrates) {
        EXPECT_GT(via.value("peers", 0), 0) << "a migrated stage gets its layers from their holders: " << a.dump();
      }
      EXPECT_EQ(via.value("checkpoint", 0), 0) << "held state is never read back: " << a.dump();
    }
    auto ledger = Ledger::FromJson(r["ledger"]);
    ASSERT_TRUE(ledger.ok());
    EXPECT_LT(ledger->MaxImbalanceMwh(), 1e-9);
    EXPECT_GE(o.decisions.size(), 2u);
    ExpectOperatorFiles(dir_ + "/run", *ledger, r);
  }
  EXPECT_GT(kinds["pause"], 0);
  EXPECT_GT(kinds["resume"], 0);
  EXPECT_GT(kinds["migrate"], 0);
  EXPECT_GT(kinds["resize"], 0);
  EXPECT_GT(resizes_alone, 0);
}

TEST_F(ControlLoopTest, OnAFixedPipelineChecksAheadOfAForecastLossOfGreenPower) {
  // Sites "all": the pipeline stays on every site; the engine's rule still checkpoints ahead of a
  // forecast loss of a site's green power (no batteries to bridge it), for the plan that runs.
  // That plan never pauses or moves, so none of its checkpoints is a plan one.
  Config config = MakeConfig([&](json& c) {
    c["job"]["deadline_hours"] = 240;
    c["job"]["checkpoint_every_hours"] = 0;
    for (auto& s : c["sites"]) s.erase("battery");
  });
  Outcome o = RunLive(config, 1500, -1, -1, [](LiveOptions& lo) { lo.sites = "all"; });
  ASSERT_TRUE(o.report.ok()) << o.report.status().ToString();
  const json& r = *o.report;
  EXPECT_FALSE(r["follows_plan"].get<bool>());
  EXPECT_TRUE(r["actions"].empty()) << r["actions"].dump();
  std::map<std::string, int> by_kind;
  for (const auto& c : r["checkpoints"]) {
    const std::string kind = c.value("kind", std::string());
    ++by_kind[kind];
    if (kind == "forecast") {
      EXPECT_NE(c.value("reason", std::string()).find("fall below its load"), std::string::npos) << c.dump();
    }
  }
  EXPECT_GT(by_kind["forecast"], 0) << r["checkpoints"].dump();
  EXPECT_EQ(by_kind["plan"], 0) << r["checkpoints"].dump();
  EXPECT_EQ(by_kind["periodic"], 0) << r["checkpoints"].dump();
}

TEST_F(ControlLoopTest, ARankThatStopsAnsweringIsLeftOut) {
  Config config = MakeConfig([](json& c) { c["job"]["deadline_hours"] = 240; });
  // Rank 3 (the second site's first rank) hangs from the first reconfiguration on.
  Outcome o = RunLive(config, 1500, /*hang_rank=*/3, /*hang_from_epoch=*/1);
  ASSERT_TRUE(o.report.ok()) << o.report.status().ToString();
  const json& r = *o.report;
  bool recovered = false;
  for (const auto& a : r["actions"])
    for (const auto& k : a["actions"])
      if (k == "recover") {
        recovered = true;
        EXPECT_EQ(a["failed_ranks"], json::array({3})) << a.dump();
      }
  // Rank 3 is the first replica of the starting pipeline (texas:512, two replicas); any plan change
  // reassigns it.
  ASSERT_TRUE(recovered) << r["actions"].dump();
  EXPECT_EQ(r["loss_curve"].size(), 1500u);
  for (const auto& p : r["pipeline"])
    for (const auto& rk : p.value("ranks", json::array())) EXPECT_NE(rk, 3);
}

// A rank that goes silent in the middle of training (killed, stopped or cut off: no step, no
// heartbeat) is noticed by the heartbeat timeout (or by a command its closed channel refuses), long
// before any acknowledgement is due, and the
// plan goes on without it from the last checkpoint: nothing before that checkpoint is trained again.
TEST_F(ControlLoopTest, ARankThatGoesSilentWhileTrainingIsLeftOutByHeartbeats) {
  // Carbon-agnostic: one plan from the start (california:1024, ranks 0-2), so rank 1 is training
  // when it dies whatever the planner would choose (this test is about noticing the silence).
  Config config = MakeConfig([](json& c) {
    c["job"]["deadline_hours"] = 240;
    c["policy"]["name"] = "carbon-agnostic";
  });
  Outcome o = RunLive(
      config, 1500, -1, -1,
      [](LiveOptions& lo) {
        lo.heartbeat_timeout = std::chrono::milliseconds(1500);
        lo.ack_timeout = std::chrono::milliseconds(60000);  // so only heartbeats can tell
        lo.checkpoint_every = 100;
      },
      nullptr,
      [](testing::FakeWorkers::Options& fo) {
        fo.die_rank = 1;
        fo.die_at_step = 350;
      });
  ASSERT_TRUE(o.report.ok()) << o.report.status().ToString();
  const json& r = *o.report;
  int recoveries = 0;
  for (const auto& a : r["actions"])
    if (a["actions"][0] == "recover") {
      ++recoveries;
      EXPECT_EQ(a["failed_ranks"], json::array({1})) << a.dump();
      // Noticed by its missing heartbeats, or by a command that could not reach its closed channel:
      // either way long before the acknowledgement timeout (60 s).
      const std::string reason = a["reason"].get<std::string>();
      EXPECT_TRUE(reason.find("heartbeat") != std::string::npos || reason.find("could not be reached") != std::string::npos)
          << a.dump();
      EXPECT_GE(a["step"].get<int64_t>(), 300) << "resumed from before the last checkpoint: " << a.dump();
      EXPECT_LE(a["step"].get<int64_t>(), 350) << a.dump();
    }
  EXPECT_EQ(recoveries, 1) << r["actions"].dump(1);
  ASSERT_EQ(r["faults"].size(), 1u) << r["faults"].dump();
  EXPECT_EQ(r["faults"][0]["event"], "failed");
  ASSERT_EQ(r["loss_curve"].size(), 1500u);
  for (size_t i = 0; i < r["loss_curve"].size(); ++i) ASSERT_EQ(r["loss_curve"][i]["step"], i);
  for (const auto& p : r["pipeline"])
    for (const auto& rk : p.value("ranks", json::array())) EXPECT_NE(rk, 1);
}

// The same rank comes back 3 s later (a stopped process continued, a link healed): it is told to
// leave its old epoch, rejoins, and later plans may use it again.
TEST_F(ControlLoopTest, ARankThatComesBackRejoins) {
  // carbon-agnostic on a texas twice the size of the other sites: the fastest configuration, at
  // texas (ranks 3..5), every interval, so rank 3 trains when it fails and the plan after its return
  // wants it again, whatever greentrain's planner would choose on these traces (its plans moved off
  // rank 3 at the failing step twice as the planner improved). 12,000 steps: at the fastest
  // configuration 3,000 ended before the rank was back (3.3 s).
  Config config = MakeConfig([](json& c) {
    c["job"]["deadline_hours"] = 72;
    c["policy"]["name"] = "carbon-agnostic";
    for (auto& site : c["sites"])
      if (site["name"] == "texas") site["gpus"] = 2 * site["gpus"].get<int>();
  });
  Outcome o = RunLive(
      config, 12000, -1, -1,
      [](LiveOptions& lo) {
        lo.heartbeat_timeout = std::chrono::milliseconds(1500);
        lo.checkpoint_every = 100;
      },
      nullptr,
      [](testing::FakeWorkers::Options& fo) {
        fo.die_rank = 3;
        fo.die_at_step = 350;
        fo.revive_after_s = 3;
      });
  ASSERT_TRUE(o.report.ok()) << o.report.status().ToString();
  const json& r = *o.report;
  std::vector<std::string> events;
  for (const auto& f : r["faults"]) events.push_back(f["event"].get<std::string>());
  ASSERT_GE(events.size(), 2u) << r["faults"].dump();
  EXPECT_EQ(events[0], "failed");
  EXPECT_EQ(events[1], "rejoin");
  EXPECT_EQ(r["faults"][1]["ranks"], json::array({3}));
  ASSERT_EQ(r["loss_curve"].size(), 12000u);
  for (size_t i = 0; i < r["loss_curve"].size(); ++i) ASSERT_EQ(r["loss_curve"][i]["step"], i);
  // After its return the pipeline the failure shrank is whole again (texas: two replicas need three
  // ranks there in proportion to the plan's GPUs, i.e. rank 3 back).
  std::string before;
  bool whole_again = false;
  for (const auto& a : r["actions"]) {
    if (a["actions"][0] == "recover") before = a["from_pipeline"].get<std::string>();
    else if (!before.empty() && a.value("to_pipeline", std::string()) == before) whole_again = true;
  }
  EXPECT_TRUE(whole_again) << "never back to " << before << ": " << r["actions"].dump(1);
}

// A scrape of /metrics while the run trains, as Prometheus would make it.
TEST_F(ControlLoopTest, ServesPrometheusMetricsWhileItRuns) {
  // 72 h (1.5x slack): the plans use texas's two replicas while rank 3 fails and returns, and act
  // before the scrape. With 240 h, since the planner takes the plan that draws least energy among
  // equal-carbon ones, rank 3 did not train when it should fail and no action came before the scrape.
  Config config = MakeConfig([](json& c) { c["job"]["deadline_hours"] = 72; });
  auto scraped = std::make_shared<std::string>();
  auto port = std::make_shared<int>(-1);
  Outcome o = RunLive(config, 600, -1, -1, [&](LiveOptions& lo) {
    lo.metrics_port = 0;
    auto model = lo.observer;
    lo.observer = [model, scraped, port](const json& e) {
      model(e);
      if (e.value("event", "") != "status" || e.value("step", 0) < 100 || !scraped->empty() || *port < 0) return;
      httplib::Client client("127.0.0.1", *port);
      if (auto res = client.Get("/metrics")) {
        EXPECT_EQ(res->status, 200);
        EXPECT_NE(res->get_header_value("Content-Type").find("text/plain; version=0.0.4"), std::string::npos);
        *scraped = res->body;
      }
    };
  }, port.get());
  ASSERT_TRUE(o.report.ok()) << o.report.status().ToString();
  ASSERT_FALSE(scraped->empty()) << "no scrape succeeded";
  for (const char* family : {"# TYPE greentrain_steps_total counter", "# TYPE greentrain_loss gauge",
                             "greentrain_tokens_per_second", "greentrain_site_power_megawatts{site=\"texas\",source=\"grid\"}",
                             "greentrain_carbon_kilograms_total{site=", "greentrain_battery_state_of_charge_ratio{site=",
                             "greentrain_actions_total{kind=", "greentrain_checkpoint_seconds", "greentrain_green_share_ratio"})
    EXPECT_NE(scraped->find(family), std::string::npos) << family << " missing from:\n" << *scraped;
}

// The simulator's decision for each interval the live run decided (keyed by the interval's time).
std::map<UnixSeconds, std::string> SimDecisions(const Config& config, const std::string& policy_name) {
  std::map<UnixSeconds, std::string> out;
  auto sim = Simulator::FromConfig(config);
  EXPECT_TRUE(sim.ok()) << sim.status().ToString();
  auto policy = MakePolicy(policy_name);
  EXPECT_TRUE(policy.ok());
  auto res = sim->Run(**policy, config.policy.forecaster);
  EXPECT_TRUE(res.ok()) << res.status().ToString();
  for (const auto& p : res->timeline) out[p.time] = p.placement;
  return out;
}

// Both drivers checkpoint by one rule, the engine's (before a pause or move, ahead of a forecast
// loss of green power, periodically by the hours trained): the intervals the live run checkpointed
// in for the plan, a forecast or periodically are those the simulator's run did, up to the live run's
// last decision. Returns the live run's periodic checkpoints compared.
int ExpectSameCheckpointIntervals(const Config& config, const json& report,
                                  const std::vector<std::pair<UnixSeconds, std::string>>& decisions) {
  if (decisions.empty()) return 0;
  const int64_t dt = config.interval_seconds;
  auto interval_of = [&](UnixSeconds t) { return t - (((t - config.job.start) % dt) + dt) % dt; };
  const UnixSeconds until = decisions.back().first;
  std::vector<std::pair<UnixSeconds, std::string>> live_kinds;
  for (const auto& c : report["checkpoints"]) {
    auto t = ParseIsoTime(c.value("trace_time", std::string()));
    EXPECT_TRUE(t.ok()) << c.dump();
    if (!t.ok()) continue;
    const std::string kind = c.value("kind", std::string());
    EXPECT_TRUE(kind == "plan" || kind == "periodic" || kind == "forecast" || kind == "end") << c.dump();
    if (kind != "end") live_kinds.push_back({interval_of(*t), kind});
  }
  std::set<UnixSeconds> live, sim;
  int periodic = 0;
  for (const auto& [t, kind] : live_kinds)
    if (t < until) live.insert(t), periodic += kind == "periodic";
  auto s = Simulator::FromConfig(config);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return 0;
  auto res = s->Run(**MakePolicy(config.policy.name), config.policy.forecaster);
  EXPECT_TRUE(res.ok()) << res.status().ToString();
  if (!res.ok()) return 0;
  for (const auto& p : res->timeline)
    if (p.checkpoint && p.time < until) sim.insert(p.time);
  std::string l, m;
  for (UnixSeconds t : live) l += " " + FormatIsoTime(t);
  for (UnixSeconds t : sim) m += " " + FormatIsoTime(t);
  EXPECT_EQ(live, sim) << "live:" << l << "\nsimulator:" << m;
  return periodic;
}

// How many of the live run's decisions (all but the last, which may fall after the simulator's
// end) the simulator made too, at the same trace times. Mismatches are listed in `diffs`; those
// after the simulator's last interval (its job done) are also counted in `*after_end`.
int SameDecisions(const std::vector<std::pair<UnixSeconds, std::string>>& live,
                  const std::map<UnixSeconds, std::string>& sim, std::string* diffs, int* after_end) {
  int same = 0;
  *after_end = 0;
  for (size_t k = 0; k + 1 < live.size(); ++k) {
    auto it = sim.find(live[k].first);
    if (it != sim.end() && it->second == live[k].second) {
      ++same;
    } else {
      if (it == sim.end() && !sim.empty() && live[k].first > sim.rbegin()->first) ++*after_end;
      *diffs += FormatIsoTime(live[k].first) + ": live " + live[k].second + ", simulator " +
                (it == sim.end() ? std::string("(no interval)") : it->second) + "\n";
    }
  }
  return same;
}

void ControlLoopTest::RunBesideTheSimulator(const Config& config, Outcome* o, int* same, std::string* diffs,
                                            int* after_end) {
  fs::remove_all(dir_ + "/run");
  *o = RunLive(config, 2000);
  ASSERT_TRUE(o->report.ok()) << o->report.status().ToString();
  ASSERT_GE(o->decisions.size(), 20u);
  int beyond = 0;
  *same = SameDecisions(o->decisions, SimDecisions(config, config.policy.name), diffs, &beyond);
  if (after_end != nullptr) *after_end = beyond;
}

TEST_F(ControlLoopTest, SameDecisionsAsTheSimulatorOnTheSameTracesAndStepSpeeds) {
  // Let's-Wait-Awhile at a fixed threshold, no batteries: each decision depends on the traces and
  // forecasts, the plan in force and the work left (deadline guard), all of which both drivers
  // must build alike: every decision is the same. Whether a pause keeps the GPUs
  // (job.pause_releases_gpus) changes what the pauses book, not the plan.
  double idle_gpu_hours[2] = {0, 0};
  for (const bool release : {false, true}) {
    SCOPED_TRACE(release ? "pauses give the GPUs back" : "pauses keep the GPUs");
    Config config = MakeConfig([&](json& c) {
      c["policy"]["name"] = "suspend-resume";
      c["policy"]["carbon_threshold"] = 150;
      c["job"]["deadline_hours"] = 120;
      c["job"]["pause_releases_gpus"] = release;
      for (auto& s : c["sites"]) s.erase("battery");
    });
    Outcome o;
    int same = 0;
    std::string diffs;
    ASSERT_NO_FATAL_FAILURE(RunBesideTheSimulator(config, &o, &same, &diffs));
    EXPECT_EQ(same + 1, static_cast<int>(o.decisions.size())) << diffs;
    const auto kinds = ActionKinds(*o.report);
    EXPECT_GT(kinds.count("pause"), 0u) << "the threshold should make the plan pause";
    EXPECT_GT(kinds.count("resume"), 0u);
    EXPECT_GT(ExpectSameCheckpointIntervals(config, *o.report, o.decisions), 0) << "no periodic checkpoint compared";
    auto ledger = Ledger::FromJson((*o.report)["ledger"]);
    ASSERT_TRUE(ledger.ok());
    EXPECT_LT(ledger->MaxImbalanceMwh(), 1e-9);
    idle_gpu_hours[release] = ledger->Totals().gpu_hours_idle;
    if (release) {
      // A paused piece books nothing: no row without steps holds idle GPUs for a whole paused hour.
      for (const auto& row : ledger->rows()) {
        if (row.work_steps == 0 && row.busy_gpus == 0) {
          EXPECT_EQ(row.idle_gpus, 0) << row.site << " " << row.time;
        }
      }
    }
  }
  EXPECT_LT(idle_gpu_hours[1], 0.5 * idle_gpu_hours[0]);
}

TEST_F(ControlLoopTest, GreentrainDecidesAsTheSimulatorWithinStepGranularity) {
  // greentrain's forecast LP is sensitive to the work left: live work differs from the simulator's
  // by the steps granted ahead when a plan change is decided (at least 2 live steps, each standing
  // for job.steps / live steps = 40 modelled steps here), about 0.1 % of the job, which flips a rare
  // marginal decision (measured: 70 of 70, 117 of 118 and 234 of 238 the same at 72, 120 and 240 h).
  // A driver that built the policy's input differently would differ far more often. A flip near
  // the job's end can leave the live run a sliver of work the simulator finished: its later
  // intervals (seen: one flip at the last interval, then 8 intervals paused waiting to finish) have
  // no simulator decision to compare; they are counted apart and stay within a day.
  for (int deadline : {72, 240}) {
    SCOPED_TRACE("deadline " + std::to_string(deadline) + " h");
    Config config = MakeConfig([&](json& c) {
      c["job"]["deadline_hours"] = deadline;
      for (auto& s : c["sites"]) s.erase("battery");
    });
    Outcome o;
    int same = 0;
    std::string diffs;
    int after_end = 0;
    ASSERT_NO_FATAL_FAILURE(RunBesideTheSimulator(config, &o, &same, &diffs, &after_end));
    EXPECT_GE(same, 0.95 * static_cast<double>(o.decisions.size() - 1 - after_end)) << diffs;
    EXPECT_LE(after_end, 24) << diffs;
  }
}

}  // namespace
}  // namespace gt
