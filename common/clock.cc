#include "common/clock.h"

#include <thread>

namespace gt {

UnixSeconds RealClock::Now() const {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void RealClock::SleepUntil(UnixSeconds t) {
  std::this_thread::sleep_until(std::chrono::system_clock::time_point(std::chrono::seconds(t)));
}

TraceReplayClock::TraceReplayClock(UnixSeconds trace_start, double wall_seconds_per_trace_hour)
    : start_(trace_start),
      wall_per_hour_(wall_seconds_per_trace_hour > 0 ? wall_seconds_per_trace_hour : 1.0),
      origin_(std::chrono::steady_clock::now()) {}

double TraceReplayClock::NowExact() const {
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - origin_).count();
  return static_cast<double>(start_) + wall * (3600.0 / wall_per_hour_);
}

UnixSeconds TraceReplayClock::Now() const { return static_cast<UnixSeconds>(NowExact()); }

void TraceReplayClock::SleepUntil(UnixSeconds t) {
  double wall = static_cast<double>(t - start_) * wall_per_hour_ / 3600.0;
  std::this_thread::sleep_until(origin_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                              std::chrono::duration<double>(wall)));
}

}  // namespace gt
