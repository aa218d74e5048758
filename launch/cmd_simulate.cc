// `greentrain simulate [CONFIG] [--policy NAME|all] [--forecaster NAME] [--json F] [--csv F] [--svg F]
//  [--ledger F]`: runs the whole job through the traces under each policy and compares them.
#include <fstream>
#include <iostream>
#include <sstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "coordinator/html_report.h"
#include "coordinator/report.h"
#include "coordinator/simulator.h"
#include "energy/forecast.h"
#include "launch/command.h"

namespace gt::cli {
namespace {

struct SimulateArgs {
  std::string config, policy = "all", forecaster, json, csv, svg, ledger, timeline, html;
};

int RunSimulate(const SimulateArgs& args) {
  auto cfg = LoadConfigOrDefault(args.config);
  if (!cfg.ok()) return Fail("simulate", cfg.status());
  const std::string which = args.policy;
  const std::string forecaster = args.forecaster.empty() ? cfg->policy.forecaster : args.forecaster;
  std::vector<std::string> names = which == "all" ? PolicyNames() : std::vector<std::string>{which};

  auto sim = Simulator::FromConfig(*cfg);
  if (!sim.ok()) return Fail("simulate", sim.status());
  for (const auto& name : names) {
    auto policy = MakePolicy(name);
    if (!policy.ok()) return Fail("simulate", policy.status());
  }
  auto runs = sim->RunPolicies(names, forecaster);
  if (!runs.ok()) return Fail("simulate", runs.status());
  std::vector<PolicyReport> reports;
  for (auto& r : *runs) reports.push_back({std::move(r)});
  ComputeRatios(reports);
  const double lb = sim->CarbonLowerBoundKg();
  std::ostringstream head;
  head << "greentrain simulate: " << cfg->name << " (" << cfg->sites.size() << " sites, model " << cfg->model.name
       << ", " << cfg->job.steps << " steps, deadline " << cfg->job.deadline_hours << " h from "
       << FormatIsoTime(cfg->job.start) << ", forecaster " << forecaster
       << (cfg->job.pause_releases_gpus ? ", pauses give the GPUs back" : "") << ")\n";
  std::cout << head.str();
  head << "\n";
  const auto& fast = sim->menu().option(sim->menu().fastest());
  std::cout << "fastest configuration: " << fast.label << ", " << fast.steps_per_hour << " steps/h ("
            << cfg->job.steps / fast.steps_per_hour << " h for the job)\n\n";
  const std::string table = FormatTable(reports, lb);
  std::cout << table;
  if (!args.json.empty()) {
    std::ofstream out(args.json);
    out << ReportJson(cfg->name, reports, lb).dump(2) << "\n";
    if (!out) return Fail("simulate", IoError("cannot write '" + args.json + "'"));
  }
  if (!args.csv.empty()) {
    Status s = WriteReportCsv(args.csv, reports);
    if (!s.ok()) return Fail("simulate", s);
  }
  if (!args.html.empty()) {
    const std::string focus = which == "all" ? "greentrain" : which;
    const SimResult* f = &reports[0].result;
    std::vector<std::pair<std::string, const Ledger*>> ledgers;
    for (const auto& r : reports) {
      if (r.result.policy == focus) f = &r.result;
      ledgers.emplace_back(r.result.policy, &r.result.ledger);
    }
    std::vector<Chart> charts;
    for (const auto& site : f->site_names) charts.push_back(SupplyVsLoadChart(f->ledger, site));
    charts.push_back(PlacementChart(f->ledger, f->site_names));
    Chart battery = BatteryChart(f->ledger, f->site_names);
    if (!battery.series.empty()) charts.push_back(battery);
    charts.push_back(CumulativeCarbonChart(ledgers));
    for (auto& c : charts)
      if (c.title.find("Cumulative") == std::string::npos) c.title += " (policy " + f->policy + ")";
    Status s = WriteHtmlReport(args.html, "greentrain simulate: " + cfg->name, head.str() + table, charts);
    if (!s.ok()) return Fail("simulate", s);
  }
  if (!args.timeline.empty()) {
    Status s = WriteTimeline(args.timeline, reports);
    if (!s.ok()) return Fail("simulate", s);
  }
  if (!args.svg.empty()) {
    Status s = WriteSvg(args.svg, reports, which == "all" ? "greentrain" : which);
    if (!s.ok()) return Fail("simulate", s);
  }
  if (!args.ledger.empty()) {
    const std::string focus = which == "all" ? "greentrain" : which;
    for (const auto& r : reports)
      if (r.result.policy == focus) {
        const std::string& path = args.ledger;
        Status s = path.size() > 5 && path.substr(path.size() - 5) == ".json" ? r.result.ledger.WriteJson(path)
                                                                             : r.result.ledger.WriteCsv(path);
        if (!s.ok()) return Fail("simulate", s);
      }
  }
  // Every policy that missed the deadline is named; the exit code follows the focus policy (the
  // one asked for, or greentrain when all run).
  const std::string focus = which == "all" ? "greentrain" : which;
  int code = 0;
  for (const auto& r : reports) {
    if (r.result.deadline_met) continue;
    std::cerr << "greentrain simulate: policy " << r.result.policy << " missed the deadline ("
              << (r.result.finished ? "finished after " + std::to_string(r.result.completion_hours) + " h"
                                    : std::string("unfinished when the traces end"))
              << ", deadline " << cfg->job.deadline_hours << " h)\n";
    if (r.result.policy == focus) code = kExitDeadlineMissed;
  }
  return code;
}

}  // namespace

GT_REGISTER_COMMAND(simulate_cmd, "simulate", "what-if simulation of the whole job under each policy",
                    [](CLI::App& app) -> std::function<int()> {
                      auto a = std::make_shared<SimulateArgs>();
                      AddConfigArg(app, &a->config);
                      std::vector<std::string> policies = PolicyNames();
                      policies.push_back("all");
                      app.add_option("--policy", a->policy, "the policy to simulate, or all of them")
                          ->check(CLI::IsMember(policies))
                          ->capture_default_str();
                      app.add_option("--forecaster", a->forecaster, "forecaster (default: the config's policy.forecaster)")
                          ->check(CLI::IsMember(ForecasterNames()));
                      app.add_option("--json", a->json, "write the comparison as JSON to this file");
                      app.add_option("--csv", a->csv, "write the comparison as CSV to this file");
                      app.add_option("--svg", a->svg, "write the focus policy's placement timeline as SVG");
                      app.add_option("--html", a->html,
                                     "write a self-contained HTML report with plots (opens offline in a browser)");
                      app.add_option("--timeline", a->timeline,
                                     "write every policy's per-interval timeline (.json: JSON, else CSV)");
                      app.add_option("--ledger", a->ledger, "write the focus policy's ledger (.json or CSV)");
                      return [a] { return RunSimulate(*a); };
                    });

}  // namespace gt::cli
