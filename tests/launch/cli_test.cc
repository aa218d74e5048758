// The command line: every option listed by `help CMD`, malformed values, unknown options and extra
// arguments refused (exit 2) before anything starts, strict configs, and exit code 3 when a job
// misses its deadline.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/browser_check.h"
#include "tests/support/ledger_recompute.h"
#include "tests/support/scratch_dir.h"

namespace gt {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kSource = fs::path(GT_TEST_DATA_DIR).parent_path().parent_path().string();

struct Outcome {
  int code = -1;
  std::string output;  // stdout and stderr
  double seconds = 0;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeScratchDir("gt-cli");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Runs `greentrain ARGS` (ARGS is shell-quoted by the caller).
  Outcome Greentrain(const std::string& args) {
    const std::string out = dir_ + "/out.txt";
    const std::string cmd = std::string(GT_BINARY_DIR) + "/greentrain " + args + " > " + out + " 2>&1";
    const auto t0 = std::chrono::steady_clock::now();
    const int status = std::system(cmd.c_str());
    Outcome o;
    o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(out);
    std::stringstream ss;
    ss << in.rdbuf();
    o.output = ss.str();
    return o;
  }
  // The bundled default with trace paths made absolute, edited by `edit`, written to `name`.
  std::string Config(const std::string& name, const std::function<void(json&)>& edit) {
    std::ifstream in(kSource + "/launch/configs/default.json");
    json cfg = json::parse(in);
    for (auto& site : cfg["sites"])
      for (const char* k : {"wind", "solar", "carbon"})
        if (site.contains(k))
          site[k]["file"] = (fs::path(kSource) / "launch/configs" / site[k]["file"].get<std::string>())
                                .lexically_normal()
                                .string();
    edit(cfg);
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << cfg.dump(2);
    return path;
  }
  std::string dir_;
};

// Every total simulate reports (--json) is reproducible from the ledger CSV alone by the formulas
// of docs/accounting.md (tests/support/ledger_recompute.h knows nothing of the ledger's code).
TEST_F(CliTest, EveryTotalOfSimulateIsReproducibleFromItsLedgerCsv) {
  for (const char* policy : {"greentrain", "carbon-agnostic"}) {
    const std::string js = dir_ + "/" + policy + ".json", csv = dir_ + "/" + policy + ".csv";
    Outcome o = Greentrain(std::string("simulate --policy ") + policy + " --json " + js + " --ledger " + csv);
    ASSERT_EQ(o.code, 0) << o.output;
    std::ifstream in(js);
    const json p = json::parse(in)["policies"][0];
    double row_error = 1;
    const json t = testing::RecomputeTotalsFromCsv(csv, &row_error);
    EXPECT_LT(row_error, 1e-9) << policy << ": a row does not balance or its load columns miss its demand";
    auto near = [&](const std::string& what, double reported, const std::string& key) {
      const double want = t.at(key).get<double>();
      EXPECT_NEAR(reported, want, 1e-9 * std::max(1.0, std::fabs(want))) << policy << ": " << what;
    };
    near("grid_carbon_kg", p["grid_carbon_kg"], "carbon_kg");
    near("energy renewable", p["energy_mwh"]["renewable"], "renewable_used_mwh");
    near("energy battery", p["energy_mwh"]["battery"], "battery_discharge_mwh");
    near("energy grid", p["energy_mwh"]["grid"], "grid_mwh");
    near("energy total", p["energy_mwh"]["total"], "demand_mwh");
    near("energy curtailed", p["energy_mwh"]["curtailed"], "curtailed_mwh");
    near("energy battery_loss", p["energy_mwh"]["battery_loss"], "battery_loss_mwh");
    near("energy unmet", p["energy_mwh"]["unmet"], "unmet_mwh");
    near("renewable_share", p["renewable_share"], "renewable_share");
    near("battery_change_mwh", p["battery_change_mwh"], "battery_change_mwh");
    near("battery_drawdown_kg", p["battery_drawdown_kg"], "battery_drawdown_kg");
    near("carbon_reconciled_kg", p["carbon_reconciled_kg"], "carbon_reconciled_kg");
    near("cost", p["cost"], "cost");
    near("work_steps", p["work_steps"], "work_steps");
    for (const auto& [key, value] : p["load_mwh"].items()) near("load_mwh." + key, value.get<double>(), key);
    EXPECT_GT(p["load_mwh"]["host_mwh"].get<double>(), 0) << policy << ": the nodes' hosts draw power";
    EXPECT_GT(p["load_mwh"]["transition_mwh"].get<double>(), 0) << policy << ": at least the first start's restart";
  }
  // greentrain moves stages between sites: its WAN bytes carry energy and carbon.
  std::ifstream in(dir_ + "/greentrain.json");
  const json g = json::parse(in)["policies"][0];
  EXPECT_GT(g["load_mwh"]["wan_gb"].get<double>(), g["migrated_gb"].get<double>() * 0.99);
  EXPECT_GT(g["load_mwh"]["wan_carbon_kg"].get<double>(), 0);
  EXPECT_EQ(g["emission_basis"], "direct") << "EIA-930 avg_CI is a direct intensity";
}

// Market-based carbon and the hourly CFE score with a PPA, hourly and annual certificates and a
// residual mix: reported side by side with the location-based figure and reproducible from the CSV.
TEST_F(CliTest, MarketBasedCarbonAndCfeAreReproducibleFromTheLedgerCsv) {
  const std::string cfg = Config("contracts.json", [](json& c) {
    json wind = c["sites"][1]["wind"];  // another site's wind farm: the PPA takes a share of its output
    c["sites"][0]["contracts"] = {{"ppa", wind}, {"ppa_share", 0.00002}, {"certificates_mw", 0.05},
                                  {"certificates_mwh", 2.0}, {"residual_mix_g_per_kwh", 450}};
    c["sites"][2]["contracts"] = {{"residual_mix_g_per_kwh", 700}};
    c["sites"][0]["marginal_carbon"] = c["sites"][1]["carbon"];  // a stand-in marginal trace
  });
  const std::string js = dir_ + "/m.json", csv = dir_ + "/m.csv";
  Outcome o = Greentrain("simulate " + cfg + " --policy carbon-agnostic --json " + js + " --ledger " + csv);
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_NE(o.output.find("market-based"), std::string::npos) << o.output;
  std::ifstream in(js);
  const json p = json::parse(in)["policies"][0];
  double row_error = 1;
  const json t = testing::RecomputeTotalsFromCsv(csv, &row_error);
  EXPECT_LT(row_error, 1e-9) << "a row's instruments do not add up to its grid energy";
  EXPECT_NEAR(p["market_carbon_kg"].get<double>(), t["market_carbon_kg"].get<double>(), 1e-6);
  EXPECT_NEAR(p["cfe_score"].get<double>(), t["cfe_score"].get<double>(), 1e-12);
  EXPECT_NEAR(p["grid_carbon_kg"].get<double>(), t["carbon_kg"].get<double>(), 1e-6);
  EXPECT_NEAR(p["market"]["annual_certificates_mwh"].get<double>(), 2.0, 1e-9) << "the annual pool is used up";
  EXPECT_GT(p["market"]["ppa_used_mwh"].get<double>(), 0);
  EXPECT_GT(p["market"]["certificates_mwh"].get<double>(), 0);
  EXPECT_NE(p["market_carbon_kg"].get<double>(), p["grid_carbon_kg"].get<double>());
  EXPECT_NEAR(p["marginal_carbon_kg"].get<double>(), t["marginal_carbon_kg"].get<double>(), 1e-6);
  EXPECT_NE(p["marginal_carbon_kg"].get<double>(), p["grid_carbon_kg"].get<double>());
}

// The README's policy tables are pinned: each is what `simulate CONFIG --json` prints today, every
// policy's grid carbon within 0.5 % (or 0.5 kg) and its deadline verdict exact. A change that moves
// them must rerun the command and update the README in the same commit. One test per table (each
// simulates every policy, the oracle's candidates and the lower bound: 20-60 s), so that each has
// its own time limit and they run in parallel.
struct ReadmeTable {
  const char* name;  // the table's heading in the README
  const char* path;  // its configuration, from the source tree
};

void PrintTo(const ReadmeTable& t, std::ostream* os) { *os << t.name; }

class ReadmePolicyTable : public CliTest, public ::testing::WithParamInterface<ReadmeTable> {};

TEST_P(ReadmePolicyTable, MatchesWhatSimulatePrints) {
  const std::string name = GetParam().name, path = GetParam().path;
  std::ifstream readme(kSource + "/README.md");
  std::stringstream ss;
  ss << readme.rdbuf();
  const std::string text = ss.str();
  const size_t at = text.find("**" + name + "** (proven lower bound");
  ASSERT_NE(at, std::string::npos) << "the README has no table for " << name;
  // Rows "| policy | kg | ... | deadline | ..." until the first line that is not a table row.
  std::map<std::string, std::pair<double, std::string>> want;
  std::istringstream lines(text.substr(at));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("| ", 0) != 0) {
      if (!want.empty()) break;
      continue;
    }
    std::vector<std::string> cells;
    std::stringstream cs(line);
    std::string cell;
    while (std::getline(cs, cell, '|')) {
      const size_t b = cell.find_first_not_of(' '), e = cell.find_last_not_of(' ');
      cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
    }
    if (cells.size() < 9 || cells[1] == "policy" || cells[1].rfind("---", 0) == 0) continue;
    want[cells[1]] = {std::stod(cells[2]), cells[8]};
  }
  ASSERT_EQ(want.size(), 6u) << name;
  const std::string js = dir_ + "/" + name + ".json";
  Outcome o = Greentrain("simulate " + kSource + "/" + path + " --json " + js);
  ASSERT_EQ(o.code, 0) << o.output;
  std::ifstream in(js);
  const json printed = json::parse(in);  // kept: a range over a temporary's member would dangle
  int policies = 0;
  for (const auto& p : printed["policies"]) {
    const std::string policy = p["policy"];
    ASSERT_TRUE(want.count(policy)) << name << ": " << policy << " is not in the README's table";
    const double kg = p["grid_carbon_kg"], readme_kg = want[policy].first;
    EXPECT_NEAR(kg, readme_kg, std::max(0.5, 0.005 * readme_kg))
        << name << " / " << policy << ": simulate prints " << kg << " kg, the README says " << readme_kg
        << "; rerun `greentrain simulate " << path << " --json F` and update the README";
    EXPECT_EQ(p["deadline_met"].get<bool>() ? "met" : "missed", want[policy].second) << name << " / " << policy;
    ++policies;
  }
  EXPECT_EQ(policies, 6) << name;
}

