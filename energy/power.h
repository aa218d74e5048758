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
  double solar_mw = 0;         // the solar part of renewable_mw (life-cycle factors differ)
  double ppa_mw = 0;           // clean power delivered by the site's PPA (market-based accounting)
  double marginal_g_per_kwh = -1;  // marginal grid intensity; < 0: no marginal trace
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

// IT energy in MWh of `load` over `hours`: GPUs at busy_w or idle_w, each with its node's host_w,
// plus extra_it_mwh (PUE not applied).
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

// What a site's allocated GPUs do during one part of an interval (both drivers describe their
// intervals this way; DispatchGpuPhases books them).
struct GpuPhase {
  double hours = 0;
  double busy_gpus = 0;     // training: busy_w + host_w each
  double idle_gpus = 0;     // allocated and waiting: idle_w + host_w each
  bool transition = false;  // a checkpoint, state move or restart: its energy is booked as such
};

// A site's energy in one interval by what draws it. The facility parts add up to the dispatched
// demand: gpu_busy + gpu_idle + host + transition + pue_overhead = PowerFlow::demand_mwh.
// GPU-hours count the hours each GPU was busy or idle (a transition counts as idle). WAN transfer
// energy lies outside the facility: not dispatched against the site's renewables and battery, booked
// at the site's grid intensity (wan_carbon_kg), and filled in by the driver that knows the bytes.
struct LoadBreakdown {
  double gpu_busy_mwh = 0, gpu_idle_mwh = 0, host_mwh = 0, transition_mwh = 0, pue_overhead_mwh = 0;
  double busy_gpu_hours = 0, idle_gpu_hours = 0;
  double wan_gb = 0, wan_mwh = 0, wan_carbon_kg = 0;

  double it_mwh() const { return gpu_busy_mwh + gpu_idle_mwh + host_mwh + transition_mwh; }
  double facility_mwh() const { return it_mwh() + pue_overhead_mwh; }
  void Add(const LoadBreakdown& o);
};

// DispatchPhases of `phases` (IT power from the GPU counts and the site's gpu config), with the
// energy of each part added to `*breakdown` (may be null).
PowerFlow DispatchGpuPhases(const SiteConfig& site, double soc_mwh, const SiteSupply& supply,
                            const std::vector<GpuPhase>& phases, LoadBreakdown* breakdown);
// WAN energy of `gb` gigabytes sent from a site whose grid intensity is `carbon_g_per_kwh`, into `b`.
void BookWan(LoadBreakdown& b, double gb, double kwh_per_gb, double carbon_g_per_kwh);

// A site's supply over the simulated period on the config's interval grid, loaded from its traces:
// renewable MW = wind_mw x wind profile / max(wind profile) + solar_mw x the same for solar.
struct SiteSupplyTrace {
  std::string site;
  UnixSeconds start = 0;
  int64_t step_seconds = 3600;
  std::vector<double> renewable_mw;
  std::vector<double> carbon_g_per_kwh;
  std::vector<double> price_per_mwh;
  std::vector<double> solar_mw;        // may be empty (no solar)
  std::vector<double> ppa_mw;          // may be empty (no PPA)
  std::vector<double> marginal_g_per_kwh;  // may be empty (no marginal trace)
  std::string carbon_column;           // the grid intensity column read (its emission-factor basis)
  size_t filled = 0;  // gap-filled values across the traces used

  size_t size() const { return carbon_g_per_kwh.size(); }
  SiteSupply At(size_t i) const {
    return {renewable_mw[i], carbon_g_per_kwh[i], price_per_mwh[i], i < solar_mw.size() ? solar_mw[i] : 0.0,
            i < ppa_mw.size() ? ppa_mw[i] : 0.0, i < marginal_g_per_kwh.size() ? marginal_g_per_kwh[i] : -1.0};
  }
};

// Loads the site's traces and resamples them onto [from, to) at `step_seconds`. The capacity-factor
// profiles are normalised by their maximum over the whole trace file (a yearly maximum), not over
// [from, to). Errors name the site and the trace that does not cover the period.
Result<SiteSupplyTrace> LoadSiteSupply(const SiteConfig& site, UnixSeconds from, UnixSeconds to,
                                       int64_t step_seconds);

// Convenience: every site of `config` over [job.start, sim_end).
Result<std::vector<SiteSupplyTrace>> LoadAllSupply(const Config& config);

}  // namespace gt
