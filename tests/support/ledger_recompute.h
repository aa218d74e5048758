// Recomputes a ledger's totals from its CSV alone, by the formulas of docs/accounting.md, without
// greentrain's ledger code: the independent check that every reported total is reproducible.
#pragma once

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gt::testing {

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::map<std::string, std::string>> rows;
};

inline CsvTable ReadPlainCsv(const std::string& path) {
  CsvTable t;
  std::ifstream in(path);
  std::string line;
  auto split = [](const std::string& l) {
    std::vector<std::string> out;
    std::stringstream ss(l);
    std::string cell;
    while (std::getline(ss, cell, ',')) out.push_back(cell);
    return out;
  };
  if (!std::getline(in, line)) return t;
  t.header = split(line);
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto cells = split(line);
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < cells.size() && i < t.header.size(); ++i) row[t.header[i]] = cells[i];
    t.rows.push_back(std::move(row));
  }
  return t;
}

// Totals of the whole ledger, keyed as in the ledger's JSON totals. Also checks every row's
// balance and that its load columns add up to its demand (max_row_error: the worst, in MWh).
inline nlohmann::json RecomputeTotalsFromCsv(const std::string& path, double* max_row_error) {
  const CsvTable t = ReadPlainCsv(path);
  const char* sums[] = {"demand_mwh", "renewable_used_mwh", "battery_discharge_mwh", "battery_charge_mwh",
                        "battery_loss_mwh", "grid_mwh", "unmet_mwh", "curtailed_mwh", "cost", "work_steps",
                        "gpu_busy_mwh", "gpu_idle_mwh", "host_mwh", "transition_mwh", "pue_overhead_mwh",
                        "busy_gpu_hours", "idle_gpu_hours", "wan_gb", "wan_mwh", "wan_carbon_kg", "ppa_mwh",
                        "ppa_used_mwh", "certificates_mwh", "annual_certificates_mwh", "residual_mwh", "cfe_mwh",
                        "onsite_carbon_kg"};
  nlohmann::json out = nlohmann::json::object();
  for (const char* k : sums) out[k] = 0.0;
  double carbon = 0, market = 0, marginal = 0, worst = 0;
  struct Site {
    std::string first_time, last_time;
    double soc_first = 0, soc_last = 0, ci_sum = 0;
    int n = 0;
  };
  std::map<std::string, Site> sites;
  for (const auto& r : t.rows) {
    auto v = [&r](const char* k) { return std::stod(r.at(k)); };
    for (const char* k : sums) out[k] = out[k].get<double>() + v(k);
    carbon += v("carbon_kg") + v("wan_carbon_kg") + v("onsite_carbon_kg");
    market += v("market_carbon_kg") + v("wan_carbon_kg") + v("onsite_carbon_kg");
    marginal += v("marginal_carbon_kg") + v("wan_carbon_kg") + v("onsite_carbon_kg");
    const double parts = v("gpu_busy_mwh") + v("gpu_idle_mwh") + v("host_mwh") + v("transition_mwh") +
                         v("pue_overhead_mwh");
    for (double e : {parts - v("demand_mwh"),
                     v("demand_mwh") - v("renewable_used_mwh") - v("battery_discharge_mwh") - v("grid_mwh") -
                         v("unmet_mwh"),
                     v("renewable_available_mwh") - v("renewable_used_mwh") - v("battery_charge_mwh") -
                         v("curtailed_mwh"),
                     v("soc_after_mwh") - v("soc_before_mwh") - v("battery_charge_mwh") + v("battery_loss_mwh") +
                         v("battery_discharge_mwh"),
                     v("carbon_kg") - v("grid_mwh") * v("carbon_g_per_kwh"),
                     v("grid_mwh") - v("ppa_used_mwh") - v("certificates_mwh") - v("annual_certificates_mwh") -
                         v("residual_mwh"),
                     v("market_carbon_kg") - v("residual_mwh") * v("residual_g_per_kwh"),
                     v("marginal_carbon_kg") - v("grid_mwh") * v("marginal_g_per_kwh")})
      worst = std::max(worst, std::fabs(e));
    Site& s = sites[r.at("site")];
    const std::string time = r.at("time");  // ISO-8601 UTC: sorts as text
    if (s.n == 0 || time < s.first_time) s.first_time = time, s.soc_first = v("soc_before_mwh");
    if (s.n == 0 || time > s.last_time) s.last_time = time, s.soc_last = v("soc_after_mwh");
    s.ci_sum += v("carbon_g_per_kwh");
    ++s.n;
  }
  double change = 0, drawdown = 0;
  for (const auto& [name, s] : sites) {
    const double c = s.soc_last - s.soc_first;
    change += c;
    if (c < 0) drawdown += -c * s.ci_sum / s.n;
  }
  out["carbon_kg"] = carbon;
  out["market_carbon_kg"] = market;
  out["marginal_carbon_kg"] = marginal;
  out["gpu_hours_busy"] = out["busy_gpu_hours"];
  out["gpu_hours_idle"] = out["idle_gpu_hours"];
  const double demand = out["demand_mwh"].get<double>();
  out["renewable_share"] =
      demand > 0 ? (out["renewable_used_mwh"].get<double>() + out["battery_discharge_mwh"].get<double>()) / demand : 0.0;
  out["cfe_score"] = demand > 0 ? out["cfe_mwh"].get<double>() / demand : 0.0;
  out["battery_change_mwh"] = change;
  out["battery_drawdown_kg"] = drawdown;
  out["carbon_reconciled_kg"] = carbon + drawdown;
  if (max_row_error) *max_row_error = worst;
  return out;
}

}  // namespace gt::testing
