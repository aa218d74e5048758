// The interval logic that the simulator and the live coordinator share ("one engine, two drivers"):
// each interval it builds the policy's input (forecasts made only from the past, or, where the traces
// hold nothing before the job, the reading at the decision held over the horizon; battery states, the
// allocation, the time since the last checkpoint), asks the policy, derives the time the plan's
// actions cost, and dispatches a site's energy in phases. The simulator drives it with a modelled
// clock and executor (coordinator/simulator.cc); the live coordinator with the trace clock and real
// workers (coordinator/live.cc). Only the clock and the executor differ.
//
// Ownership and threads: borrows the config, menu, supply and policy (they must outlive it); one
// engine per run, used from one thread. While the policy decides interval i, the engine forecasts
// interval i + 1 in the background (a oneTBB task): forecasts depend only on the traces, so the plans
// are the same as computed in turn, and a prediction that misses (another interval or horizon comes
// next) is recomputed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "coordinator/checkpoint_policy.h"
#include "coordinator/menu.h"
#include "coordinator/plan.h"
#include "coordinator/policy.h"
#include "energy/forecast.h"
#include "energy/power.h"

namespace gt {

// The history before the job that the drivers load (forecasters, the measured derate) and the
// window on which the engine measures how much the sites' grids vary (PolicyInput::grid_spread).
constexpr int64_t kHistorySeconds = 14 * 86400;

// What the driver knows at the start of an interval.
struct EngineState {
  double work_left_steps = 0;
  double hours_since_checkpoint = 0;    // trained since the last checkpoint (HoursSinceCheckpointAfter)
  std::vector<double> battery_soc_mwh;  // per site
  std::vector<int> allocated_gpus;      // per site, held by the job (idle while paused)
  Plan current;                         // what runs now (empty before the start)
  // Trace hours a checkpoint of the current state takes, as the driver knows it (the live run: the
  // last one measured); 0: the model's (OptionMenu::CheckpointSeconds). Sets how far ahead a
  // forecast loss of green power is looked for (CheckpointHorizonIntervals).
  double checkpoint_hours = 0;
};

// The cost of getting from one plan to the next, before training resumes in the interval.
struct Transition {
  bool checkpoint = false;
  double overhead_hours = 0;    // checkpoint + state moves + restart, capped at the interval
  double migrated_bytes = 0;
  int pauses = 0, resumes = 0, resizes = 0, migrations = 0;
};

// One site's load over an interval in three phases: the overhead (a transition: GPUs waiting idle
// while state is saved, moved or restarted, before a pause too), training (busy GPUs), and the rest
// (allocated GPUs idle while paused unless given back, or nothing). Each GPU draws its node's host
// power as well.
struct SitePhases {
  double overhead_hours = 0, overhead_gpus = 0;
  double run_hours = 0, run_gpus = 0;
  double rest_hours = 0, rest_gpus = 0;
  std::vector<GpuPhase> ToGpuPhases() const;
};

class IntervalEngine {
 public:
  ~IntervalEngine();
  // `history` leading intervals of every supply trace precede the job's start. `forecaster` names
  // the forecaster (the policy's wants_truth() overrides it with the truth).
  static Result<std::unique_ptr<IntervalEngine>> Create(const Config& config, const OptionMenu& menu,
                                                        const std::vector<SiteSupplyTrace>& supply, size_t history,
                                                        const Policy& policy, const std::string& forecaster);

  // The policy's plan for interval `i` (absolute index into the supply traces), its actions holding
  // the checkpoint the interval begins with by DecideCheckpoint's rules (coordinator/
  // checkpoint_policy.h): the plan's (before a pause or move), one ahead of a forecast loss of green
  // power at a site the job goes on training at, or a periodic one. Both drivers take and book
  // exactly these.
  Plan Decide(size_t i, const EngineState& state);
  // Why the last Decide's plan checkpoints (take false: it does not).
  const CheckpointTrigger& checkpoint() const { return checkpoint_; }
  // The checkpoint trigger for a job in `state` that runs `next` in interval `i`, on the forecasts of
  // the last Decide (which must have been for `i`): DecideCheckpoint, the forecast rule applied where
  // the job trains on through the interval (`state.current` and `next` both running); `next`'s
  // actions are those from `state.current` (none where it stays). For a driver that runs another
  // plan than the policy's (the live run on a fixed plan).
  CheckpointTrigger CheckpointFor(size_t i, const EngineState& state, const Plan& next) const;
  // The input of the last Decide (its outlook holds the forecasts, index 0 = interval i).
  const PolicyInput& input() const { return in_; }
  const std::string& forecaster() const { return forecaster_; }
  double interval_hours() const { return dt_; }
  UnixSeconds TimeOf(size_t i) const;

  // The time `next`'s actions cost after `current` (checkpoint, migration, restart).
  Transition Cost(const Plan& current, const Plan& next) const;
  // Site `s`'s phases in an interval of `hours` where `next` trains for `run_hours` after
  // `overhead_hours`, the job holding `allocated` GPUs there before.
  SitePhases Phases(int s, const Plan& next, int allocated, double hours, double overhead_hours,
                    double run_hours) const;
  // Dispatches `phases` at site `s` in interval `i` from battery state `soc_mwh`; the energy by what
  // draws it is added to `*breakdown` (may be null).
  PowerFlow Dispatch(int s, size_t i, double soc_mwh, const SitePhases& phases, LoadBreakdown* breakdown) const;
  // WAN bytes per site of interval with `tr` before `next` trains `work` steps: the pipeline's
  // activations and gradients (the partition's bytes per step) shared by the sites of `next`, and a
  // migration's state shared by the sites it leaves and reaches (`current` -> `next`).
  std::vector<double> WanBytes(const Plan& current, const Plan& next, const Transition& tr, double work) const;

 private:
  IntervalEngine(const Config& c, const OptionMenu& m, const std::vector<SiteSupplyTrace>& s, size_t h,
                 const Policy& p);
  const Config& config_;
  const OptionMenu& menu_;
  const std::vector<SiteSupplyTrace>& supply_;
  size_t history_;
  const Policy& policy_;
  std::string forecaster_;
  double dt_ = 1;
  std::vector<std::unique_ptr<Forecaster>> f_renew_, f_carbon_;
  PolicyInput in_;
  std::vector<std::string> site_names_;  // config_.sites' names, for reasons
  CheckpointTrigger checkpoint_;
  // The background forecast of the next interval (engine.cc).
  struct Prefetch;
  std::unique_ptr<Prefetch> prefetch_;
  // Fills `out` (one outlook per site) with interval i's forecasts over `horizon` steps.
  void Forecast(size_t i, size_t horizon, std::vector<SiteOutlook>* out) const;
  // The horizon the policy will ask for at interval i (the input's time fields set for it).
  size_t HorizonAt(size_t i);
  void SetTime(size_t i);
};

}  // namespace gt
