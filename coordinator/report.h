// Reports of simulated (and, later, live) runs: the comparison table, JSON and CSV for tools, and an
// SVG plot of supply vs load per site and of stage placement over time. Pure formatting; no state.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "coordinator/simulator.h"

namespace gt {

struct PolicyReport {
  SimResult result;
  double carbon_vs_agnostic = 0;   // grid carbon / carbon-agnostic's (0 if not run)
  double time_vs_agnostic = 0;     // completion time / carbon-agnostic's
  double carbon_vs_oracle = 0;     // grid carbon / oracle's (0 if not run)
  double time_vs_oracle = 0;
};

// Fills the ratios of every report from the carbon-agnostic and oracle entries when present.
void ComputeRatios(std::vector<PolicyReport>& reports);

// A fixed-width table, one row per policy.
std::string FormatTable(const std::vector<PolicyReport>& reports, double lower_bound_kg);

// {"config": name, "lower_bound_kg": x, "policies": [{"policy", "grid_carbon_kg", "energy_mwh":
// {"renewable", "battery", "grid", "total", "curtailed"}, "renewable_share", "completion_hours",
// "deadline_met", "pauses", "resizes", "migrations", "checkpoints", ratios...}]}
nlohmann::json ReportJson(const std::string& config_name, const std::vector<PolicyReport>& reports,
                          double lower_bound_kg);

// One CSV row per policy with the same fields as the JSON.
Status WriteReportCsv(const std::string& path, const std::vector<PolicyReport>& reports);

// The per-interval timeline of every policy: a row per policy and interval with its time,
// placement, cumulative work and, per site, busy GPUs, available renewable MW, load MW and grid
// intensity. JSON ({"sites": [...], "policies": {name: [{...}]}}) when `path` ends in .json, CSV
// (columns policy,time,placement,work_done then busy_gpus:<site>, renewable_mw:<site>,
// load_mw:<site>, carbon_g_per_kwh:<site> per site) otherwise.
Status WriteTimeline(const std::string& path, const std::vector<PolicyReport>& reports);

// SVG: per site, renewable supply (area) and the load of `focus` (line) over time; below, one strip
// per policy showing which sites trained (colour per site, grey when paused).
Status WriteSvg(const std::string& path, const std::vector<PolicyReport>& reports, const std::string& focus);

}  // namespace gt
