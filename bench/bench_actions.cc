// bench_actions: the training time a live run loses to each action the policy's plan causes
// (pause/resume, resize, migration), read from the report of a real run of the demo
// (`greentrain demo --steps N`, the bundled traces decide the actions), and the migration's state
// bytes per second against the CURVE transport's throughput measured in the same run.
//
// Targets (issue: the live run follows green power), on one box with the demo model:
//   pause + resume lost < 1 s; resize lost < 1 s; migration lost < 1 s + state bytes / transport rate.
// Moved layers travel between ranks over the CURVE transport (worker/state_transfer.h); the
// migration's rate is its transferred bytes over the slowest receiving rank's state time, against the
// transport's throughput on loopback measured in the same run. A checkpoint is still written at every
// halt (it is part of the lost time). JSON lines.
//
//   bench_actions [--steps N]      (default 300; about 5 minutes on 2 cores, most of it paused trace hours)
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "comms/transport.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// CURVE transport throughput on loopback (bytes/s): 8 messages of 16 MiB, sender on a thread.
double CurveThroughput() {
  auto ka = *gt::GenerateCurveKeyPair(), kb = *gt::GenerateCurveKeyPair();
  gt::TransportOptions oa, ob;
  oa.name = "a";
  ob.name = "b";
  oa.keys = ka;
  ob.keys = kb;
  oa.allowed_peers[kb.public_key] = "b";
  oa.bind_endpoint = "tcp://127.0.0.1:*";
  auto a = gt::Transport::Create(oa), b = gt::Transport::Create(ob);
  if (!a.ok() || !b.ok()) return 0;
  if (!(*b)->Connect("a", (*a)->endpoint(), ka.public_key).ok() ||
      !(*b)->WaitConnected("a", std::chrono::seconds(10)).ok())
    return 0;
  const size_t size = size_t{16} << 20;
  const int count = 8;
  std::vector<uint8_t> src(size, 7);
  const auto t0 = Clock::now();
  std::thread sender([&] {
    for (int i = 0; i < count; ++i)
      (void)(*b)->SendTensorCopy("a", {1, 0, 0, i}, gt::DType::kUInt8, {static_cast<int64_t>(size)}, src.data(), size);
  });
  int got = 0;
  for (; got < count; ++got)
    if (!(*a)->Receive(std::chrono::seconds(30)).ok()) break;
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  sender.join();
  return got == count ? size * count / secs : 0;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 300;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--steps" && i + 1 < argc) {
      steps = std::max(50, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: bench_actions [--steps N]\n");
      return 2;
    }
  }
  const double transport = CurveThroughput();
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  const std::string greentrain = (self.parent_path().parent_path() / "greentrain").string();
  char tmpl[] = "/tmp/gt_bench_actions_XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  const std::string run_dir = std::string(tmpl) + "/run", log = std::string(tmpl) + "/run.log";
  const pid_t pid = fork();
  if (pid == 0) {
    if (!std::freopen(log.c_str(), "w", stdout)) _exit(127);
    dup2(fileno(stdout), fileno(stderr));
    const std::string n = std::to_string(steps);
    execl(greentrain.c_str(), greentrain.c_str(), "demo", "--steps", n.c_str(), "--run-dir", run_dir.c_str(),
          "--timeout", "900", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::ifstream in(run_dir + "/report.json");
  std::stringstream ss;
  ss << in.rdbuf();
  json r = json::parse(ss.str(), nullptr, false);
  fs::remove_all(tmpl, ec);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !r.is_object()) {
    std::fprintf(stderr, "bench_actions: the demo run failed (exit %d); rerun `greentrain demo --steps %d` to see why\n",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1, steps);
    return 1;
  }
  // Lost training time per action kind; a move's bytes per second of lost time.
  std::map<std::string, std::vector<double>> lost;
  std::vector<double> move_bytes, move_rate;
  for (const auto& a : r["actions"]) {
    std::string kind = a["actions"].size() == 1 ? a["actions"][0].get<std::string>() : "";
    for (const auto& k : a["actions"])
      if (k == "resume") kind = "resume";
    if (kind.empty()) continue;
    const double s = a.value("lost_training_s", 0.0);
    lost[kind].push_back(s);
    const double moved = a.value("state_transfer_bytes", 0.0), load_s = a.value("state_load_s", 0.0);
    if (kind == "migrate" && moved > 0 && load_s > 0) {
      move_bytes.push_back(moved);
      move_rate.push_back(moved / load_s);
    }
  }
  auto line = [&](const char* name, double value, double target, const std::string& extra) {
    std::printf("{\"bench\":\"%s\",\"steps\":%d,\"value\":%.3f,\"unit\":\"s of training lost\",\"target\":%.3f,"
                "\"meets_target\":%s%s}\n",
                name, steps, value, target, value < target ? "true" : "false", extra.c_str());
  };
  const double pause = Median(lost["pause"]), resume = Median(lost["resume"]), resize = Median(lost["resize"]),
               migrate = Median(lost["migrate"]);
  const double bytes = Median(move_bytes);
  char buf[256];
  std::snprintf(buf, sizeof buf, ",\"pauses\":%zu,\"resumes\":%zu,\"pause_s\":%.3f,\"resume_s\":%.3f",
                lost["pause"].size(), lost["resume"].size(), pause, resume);
  if (!lost["pause"].empty()) line("action_pause_resume_lost", pause + resume, 1.0, buf);
  std::snprintf(buf, sizeof buf, ",\"resizes\":%zu", lost["resize"].size());
  if (!lost["resize"].empty()) line("action_resize_lost", resize, 1.0, buf);
  if (!lost["migrate"].empty()) {
    std::snprintf(buf, sizeof buf,
                  ",\"migrations\":%zu,\"state_bytes\":%.0f,\"moved_bytes_per_s\":%.0f,\"baseline\":\"CURVE transport "
                  "throughput on loopback, same run\",\"baseline_value\":%.0f,\"ratio\":%.3f",
                  lost["migrate"].size(), bytes, Median(move_rate), transport,
                  transport > 0 ? Median(move_rate) / transport : 0.0);
    line("action_migrate_lost", migrate, 1.0 + (transport > 0 ? bytes / transport : 0), buf);
  }
  for (const char* k : {"pause", "resize", "migrate"})
    if (lost[k].empty()) std::printf("{\"bench\":\"action_%s_lost\",\"note\":\"no such action in this run\"}\n", k);
  return 0;
}
