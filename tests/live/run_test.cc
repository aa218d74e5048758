// `greentrain run` end to end: the coordinator in-process and 5 workers under mpirun across 2
// simulated sites (3 + 2 ranks: one rank idle), a small config written here. Checks that the loss
// falls, the ledger (rebuilt from report.json's rows) balances, the run is deterministic, and a
// resumed run continues the same loss curve. Every run is bounded by a watchdog that kills its
// process group; the temp directory is removed even on failure.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <algorithm>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/time.h"
#include "energy/ledger.h"
#include "tests/live/fake_workers.h"

namespace gt {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kSource = fs::path(GT_TEST_DATA_DIR).parent_path().parent_path().string();

bool HaveMpirun() { return std::system("command -v mpirun >/dev/null 2>&1") == 0; }

// Starts `greentrain args...` in its own process group (its pid is the group id) with stdout and
// stderr to `log`.
pid_t StartGreentrain(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> argv = {std::string(GT_BINARY_DIR) + "/greentrain"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    (void)f;
    dup2(fileno(stdout), fileno(stderr));
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  setpgid(pid, pid);
  return pid;
}

// Runs `greentrain args...` (StartGreentrain); kills the group after `limit`. Returns the exit code
// (or -1 when killed).
int RunGreentrain(const std::vector<std::string>& args, const std::string& log, std::chrono::seconds limit) {
  const pid_t pid = StartGreentrain(args, log);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGTERM);
      std::this_thread::sleep_for(std::chrono::seconds(3));
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Nothing of the group may survive the run.
  kill(-pid, SIGKILL);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class LiveRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveMpirun()) GTEST_SKIP() << "mpirun not found in PATH: the live run test needs Open MPI";
    char tmpl[] = "/tmp/gt-live-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_ = WriteConfig("config.json", {3, 2});
  }

  // A config of the first ranks.size() sites of the bundled default (absolute trace paths) with
  // these ranks per site, a tiny live model and a 1 s trace hour.
  std::string WriteConfig(const std::string& name, const std::vector<int>& ranks) {
    json cfg = testing::LiveTestConfig(kSource, ranks, dir_);
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << cfg.dump(2);
    return path;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // Runs and returns the parsed report (fails the test on a non-zero exit).
  json Run(const std::string& run_dir, std::vector<std::string> extra, const std::string& config = "") {
    std::vector<std::string> args = {"run", config.empty() ? config_ : config, "--sites", "all", "--run-dir", run_dir,
                                     "--timeout", "80"};
    args.insert(args.end(), extra.begin(), extra.end());
    const std::string log = run_dir + ".log";
    int code = RunGreentrain(args, log, std::chrono::seconds(85));
    EXPECT_EQ(code, 0) << "greentrain run failed; log:\n" << ReadAll(log);
    if (code != 0) return json();
    EXPECT_FALSE(fs::exists(run_dir + "/keys")) << "the run's keys directory must be removed";
    return json::parse(ReadAll(run_dir + "/report.json"));
  }

  static std::vector<double> Losses(const json& report) {
    std::vector<double> v;
    for (const auto& p : report["loss_curve"]) v.push_back(p["loss"].get<double>());
    return v;
  }

  std::string dir_, config_;
};

// Rebuilds the ledger from the report's rows and measures its imbalance independently.
Ledger LedgerFromReport(const json& report) {
  Ledger l;
  for (const auto& r : report["ledger"]["rows"]) {
    LedgerRow row;
    row.time = ParseIsoTime(r["time"].get<std::string>()).value();
    row.hours = r["hours"];
    row.site = r["site"];
    row.busy_gpus = r["busy_gpus"];
    row.idle_gpus = r["idle_gpus"];
    row.work_steps = r["work_steps"];
    PowerFlow& f = row.flow;
    f.demand_mwh = r["demand_mwh"];
    f.renewable_available_mwh = r["renewable_available_mwh"];
    f.renewable_used_mwh = r["renewable_used_mwh"];
    f.battery_charge_mwh = r["battery_charge_mwh"];
    f.battery_discharge_mwh = r["battery_discharge_mwh"];
    f.battery_loss_mwh = r["battery_loss_mwh"];
    f.grid_mwh = r["grid_mwh"];
    f.unmet_mwh = r["unmet_mwh"];
    f.curtailed_mwh = r["curtailed_mwh"];
    f.soc_before_mwh = r["soc_before_mwh"];
    f.soc_after_mwh = r["soc_after_mwh"];
    f.carbon_kg = r["carbon_kg"];
    EXPECT_TRUE(l.Add(row).ok());
  }
  return l;
}

