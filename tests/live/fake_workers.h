// Test doubles for the live control loop (coordinator/live.h) without processes or a model:
//  - FakeWorkers: one thread per rank speaking the worker side of coordinator/protocol.h over
//    plaintext loopback (register, ready, receiving, steps, checkpoints with no files, halted,
//    done, a heartbeat every second); steps take no compute and run as fast as the coordinator
//    grants them. A rank can be told to hang (answer nothing) from a given epoch on, or to go
//    silent at a given step (and come back later).
//  - ModelledTime: the trace clock of such a run, driven the way the simulator models time: each
//    completed step advances it by the trace time one step of the running plan takes (the plan's
//    steps_per_hour, live steps standing for job.steps in proportion), each plan change by the
//    engine's modelled overhead, and while the plan pauses it jumps to the next interval boundary
//    whenever the loop has nothing to do. It is driven only from the coordinator's thread (through
//    LiveOptions::observer), so the sequence of trace times is a function of the sequence of events.
// Threads: FakeWorkers owns its threads (joined by Join or the destructor); ModelledTime is called
// from the coordinator's thread, its clock read from any.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/config.h"

namespace gt::testing {

class FakeWorkers {
 public:
  struct Options {
    Config config;                       // sites[].ranks decide each rank's site
    std::string coordinator_endpoint;
    int hang_rank = -1;                  // this rank stops answering ...
    int64_t hang_from_epoch = -1;        // ... from the assignment of this epoch on
    // This rank goes silent (no message, no heartbeat: a killed or stopped process, a cut link)
    // when it reaches this step while training, and comes back (as a SIGCONTed process would, in
    // its old epoch) after revive_after_s when that is >= 0.
    int die_rank = -1;
    int64_t die_at_step = -1;
    double revive_after_s = -1;
    std::function<double()> compute_seconds;  // reported per step (for the ledger's duty cycle)
  };
  explicit FakeWorkers(Options options);
  ~FakeWorkers();
  void Join();
  // Steps reported by all ranks together, and commands each kind received (for assertions).
  int64_t steps_reported() const { return steps_.load(); }

 private:
  void RunRank(int rank);
  Options opt_;
  std::vector<std::thread> threads_;
  std::atomic<bool> quit_{false};
  std::atomic<int64_t> steps_{0};
};

class ModelledTime {
 public:
  // `live_steps`: the live run's end step (job.steps of the modelled job are spread over it).
  ModelledTime(const Config& config, int64_t live_steps);
  std::unique_ptr<Clock> MakeClock(UnixSeconds trace_start);  // for LiveOptions::make_clock
  void Observe(const nlohmann::json& event);                   // for LiveOptions::observer
  // Wall-equivalent seconds of one step of the running plan (at runtime.wall_seconds_per_trace_hour).
  double StepWallSeconds() const;
  // Decisions seen: (trace time, plan description), in order.
  std::vector<std::pair<UnixSeconds, std::string>> decisions() const;

 private:
  void Set(double t);
  const Config config_;
  const int64_t live_steps_;
  std::shared_ptr<FakeClock> clock_;
  UnixSeconds origin_ = 0;
  double now_ = 0;                 // exact trace time
  std::atomic<double> steps_per_hour_{0};
  bool paused_ = false;
  mutable std::mutex mu_;
  std::vector<std::pair<UnixSeconds, std::string>> decisions_;
};

}  // namespace gt::testing

namespace gt::testing {

// The config of the live tests: the first ranks.size() sites of the bundled default
// (launch/configs/default.json under `source_dir`, trace paths made absolute) with these ranks per
// site, a tiny live model of 40 steps, a 1 s trace hour and checkpoints under `dir`.
nlohmann::json LiveTestConfig(const std::string& source_dir, const std::vector<int>& ranks, const std::string& dir);

}  // namespace gt::testing
