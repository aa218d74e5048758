// Clocks: the seam between time-driven logic and real time.
//
// Contract: Now() returns the current time on the clock's own axis (trace time, in Unix seconds for
// trace clocks). SleepUntil() blocks the calling thread until Now() >= t (a FakeClock never blocks;
// it jumps). Implementations are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "common/time.h"

namespace gt {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual UnixSeconds Now() const = 0;
  virtual void SleepUntil(UnixSeconds t) = 0;
};

// Wall-clock time.
class RealClock final : public Clock {
 public:
  UnixSeconds Now() const override;
  void SleepUntil(UnixSeconds t) override;
};

// Replays trace time compressed: `trace_start` corresponds to the moment of construction and each
// trace hour lasts `wall_seconds_per_trace_hour` of wall time.
class TraceReplayClock final : public Clock {
 public:
  TraceReplayClock(UnixSeconds trace_start, double wall_seconds_per_trace_hour);
  UnixSeconds Now() const override;
  // Fractional trace time, for callers that need sub-second resolution.
  double NowExact() const;
  void SleepUntil(UnixSeconds t) override;
  double speedup() const { return 3600.0 / wall_per_hour_; }

 private:
  UnixSeconds start_;
  double wall_per_hour_;
  std::chrono::steady_clock::time_point origin_;
};

// Manually advanced clock for deterministic tests. SleepUntil(t) advances to t.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(UnixSeconds start = 0) : now_(start) {}
  UnixSeconds Now() const override { return now_.load(); }
  void SleepUntil(UnixSeconds t) override {
    if (t > now_.load()) now_.store(t);
  }
  void Advance(int64_t seconds) { now_.fetch_add(seconds); }

 private:
  std::atomic<UnixSeconds> now_;
};

}  // namespace gt
