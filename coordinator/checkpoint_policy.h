// When to checkpoint: a pure decision, taken by the interval engine (coordinator/engine.h) for every
// interval's plan, so that the simulator books the checkpoints the live coordinator takes (testable
// without processes). In priority order:
//   1. "plan": the interval's plan (`next`, after `current`) pauses the job, or moves work off a
//      site that runs now; the state must be safe on disk before the work stops there. `next`'s
//      actions say so (DeriveActions put a checkpoint there for this reason; the rule reads them
//      rather than deriving them again);
//   2. "forecast": a site that runs on green power now (renewables cover its load) is forecast to
//      lose it within the horizon: renewables fall below the load and the battery cannot cover the
//      deficit. The horizon is derived from the checkpoint time (measured so far in the live run,
//      modelled in the simulator; 3x, at least one interval), so that the checkpoint is on disk
//      before the power goes. At most one forecast checkpoint per horizon (no repeat while the same
//      drop is still ahead);
//   3. "periodic": the job runs and trained job.checkpoint_every_hours of trace time since the last
//      checkpoint (0: never; PeriodicCheckpointDue, the rule DeriveActions follows).
#pragma once

#include <string>
#include <vector>

#include "coordinator/plan.h"

namespace gt {

struct CheckpointSiteOutlook {
  std::string name;
  double load_mw = 0;                      // the site's modelled draw while training (0: no work here)
  double renewable_now_mw = 0;             // this interval's renewable supply
  std::vector<double> renewable_forecast_mw;  // the next intervals (at least the horizon)
  double battery_mwh = 0;                  // usable battery energy now
};

struct CheckpointTriggerInput {
  double interval_hours = 1;
  double hours_since_checkpoint = 0;       // trace hours trained since the last checkpoint (or run start)
  double every_hours = 0;                  // job.checkpoint_every_hours (0: no periodic checkpoints)
  double measured_checkpoint_hours = 0;    // trace hours the last checkpoint took (0: not measured)
  const Plan* current = nullptr;           // the plan in force (may be null at the start)
  // The plan for the interval (may be null), its actions those that lead to it from `current`
  // (DeriveActions; none where the plan stays as it is).
  const Plan* next = nullptr;
  const std::vector<std::string>* site_names = nullptr;  // for reasons (null: site indices)
  std::vector<CheckpointSiteOutlook> sites;
};

struct CheckpointTrigger {
  bool take = false;
  std::string kind;    // plan | forecast | periodic
  std::string reason;  // human-readable, names the site, the power and the time ahead
};

// Intervals of forecast that a checkpoint must see ahead: max(1, ceil(3 x measured / interval)).
int CheckpointHorizonIntervals(double measured_checkpoint_hours, double interval_hours);

CheckpointTrigger DecideCheckpoint(const CheckpointTriggerInput& in);

}  // namespace gt
