// Site power model (see power.h).
//
// Dispatch order within one interval: renewables feed the load first; their surplus charges the
// battery (limited by charge_mw x hours and by the capacity headroom, counting the round-trip loss
// on the way in) and the rest is curtailed. A remaining deficit is met by the battery (limited by
// discharge_mw x hours and by the charge above min_soc x capacity), then by the grid up to
// grid_limit_mw x hours; anything left is unmet. Since the battery only charges from a surplus and
// only discharges into a deficit, it never does both in one interval.
//
// Robustness (Dispatch cannot fail): negative or non-finite inputs (hours, renewable MW, GPU counts,
// extra energy) count as 0; a starting charge outside [0, capacity] is clamped into it and reported
// as soc_before; a PUE below 1 or non-finite is taken as 1.
#include "energy/power.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "common/log.h"

namespace gt {
namespace {

double NonNeg(double v) { return std::isfinite(v) && v > 0 ? v : 0.0; }
// A PUE below 1 or non-finite is taken as 1.
double Pue(const SiteConfig& site) { return std::isfinite(site.pue) && site.pue >= 1 ? site.pue : 1.0; }

}  // namespace

double ItEnergyMwh(const GpuConfig& gpu, const SiteLoad& load, double hours) {
  const double busy = std::max(load.busy_gpus, 0), idle = std::max(load.idle_gpus, 0);
  return (busy * (NonNeg(gpu.busy_w) + NonNeg(gpu.host_w)) + idle * (NonNeg(gpu.idle_w) + NonNeg(gpu.host_w))) *
         NonNeg(hours) / 1e6;
}

PowerFlow Dispatch(const SiteConfig& site, double soc_mwh, const SiteSupply& supply, const SiteLoad& load,
                   double hours) {
  PowerFlow f;
  const double h = NonNeg(hours);
  const double pue = Pue(site);
  const BatteryConfig& b = site.battery;
  const double cap = NonNeg(b.capacity_mwh);
  const double eff = std::isfinite(b.round_trip_efficiency)
                         ? std::clamp(b.round_trip_efficiency, 0.0, 1.0) : 1.0;
  const double floor_mwh = std::min(cap, NonNeg(b.min_soc) * cap);
  const double soc = std::isfinite(soc_mwh) ? std::clamp(soc_mwh, 0.0, cap) : 0.0;

  f.demand_mwh = (ItEnergyMwh(site.gpu, load, h) + NonNeg(load.extra_it_mwh)) * pue;
  f.renewable_available_mwh = NonNeg(supply.renewable_mw) * h;
  f.soc_before_mwh = soc;

  // Renewables first.
  f.renewable_used_mwh = std::min(f.renewable_available_mwh, f.demand_mwh);
  const double surplus = f.renewable_available_mwh - f.renewable_used_mwh;

  // Surplus into the battery.
  const double headroom_in = eff > 0 ? (cap - soc) / eff : 0.0;  // input energy that fills it
  const double charge_limit = NonNeg(b.charge_mw) * h;
  f.battery_charge_mwh = std::min({surplus, charge_limit, headroom_in});
  const bool filled = f.battery_charge_mwh > 0 && f.battery_charge_mwh == headroom_in;
  f.curtailed_mwh = surplus - f.battery_charge_mwh;
  f.battery_loss_mwh = f.battery_charge_mwh * (1 - eff);

  // Deficit from the battery, then the grid.
  const double deficit = f.demand_mwh - f.renewable_used_mwh;
  const double usable = std::max(0.0, soc - floor_mwh);
  f.battery_discharge_mwh = std::min({deficit, NonNeg(b.discharge_mw) * h, usable});
  const bool emptied = f.battery_discharge_mwh > 0 && f.battery_discharge_mwh == usable;
  const double rest = deficit - f.battery_discharge_mwh;
  const double grid_cap = std::isinf(site.grid_limit_mw) && site.grid_limit_mw > 0
                              ? INFINITY : NonNeg(site.grid_limit_mw) * h;
  f.grid_mwh = std::min(rest, grid_cap);
  f.unmet_mwh = rest - f.grid_mwh;

  // Snap to the exact bound when a bound was hit, so rounding never leaves [floor, cap].
  if (filled) f.soc_after_mwh = cap;
  else if (emptied) f.soc_after_mwh = floor_mwh;
  else f.soc_after_mwh = soc + f.battery_charge_mwh * eff - f.battery_discharge_mwh;

  // MWh x gCO2/kWh = 1000 kWh x g/kWh = kg.
  f.carbon_kg = f.grid_mwh * supply.carbon_g_per_kwh;
  f.cost = f.grid_mwh * supply.price_per_mwh;
  return f;
}

namespace {

std::string Span(UnixSeconds a, UnixSeconds b) {
  return "[" + FormatIsoTime(a) + ", " + FormatIsoTime(b) + ")";
}

// Reads one trace of `site`, checks that it covers [from, to) and puts it on the `step` grid.
// `what` names the role ("wind", "solar", "carbon", "price") in messages.
Result<Series> LoadOne(const SiteConfig& site, const char* what, const TraceRef& ref, Signal signal,
                       bool normalize, UnixSeconds from, UnixSeconds to, int64_t step, size_t* filled) {
  const std::string who = "site '" + site.name + "': " + what + " trace " + ref.file +
                          (ref.column.empty() ? "" : " (column " + ref.column + ")");
  auto series = ReadSeries(ref.file, ref.format, ref.column, signal, ref.clip);
  if (!series.ok()) return series.status().WithContext(who);
  if (series->clipped > 0)
    GT_WARN("energy", who << ": " << series->clipped << " value(s) outside the physical range clipped (clip: true)");
  if (!series->Covers(from, to))
    return InvalidArgument(who + " covers " + Span(series->start, series->end()) + ", which does not include " +
                           "the requested period " + Span(from, to) +
                           "; choose job.start/simulate_until (or --from/--to) inside it, or a trace that covers it");
  *filled += series->filled;
  Series s = normalize ? NormalizeByMax(*series) : std::move(*series);
  // Start the series at the step containing `from`, so that resampled intervals line up with
  // [from, from + step) whenever `from` lies on the trace's own grid.
  const size_t first = s.IndexOf(from);
  if (first > 0) {
    s.values.erase(s.values.begin(), s.values.begin() + static_cast<std::ptrdiff_t>(first));
    s.start += static_cast<int64_t>(first) * s.step_seconds;
  }
  if (s.step_seconds != step) {
    auto r = Resample(s, step, ResampleMethod::kStep);
    if (!r.ok()) return r.status().WithContext(who);
    s = std::move(*r);
  }
  return s;
}

}  // namespace

PowerFlow DispatchPhases(const SiteConfig& site, double soc_mwh, const SiteSupply& supply,
                         const std::vector<LoadPhase>& phases) {
  PowerFlow flow;
  flow.soc_before_mwh = soc_mwh;
  double soc = soc_mwh;
  for (const LoadPhase& ph : phases) {
    if (!(ph.hours > 1e-12)) continue;
    SiteLoad load;
    load.extra_it_mwh = ph.it_mw * ph.hours;
    const PowerFlow f = Dispatch(site, soc, supply, load, ph.hours);
    soc = f.soc_after_mwh;
    flow.demand_mwh += f.demand_mwh;
    flow.renewable_available_mwh += f.renewable_available_mwh;
    flow.renewable_used_mwh += f.renewable_used_mwh;
    flow.battery_charge_mwh += f.battery_charge_mwh;
    flow.battery_discharge_mwh += f.battery_discharge_mwh;
    flow.battery_loss_mwh += f.battery_loss_mwh;
    flow.grid_mwh += f.grid_mwh;
    flow.unmet_mwh += f.unmet_mwh;
    flow.curtailed_mwh += f.curtailed_mwh;
    flow.carbon_kg += f.carbon_kg;
    flow.cost += f.cost;
  }
  flow.soc_after_mwh = soc;
  return flow;
}

void LoadBreakdown::Add(const LoadBreakdown& o) {
  gpu_busy_mwh += o.gpu_busy_mwh;
  gpu_idle_mwh += o.gpu_idle_mwh;
  host_mwh += o.host_mwh;
  transition_mwh += o.transition_mwh;
  pue_overhead_mwh += o.pue_overhead_mwh;
  busy_gpu_hours += o.busy_gpu_hours;
  idle_gpu_hours += o.idle_gpu_hours;
  wan_gb += o.wan_gb;
  wan_mwh += o.wan_mwh;
  wan_carbon_kg += o.wan_carbon_kg;
}

PowerFlow DispatchGpuPhases(const SiteConfig& site, double soc_mwh, const SiteSupply& supply,
                            const std::vector<GpuPhase>& phases, LoadBreakdown* breakdown) {
  const GpuConfig& g = site.gpu;
  const double pue = Pue(site);
  std::vector<LoadPhase> it;
  LoadBreakdown b;
  for (const GpuPhase& ph : phases) {
    if (!(ph.hours > 1e-12)) continue;  // DispatchPhases skips these too
    const double busy = NonNeg(ph.busy_gpus), idle = NonNeg(ph.idle_gpus);
    const double gpu_busy = busy * NonNeg(g.busy_w) * ph.hours / 1e6, gpu_idle = idle * NonNeg(g.idle_w) * ph.hours / 1e6;
    const double host = (busy + idle) * NonNeg(g.host_w) * ph.hours / 1e6;
    if (ph.transition) {
      b.transition_mwh += gpu_busy + gpu_idle + host;
    } else {
      b.gpu_busy_mwh += gpu_busy;
      b.gpu_idle_mwh += gpu_idle;
      b.host_mwh += host;
    }
    b.pue_overhead_mwh += (gpu_busy + gpu_idle + host) * (pue - 1);
    b.busy_gpu_hours += ph.transition ? 0 : busy * ph.hours;
    b.idle_gpu_hours += (ph.transition ? busy + idle : idle) * ph.hours;
    it.push_back({ph.hours, (gpu_busy + gpu_idle + host) / ph.hours});
  }
  if (breakdown) breakdown->Add(b);
  return DispatchPhases(site, soc_mwh, supply, it);
}

void BookWan(LoadBreakdown& b, double gb, double kwh_per_gb, double carbon_g_per_kwh) {
  if (!(gb > 0) || !std::isfinite(gb)) return;
  const double mwh = gb * NonNeg(kwh_per_gb) / 1000;
  b.wan_gb += gb;
  b.wan_mwh += mwh;
  b.wan_carbon_kg += mwh * NonNeg(carbon_g_per_kwh);  // MWh x g/kWh = kg
}

Result<SiteSupplyTrace> LoadSiteSupply(const SiteConfig& site, UnixSeconds from, UnixSeconds to,
                                       int64_t step_seconds) {
  if (step_seconds <= 0)
    return InvalidArgument("site '" + site.name + "': step must be > 0 seconds, got " +
                           std::to_string(step_seconds));
  if (to <= from)
    return InvalidArgument("site '" + site.name + "': empty period " + Span(from, to));
  SiteSupplyTrace out;
  out.site = site.name;
  out.start = from;
  out.step_seconds = step_seconds;
  const size_t n = static_cast<size_t>((to - from + step_seconds - 1) / step_seconds);
  out.renewable_mw.assign(n, 0.0);
  out.price_per_mwh.assign(n, site.price_per_mwh);
  out.carbon_g_per_kwh.assign(n, 0.0);

  // Adds mw x profile (normalised by its maximum, or the trace's own values x `share`) to `into`.
  auto add_profile = [&](const char* what, const std::optional<TraceRef>& ref, Signal sig, double mw,
                         std::vector<double>& into, double share = 0) -> Status {
    if (!(mw > 0) && !(share > 0)) return Status::Ok();
    if (!ref) return InvalidArgument("site '" + site.name + "': " + what + "_mw > 0 but no " + what + " trace");
    ASSIGN_OR_RETURN(Series s, LoadOne(site, what, *ref, sig, !(share > 0), from, to, step_seconds, &out.filled));
    into.resize(n, 0.0);
    // Net generation can dip below zero (plant self-consumption at night); a farm's output cannot.
    for (size_t i = 0; i < n; ++i)
      into[i] += (share > 0 ? share : mw) * std::max(0.0, s.At(from + static_cast<int64_t>(i) * step_seconds));
    return Status::Ok();
  };
  RETURN_IF_ERROR(add_profile("wind", site.wind, Signal::kWind, site.wind_mw, out.renewable_mw));
  RETURN_IF_ERROR(add_profile("solar", site.solar, Signal::kSolar, site.solar_mw, out.solar_mw));
  for (size_t i = 0; i < out.solar_mw.size(); ++i) out.renewable_mw[i] += out.solar_mw[i];
  RETURN_IF_ERROR(add_profile("ppa", site.contracts.ppa, Signal::kWind, site.contracts.ppa_mw, out.ppa_mw,
                              site.contracts.ppa_share));

  ASSIGN_OR_RETURN(Series carbon,
                   LoadOne(site, "carbon", site.carbon, Signal::kCarbon, false, from, to, step_seconds, &out.filled));
  for (size_t i = 0; i < n; ++i) out.carbon_g_per_kwh[i] = carbon.At(from + static_cast<int64_t>(i) * step_seconds);
  out.carbon_column = carbon.name;
  if (site.marginal_carbon) {
    ASSIGN_OR_RETURN(Series marginal, LoadOne(site, "marginal carbon", *site.marginal_carbon, Signal::kCarbon, false,
                                              from, to, step_seconds, &out.filled));
    out.marginal_g_per_kwh.resize(n);
    for (size_t i = 0; i < n; ++i)
      out.marginal_g_per_kwh[i] = marginal.At(from + static_cast<int64_t>(i) * step_seconds);
  }

  if (site.price) {
    ASSIGN_OR_RETURN(Series price,
                     LoadOne(site, "price", *site.price, Signal::kPrice, false, from, to, step_seconds, &out.filled));
    for (size_t i = 0; i < n; ++i) out.price_per_mwh[i] = price.At(from + static_cast<int64_t>(i) * step_seconds);
  }
  return out;
}

Result<std::vector<SiteSupplyTrace>> LoadAllSupply(const Config& config) {
  std::vector<SiteSupplyTrace> all;
  all.reserve(config.sites.size());
  for (const SiteConfig& site : config.sites) {
    ASSIGN_OR_RETURN(SiteSupplyTrace t,
                     LoadSiteSupply(site, config.job.start, config.sim_end, config.interval_seconds));
    all.push_back(std::move(t));
  }
  return all;
}

}  // namespace gt