TEST_F(LiveRunTest, TrainsAcrossSitesLossFallsLedgerBalances) {
  const auto t0 = std::chrono::steady_clock::now();
  json r = Run(dir_ + "/a", {});
  ASSERT_FALSE(r.is_null());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(90));
  // Pipeline: 2 stages (one per site), 2 replicas (min of 3 and 2 ranks), one idle rank.
  ASSERT_EQ(r["pipeline"].size(), 2u);
  EXPECT_EQ(r["replicas"], 2);
  EXPECT_EQ(r["idle_ranks"].size(), 1u);
  EXPECT_NE(r["pipeline"][0]["site"], r["pipeline"][1]["site"]);
  std::vector<double> loss = Losses(r);
  ASSERT_EQ(loss.size(), 40u);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) first += loss[i] / 5, last += loss[35 + i] / 5;
  EXPECT_NEAR(loss[0], std::log(256.0), 0.5) << "an untrained byte model starts near ln(256)";
  EXPECT_LT(last, first - 0.5) << "loss must fall: first 5 steps " << first << ", last 5 " << last;

  // Measured stage times fed into the cost model give a predicted step of the right order of
  // magnitude (the bound is loose: ranks here share 2 cores with other tests, which stretches the
  // wall time of a step far more than its compute time; the demo, alone on the box, reads 1.07).
  ASSERT_TRUE(r["cost_model_check"].contains("predicted_step_s")) << r["cost_model_check"].dump();
  const double predicted = r["cost_model_check"]["predicted_step_s"].get<double>();
  const double measured = r["cost_model_check"]["measured_step_s"].get<double>();
  ASSERT_GT(predicted, 0);
  EXPECT_GT(measured / predicted, 0.1);
  EXPECT_LT(measured / predicted, 20.0);

  Ledger ledger = LedgerFromReport(r);
  EXPECT_LT(ledger.MaxImbalanceMwh(), 1e-9);
  EXPECT_NEAR(ledger.MaxImbalanceMwh(), r["ledger_max_imbalance_mwh"].get<double>(), 1e-9);
  auto by_site = ledger.TotalsBySite();
  ASSERT_EQ(by_site.size(), 2u);
  for (const auto& [site, t] : by_site) {
    EXPECT_GT(t.demand_mwh, 0) << site;
    EXPECT_NEAR(t.work_steps, 40, 1e-9) << site << ": every completed step is booked once per stage site";
  }
  // Intervals follow the compressed clock: 1 s of wall time per trace hour.
  EXPECT_GE(ledger.rows().size() / 2, static_cast<size_t>(r["train_wall_seconds"].get<double>()));
  EXPECT_TRUE(fs::exists(dir_ + "/a/ledger.csv"));
}

