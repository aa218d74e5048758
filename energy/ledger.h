// The energy and carbon ledger written by both the simulator and the live coordinator.
//
// Contract: one row per (site, interval); rows may be added in any order but a (site, interval) pair
// at most once (a second Add is an error, so double counting cannot happen silently). Totals are
// computed from the rows. Not thread-safe: one writer.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "common/time.h"
#include "energy/power.h"

namespace gt {

// A row's market-based booking and carbon-free energy (energy/contracts.h, docs/accounting.md).
struct MarketBooking {
  double ppa_mwh = 0;                  // clean energy the site's PPA delivered in the interval
  double ppa_used_mwh = 0;             // of it, matched to the site's grid energy in the same interval
  double certificates_mwh = 0;         // hourly-matched certificates applied
  double annual_certificates_mwh = 0;  // certificates applied from the run's annual pool
  double residual_mwh = 0;             // grid energy no instrument covers
  double residual_g_per_kwh = 0;       // its intensity (the residual mix, else the grid average)
  double market_carbon_kg = 0;         // residual_mwh x residual_g_per_kwh
  double cfe_mwh = 0;                  // demand met by carbon-free supply in the same interval
  double onsite_carbon_kg = 0;         // life-cycle emissions of on-site generation and battery (0: direct basis)
  double marginal_g_per_kwh = 0;       // the marginal intensity (the average where no marginal trace)
  double marginal_carbon_kg = 0;       // grid_mwh x marginal_g_per_kwh
  // Sums the energy and carbon fields (for totals); the intensities stay as they are (0 in totals).
  void Add(const MarketBooking& o);
};

struct LedgerRow {
  UnixSeconds time = 0;       // start of the interval
  double hours = 1;           // length of the interval
  std::string site;
  int busy_gpus = 0;          // GPUs training in the interval (for part of it or all)
  int idle_gpus = 0;          // GPUs allocated and idle (paused)
  double work_steps = 0;      // training progress made in this interval (a multi-site step is shared)
  double carbon_g_per_kwh = 0;
  PowerFlow flow;
  LoadBreakdown load;         // flow.demand_mwh by what draws it, GPU-hours, WAN transfer energy
  MarketBooking market;       // market-based carbon, carbon-free energy, life-cycle on-site emissions
};

struct LedgerTotals {
  // Location-based: carbon_kg = the facilities' grid carbon (grid_mwh x intensity, per row) + the
  // WAN's (load.wan_carbon_kg) + on-site life-cycle emissions (market.onsite_carbon_kg; 0 on a direct
  // basis). Market-based, never added to it: market_carbon_kg() = market.market_carbon_kg + the same
  // WAN and on-site terms. gpu_hours_* = load.*_gpu_hours (the hours GPUs trained or waited).
  double demand_mwh = 0, renewable_used_mwh = 0, battery_discharge_mwh = 0, battery_charge_mwh = 0,
         battery_loss_mwh = 0, grid_mwh = 0, unmet_mwh = 0, curtailed_mwh = 0, carbon_kg = 0, cost = 0,
         work_steps = 0, gpu_hours_busy = 0, gpu_hours_idle = 0;
  LoadBreakdown load;
  MarketBooking market;
  double market_carbon_kg() const { return market.market_carbon_kg + load.wan_carbon_kg + market.onsite_carbon_kg; }
  // Location-based at the marginal intensity (where a site has a marginal trace; else its average).
  double marginal_carbon_kg() const { return market.marginal_carbon_kg + load.wan_carbon_kg + market.onsite_carbon_kg; }
  // The hourly carbon-free-energy score: the share of the demand met by carbon-free supply in the
  // same interval (24/7 matching).
  double cfe_score() const { return demand_mwh > 0 ? market.cfe_mwh / demand_mwh : 0; }
  // Closing the books on the batteries: the change of their state of charge over the ledger (last
  // row's state after minus first row's state before, per site, summed), and the carbon of the
  // energy drawn down, charged at each site's mean grid intensity over its rows (the energy would
  // have to come from somewhere; a battery left fuller earns no credit).
  double battery_change_mwh = 0, battery_drawdown_kg = 0;
  double carbon_reconciled_kg() const { return carbon_kg + battery_drawdown_kg; }
  // Fraction of demand met by renewables directly or through the battery.
  double renewable_share() const {
    return demand_mwh > 0 ? (renewable_used_mwh + battery_discharge_mwh) / demand_mwh : 0;
  }
};

// The LoadBreakdown fields by their ledger names ({"gpu_busy_mwh": ..., "wan_carbon_kg": ...}).
nlohmann::json LoadJson(const LoadBreakdown& load);
// The summed MarketBooking fields of totals by their ledger names (MWh and kg; the per-row
// intensities, residual_g_per_kwh and marginal_g_per_kwh, have no meaning as sums and are left out).
nlohmann::json MarketJson(const MarketBooking& market);

class Ledger {
 public:
  Status Add(const LedgerRow& row) { return Add(LedgerRow(row)); }
  Status Add(LedgerRow&& row);
  // Room for `rows` rows without reallocating (a run that knows its length; no other effect).
  void Reserve(size_t rows) { rows_.reserve(rows); }
  const std::vector<LedgerRow>& rows() const { return rows_; }
  LedgerTotals Totals() const;
  std::map<std::string, LedgerTotals> TotalsBySite() const;
  // Largest absolute imbalance of any row's energy equations (see power.h), in MWh.
  double MaxImbalanceMwh() const;

  Status WriteCsv(const std::string& path) const;
  nlohmann::json ToJson() const;   // {"rows": [...], "totals": {...}, "sites": {name: totals}}
  // The inverse of ToJson (only "rows" is read): a ledger saved in a checkpoint. Errors name the
  // row and field at fault; never throws.
  static Result<Ledger> FromJson(const nlohmann::json& j);
  Status WriteJson(const std::string& path) const;

 private:
  std::vector<LedgerRow> rows_;
  // Per site, the interval starts recorded, ascending: rows arriving in time order (as every run
  // adds them) append in O(1); an earlier one is inserted in place.
  std::map<std::string, std::vector<UnixSeconds>, std::less<>> times_;
};

}  // namespace gt
