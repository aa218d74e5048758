#include "coordinator/checkpoint_policy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace gt {
namespace {

std::string Fixed(double v, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// "0.085 MW (85 kW)"-style: MW with kW for loads below 1 MW.
std::string Power(double mw) {
  return mw >= 1 ? Fixed(mw) + " MW" : Fixed(mw * 1000, 0) + " kW";
}

// The first interval ahead (1-based) at which the site's renewables no longer carry its load and the
// battery has run out covering the deficit; 0 if none within `horizon`.
int GreenPowerLostAt(const CheckpointSiteOutlook& s, int horizon, double interval_hours) {
  double battery = s.battery_mwh;
  const int n = std::min<int>(horizon, static_cast<int>(s.renewable_forecast_mw.size()));
  for (int k = 0; k < n; ++k) {
    const double deficit_mwh = std::max(0.0, s.load_mw - s.renewable_forecast_mw[k]) * interval_hours;
    battery -= deficit_mwh;
    if (deficit_mwh > 0 && battery < 0) return k + 1;
  }
  return 0;
}

}  // namespace

int CheckpointHorizonIntervals(double measured_checkpoint_hours, double interval_hours) {
  if (!(interval_hours > 0) || !(measured_checkpoint_hours > 0)) return 1;
  return std::max(1, static_cast<int>(std::ceil(3 * measured_checkpoint_hours / interval_hours)));
}

CheckpointTrigger DecideCheckpoint(const CheckpointTriggerInput& in) {
  // 1. The plan pauses or moves work in this interval (its actions, as DeriveActions made them).
  if (in.current != nullptr && in.next != nullptr) {
    for (const Action& a : in.next->actions) {
      if (a.kind != ActionKind::kCheckpoint || a.reason == kPeriodicCheckpointReason) continue;
      const std::vector<std::string> none;
      const auto& names = in.site_names != nullptr ? *in.site_names : none;
      return {true, "plan",
              "policy: " + a.reason + " (" + in.current->Describe(names) + " -> " + in.next->Describe(names) + ")"};
    }
  }
  // 2. Green power about to leave a site that runs on it now.
  const int horizon = CheckpointHorizonIntervals(in.measured_checkpoint_hours, in.interval_hours);
  const bool recent = in.hours_since_checkpoint < horizon * in.interval_hours;
  if (!recent) {
    for (const auto& s : in.sites) {
      if (!(s.load_mw > 0) || s.renewable_now_mw < s.load_mw) continue;
      const int k = GreenPowerLostAt(s, horizon, in.interval_hours);
      if (k == 0) continue;
      return {true, "forecast",
              "forecast: " + s.name + " renewables " + Power(s.renewable_forecast_mw[k - 1]) + " fall below its load " +
                  Power(s.load_mw) + " in " + Fixed(k * in.interval_hours) + " h (battery " + Fixed(s.battery_mwh * 1000, 0) +
                  " kWh cannot cover it)"};
    }
  }
  // 3. Periodic fallback.
  if ((in.current == nullptr || in.current->running()) && PeriodicCheckpointDue(in.hours_since_checkpoint, in.every_hours))
    return {true, "periodic", "periodic: trained " + Fixed(in.hours_since_checkpoint) + " trace hours since the last checkpoint"};
  return {};
}

}  // namespace gt