TEST_F(LiveRunTest, DeterministicAndResumeContinuesTheLossCurveAndTheLedger) {
  json full = Run(dir_ + "/full", {"--steps", "24"});
  ASSERT_FALSE(full.is_null());
  json part = Run(dir_ + "/part", {"--steps", "12", "--checkpoint-every", "6"});
  ASSERT_FALSE(part.is_null());
  // A fresh run into a directory with checkpoints is refused before it overwrites anything.
  std::vector<std::string> fresh = {"run", config_, "--sites", "all", "--run-dir", dir_ + "/part", "--steps", "24"};
  EXPECT_NE(RunGreentrain(fresh, dir_ + "/fresh.log", std::chrono::seconds(60)), 0);
  EXPECT_NE(ReadAll(dir_ + "/fresh.log").find("--resume"), std::string::npos) << ReadAll(dir_ + "/fresh.log");
  json resumed = Run(dir_ + "/part", {"--steps", "24", "--resume"});
  ASSERT_FALSE(resumed.is_null());
  std::vector<double> a = Losses(full), b = Losses(part), c = Losses(resumed);
  ASSERT_EQ(a.size(), 24u);
  ASSERT_EQ(b.size(), 12u);
  ASSERT_EQ(c.size(), 24u) << "the resumed report holds the whole loss curve";
  EXPECT_EQ(resumed["start_step"], 12);
  ASSERT_EQ(resumed["resumes"].size(), 1u);
  EXPECT_EQ(resumed["resumes"][0]["step"], 12);
  for (int i = 0; i < 12; ++i) EXPECT_NEAR(b[i], a[i], 1e-6) << "same seed and plan, step " << i;
  for (int i = 0; i < 24; ++i) EXPECT_NEAR(c[i], a[i], 1e-6) << "resumed run, step " << i;
  // The ledger continues: the first part's rows are kept, the trace clock goes on from the
  // checkpoint's trace time (no row booked twice: the ledger refuses duplicates), and it balances.
  Ledger first = LedgerFromReport(part), both = LedgerFromReport(resumed);
  EXPECT_GE(both.rows().size(), first.rows().size());
  EXPECT_NEAR(both.Totals().work_steps, 2 * 24.0, 1e-6) << "every step booked once per stage site";
  EXPECT_GT(both.Totals().demand_mwh, first.Totals().demand_mwh);
  EXPECT_LT(both.MaxImbalanceMwh(), 1e-9);
  EXPECT_GE(resumed["checkpoints"].size(), 2u) << "the first part's checkpoints stay in the record";
  // Resuming past the end is refused with a clear message, and nothing is left running.
  std::vector<std::string> args = {"run", config_, "--sites", "all", "--run-dir", dir_ + "/part", "--steps", "24",
                                   "--resume", "--timeout", "60"};
  EXPECT_NE(RunGreentrain(args, dir_ + "/again.log", std::chrono::seconds(70)), 0);
  EXPECT_NE(ReadAll(dir_ + "/again.log").find("nothing to do"), std::string::npos) << ReadAll(dir_ + "/again.log");
}

// SHA-256 of every layer file of the newest checkpoint of a run: equal digests mean bitwise-equal
// parameters and optimizer state.
std::map<std::string, std::string> LayerDigests(const std::string& run_dir, int64_t step) {
  std::map<std::string, std::string> out;
  char name[32];
  std::snprintf(name, sizeof name, "step-%06lld", static_cast<long long>(step));
  const std::string m = ReadAll(run_dir + "/checkpoints/" + name + "/manifest.json");
  if (m.empty()) return out;
  const json manifest = json::parse(m);
  for (const auto& f : manifest["files"])
    if (f["name"].get<std::string>().rfind("layer-", 0) == 0) out[f["name"]] = f["sha256"];
  return out;
}

