// The Plan a policy returns for one interval, and the actions that take the job from one plan to
// the next. Plain values; safe to copy across threads.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "sharding/plan.h"

namespace gt {

enum class ActionKind { kStart, kPause, kResume, kResize, kMigrate, kCheckpoint, kFinish };
const char* ActionKindName(ActionKind k);

struct Action {
  ActionKind kind = ActionKind::kCheckpoint;
  int stage = -1;       // kMigrate: the stage that moves
  int from_site = -1;   // kMigrate, kResize
  int to_site = -1;     // kMigrate
  std::string reason;
};

struct Plan {
  int option = -1;                   // index into the OptionMenu; -1 = paused / not started
  std::vector<int> busy_gpus;        // per site
  std::vector<StagePlacement> stages;  // pipeline order; kept while paused (state stays in place)
  double steps_per_hour = 0;         // 0 while paused
  double state_bytes = 0;            // weights + optimizer state of the whole model
  std::vector<Action> actions;       // to get here from the previous plan
  std::string reason;                // why the policy chose it, for logs and reports
  // The policy's own schedule for the intervals after this one (menu option per interval, -1 =
  // pause), where it plans ahead (greentrain, carbonscaler); empty otherwise. Informational: the
  // next interval is decided afresh. Shown to operators as the next planned change.
  std::vector<int> planned;

  bool paused() const { return option < 0; }
  // Training: started (holds stages) and not paused.
  bool running() const { return !stages.empty() && !paused(); }
  // Sites that hold a stage (index list, pipeline order).
  std::vector<int> Sites() const;
  // "california:256" style summary, "paused@texas" when paused, "-" before the start.
  std::string Describe(const std::vector<std::string>& site_names) const;
};

// Intervals that `hours` span (at least one). Pure.
size_t StepsIn(double hours, double interval_hours);

// The periodic checkpoint rule (job.checkpoint_every_hours), one definition for the simulator, the
// live coordinator's trigger and greentrain's planner. Only training ages a checkpoint: a paused
// job has no work at risk, so a long pause does not make a checkpoint due as soon as it resumes.
// "Hours since the last checkpoint" counts the whole intervals the job trained in since then, the
// interval the checkpoint was taken in included (it trains after the checkpoint): a job that trains
// throughout checkpoints every `every_hours`, the work a failure can lose never more.
//
// The count at the end of an interval, from the count at its start: restarts at a checkpoint taken
// in it, grows by the interval when the job trained in it.
double HoursSinceCheckpointAfter(double before, bool checkpointed, bool trained, double interval_hours);
// Due once `hours_since_checkpoint` reaches `every_hours` (> 0; 0 or less: never).
bool PeriodicCheckpointDue(double hours_since_checkpoint, double every_hours);
// The intervals a job that trains throughout runs from one periodic checkpoint to the next (0:
// never): what the rule above gives, StepsIn(every, interval).
int PeriodicCheckpointIntervals(double every_hours, double interval_hours);

// The reason DeriveActions gives a checkpoint the periodic rule made due (not a pause or a move).
extern const char kPeriodicCheckpointReason[];

// The actions that lead from `prev` to `next` (pure): start, pause, resume, resize, migrate (one per
// stage whose site changes), and a checkpoint before any pause or migration (state must be safe
// before power drops) or when the periodic rule above is due (a running job only).
std::vector<Action> DeriveActions(const Plan& prev, const Plan& next, double hours_since_checkpoint,
                                  double checkpoint_every_hours);

}  // namespace gt
