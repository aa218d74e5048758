// Site power model: how a site's demand in one interval is met from its own renewables, its
// battery and the grid, and what that costs in carbon and money.
//
// Contract: Dispatch is a pure function. Every interval balances exactly (up to rounding):
//   renewable_available = renewable_used + battery_charge + curtailed
//   demand              = renewable_used + battery_discharge + grid + unmet
//   soc_after           = soc_before + battery_charge * round_trip_efficiency - battery_discharge
// with losses = battery_charge * (1 - round_trip_efficiency). The battery charges only from
// renewable surplus (never from the grid), within charge_mw, discharge_mw, capacity and min_soc.
// Grid import is capped by grid_limit_mw; demand beyond it is reported as `unmet`, never dropped.
// Carbon is location-based: grid MWh x grid intensity; on-site renewables and the battery count 0.
#pragma once

#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "energy/trace.h"

namespace gt {

// What the site consumes in one interval.
struct SiteLoad {
  int busy_gpus = 0;           // training
  int idle_gpus = 0;           // allocated but paused (draw idle power)
  double extra_it_mwh = 0;     // IT energy of checkpoints, migrations, transfers (before PUE)
};

// The supply side of one interval.
struct SiteSupply {
  double renewable_mw = 0;     // on-site wind + solar available (average over the interval)
  double carbon_g_per_kwh = 0; // grid intensity
  double price_per_mwh = 0;    // grid price
};

struct PowerFlow {
  double demand_mwh = 0;             // facility energy (IT x PUE)
  double renewable_available_mwh = 0;
  double renewable_used_mwh = 0;     // delivered directly to the load
  double battery_charge_mwh = 0;     // drawn from surplus into the battery
  double battery_discharge_mwh = 0;  // delivered from the battery to the load
  double battery_loss_mwh = 0;
  double grid_mwh = 0;
  double unmet_mwh = 0;              // beyond grid_limit_mw
  double curtailed_mwh = 0;          // surplus neither used nor stored
  double soc_before_mwh = 0;
  double soc_after_mwh = 0;
  double carbon_kg = 0;
  double cost = 0;
};

// IT power in MW of `load` spread over `hours` (GPU power only; PUE not applied).
double ItEnergyMwh(const GpuConfig& gpu, const SiteLoad& load, double hours);

// Meets `load` over `hours` given `supply`, starting from battery charge `soc_mwh`.
PowerFlow Dispatch(const SiteConfig& site, double soc_mwh, const SiteSupply& supply, const SiteLoad& load,
                   double hours);

// One part of an interval during which the site's IT load is constant.
struct LoadPhase {
  double hours = 0;
  double it_mw = 0;  // IT power (before PUE)
};

// Dispatch of an interval made of consecutive phases (e.g. GPUs idle while state is saved, then
// training, then nothing), each dispatched on its own with the battery carried through, so that
// renewables reach only load that is present in the same phase. Returns the summed flow
// (soc_before of the first phase, soc_after of the last); it balances as Dispatch does. Phases of
// zero length are skipped.
PowerFlow DispatchPhases(const SiteConfig& site, double soc_mwh, const SiteSupply& supply,
                         const std::vector<LoadPhase>& phases);

// A site's supply over the simulated period on the config's interval grid, loaded from its traces:
// renewable MW = wind_mw x wind profile / max(wind profile) + solar_mw x the same for solar.
struct SiteSupplyTrace {
  std::string site;
  UnixSeconds start = 0;
  int64_t step_seconds = 3600;
  std::vector<double> renewable_mw;
  std::vector<double> carbon_g_per_kwh;
  std::vector<double> price_per_mwh;
  size_t filled = 0;  // gap-filled values across the traces used

  size_t size() const { return carbon_g_per_kwh.size(); }
  SiteSupply At(size_t i) const { return {renewable_mw[i], carbon_g_per_kwh[i], price_per_mwh[i]}; }
};

// Loads the site's traces and resamples them onto [from, to) at `step_seconds`. The capacity-factor
// profiles are normalised by their maximum over the whole trace file (a yearly maximum), not over
// [from, to). Errors name the site and the trace that does not cover the period.
Result<SiteSupplyTrace> LoadSiteSupply(const SiteConfig& site, UnixSeconds from, UnixSeconds to,
                                       int64_t step_seconds);

// Convenience: every site of `config` over [job.start, sim_end).
Result<std::vector<SiteSupplyTrace>> LoadAllSupply(const Config& config);

}  // namespace gt