TEST_F(LiveRunTest, KilledAtARandomStepResumesToBitwiseEqualParameters) {
  const std::string steps = "300";
  json ref = Run(dir_ + "/ref", {"--steps", steps});
  ASSERT_FALSE(ref.is_null());
  const auto want = LayerDigests(dir_ + "/ref", 300);
  ASSERT_EQ(want.size(), 4u) << "embedding, 2 blocks, head; checkpoints: " << ref["checkpoints"].dump();

  // The same run, SIGKILLed (coordinator, mpirun and every worker) at a random time after its
  // first committed checkpoint.
  const std::string run_dir = dir_ + "/killed";
  const pid_t pid = StartGreentrain({"run", config_, "--sites", "all", "--run-dir", run_dir, "--steps", steps,
                                     "--checkpoint-every", "25", "--timeout", "80"},
                                    run_dir + ".log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(run_dir + "/checkpoints/step-000025/manifest.json") &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::srand(static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
  const int delay_ms = std::rand() % 1500;
  std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  kill(-pid, SIGKILL);
  (void)std::system(("pkill -KILL -f -- '--run-dir " + run_dir + "' 2>/dev/null").c_str());
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it was killed (delay " << delay_ms << " ms)";

  json resumed = Run(run_dir, {"--steps", steps, "--resume"});
  ASSERT_FALSE(resumed.is_null()) << "killed after " << delay_ms << " ms";
  ASSERT_EQ(resumed["resumes"].size(), 1u);
  const int64_t from = resumed["resumes"][0]["step"];
  EXPECT_GE(from, 25);
  EXPECT_EQ(LayerDigests(run_dir, 300), want) << "resumed at step " << from << " after a kill at " << delay_ms << " ms";
  std::vector<double> a = Losses(ref), b = Losses(resumed);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "step " << i;
}

TEST_F(LiveRunTest, ResumesOntoFewerStagesAndFewerReplicas) {
  // 3 stages x 2 replicas, then 2 stages x 2 replicas, then 2 stages x 1 replica.
  const std::string c32 = WriteConfig("c32.json", {2, 2, 2}), c22 = WriteConfig("c22.json", {2, 2}),
                    c21 = WriteConfig("c21.json", {1, 1});
  json ref = Run(dir_ + "/ref", {"--steps", "36"}, c32);
  ASSERT_FALSE(ref.is_null());
  ASSERT_EQ(ref["pipeline"].size(), 3u);
  json a = Run(dir_ + "/moved", {"--steps", "12"}, c32);
  ASSERT_FALSE(a.is_null());
  json b = Run(dir_ + "/moved", {"--steps", "24", "--resume"}, c22);
  ASSERT_FALSE(b.is_null());
  EXPECT_EQ(b["pipeline"].size(), 2u);
  EXPECT_EQ(b["replicas"], 2);
  json c = Run(dir_ + "/moved", {"--steps", "36", "--resume"}, c21);
  ASSERT_FALSE(c.is_null());
  EXPECT_EQ(c["replicas"], 1);
  EXPECT_EQ(c["resumes"].size(), 2u);
  std::vector<double> want = Losses(ref), got = Losses(c);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-4 * std::abs(want[i])) << "step " << i << " (another split and replica count)";
  EXPECT_LT(got.back(), got.front() - 0.5) << "training went on after each move";
}

TEST_F(LiveRunTest, DamagedNewestCheckpointIsDetectedAndThePreviousOneUsed) {
  const std::string run = dir_ + "/run";
  ASSERT_FALSE(Run(run, {"--steps", "30", "--checkpoint-every", "10"}).is_null());
  auto damage = [&](int64_t step, bool truncate) {
    char name[32];
    std::snprintf(name, sizeof name, "step-%06lld", static_cast<long long>(step));
    const std::string f = run + "/checkpoints/" + name + "/layer-0001.gtck";
    std::string bytes = ReadAll(f);
    ASSERT_GT(bytes.size(), 100u) << f;
    if (truncate) bytes.resize(bytes.size() - 64);
    else bytes[bytes.size() / 2] ^= 0x10;
    std::ofstream(f, std::ios::binary | std::ios::trunc) << bytes;
  };
  auto verify = [&](const std::string& what) {
    const std::string log = dir_ + "/verify.log";
    int code = RunGreentrain({"checkpoint", "verify", run}, log, std::chrono::seconds(30));
    EXPECT_EQ(code, 1) << ReadAll(log);
    EXPECT_NE(ReadAll(log).find("layer-0001.gtck"), std::string::npos) << ReadAll(log);
    EXPECT_NE(ReadAll(log).find(what), std::string::npos) << ReadAll(log);
  };
  EXPECT_EQ(RunGreentrain({"checkpoint", "verify", run}, dir_ + "/ok.log", std::chrono::seconds(30)), 0)
      << ReadAll(dir_ + "/ok.log");
  damage(30, /*truncate=*/false);
  verify("SHA-256");
  json r = Run(run, {"--steps", "40", "--resume", "--checkpoint-every", "10"});
  ASSERT_FALSE(r.is_null());
  EXPECT_EQ(r["resumes"][0]["step"], 20);
  ASSERT_EQ(r["resumes"][0]["rejected"].size(), 1u);
  EXPECT_NE(r["resumes"][0]["rejected"][0]["dir"].get<std::string>().find("step-000030"), std::string::npos);
  damage(40, /*truncate=*/true);
  verify("truncated");
  r = Run(run, {"--steps", "50", "--resume"});
  ASSERT_FALSE(r.is_null());
  EXPECT_EQ(r["resumes"][1]["step"], 30) << "the rewritten step 30 is whole again";
  EXPECT_EQ(Losses(r).size(), 50u);
}

