// `greentrain coordinator [CONFIG] --run-dir DIR [--workers N] [live options]`: the live control loop
// alone; start the workers yourself (mpirun -np N greentrain worker CONFIG --coordinator EP --run-dir DIR)
// with the endpoint it prints.
#include <csignal>
#include <iostream>
#include <memory>

#include "coordinator/live.h"
#include "launch/command.h"
#include "launch/live_args.h"

namespace gt::cli {

namespace {

int RunCoordinatorCmd(const LiveArgs& args) {
  auto cfg = LoadConfigOrDefault(args.config);
  if (!cfg.ok()) return Fail("coordinator", cfg.status());
  auto opts = LiveOptionsFromArgs(args, *cfg);
  if (!opts.ok()) return Fail("coordinator", opts.status());
  // A fixed port: workers reconnect to a restarted coordinator (--resume) at the same endpoint.
  if (args.port < 0) opts->control_port = cfg->runtime.base_port;
  InstallInterruptHandler();
  opts->cancelled = [] { return Interrupted(); };
  opts->status_requested = [] { return StatusRequested(); };
  auto coord = LiveCoordinator::Create(*opts);
  if (!coord.ok()) return Fail("coordinator", coord.status());
  std::cout << "coordinator listening at " << (*coord)->control_endpoint() << "\n"
            << "start the workers: mpirun -np " << (opts->workers > 0 ? opts->workers : 0) << " "
            << SelfExe() << " worker " << cfg->path << " --coordinator " << (*coord)->control_endpoint()
            << " --run-dir " << opts->run_dir
            << (opts->keys_dir.empty() ? std::string() : " --keys " + opts->keys_dir) << "\n"
            << (opts->keys_dir.empty() ? "  (this run's keys are in " + opts->run_dir +
                                             "/keys: the workers must share this file system, or use "
                                             "`greentrain keys generate` and --keys)\n"
                                       : std::string())
            << std::flush;
  auto report = (*coord)->Run();
  if (!report.ok()) return Fail("coordinator", report.status());
  std::cout << FormatLiveReport(*report) << "report: " << opts->run_dir << "/report.json\n";
  return 0;
}

}  // namespace

GT_REGISTER_COMMAND(coordinator_cmd, "coordinator", "the live control loop alone (start the workers with the line it prints)",
                    [](CLI::App& app) -> std::function<int()> {
                      auto a = std::make_shared<LiveArgs>();
                      AddLiveOptions(app, a.get());
                      return [a] { return RunCoordinatorCmd(*a); };
                    });

}  // namespace gt::cli
