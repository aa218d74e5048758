#include "coordinator/report.h"
#include "coordinator/html_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/csv.h"
#include "common/time.h"

namespace gt {

void ComputeRatios(std::vector<PolicyReport>& reports) {
  const SimResult* agnostic = nullptr;
  const SimResult* oracle = nullptr;
  for (const auto& r : reports) {
    if (r.result.policy == "carbon-agnostic") agnostic = &r.result;
    if (r.result.policy == "oracle") oracle = &r.result;
  }
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  for (auto& r : reports) {
    if (agnostic) {
      r.carbon_vs_agnostic = ratio(r.result.totals.carbon_kg, agnostic->totals.carbon_kg);
      r.time_vs_agnostic = ratio(r.result.completion_hours, agnostic->completion_hours);
    }
    if (oracle) {
      r.carbon_vs_oracle = ratio(r.result.totals.carbon_kg, oracle->totals.carbon_kg);
      r.time_vs_oracle = ratio(r.result.completion_hours, oracle->completion_hours);
    }
  }
}

namespace {

// For the oracle: which of its schedules it is and how widely they spread (empty otherwise).
std::string OracleChoice(const SimResult& r) {
  if (r.candidates.empty()) return "";
  int met = 0;
  double lo = 0, hi = 0;
  for (const auto& c : r.candidates) {
    if (!c.deadline_met) continue;
    lo = met == 0 ? c.carbon_kg : std::min(lo, c.carbon_kg);
    hi = met == 0 ? c.carbon_kg : std::max(hi, c.carbon_kg);
    ++met;
  }
  char line[256];
  if (met == 0)
    std::snprintf(line, sizeof line, ": %.1f kg; none of the %zu schedules it chose among meets the deadline\n",
                  r.totals.carbon_kg, r.candidates.size());
  else
    std::snprintf(line, sizeof line, ": %.1f kg, the least of the %d of %zu schedules that meet the deadline (%.1f-%.1f kg)\n",
                  r.totals.carbon_kg, met, r.candidates.size(), lo, hi);
  return "oracle = " + r.note + line;
}

}  // namespace

std::string FormatTable(const std::vector<PolicyReport>& reports, double lower_bound_kg) {
  std::ostringstream os;
  char line[512];
  std::snprintf(line, sizeof line, "%-19s %10s %8s %8s %8s %7s %8s %5s %6s %6s %6s %6s %8s %8s\n", "policy",
                "grid_kgCO2", "ren_MWh", "bat_MWh", "grid_MWh", "renew%", "hours", "dline", "pause", "resize",
                "migr", "ckpt", "vs_agn", "vs_orc");
  os << line;
  for (const auto& r : reports) {
    const auto& s = r.result;
    std::snprintf(line, sizeof line, "%-19s %10.1f %8.3f %8.3f %8.3f %6.1f%% %8.1f %5s %6d %6d %6d %6d %8.3f %8.3f\n",
                  s.policy.c_str(), s.totals.carbon_kg, s.totals.renewable_used_mwh, s.totals.battery_discharge_mwh,
                  s.totals.grid_mwh, 100 * s.totals.renewable_share(), s.completion_hours,
                  s.deadline_met ? "yes" : (s.finished ? "LATE" : "NO"), s.pauses, s.resizes, s.migrations,
                  s.checkpoints, r.carbon_vs_agnostic, r.carbon_vs_oracle);
    os << line;
  }
  {
    std::snprintf(line, sizeof line, "proven lower bound on grid carbon: %.1f kg\n", lower_bound_kg);
    os << line;
  }
  for (const auto& r : reports) os << OracleChoice(r.result);
  // Both carbon methods side by side (never summed) and the hourly carbon-free-energy score.
  os << "carbon, " << (reports.empty() ? std::string("direct") : reports[0].result.basis)
     << " basis: location-based (the table) | market-based (contracts, certificates, residual mix) | hourly CFE:\n";
  for (const auto& r : reports) {
    const auto& t = r.result.totals;
    std::snprintf(line, sizeof line, "  %-19s %10.1f kg | %10.1f kg | %5.1f %%\n", r.result.policy.c_str(), t.carbon_kg,
                  t.market_carbon_kg(), 100 * t.cfe_score());
    os << line;
  }
  // Closing the books on the batteries: what each policy drew from them over the job, at the
  // sites' mean grid intensity (grid_kgCO2 above leaves the starting charge free).
  os << "battery state at the end vs the start (drawdown charged at the site's mean grid intensity):\n";
  for (const auto& r : reports) {
    const auto& t = r.result.totals;
    std::snprintf(line, sizeof line, "  %-19s %+8.3f MWh  %+8.1f kg  -> %10.1f kgCO2 with the books closed\n",
                  r.result.policy.c_str(), t.battery_change_mwh, t.battery_drawdown_kg, t.carbon_reconciled_kg());
    os << line;
  }
  return os.str();
}

nlohmann::json ReportJson(const std::string& config_name, const std::vector<PolicyReport>& reports,
                          double lower_bound_kg) {
  nlohmann::json j;
  j["config"] = config_name;
  j["lower_bound_kg"] = lower_bound_kg;
  j["policies"] = nlohmann::json::array();
  for (const auto& r : reports) {
    const auto& s = r.result;
    const auto& t = s.totals;
    nlohmann::json p;
    p["policy"] = s.policy;
    p["forecaster"] = s.forecaster;
    p["grid_carbon_kg"] = t.carbon_kg;
    p["energy_mwh"] = {{"renewable", t.renewable_used_mwh}, {"battery", t.battery_discharge_mwh},
                       {"grid", t.grid_mwh}, {"total", t.demand_mwh}, {"curtailed", t.curtailed_mwh},
                       {"battery_loss", t.battery_loss_mwh}, {"unmet", t.unmet_mwh}};
    p["load_mwh"] = LoadJson(t.load);  // demand by what draws it, GPU-hours, WAN (docs/accounting.md)
    p["emission_basis"] = s.basis;
    p["market_carbon_kg"] = t.market_carbon_kg();
    p["marginal_carbon_kg"] = t.marginal_carbon_kg();
    p["cfe_score"] = t.cfe_score();
    p["market"] = MarketJson(t.market);
    p["renewable_share"] = t.renewable_share();
    p["battery_change_mwh"] = t.battery_change_mwh;
    p["battery_drawdown_kg"] = t.battery_drawdown_kg;
    p["carbon_reconciled_kg"] = t.carbon_reconciled_kg();
    p["cost"] = t.cost;
    p["completion_hours"] = s.completion_hours;
    p["finished"] = s.finished;
    p["deadline_met"] = s.deadline_met;
    p["work_steps"] = s.work_steps;
    p["pauses"] = s.pauses;
    p["resumes"] = s.resumes;
    p["resizes"] = s.resizes;
    p["migrations"] = s.migrations;
    p["checkpoints"] = s.checkpoints;
    p["overhead_hours"] = s.overhead_hours;
    p["migrated_gb"] = s.migrated_bytes / 1e9;
    p["carbon_vs_agnostic"] = r.carbon_vs_agnostic;
    p["time_vs_agnostic"] = r.time_vs_agnostic;
    p["carbon_vs_oracle"] = r.carbon_vs_oracle;
    p["time_vs_oracle"] = r.time_vs_oracle;
    if (!s.candidates.empty()) {
      p["note"] = s.note;
      for (const auto& c : s.candidates)
        p["oracle_candidates"].push_back({{"what", c.what}, {"grid_carbon_kg", c.carbon_kg}, {"deadline_met", c.deadline_met}});
    }
    j["policies"].push_back(std::move(p));
  }
  return j;
}

Status WriteReportCsv(const std::string& path, const std::vector<PolicyReport>& reports) {
  std::ofstream out(path);
  if (!out) return IoError("cannot write '" + path + "'");
  out << "policy,forecaster,grid_carbon_kg,renewable_mwh,battery_mwh,grid_mwh,total_mwh,curtailed_mwh,"
         "renewable_share,completion_hours,deadline_met,pauses,resizes,migrations,checkpoints,"
         "carbon_vs_agnostic,time_vs_agnostic,carbon_vs_oracle,time_vs_oracle,battery_change_mwh,"
         "battery_drawdown_kg,carbon_reconciled_kg,market_carbon_kg,cfe_score,emission_basis\n";
  for (const auto& r : reports) {
    const auto& s = r.result;
    const auto& t = s.totals;
    out << CsvEscape(s.policy) << ',' << CsvEscape(s.forecaster) << ',' << t.carbon_kg << ','
        << t.renewable_used_mwh << ',' << t.battery_discharge_mwh << ',' << t.grid_mwh << ',' << t.demand_mwh << ','
        << t.curtailed_mwh << ',' << t.renewable_share() << ',' << s.completion_hours << ','
        << (s.deadline_met ? "true" : "false") << ',' << s.pauses << ',' << s.resizes << ',' << s.migrations << ','
        << s.checkpoints << ',' << r.carbon_vs_agnostic << ',' << r.time_vs_agnostic << ',' << r.carbon_vs_oracle
        << ',' << r.time_vs_oracle << ',' << t.battery_change_mwh << ',' << t.battery_drawdown_kg << ','
        << t.carbon_reconciled_kg() << ',' << t.market_carbon_kg() << ',' << t.cfe_score() << ','
        << CsvEscape(s.basis) << '\n';
  }
  if (!out) return IoError("write to '" + path + "' failed");
  return Status::Ok();
}

Status WriteTimeline(const std::string& path, const std::vector<PolicyReport>& reports) {
  std::ofstream out(path);
  if (!out) return IoError("cannot write '" + path + "'");
  const std::vector<std::string> sites = reports.empty() ? std::vector<std::string>{} : reports[0].result.site_names;
  const bool as_json = path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  if (as_json) {
    nlohmann::json j = {{"sites", sites}, {"policies", nlohmann::json::object()}};
    for (const auto& r : reports) {
      nlohmann::json rows = nlohmann::json::array();
      for (const auto& p : r.result.timeline)
        rows.push_back({{"time", FormatIsoTime(p.time)}, {"placement", p.placement}, {"work_done", p.work_done},
                        {"busy_gpus", p.busy_gpus}, {"renewable_mw", p.renewable_mw}, {"load_mw", p.load_mw},
                        {"carbon_g_per_kwh", p.carbon_g_per_kwh}, {"checkpoint", p.checkpoint}});
      j["policies"][r.result.policy] = rows;
    }
    out << j.dump(1) << "\n";
  } else {
    out << "policy,time,placement,work_done";
    for (const char* k : {"busy_gpus", "renewable_mw", "load_mw", "carbon_g_per_kwh"})
      for (const auto& s : sites) out << ',' << CsvEscape(std::string(k) + ":" + s);
    out << ",checkpoint\n";
    auto values = [&](const auto& v) {
      for (size_t s = 0; s < sites.size(); ++s) out << ',' << (s < v.size() ? v[s] : 0);
    };
    for (const auto& r : reports)
      for (const auto& p : r.result.timeline) {
        out << CsvEscape(r.result.policy) << ',' << FormatIsoTime(p.time) << ',' << CsvEscape(p.placement) << ','
            << p.work_done;
        values(p.busy_gpus);
        values(p.renewable_mw);
        values(p.load_mw);
        values(p.carbon_g_per_kwh);
        out << ',' << (p.checkpoint ? 1 : 0) << '\n';
      }
  }
  if (!out) return IoError("write to '" + path + "' failed");
  return Status::Ok();
}

namespace {

const char* const* kSiteColours = kChartColours;
std::string Esc(const std::string& s) { return XmlEscape(s); }

}  // namespace

Status WriteSvg(const std::string& path, const std::vector<PolicyReport>& reports, const std::string& focus) {
  if (reports.empty()) return InvalidArgument("no results to plot");
  const SimResult* f = &reports[0].result;
  for (const auto& r : reports)
    if (r.result.policy == focus) f = &r.result;
  size_t steps = 0;
  for (const auto& r : reports) steps = std::max(steps, r.result.timeline.size());
  if (steps == 0) return InvalidArgument("the runs have no intervals to plot");
  const int n_sites = static_cast<int>(f->site_names.size());
  const double W = 1040, left = 130, right = 20, panel_h = 110, strip_h = 18, gap = 28;
  const double plot_w = W - left - right;
  const double H = 40 + n_sites * (panel_h + gap) + reports.size() * (strip_h + 6) + 60;
  auto x = [&](size_t i) { return left + plot_w * static_cast<double>(i) / steps; };
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H
    << "' font-family='sans-serif' font-size='11'>\n<rect width='100%' height='100%' fill='white'/>\n";
  o << "<text x='" << left << "' y='20' font-size='14'>Renewable supply (green) vs load of policy '" << Esc(f->policy)
    << "' (black), MW; placement by policy below. One column = one interval.</text>\n";
  double y0 = 40;
  for (int s = 0; s < n_sites; ++s) {
    double vmax = 1e-9;
    for (const auto& p : f->timeline) vmax = std::max({vmax, p.renewable_mw[s], p.load_mw[s]});
    o << "<text x='5' y='" << y0 + panel_h / 2 << "'>" << Esc(f->site_names[s]) << "</text>\n";
    o << "<rect x='" << left << "' y='" << y0 << "' width='" << plot_w << "' height='" << panel_h
      << "' fill='none' stroke='#ccc'/>\n";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f MW", vmax);
    o << "<text x='" << left + 4 << "' y='" << y0 + 12 << "' fill='#666'>" << buf << "</text>\n";
    // Renewable area.
    o << "<polygon fill='#8fd18f' fill-opacity='0.7' points='" << left << "," << y0 + panel_h;
    for (size_t i = 0; i < f->timeline.size(); ++i) {
      double v = y0 + panel_h - panel_h * f->timeline[i].renewable_mw[s] / vmax;
      o << ' ' << x(i) << ',' << v << ' ' << x(i + 1) << ',' << v;
    }
    o << ' ' << x(f->timeline.size()) << ',' << y0 + panel_h << "'/>\n";
    // Load line.
    o << "<polyline fill='none' stroke='black' stroke-width='1.2' points='";
    for (size_t i = 0; i < f->timeline.size(); ++i) {
      double v = y0 + panel_h - panel_h * f->timeline[i].load_mw[s] / vmax;
      o << x(i) << ',' << v << ' ' << x(i + 1) << ',' << v << ' ';
    }
    o << "'/>\n";
    y0 += panel_h + gap;
  }
  for (const auto& r : reports) {
    const auto& res = r.result;
    o << "<text x='5' y='" << y0 + 13 << "'>" << Esc(res.policy) << "</text>\n";
    for (size_t i = 0; i < res.timeline.size(); ++i) {
      const auto& p = res.timeline[i];
      int site = -1, most = 0;
      for (size_t s = 0; s < p.busy_gpus.size(); ++s)
        if (p.busy_gpus[s] > most) { most = p.busy_gpus[s]; site = static_cast<int>(s); }
      const char* colour = site < 0 ? "#bbbbbb" : kSiteColours[site % 10];
      o << "<rect x='" << x(i) << "' y='" << y0 << "' width='" << std::max(0.5, x(i + 1) - x(i))
        << "' height='" << strip_h << "' fill='" << colour << "'><title>" << Esc(p.placement)
        << (p.checkpoint ? ", checkpoint first" : "") << "</title></rect>\n";
      // A checkpoint began the interval: a dark tick along the strip's top.
      if (p.checkpoint)
        o << "<rect class='checkpoint' x='" << x(i) << "' y='" << y0 << "' width='1.5' height='" << strip_h / 3
          << "' fill='#222222'/>\n";
    }
    y0 += strip_h + 6;
  }
  double lx = left;
  for (int s = 0; s < n_sites; ++s) {
    o << "<rect x='" << lx << "' y='" << y0 + 10 << "' width='12' height='12' fill='" << kSiteColours[s % 10] << "'/>"
      << "<text x='" << lx + 16 << "' y='" << y0 + 20 << "'>" << Esc(f->site_names[s]) << "</text>\n";
    lx += 130;
  }
  o << "<rect x='" << lx << "' y='" << y0 + 10 << "' width='12' height='12' fill='#bbbbbb'/><text x='" << lx + 16
    << "' y='" << y0 + 20 << "'>paused / done</text>\n";
  lx += 130;
  o << "<rect x='" << lx << "' y='" << y0 + 10 << "' width='3' height='12' fill='#222222'/><text x='" << lx + 8
    << "' y='" << y0 + 20 << "'>checkpoint</text>\n</svg>\n";
  std::ofstream out(path);
  if (!out) return IoError("cannot write '" + path + "'");
  out << o.str();
  if (!out) return IoError("write to '" + path + "' failed");
  return Status::Ok();
}

}  // namespace gt
