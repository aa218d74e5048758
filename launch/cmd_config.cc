// `greentrain check CONFIG`: validates a configuration and prints a summary.
#include <iostream>

#include "launch/command.h"

namespace gt::cli {
namespace {

int RunCheck(const Args& args) {
  auto flags = Flags::Parse(args, {});
  if (!flags.ok()) return Fail("check", flags.status());
  auto cfg = LoadConfigArg(*flags);
  if (!cfg.ok()) return Fail("check", cfg.status());
  std::cout << cfg->path << ": OK, " << cfg->sites.size() << " sites, " << cfg->links.size()
            << " links, model " << cfg->model.name << " (" << cfg->model.layers << " layers), job "
            << cfg->job.steps << " steps by " << cfg->job.deadline_hours << " h, policy "
            << cfg->policy.name << "\n";
  return 0;
}

}  // namespace

GT_REGISTER_COMMAND(check_cmd, "check", "check [CONFIG]", "validate a configuration file", RunCheck);

}  // namespace gt::cli
