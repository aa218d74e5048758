// `greentrain coordinator [CONFIG] --run-dir DIR [--workers N] [live options]`: the live control loop
// alone; start the workers yourself (mpirun -np N greentrain worker CONFIG --coordinator EP --run-dir DIR)
// with the endpoint it prints.
#include <csignal>
#include <iostream>

#include "coordinator/live.h"
#include "launch/command.h"

namespace gt::cli {

// Shared live-run helpers, defined in launch/cmd_run.cc.
std::vector<std::string> LiveValueFlags();
std::vector<std::string> LiveSwitches();
Result<LiveOptions> LiveOptionsFromFlags(const Flags& flags, const Config& config);
void InstallInterruptHandler();
bool Interrupted();
std::string SelfExe();

namespace {

int RunCoordinatorCmd(const Args& args) {
  auto flags = Flags::Parse(args, LiveValueFlags(), LiveSwitches());
  if (!flags.ok()) return Fail("coordinator", flags.status());
  auto cfg = LoadConfigArg(*flags);
  if (!cfg.ok()) return Fail("coordinator", cfg.status());
  auto opts = LiveOptionsFromFlags(*flags, *cfg);
  if (!opts.ok()) return Fail("coordinator", opts.status());
  InstallInterruptHandler();
  opts->cancelled = [] { return Interrupted(); };
  auto coord = LiveCoordinator::Create(*opts);
  if (!coord.ok()) return Fail("coordinator", coord.status());
  std::cout << "coordinator listening at " << (*coord)->control_endpoint() << "\n"
            << "start the workers: mpirun -np " << (opts->workers > 0 ? opts->workers : 0) << " "
            << SelfExe() << " worker " << cfg->path << " --coordinator " << (*coord)->control_endpoint()
            << " --run-dir " << opts->run_dir << "\n"
            << std::flush;
  auto report = (*coord)->Run();
  if (!report.ok()) return Fail("coordinator", report.status());
  std::cout << FormatLiveReport(*report) << "report: " << opts->run_dir << "/report.json\n";
  return 0;
}

}  // namespace

GT_REGISTER_COMMAND(coordinator_cmd, "coordinator",
                    "coordinator [CONFIG] [--run-dir DIR] [--workers N] [--steps N] [--resume] ...",
                    "the live control loop (workers started separately)", RunCoordinatorCmd);

}  // namespace gt::cli
