// `greentrain check CONFIG`: validates a configuration and the traces it names (as simulate and run
// read them), and prints a summary.
#include <iostream>

#include "energy/power.h"
#include "launch/command.h"

namespace gt::cli {
namespace {

std::function<int()> DefineCheck(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  AddConfigArg(app, path.get());
  return [path] {
    auto cfg = LoadConfigOrDefault(*path);
    if (!cfg.ok()) return Fail("check", cfg.status());
    // The traces too, as simulate and run read them: every value in physical range, the job's
    // period covered.
    auto supply = LoadAllSupply(*cfg);
    if (!supply.ok()) return Fail("check", supply.status());
    std::cout << cfg->path << ": OK, " << cfg->sites.size() << " sites, " << cfg->links.size()
              << " links, model " << cfg->model.name << " (" << cfg->model.layers << " layers), job "
              << cfg->job.steps << " steps by " << cfg->job.deadline_hours << " h, policy "
              << cfg->policy.name << "; traces of " << supply->size() << " sites read and in range\n";
    return 0;
  };
}

}  // namespace

GT_REGISTER_COMMAND(check_cmd, "check", "validate a configuration file", DefineCheck);

}  // namespace gt::cli
