// `greentrain demo [options]`: what ./launch/demo.sh runs: `greentrain run` on the bundled default
// configuration (three simulated US regions, 3 ranks each, real 2022 EIA-930 traces), with a pipeline
// following the policy's plan live (pauses, resizes, moves), 1000 steps and a new run directory
// <binary dir>/runs/demo-<UTC time> (with --resume: the newest of them), unless overridden. A new
// directory per demo keeps every earlier demo's checkpoints and report.
#include <ctime>
#include <filesystem>

#include "launch/command.h"

namespace gt::cli {

int RunLiveCommand(const std::string& cmd, const Args& args);  // launch/cmd_run.cc
std::string SelfExe();                                         // launch/cmd_run.cc

namespace {

// "20261201T031500Z": sorts by time, safe in a file name.
std::string CompactUtcNow() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

int RunDemo(const Args& args) {
  Args a = args;
  auto given = [&](const char* flag) {
    for (const auto& x : args)
      if (x.rfind(flag, 0) == 0) return true;
    return false;
  };
  // A few minutes on 2 cores: about 0.1-0.3 s per step, plus the hours the plan pauses.
  if (!given("--steps")) a.insert(a.end(), {"--steps", "1000"});
  // The run directory goes next to the binary (build/runs/demo-*), not into the source tree.
  if (!given("--run-dir")) {
    namespace fs = std::filesystem;
    const fs::path runs = fs::path(SelfExe()).parent_path() / "runs";
    std::string dir = (runs / ("demo-" + CompactUtcNow())).string();
    if (given("--resume")) {
      std::string newest;
      std::error_code ec;
      for (fs::directory_iterator it(runs, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string n = it->path().filename().string();
        if (n.rfind("demo-", 0) == 0 && n > newest) newest = n;
      }
      if (newest.empty()) return Fail("demo", NotFound("--resume: no earlier demo run in " + runs.string()));
      dir = (runs / newest).string();
    }
    a.insert(a.end(), {"--run-dir", dir});
  }
  return RunLiveCommand("demo", a);
}

}  // namespace

GT_REGISTER_COMMAND(demo_cmd, "demo", "demo [--steps N] [--resume] [--run-dir D] [--sites plan|all]",
                    "live training across three simulated regions on the bundled default (= run)", RunDemo);

}  // namespace gt::cli
