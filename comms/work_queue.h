// Internal to comms: the Work implementation and the per-group operation thread shared by backends.
//
// Contract: OpQueue runs submitted closures one at a time, in submission order, on its own thread.
// Once one closure returns an error the queue is "broken": remaining and later closures are not run
// and their Work completes with Aborted naming the first error. The destructor runs (or aborts) what
// is queued and joins the thread. Thread-safe.
//
// Synchronous calls (inside an InlineScope, set by Collective's *Sync helpers) run the closure on
// the calling thread when the queue is idle, saving two thread hand-offs; order is kept because
// anything submitted meanwhile waits until the inline closure has finished.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "comms/collective.h"

namespace gt {
namespace comms_internal {

class AsyncWork : public Work {
 public:
  Status Wait(std::chrono::milliseconds timeout) override;
  bool IsCompleted() const override;
  void Complete(Status s);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  Status status_;
};

// A Work that is already complete (argument errors detected before submission).
std::shared_ptr<Work> DoneWork(Status s);

// While alive on a thread, OpQueue::Submit from that thread may run the closure inline.
class InlineScope {
 public:
  InlineScope();
  ~InlineScope();
  static bool active();

 private:
  bool previous_;
};

class OpQueue {
 public:
  // `name` prefixes error messages ("gloo g3 rank 1").
  explicit OpQueue(std::string name);
  ~OpQueue();
  OpQueue(const OpQueue&) = delete;
  OpQueue& operator=(const OpQueue&) = delete;

  std::shared_ptr<Work> Submit(std::string op_name, std::function<Status()> fn);
  bool broken() const;

 private:
  struct Item {
    std::string name;
    std::function<Status()> fn;
    std::shared_ptr<AsyncWork> work;
  };
  void Run();

  const std::string name_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> items_;
  bool running_inline_ = false;  // a closure runs on a caller's thread
  bool busy_ = false;            // the op thread runs a closure
  bool stop_ = false;
  Status broken_;
  std::thread thread_;
};

}  // namespace comms_internal
}  // namespace gt