INSTANTIATE_TEST_SUITE_P(
    CliTest, ReadmePolicyTable,
    ::testing::Values(ReadmeTable{"three-us-regions-2022", "launch/configs/default.json"},
                      ReadmeTable{"tight-slack-1.1x", "launch/configs/scenarios/tight-slack-1.1x.json"},
                      ReadmeTable{"loose-slack-3x", "launch/configs/scenarios/loose-slack-3x.json"},
                      ReadmeTable{"winter-pjm-bpat-erco", "launch/configs/scenarios/winter-pjm-bpat-erco.json"},
                      ReadmeTable{"grid-only-autumn", "launch/configs/scenarios/grid-only-autumn.json"}),
    [](const ::testing::TestParamInfo<ReadmeTable>& info) {
      std::string n = info.param.name;
      for (char& ch : n)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return n;
    });

TEST_F(CliTest, HelpListsEveryOptionOfACommand) {
  for (const char* form : {"help run", "run --help"}) {
    Outcome o = Greentrain(form);
    EXPECT_EQ(o.code, 0) << o.output;
    for (const char* opt : {"--steps", "--resume", "--sites", "--policy", "--run-dir", "--run-name", "--seed",
                            "--checkpoint-every", "--ack-timeout", "--timeout", "--workers", "--bind-host",
                            "--heartbeat-timeout", "--keys", "--port", "--advertise-host", "--launcher", "--emulate-wan"})
      EXPECT_NE(o.output.find(opt), std::string::npos) << form << " lacks " << opt << ":\n" << o.output;
  }
  Outcome all = Greentrain("help");
  EXPECT_EQ(all.code, 0);
  for (const char* cmd :
       {"check", "checkpoint", "coordinator", "demo", "energy", "forecast", "keys", "run", "simulate", "worker"})
    EXPECT_NE(all.output.find(cmd), std::string::npos) << cmd;
  EXPECT_EQ(Greentrain("help nosuch").code, 2);
}

