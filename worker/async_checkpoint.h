// Asynchronous checkpoint writing: training snapshots its state to memory at a step boundary and
// goes on while a background thread writes the layer files (worker/layer_state.h).
//
// Contract: at most one write is in flight. AcquireBuffer blocks until the previous write has
// finished and returns the (reused) buffer to snapshot into; Submit starts writing it. A finished
// write is handed back once by TakeFinished / WaitFinished with the files written (or the error).
// The destructor waits for a write in flight (a checkpoint is never abandoned half-way by us).
// Threads: the owner calls every method from one thread; the writer thread only touches the buffer
// between Submit and the write's completion.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/store.h"
#include "common/status.h"
#include "worker/layer_state.h"

namespace gt::worker {

class AsyncCheckpointWriter {
 public:
  struct Job {
    int64_t step = 0;
    std::string dir;          // the step directory (created by Submit's writer if missing)
    std::vector<int> layers;  // the layers of the buffer this rank writes
  };
  struct Finished {
    Job job;
    Status status;
    std::vector<ckpt::FileEntry> files;
    uint64_t bytes = 0;
    double write_seconds = 0;
  };

  // `threads`: layer files written at a time. More write faster but take more CPU from training.
  explicit AsyncCheckpointWriter(int threads = 1);
  ~AsyncCheckpointWriter();
  AsyncCheckpointWriter(const AsyncCheckpointWriter&) = delete;
  AsyncCheckpointWriter& operator=(const AsyncCheckpointWriter&) = delete;

  // Waits until no write is in flight; the buffer to snapshot into (owned by the writer).
  LayerState* AcquireBuffer();
  // Starts writing the buffer. Precondition: AcquireBuffer was called since the last Submit.
  void Submit(Job job);
  // A finished write not yet taken, without waiting.
  std::optional<Finished> TakeFinished();
  // Waits for the write in flight, if any, and returns it (or one finished earlier and not taken).
  std::optional<Finished> WaitFinished();
  bool busy() const;

 private:
  void Loop();
  std::optional<Finished> PopFinished();  // with mu_ held
  mutable std::mutex mu_;
  std::condition_variable cv_;
  LayerState buffer_;
  std::optional<Job> job_;            // submitted, not yet finished
  std::deque<Finished> finished_;     // finished, not yet taken (oldest first)
  bool quit_ = false;
  int threads_ = 1;
  std::thread thread_;
};

}  // namespace gt::worker
