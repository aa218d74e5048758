// Policies: every interval, decide which sites train the model on how many GPUs.
//
// Contract: a Policy is a pure function of its PolicyInput (Decide is const and keeps no state
// between calls), so the whole-job simulator and the live coordinator call the same code and tests
// need no processes. Policies other than the oracle see forecasts only: PolicyInput::outlook holds
// what the configured forecaster predicted at `now`, never the true future (the simulator builds it;
// only the oracle is handed the truth). Decide is thread-compatible: distinct inputs may be decided
// concurrently.
#pragma once

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "coordinator/menu.h"
#include "coordinator/plan.h"

namespace gt {

// What one site is expected to offer, interval by interval; index 0 is the interval being decided.
struct SiteOutlook {
  std::vector<double> renewable_mw;
  std::vector<double> carbon_g_per_kwh;
};

struct PolicyInput {
  UnixSeconds now = 0;
  double interval_hours = 1;
  double work_total_steps = 0;
  double work_remaining_steps = 0;
  double hours_to_deadline = 0;       // from `now`
  double hours_since_checkpoint = 0;  // trained since the last checkpoint (HoursSinceCheckpointAfter)
  std::vector<SiteOutlook> outlook;   // one per site; all of equal length >= 1
  std::vector<double> battery_soc_mwh;
  std::vector<int> allocated_gpus;    // per site, GPUs the job holds (kept, idle, while paused)
  const Config* config = nullptr;     // sites, policy parameters
  const OptionMenu* menu = nullptr;   // the configurations the job can run in, with their speeds
  Plan current;                       // what runs now (empty at the start)
  // Per site and outlook step, the measured share of forecast renewables that may not come
  // (policy.derate_quantile); steps beyond a site's vector take its last value; empty (all sites, or
  // one site's vector): the fixed policy.renewable_derate there.
  std::vector<std::vector<double>> renewable_derate;
  // How much the grid intensity of the job's sites varies: the 90th over the 10th percentile of
  // every site's hourly intensity over the history before the job (GridSpread), measured once at
  // the start; infinite where there is no history.
  double grid_spread = std::numeric_limits<double>::infinity();
};

// The 90th over the 10th percentile of `g_per_kwh` (1 for none or all zero; infinite where the
// 10th percentile is 0 and the 90th is not). Pure.
double GridSpread(std::vector<double> g_per_kwh);

class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string name() const = 0;
  // What the policy is with its settings, for reports (the oracle's candidates differ only here).
  virtual std::string describe() const { return name(); }
  // True for the oracle: the simulator hands it the true future instead of forecasts.
  virtual bool wants_truth() const { return false; }
  // True for a policy that reads PolicyInput::renewable_derate: only then does the engine measure
  // each site's forecast shortfall on the history (policy.derate_quantile) at start-up.
  virtual bool wants_renewable_derate() const { return false; }
  // How many intervals of outlook the policy reads (the simulator forecasts that far).
  virtual size_t horizon(const PolicyInput& in) const;
  // The plan for the interval starting at in.now. Never fails: a policy that cannot meet the
  // deadline runs as fast as it can.
  virtual Plan Decide(const PolicyInput& in) const = 0;
};

// Names: carbon-agnostic, suspend-resume, static-best-region, carbonscaler, greentrain, oracle.
Result<std::unique_ptr<Policy>> MakePolicy(const std::string& name);
std::vector<std::string> PolicyNames();

// The schedules the oracle chooses among, each run on the true supply: the least-carbon linear
// program at several deadline reserves and renewable deratings, with and without the idle draw of
// a paused allocation, and every baseline. The simulator runs them all with
// perfect foresight and reports the one with the least grid carbon that meets the deadline.
std::vector<std::unique_ptr<Policy>> OracleCandidates();

// ---- Building blocks shared by the policies (exposed for tests) ----

// Grid carbon (kg) of running menu option `o` for one interval at outlook step `h`, given each site's
// renewable supply (renewables are free up to the site's demand; the battery is not counted).
// With `renewable_aware` false the whole demand is charged at grid intensity (CarbonScaler's view).
double OptionCarbonKg(const OptionMenu& menu, int o, const std::vector<SiteOutlook>& outlook, size_t h,
                      double interval_hours, bool renewable_aware);

// The least-carbon schedule over the outlook that completes `work` steps (a fractional relaxation:
// each interval runs a convex combination of menu options, e.g. one option for part of the
// interval). Returns, per outlook step, the work planned there, and its total carbon in
// `carbon_kg`. If the work cannot be completed within the outlook, every step runs the fastest
// option and `feasible` is false.
struct Schedule {
  std::vector<double> work;         // steps planned per outlook step
  std::vector<int> option;          // menu option whose speed covers that work (-1: off)
  double carbon_kg = 0;
  bool feasible = true;
};
struct ScheduleOptions {
  bool renewable_aware = true;
  // Extra carbon (kg) charged to every option at step 0 that changes the placement, and the work
  // lost to the move: makes the planner stay put unless moving pays.
  std::vector<double> switch_carbon_kg;  // per option, may be empty
  std::vector<double> switch_work_loss;  // per option, steps, may be empty
  // Facility MW that each site draws while the job is paused (the GPUs it keeps allocated now,
  // idle); empty = none. Used by the linear program only: a pause then costs the idle draw until
  // the job's last run (the allocation is released when the job is done), of this allocation until
  // the plan runs another, then of the one it ran last (coordinator/lp.h).
  std::vector<double> paused_mw;
  // The job keeps its allocation while paused (job.pause_releases_gpus false), also where it holds
  // none yet (paused_mw all zero before its first run): the linear program then charges a pause
  // after a planned run that run's allocation, as above. False with paused_mw all zero: pauses free.
  bool pauses_hold = false;
  // Used by the linear program only, which then charges switches wherever the plan makes them, each
  // the work it loses and its GPUs' idle draw meanwhile (in the sites' demand, so renewables and
  // batteries may cover it), so that a move or a resume costs the same whenever it is made.
  // start_hours: per option, the hours it loses before training at step 0 (replaces switch_*).
  // enter_hours: per option, the hours the job loses entering that option's placement (its set of
  // sites) at a step t >= 1 where it did not run at t - 1 (a resume's restart, a move's checkpoint
  // and transfer from where the job is now). Empty: free.
  std::vector<double> start_hours;
  std::vector<double> enter_hours;
  // With enter_hours: the hours a running job loses changing its option (a resize's regroup,
  // OptionMenu::StartSeconds), part of every entry to a placement too. Over the next day the LP
  // charges it wherever the option changes, and entries to a placement the rest.
  double regroup_hours = 0;
  // Used by the linear program only: a running job takes a periodic checkpoint once every
  // `checkpoint_period` intervals it trains (PeriodicCheckpointIntervals; IntervalEngine::Cost takes
  // its time from that interval's training), 0: never. Each interval an option runs is charged that share of the option's
  // checkpoint time: where the checkpoints fall depends on when the job runs, which the plan
  // decides.
  double checkpoint_period = 0;

};
Schedule PlanSchedule(const OptionMenu& menu, const std::vector<SiteOutlook>& outlook, double interval_hours,
                      double work, size_t steps, const ScheduleOptions& options);

}  // namespace gt
