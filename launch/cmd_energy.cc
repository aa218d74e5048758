// `greentrain energy [CONFIG] [--from T] [--to T] [--utilisation U] [--csv FILE]`: each site's supply
// over a period and what running its GPUs (a share U of them busy, the rest allocated and idle, each
// with its node's host power) would draw from renewables, battery and grid (dispatched with the
// battery state carried from interval to interval), by day (or by interval for periods <= 48 h), then
// per-site totals and the facility energy by what draws it. --csv writes the per-interval ledger.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <tuple>
#include <string>
#include <vector>

#include "energy/contracts.h"
#include "energy/ledger.h"
#include "energy/power.h"
#include "launch/command.h"

namespace gt::cli {
namespace {

// One line of the table: a day or an interval.
struct Bucket {
  UnixSeconds start = 0;
  double hours = 0;
  double renewable_mwh = 0, demand_mwh = 0, grid_mwh = 0, carbon_kg = 0, renewable_served_mwh = 0,
         unmet_mwh = 0;
  double ci_sum = 0, ci_min = std::numeric_limits<double>::infinity(),
         ci_max = -std::numeric_limits<double>::infinity();
  size_t n = 0;
  double soc_end = 0;
};

std::string Label(UnixSeconds t, bool by_day) {
  std::string iso = FormatIsoTime(t);  // YYYY-MM-DDTHH:MM:SSZ
  return by_day ? iso.substr(0, 10) : iso.substr(0, 10) + " " + iso.substr(11, 5);
}

std::string SocText(double soc, double cap) {
  if (!(cap > 0)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%", 100 * soc / cap);
  return buf;
}

void PrintSite(const SiteConfig& site, const std::vector<Bucket>& buckets, bool by_day, bool any_unmet) {
  std::printf("%-16s %9s %9s %7s %7s %7s %6s %9s %10s %6s%s\n", by_day ? "day (UTC)" : "interval (UTC)",
              "renew MWh", "demand", "CI mean", "CI min", "CI max", "SoC", "grid MWh", "carbon kg", "renew",
              any_unmet ? "  unmet MWh" : "");
  for (const Bucket& b : buckets) {
    double share = b.demand_mwh > 0 ? 100 * b.renewable_served_mwh / b.demand_mwh : 0;
    std::printf("%-16s %9.3f %9.3f %7.1f %7.1f %7.1f %6s %9.3f %10.1f %5.1f%%", Label(b.start, by_day).c_str(),
                b.renewable_mwh, b.demand_mwh, b.n ? b.ci_sum / b.n : 0.0, b.ci_min, b.ci_max,
                SocText(b.soc_end, site.battery.capacity_mwh).c_str(), b.grid_mwh, b.carbon_kg, share);
    if (any_unmet) std::printf("  %9.3f", b.unmet_mwh);
    std::printf("\n");
  }
}

struct EnergyArgs {
  std::string config, from, to, csv;
  double utilisation = 1;
};

// "1.18 TWh", "35.2 GWh", "12.5 MWh".
std::string EnergyText(double mwh) {
  char buf[48];
  if (mwh >= 1e6) std::snprintf(buf, sizeof buf, "%.3g TWh", mwh / 1e6);
  else if (mwh >= 1e3) std::snprintf(buf, sizeof buf, "%.3g GWh", mwh / 1e3);
  else std::snprintf(buf, sizeof buf, "%.3g MWh", mwh);
  return buf;
}

int RunEnergy(const EnergyArgs& args) {
  auto cfg = LoadConfigOrDefault(args.config);
  if (!cfg.ok()) return Fail("energy", cfg.status());

  UnixSeconds from = cfg->job.start, to = cfg->sim_end;
  for (auto [flag, value, target] : {std::tuple{"--from", &args.from, &from}, std::tuple{"--to", &args.to, &to}}) {
    if (value->empty()) continue;
    auto t = ParseIsoTime(*value);
    if (!t.ok())
      return Fail("energy", InvalidArgument(std::string(flag) + " '" + *value + "': " + t.status().message() +
                                            " (use ISO-8601, e.g. 2022-06-01T00:00Z)"));
    *target = *t;
  }
  if (to <= from)
    return Fail("energy", InvalidArgument("the period [" + FormatIsoTime(from) + ", " + FormatIsoTime(to) +
                                          ") is empty; --to must be after --from"));

  const int64_t step = cfg->interval_seconds;
  const double hours = static_cast<double>(step) / 3600.0;
  const bool by_day = to - from > 48 * 3600;

  std::vector<SiteSupplyTrace> supplies;
  for (const SiteConfig& site : cfg->sites) {
    auto sup = LoadSiteSupply(site, from, to, step);
    if (!sup.ok()) return Fail("energy", sup.status());
    supplies.push_back(std::move(*sup));
  }

  std::printf("%s: %zu sites, %s to %s, %g h intervals, %g %% of the GPUs busy, the rest idle (no job schedule)\n",
              cfg->path.c_str(), cfg->sites.size(), FormatIsoTime(from).c_str(), FormatIsoTime(to).c_str(), hours,
              100 * args.utilisation);
  std::printf("renew MWh: on-site wind+solar available; CI: grid gCO2/kWh; SoC: battery at the end of the %s;\n"
              "grid/carbon: location-based; renew: share of demand met by renewables and battery\n",
              by_day ? "day" : "interval");

  auto basis = ResolveBasis(*cfg, supplies);
  if (!basis.ok()) return Fail("energy", basis.status());
  Ledger ledger;
  for (size_t k = 0; k < cfg->sites.size(); ++k) {
    const SiteConfig& site = cfg->sites[k];
    const SiteSupplyTrace* sup = &supplies[k];
    std::printf("\n%s: %d x %s (%g W busy, %g W idle, + %g W host each), PUE %.2f, wind %g MW, solar %g MW, "
                "battery %g MWh",
                site.name.c_str(), site.gpus, site.gpu.type.c_str(), site.gpu.busy_w, site.gpu.idle_w, site.gpu.host_w,
                site.pue, site.wind_mw, site.solar_mw, site.battery.capacity_mwh);
    if (std::isfinite(site.grid_limit_mw)) std::printf(", grid limit %g MW", site.grid_limit_mw);
    if (sup->filled) std::printf(" (%zu trace values gap-filled)", sup->filled);
    std::printf("\n");

    std::vector<Bucket> buckets;
    double soc = site.battery.initial_soc * site.battery.capacity_mwh;
    double annual_left = site.contracts.certificates_mwh;
    bool any_unmet = false;
    for (size_t i = 0; i < sup->size(); ++i) {
      const UnixSeconds t = from + static_cast<int64_t>(i) * step;
      const SiteSupply s = sup->At(i);
      LedgerRow row;
      row.time = t;
      row.hours = hours;
      row.site = site.name;
      const double busy = args.utilisation * site.gpus;
      row.busy_gpus = static_cast<int>(std::lround(busy));
      row.idle_gpus = site.gpus - row.busy_gpus;
      row.carbon_g_per_kwh = s.carbon_g_per_kwh;
      row.flow = DispatchGpuPhases(site, soc, s, {{hours, busy, site.gpus - busy, false}}, &row.load);
      BookMarket(site, cfg->accounting, *basis == "life-cycle", s, row, &annual_left);
      soc = row.flow.soc_after_mwh;
      Status st = ledger.Add(row);
      if (!st.ok()) return Fail("energy", st);

      const UnixSeconds key = by_day ? t - ((t % 86400) + 86400) % 86400 : t;
      if (buckets.empty() || buckets.back().start != key) buckets.push_back(Bucket{key});
      Bucket& b = buckets.back();
      const PowerFlow& f = row.flow;
      b.hours += hours;
      b.renewable_mwh += f.renewable_available_mwh;
      b.demand_mwh += f.demand_mwh;
      b.grid_mwh += f.grid_mwh;
      b.carbon_kg += f.carbon_kg;
      b.renewable_served_mwh += f.renewable_used_mwh + f.battery_discharge_mwh;
      b.unmet_mwh += f.unmet_mwh;
      any_unmet |= f.unmet_mwh > 0;
      b.ci_sum += s.carbon_g_per_kwh;
      b.ci_min = std::min(b.ci_min, s.carbon_g_per_kwh);
      b.ci_max = std::max(b.ci_max, s.carbon_g_per_kwh);
      ++b.n;
      b.soc_end = soc;
    }
    PrintSite(site, buckets, by_day, any_unmet);
  }

  std::printf("\nTotals over the period\n%-16s %9s %9s %9s %9s %9s %9s %9s %9s %10s %9s %6s\n", "site", "demand",
              "renew av", "renew use", "batt out", "batt loss", "curtailed", "grid", "unmet", "carbon kg", "cost",
              "renew");
  auto row = [](const std::string& name, const LedgerTotals& t) {
    std::printf("%-16s %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %10.1f %9.1f %5.1f%%\n", name.c_str(),
                t.demand_mwh, t.renewable_used_mwh + t.battery_charge_mwh + t.curtailed_mwh, t.renewable_used_mwh,
                t.battery_discharge_mwh, t.battery_loss_mwh, t.curtailed_mwh, t.grid_mwh, t.unmet_mwh, t.carbon_kg,
                t.cost, 100 * t.renewable_share());
  };
  auto by_site = ledger.TotalsBySite();
  for (const SiteConfig& site : cfg->sites) row(site.name, by_site[site.name]);
  if (cfg->sites.size() > 1) row("all sites", ledger.Totals());
  std::printf("(energy in MWh; largest balance error of any interval: %.2g MWh)\n", ledger.MaxImbalanceMwh());
  const LedgerTotals all = ledger.Totals();
  std::printf("facility energy %s: GPUs busy %s, GPUs idle %s, hosts %s, PUE overhead %s "
              "(docs/accounting.md)\n",
              EnergyText(all.demand_mwh).c_str(), EnergyText(all.load.gpu_busy_mwh).c_str(),
              EnergyText(all.load.gpu_idle_mwh).c_str(), EnergyText(all.load.host_mwh).c_str(),
              EnergyText(all.load.pue_overhead_mwh).c_str());
  std::printf("carbon (%s basis): location-based %.1f kg, market-based %.1f kg (never added together); hourly "
              "carbon-free energy %.1f %%\n",
              basis->c_str(), all.carbon_kg, all.market_carbon_kg(), 100 * all.cfe_score());

  if (!args.csv.empty()) {
    Status st = ledger.WriteCsv(args.csv);
    if (!st.ok()) return Fail("energy", st);
    std::printf("wrote %zu ledger rows to %s\n", ledger.rows().size(), args.csv.c_str());
  }
  return 0;
}

}  // namespace

GT_REGISTER_COMMAND(energy_cmd, "energy",
                    "each site's renewable supply, grid carbon and battery over a period, GPUs busy or idle",
                    [](CLI::App& app) -> std::function<int()> {
                      auto a = std::make_shared<EnergyArgs>();
                      AddConfigArg(app, &a->config);
                      app.add_option("--from", a->from, "start of the period, ISO-8601 (default: job.start)");
                      app.add_option("--to", a->to, "end of the period, ISO-8601 (default: the traces' end)");
                      app.add_option("--csv", a->csv, "also write the per-interval ledger to this CSV file");
                      app.add_option("--utilisation", a->utilisation,
                                     "share of the GPU-hours busy (the rest allocated and idle), 0..1")
                          ->check(CLI::Range(0.0, 1.0));
                      return [a] { return RunEnergy(*a); };
                    });

}  // namespace gt::cli
