#include "coordinator/plan.h"

#include <algorithm>
#include <cmath>

namespace gt {

const char* ActionKindName(ActionKind k) {
  switch (k) {
    case ActionKind::kStart: return "start";
    case ActionKind::kPause: return "pause";
    case ActionKind::kResume: return "resume";
    case ActionKind::kResize: return "resize";
    case ActionKind::kMigrate: return "migrate";
    case ActionKind::kCheckpoint: return "checkpoint";
    case ActionKind::kFinish: return "finish";
  }
  return "?";
}

std::vector<int> Plan::Sites() const {
  std::vector<int> out;
  for (const auto& s : stages)
    if (std::find(out.begin(), out.end(), s.site) == out.end()) out.push_back(s.site);
  return out;
}

std::string Plan::Describe(const std::vector<std::string>& names) const {
  auto name = [&](int s) { return s >= 0 && s < static_cast<int>(names.size()) ? names[s] : std::to_string(s); };
  if (stages.empty()) return "-";
  std::string out;
  if (paused()) {
    out = "paused@";
    for (int s : Sites()) out += (out.back() == '@' ? "" : "+") + name(s);
    return out;
  }
  for (size_t s = 0; s < busy_gpus.size(); ++s) {
    if (busy_gpus[s] <= 0) continue;
    if (!out.empty()) out += "+";
    out += name(static_cast<int>(s)) + ":" + std::to_string(busy_gpus[s]);
  }
  return out;
}

namespace {
// Tolerance for hours summed interval by interval (a third of an hour is not exact in binary).
constexpr double kHoursEps = 1e-9;
}  // namespace

size_t StepsIn(double hours, double interval_hours) {
  double steps = std::ceil(hours / interval_hours - 1e-9);
  return steps < 1 ? 1 : static_cast<size_t>(steps);
}

double HoursSinceCheckpointAfter(double before, bool checkpointed, bool trained, double interval_hours) {
  return (checkpointed ? 0.0 : before) + (trained ? interval_hours : 0.0);
}

bool PeriodicCheckpointDue(double hours_since_checkpoint, double every_hours) {
  return every_hours > 0 && hours_since_checkpoint >= every_hours - kHoursEps;
}

int PeriodicCheckpointIntervals(double every_hours, double interval_hours) {
  if (!(every_hours > 0) || !(interval_hours > 0)) return 0;
  return static_cast<int>(StepsIn(every_hours, interval_hours));
}

const char kPeriodicCheckpointReason[] = "periodic";

std::vector<Action> DeriveActions(const Plan& prev, const Plan& next, double hours_since_checkpoint,
                                  double checkpoint_every_hours) {
  std::vector<Action> out;
  const bool started = !prev.stages.empty();
  if (!started) {
    if (!next.paused()) out.push_back({ActionKind::kStart, -1, -1, -1, next.reason});
    return out;
  }
  bool moves = false;
  if (!next.stages.empty()) {
    for (size_t k = 0; k < next.stages.size(); ++k) {
      const auto& n = next.stages[k];
      // The previous holder of this stage's first layer.
      for (const auto& p : prev.stages)
        if (n.first_layer >= p.first_layer && n.first_layer < p.last_layer && p.site != n.site) {
          moves = true;
          break;
        }
      if (moves) break;
    }
    if (!moves && next.stages.size() != prev.stages.size()) moves = true;
  }
  const bool pausing = !prev.paused() && next.paused();
  const bool periodic = PeriodicCheckpointDue(hours_since_checkpoint, checkpoint_every_hours) && !prev.paused();
  // A paused job's state was saved when it paused; it needs no second checkpoint to move.
  if ((pausing || moves || periodic) && !prev.paused()) {
    std::string why = pausing ? "before pausing" : moves ? "before moving state" : kPeriodicCheckpointReason;
    out.push_back({ActionKind::kCheckpoint, -1, -1, -1, why});
  }
  if (pausing) out.push_back({ActionKind::kPause, -1, -1, -1, next.reason});
  if (moves) {
    for (size_t k = 0; k < next.stages.size(); ++k) {
      const auto& n = next.stages[k];
      int from = -1;
      for (const auto& p : prev.stages)
        if (n.first_layer >= p.first_layer && n.first_layer < p.last_layer) from = p.site;
      if (from != n.site) out.push_back({ActionKind::kMigrate, static_cast<int>(k), from, n.site, next.reason});
    }
  }
  if (prev.paused() && !next.paused()) out.push_back({ActionKind::kResume, -1, -1, -1, next.reason});
  if (!prev.paused() && !next.paused() && !moves && prev.busy_gpus != next.busy_gpus)
    out.push_back({ActionKind::kResize, -1, -1, -1, next.reason});
  return out;
}

}  // namespace gt