// The live run follows the policy's plan: it pauses, moves and resizes the pipeline as the energy
// traces dictate (nothing forced), and training goes on where it stopped: the loss curve matches an
// undisturbed run on one rank within floating-point tolerance. The job's live steps stand for the
// modelled job's, so what the plan does depends on the slack the pace of this shared box leaves:
// two runs, one with a tight deadline (the plan moves between sites) and one with ample slack (it
// pauses in dirty hours and trades speed for efficiency), cover every action together.
TEST_F(LiveRunTest, FollowsThePlanPausesMovesAndResizesWithoutChangingTraining) {
  const std::string one = WriteConfig("one.json", {1});
  json ref = Run(dir_ + "/ref", {"--steps", "1500"}, one);
  ASSERT_FALSE(ref.is_null());
  const std::vector<double> want = Losses(ref);
  std::map<std::string, int> kinds;
  for (int deadline : {72, 240}) {
    SCOPED_TRACE("deadline " + std::to_string(deadline) + " h");
    const std::string name = "plan" + std::to_string(deadline);
    const std::string cfg_path = WriteConfig(name + ".json", {3, 3, 3});
    json cfg = json::parse(ReadAll(cfg_path));
    cfg["runtime"]["wall_seconds_per_trace_hour"] = 0.25;
    cfg["job"]["deadline_hours"] = deadline;
    std::ofstream(cfg_path) << cfg.dump(2);
    std::vector<std::string> args = {"run", cfg_path, "--run-dir", dir_ + "/" + name, "--steps", "1500", "--timeout", "150"};
    int code = RunGreentrain(args, dir_ + "/" + name + ".log", std::chrono::seconds(160));
    ASSERT_TRUE(code == 0 || code == 3) << ReadAll(dir_ + "/" + name + ".log");
    json r = json::parse(ReadAll(dir_ + "/" + name + "/report.json"));
    // The live steps stand for the job's: on this compressed clock a slow box finishes after the
    // deadline, and `run` then exits 3.
    EXPECT_EQ(code == 3, !r["deadline_met"].get<bool>()) << r["finished_at"] << " vs " << r["deadline"];
    EXPECT_TRUE(r["follows_plan"].get<bool>());
    EXPECT_EQ(r["policy_proposals_ignored"], 0);
    EXPECT_FALSE(r["actions"].empty());
    for (const auto& a : r["actions"]) {
      bool migrates = false;
      for (const auto& k : a["actions"]) {
        kinds[k.get<std::string>()]++;
        migrates |= k == "migrate";
      }
      // Layers a rank did not hold come from the ranks that held them, over the transport; state kept
      // in memory is never read back from disk.
      const json via = a.value("state_via", json::object());
      if (via.value("peers", 0) > 0) {
        EXPECT_GT(a["state_transfer_bytes"].get<double>(), 0.0) << a.dump();
        kinds["moved between ranks"]++;
      }
      if (migrates) {
        EXPECT_GT(via.value("peers", 0), 0) << a.dump();
      }
      EXPECT_EQ(via.value("checkpoint", 0), 0) << a.dump();
    }
    bool plan_checkpoint = false;
    for (const auto& c : r["checkpoints"]) plan_checkpoint |= c["kind"] == "plan";
    EXPECT_TRUE(plan_checkpoint) << "the state is on disk before a pause or a move";
    std::vector<double> got = Losses(r);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-4 * std::abs(want[i])) << "step " << i << "; actions " << r["actions"].dump();
    Ledger ledger = LedgerFromReport(r);
    EXPECT_LT(ledger.MaxImbalanceMwh(), 1e-9);
    EXPECT_TRUE(r["simulator_prediction"].contains("simulated_carbon_kg")) << r["simulator_prediction"].dump();
  }
  EXPECT_GT(kinds["pause"], 0);
  EXPECT_GT(kinds["resume"], 0);
  EXPECT_GT(kinds["migrate"], 0);
  EXPECT_GT(kinds["resize"], 0);
  EXPECT_GT(kinds["moved between ranks"], 0);
}

