// The whole-job simulator: runs a job through the energy traces interval by interval under one
// policy, and writes the ledger.
//
// Contract: Run is deterministic for a given config, supply and policy, and const (a Simulator may
// run several policies concurrently). Every policy but the oracle sees forecasts made only from
// the supply observed before the interval being decided. Migrations and checkpoints take time
// (state bytes / bandwidth, see OptionMenu) during which the GPUs involved draw idle power and do
// no work; paused GPUs that stay allocated draw idle power. Energy is dispatched per site through
// the power model (energy/power.h), so the ledger balances in every interval.
#pragma once

#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "coordinator/menu.h"
#include "coordinator/policy.h"
#include "energy/ledger.h"
#include "energy/power.h"

namespace gt {

// One interval of the run, for plots and reports.
struct TimelinePoint {
  UnixSeconds time = 0;
  std::string placement;              // Plan::Describe
  std::vector<double> renewable_mw;   // per site, available
  std::vector<double> load_mw;        // per site, facility demand (average over the interval)
  std::vector<double> carbon_g_per_kwh;
  std::vector<int> busy_gpus;
  double work_done = 0;               // cumulative steps at the end of the interval
  bool checkpoint = false;            // a checkpoint began the interval (before a pause or move, or periodic)
};

struct SimResult {
  std::string policy;
  std::string forecaster;
  std::string note;                   // the oracle's: which of its candidates it is (Candidate::what)
  Ledger ledger;
  LedgerTotals totals;
  double work_steps = 0;
  bool finished = false;
  double completion_hours = 0;        // from job.start; the end of the simulation if not finished
  bool deadline_met = false;
  int pauses = 0, resumes = 0, resizes = 0, migrations = 0, checkpoints = 0;
  double overhead_hours = 0;          // lost to checkpoints, migrations and restarts
  double migrated_bytes = 0;
  std::vector<TimelinePoint> timeline;
  std::vector<std::string> site_names;
  std::string basis;                  // emission-factor basis of the carbon figures
  // The oracle's only: every schedule it chose among, its perfect-foresight candidates first, then
  // every other policy's own run (on its forecaster), in that order.
  struct Candidate {
    std::string what;  // Policy::describe() where it says more than the name, else "<policy> (forecaster <name>)"
    double carbon_kg = 0;
    bool deadline_met = false;
  };
  std::vector<Candidate> candidates;
};

class Simulator {
 public:
  // `supply[s]` must cover [job.start - history, sim_end) on the config's interval grid; the part
  // before job.start is history for the forecasters. `history_steps` is how many leading steps of
  // each supply trace precede job.start.
  static Result<Simulator> Create(const Config& config, std::vector<SiteSupplyTrace> supply,
                                  size_t history_steps, MenuOptions menu_options = {});
  // Loads the supply from the config's traces (with up to 14 days of history when the traces
  // have it) and creates the simulator.
  static Result<Simulator> FromConfig(const Config& config, MenuOptions menu_options = {});

  // Runs the job under `policy`, forecasting with `forecaster`. For the oracle (wants_truth) it
  // returns the least-carbon schedule that meets the deadline among every OracleCandidates()
  // schedule run on the true supply and every other named policy's own run (with `forecaster`), so
  // the oracle never loses to a policy on the same job (SimResult::note says which schedule won).
  Result<SimResult> Run(const Policy& policy, const std::string& forecaster) const;
  // Runs the named policies (MakePolicy names), results in the order given; the runs are
  // independent and go in parallel (TBB), and the oracle reuses the other policies' runs.
  Result<std::vector<SimResult>> RunPolicies(const std::vector<std::string>& names,
                                             const std::string& forecaster) const;
  // One run of `policy` as it is; with forecaster "oracle" every policy sees the true supply.
  Result<SimResult> RunOnce(const Policy& policy, const std::string& forecaster) const;

  // A proven lower bound on the grid carbon (kg) of any schedule that meets the deadline: the
  // optimum of the battery-aware linear program (coordinator/lp.h) on the true supply, which
  // relaxes whole intervals to fractions and drops migration, checkpoint and idle costs, raised by
  // branch and bound on one placement per interval (finished or stopped at its node limit).
  // 0 when the job cannot meet its deadline at all.
  double CarbonLowerBoundKg() const;

  const OptionMenu& menu() const { return menu_; }
  const Config& config() const { return config_; }
  const std::vector<SiteSupplyTrace>& supply() const { return supply_; }
  // The run's emission-factor basis ("direct" or "life-cycle", energy/contracts.h ResolveBasis).
  const std::string& basis() const { return basis_; }

 private:
  Simulator(Config c, OptionMenu m, std::vector<SiteSupplyTrace> s, size_t h, std::string basis)
      : config_(std::move(c)), menu_(std::move(m)), supply_(std::move(s)), history_(h), basis_(std::move(basis)) {}
  Config config_;
  OptionMenu menu_;
  std::vector<SiteSupplyTrace> supply_;
  size_t history_;
  std::string basis_;
};

}  // namespace gt