TEST_F(CliTest, BadArgumentsAreRefusedBeforeAnythingStarts) {
  struct Case {
    std::string args, says;
  } cases[] = {
      {"run --steps 5x", "'5x' is not a whole number"},
      {"run --steps 0", "outside [1,"},
      {"run --policy nope", "--policy: nope not in"},
      {"run --sites some", "--sites"},
      {"run --no-such-flag", "--no-such-flag"},
      {"run a.json b.json", "b.json"},
      {"simulate --forecaster crystal-ball", "--forecaster"},
      {"checkpoint", "subcommand"},
      {"forecast --stride 1.5", "'1.5' is not a whole number"},
      {"run --launcher pigeon", "--launcher"},
      {"run --heartbeat-timeout 0.5", "--heartbeat-timeout"},
      {"keys", "subcommand"},
      {"keys generate", "dir"},
  };
  for (const auto& c : cases) {
    Outcome o = Greentrain(c.args);
    EXPECT_EQ(o.code, 2) << c.args << ":\n" << o.output;
    EXPECT_NE(o.output.find(c.says), std::string::npos) << c.args << ":\n" << o.output;
    EXPECT_EQ(o.output.find("starting"), std::string::npos) << c.args << " started workers:\n" << o.output;
    EXPECT_LT(o.seconds, 10) << c.args;
  }
}