// The pid of the worker of `rank` in the run writing to `run_dir`, or -1.
pid_t WorkerPid(const std::string& run_dir, int rank) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = ReadAll(e.path().string() + "/cmdline"), env = ReadAll(e.path().string() + "/environ");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find(" worker ") == std::string::npos || cmd.find(run_dir) == std::string::npos) continue;
    const std::string want = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
    for (size_t p = 0; (p = env.find(want, p)) != std::string::npos; p += want.size())
      if ((p == 0 || env[p - 1] == '\0') && (p + want.size() == env.size() || env[p + want.size()] == '\0'))
        return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

// A worker that hangs (SIGSTOP) does not acknowledge the next command; it is treated as failed and
// the plan goes on without it from the last checkpoint, to the end of the run.
TEST_F(LiveRunTest, AWorkerThatDoesNotAcknowledgeIsLeftOutAndTrainingFinishes) {
  const std::string cfg_path = WriteConfig("hang.json", {3, 3, 3});
  json cfg = json::parse(ReadAll(cfg_path));
  cfg["runtime"]["wall_seconds_per_trace_hour"] = 0.25;
  std::ofstream(cfg_path) << cfg.dump(2);
  const std::string run_dir = dir_ + "/hang";
  const pid_t pid = StartGreentrain({"run", cfg_path, "--run-dir", run_dir, "--steps", "1500", "--checkpoint-every",
                                     "100", "--ack-timeout", "3", "--timeout", "200"},
                                    run_dir + ".log");
  // Once the first checkpoint is in, hang one rank of the first pipeline (texas: ranks 3 and 4).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(run_dir + "/checkpoints/step-000100/manifest.json") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const pid_t victim = WorkerPid(run_dir, 3);
  ASSERT_GT(victim, 0) << "rank 3 not found";
  kill(victim, SIGSTOP);
  int status = 0;
  // About 40 s alone; the other live tests running beside it under ctest -j2 can double that.
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(230);
  while (waitpid(pid, &status, WNOHANG) == 0 && std::chrono::steady_clock::now() < limit)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (waitpid(pid, &status, WNOHANG) == 0) {
    kill(-pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  kill(victim, SIGCONT);
  kill(victim, SIGKILL);
  (void)std::system(("pkill -KILL -f -- '--run-dir " + run_dir + "' 2>/dev/null").c_str());
  ASSERT_TRUE(WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3)) << ReadAll(run_dir + ".log");
  json r = json::parse(ReadAll(run_dir + "/report.json"));
  EXPECT_EQ(WEXITSTATUS(status) == 3, !r["deadline_met"].get<bool>());
  bool recovered = false;
  for (const auto& a : r["actions"])
    if (a["actions"][0] == "recover") {
      recovered = true;
      EXPECT_NE(std::find(a["failed_ranks"].begin(), a["failed_ranks"].end(), json(3)), a["failed_ranks"].end())
          << a.dump();
      EXPECT_GE(a["step"].get<int64_t>(), 100);
    }
  EXPECT_TRUE(recovered) << r["actions"].dump(1);
  EXPECT_EQ(Losses(r).size(), 1500u) << "every step trained, those after the checkpoint again";
  for (const auto& st : r["pipeline"])
    for (const auto& rank : st["ranks"]) EXPECT_NE(rank.get<int>(), 3) << "the failed rank is left out";
}

}  // namespace
}  // namespace gt
