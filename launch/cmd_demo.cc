// `greentrain demo [options]`: what ./launch/demo.sh runs: `greentrain run` on the bundled default
// configuration (three simulated US regions, 2 ranks each, real 2022 EIA-930 traces), with a pipeline
// stage in every region (--sites all), 1500 steps (about 3 minutes on 2 cores) and the run directory
// <binary dir>/runs/demo, unless overridden.
#include <filesystem>

#include "launch/command.h"

namespace gt::cli {

int RunLiveCommand(const std::string& cmd, const Args& args);  // launch/cmd_run.cc
std::string SelfExe();                                         // launch/cmd_run.cc

namespace {

int RunDemo(const Args& args) {
  Args a = args;
  auto given = [&](const char* flag) {
    for (const auto& x : args)
      if (x.rfind(flag, 0) == 0) return true;
    return false;
  };
  // Every simulated region hosts a pipeline stage (the policy alone would often pick one site).
  if (!given("--sites")) a.insert(a.end(), {"--sites", "all"});
  // About 3 minutes on 2 cores with 6 ranks (~0.11 s per step).
  if (!given("--steps")) a.insert(a.end(), {"--steps", "1500"});
  // The run directory goes next to the binary (build/runs/demo), not into the source tree.
  if (!given("--run-dir"))
    a.insert(a.end(), {"--run-dir", (std::filesystem::path(SelfExe()).parent_path() / "runs" / "demo").string()});
  return RunLiveCommand("demo", a);
}

}  // namespace

GT_REGISTER_COMMAND(demo_cmd, "demo", "demo [--steps N] [--resume] [--run-dir D] [--sites plan|all]",
                    "live training across three simulated regions on the bundled default (= run)", RunDemo);

}  // namespace gt::cli
