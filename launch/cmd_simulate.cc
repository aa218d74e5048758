// `greentrain simulate [CONFIG] [--policy NAME|all] [--forecaster NAME] [--json F] [--csv F] [--svg F]
//  [--ledger F]`: runs the whole job through the traces under each policy and compares them.
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "coordinator/report.h"
#include "coordinator/simulator.h"
#include "launch/command.h"

namespace gt::cli {
namespace {

int RunSimulate(const Args& args) {
  auto flags = Flags::Parse(args, {"--policy", "--forecaster", "--json", "--csv", "--svg", "--ledger"});
  if (!flags.ok()) return Fail("simulate", flags.status());
  auto cfg = LoadConfigArg(*flags);
  if (!cfg.ok()) return Fail("simulate", cfg.status());
  std::string which = flags->Get("--policy", "all");
  std::string forecaster = flags->Get("--forecaster", cfg->policy.forecaster);
  std::vector<std::string> names = which == "all" ? PolicyNames() : std::vector<std::string>{which};

  auto sim = Simulator::FromConfig(*cfg);
  if (!sim.ok()) return Fail("simulate", sim.status());
  std::vector<PolicyReport> reports;
  for (const auto& name : names) {
    auto policy = MakePolicy(name);
    if (!policy.ok()) return Fail("simulate", policy.status());
    auto res = sim->Run(**policy, forecaster);
    if (!res.ok()) return Fail("simulate", res.status().WithContext("policy " + name));
    reports.push_back({std::move(res).value()});
  }
  ComputeRatios(reports);
  const double lb = sim->CarbonLowerBoundKg();
  std::cout << "greentrain simulate: " << cfg->name << " (" << cfg->sites.size() << " sites, model "
            << cfg->model.name << ", " << cfg->job.steps << " steps, deadline " << cfg->job.deadline_hours
            << " h from " << FormatIsoTime(cfg->job.start) << ", forecaster " << forecaster << ")\n";
  const auto& fast = sim->menu().option(sim->menu().fastest());
  std::cout << "fastest configuration: " << fast.label << ", " << fast.steps_per_hour << " steps/h ("
            << cfg->job.steps / fast.steps_per_hour << " h for the job)\n\n";
  std::cout << FormatTable(reports, lb);
  if (flags->Has("--json")) {
    std::ofstream out(flags->Get("--json"));
    out << ReportJson(cfg->name, reports, lb).dump(2) << "\n";
    if (!out) return Fail("simulate", IoError("cannot write '" + flags->Get("--json") + "'"));
  }
  if (flags->Has("--csv")) {
    Status s = WriteReportCsv(flags->Get("--csv"), reports);
    if (!s.ok()) return Fail("simulate", s);
  }
  if (flags->Has("--svg")) {
    Status s = WriteSvg(flags->Get("--svg"), reports, which == "all" ? "greentrain" : which);
    if (!s.ok()) return Fail("simulate", s);
  }
  if (flags->Has("--ledger")) {
    const std::string focus = which == "all" ? "greentrain" : which;
    for (const auto& r : reports)
      if (r.result.policy == focus) {
        std::string path = flags->Get("--ledger");
        Status s = path.size() > 5 && path.substr(path.size() - 5) == ".json" ? r.result.ledger.WriteJson(path)
                                                                             : r.result.ledger.WriteCsv(path);
        if (!s.ok()) return Fail("simulate", s);
      }
  }
  return 0;
}

}  // namespace

GT_REGISTER_COMMAND(simulate_cmd, "simulate",
                    "simulate [CONFIG] [--policy NAME|all] [--forecaster NAME] [--json F] [--csv F] [--svg F] [--ledger F]",
                    "what-if simulation of the whole job under each policy", RunSimulate);

}  // namespace gt::cli
