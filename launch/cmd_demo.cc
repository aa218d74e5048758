// `greentrain demo [options]`: what ./launch/demo.sh runs: `greentrain run` on the bundled default
// configuration (three simulated US regions, 3 ranks each, real 2022 EIA-930 traces), with a pipeline
// following the policy's plan live (pauses, resizes, moves) at the plan's pace (--pace plan), 1000
// steps and a new run directory
// <binary dir>/runs/demo-<UTC time> (with --resume: the newest of them), unless overridden. A new
// directory per demo keeps every earlier demo's checkpoints and report.
#include <ctime>
#include <filesystem>
#include <memory>

#include "launch/command.h"
#include "launch/live_args.h"

namespace gt::cli {


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

// The demo's defaults: 1000 steps (a few minutes on 2 cores: about 0.1-0.3 s per step, plus the
// hours the plan pauses) and a new run directory next to the binary (build/runs/demo-<time>, not in
// the source tree), or with --resume the newest of them.
int RunDemo(LiveArgs a) {
  if (a.steps == 0) a.steps = 1000;
  // The demo shows the plan carried out: its pace, not this box's, sets the job's (else a loaded box
  // falls behind the plan and can miss the deadline the plan meets).
  if (a.pace.empty()) a.pace = "plan";
  if (a.run_dir.empty()) {
    namespace fs = std::filesystem;
    const fs::path runs = fs::path(SelfExe()).parent_path() / "runs";
    std::string dir = (runs / ("demo-" + CompactUtcNow())).string();
    if (a.resume) {
      std::string newest;
      std::error_code ec;
      for (fs::directory_iterator it(runs, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string n = it->path().filename().string();
        if (n.rfind("demo-", 0) == 0 && n > newest) newest = n;
      }
      if (newest.empty()) return Fail("demo", NotFound("--resume: no earlier demo run in " + runs.string()));
      dir = (runs / newest).string();
    }
    a.run_dir = dir;
  }
  return RunLiveCommand("demo", a);
}

}  // namespace

GT_REGISTER_COMMAND(demo_cmd, "demo",
                    "live training across three simulated regions on the bundled default (= run, 1000 steps, "
                    "a new build/runs/demo-<time>)",
                    [](CLI::App& app) -> std::function<int()> {
                      auto a = std::make_shared<LiveArgs>();
                      AddLiveOptions(app, a.get());
                      return [a] { return RunDemo(*a); };
                    });

}  // namespace gt::cli