// `keys generate` makes a pair for the coordinator and one per rank of the config (the default: 9),
// `keys list` shows them; existing keys are not overwritten without --force.
TEST_F(CliTest, KeysAreGeneratedAndListed) {
  const std::string keys = dir_ + "/keys";
  Outcome gen = Greentrain("keys generate " + keys);
  ASSERT_EQ(gen.code, 0) << gen.output;
  Outcome list = Greentrain("keys list " + keys);
  ASSERT_EQ(list.code, 0) << list.output;
  EXPECT_NE(list.output.find("coordinator"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("rank 8"), std::string::npos) << list.output;
  EXPECT_EQ(list.output.find("rank 9"), std::string::npos) << list.output;
  Outcome again = Greentrain("keys generate " + keys + " --workers 2");
  EXPECT_EQ(again.code, 2) << again.output;
  EXPECT_NE(again.output.find("already holds keys"), std::string::npos) << again.output;
  EXPECT_EQ(Greentrain("keys generate " + keys + " --workers 2 --force").code, 0);
  Outcome smaller = Greentrain("keys list " + keys);
  EXPECT_NE(smaller.output.find("rank 1"), std::string::npos) << smaller.output;
  EXPECT_EQ(smaller.output.find("rank 2"), std::string::npos) << "the larger keyring's ranks are gone:\n" << smaller.output;
  EXPECT_EQ(Greentrain("keys list " + dir_ + "/nosuch").code, 1);
}

TEST_F(CliTest, ConfigsAreStrict) {
  // A duplicate key (the last would silently win) and a fractional step count.
  std::string path = Config("dup.json", [](json&) {});
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  const size_t at = text.find("\"job\": {");
  ASSERT_NE(at, std::string::npos);
  text.insert(at + 8, "\"deadline_hours\": 1, ");
  std::ofstream(path) << text;
  Outcome dup = Greentrain("check " + path);
  EXPECT_NE(dup.code, 0);
  EXPECT_NE(dup.output.find("job: key 'deadline_hours' appears twice"), std::string::npos) << dup.output;

  Outcome frac = Greentrain("check " + Config("frac.json", [](json& c) { c["job"]["steps"] = 1.5; }));
  EXPECT_EQ(frac.code, 2) << frac.output;
  EXPECT_NE(frac.output.find("job.steps"), std::string::npos) << frac.output;
  EXPECT_EQ(Greentrain("check " + Config("ok.json", [](json&) {})).code, 0);
}

TEST_F(CliTest, CheckReadsTheTraces) {
  const std::string bad = Config("bad_trace.json", [](json& c) {
    c["sites"][0]["carbon"] = {{"file", std::string(GT_TEST_DATA_DIR) + "/traces/bad_negative_carbon.csv"},
                               {"format", "generic"}, {"column", "carbon"}};
  });
  Outcome o = Greentrain("check " + bad);
  EXPECT_NE(o.code, 0) << o.output;
  EXPECT_NE(o.output.find("bad_negative_carbon.csv:4:"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("negative"), std::string::npos) << o.output;
  Outcome ok = Greentrain("check");
  EXPECT_EQ(ok.code, 0) << ok.output;
  EXPECT_NE(ok.output.find("traces of 3 sites read and in range"), std::string::npos) << ok.output;
}

TEST_F(CliTest, SimulateExitsNonZeroWhenTheJobMissesItsDeadline) {
  const std::string tight = Config("tight.json", [](json& c) { c["job"]["deadline_hours"] = 1; });
  Outcome o = Greentrain("simulate " + tight + " --policy carbon-agnostic");
  EXPECT_EQ(o.code, 3) << o.output;
  EXPECT_NE(o.output.find("policy carbon-agnostic missed the deadline"), std::string::npos) << o.output;
  Outcome ok = Greentrain("simulate --policy carbon-agnostic");
  EXPECT_EQ(ok.code, 0) << ok.output;
}

TEST_F(CliTest, SimulateWritesEveryPolicysTimeline) {
  const std::string csv = dir_ + "/timeline.csv", js = dir_ + "/timeline.json";
  ASSERT_EQ(Greentrain("simulate --policy carbon-agnostic --timeline " + csv).code, 0);
  std::ifstream in(csv);
  std::string header, row;
  std::getline(in, header);
  EXPECT_EQ(header.rfind("policy,time,placement,work_done,busy_gpus:california,busy_gpus:texas", 0), 0u) << header;
  EXPECT_EQ(header.substr(header.rfind(',')), ",checkpoint") << header;
  int rows = 0, checkpoints = 0;
  while (std::getline(in, row)) {
    ++rows;
    checkpoints += row.substr(row.rfind(',')) == ",1";
  }
  EXPECT_GT(rows, 10);
  EXPECT_GT(checkpoints, 0) << "carbon-agnostic trains throughout: periodic checkpoints";
  ASSERT_EQ(Greentrain("simulate --policy carbon-agnostic --timeline " + js).code, 0);
  std::ifstream jin(js);
  const json j = json::parse(jin, nullptr, false);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["sites"].size(), 3u);
  EXPECT_EQ(static_cast<int>(j["policies"]["carbon-agnostic"].size()), rows);
  int json_checkpoints = 0;
  for (const auto& p : j["policies"]["carbon-agnostic"]) json_checkpoints += p.value("checkpoint", false);
  EXPECT_EQ(json_checkpoints, checkpoints);
}

// The HTML report opens offline in a real browser (Debian's chromium, headless): every chart is
// drawn and no script fails (the page records both on <body> once loaded).
TEST_F(CliTest, SimulateHtmlReportRendersInABrowser) {
  const std::string html = dir_ + "/report.html";
  Outcome o = Greentrain("simulate --policy all --html " + html);
  ASSERT_EQ(o.code, 0) << o.output;
  std::ifstream in(html);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string page = ss.str();
  size_t charts = 0;
  for (size_t p = 0; (p = page.find("<svg class='chart'", p)) != std::string::npos; ++p) ++charts;
  EXPECT_GE(charts, 6u) << "supply vs load per site, placement, battery, cumulative carbon per policy";
  EXPECT_EQ(page.find("http://"), page.find("http://www.w3.org/2000/svg")) << "the page must not fetch anything";
  for (const char* policy : {"carbon-agnostic", "greentrain", "oracle"}) EXPECT_NE(page.find(policy), std::string::npos);

  auto tag = testing::RenderedBodyTag(html, dir_);
  if (tag.status().code() == Code::kNotFound) GTEST_SKIP() << tag.status().message();
  ASSERT_TRUE(tag.ok()) << tag.status().ToString();
  EXPECT_NE(tag->find("data-rendered=\"ok\""), std::string::npos) << *tag;
  EXPECT_NE(tag->find("data-errors=\"\""), std::string::npos) << *tag;
  EXPECT_NE(tag->find("data-drawn=\"" + std::to_string(charts) + "\""), std::string::npos) << *tag;
}

}  // namespace
}  // namespace gt
