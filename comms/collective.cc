#include "comms/collective.h"

#include <set>

#include "common/log.h"
#include "comms/backends.h"
#include "comms/work_queue.h"

namespace gt {
namespace comms_internal {

Status AsyncWork::Wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return done_; })) {
    return Timeout("collective operation did not finish within " + std::to_string(timeout.count()) +
                   " ms (it is still running)");
  }
  return status_;
}

bool AsyncWork::IsCompleted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

void AsyncWork::Complete(Status s) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = std::move(s);
    done_ = true;
  }
  cv_.notify_all();
}

std::shared_ptr<Work> DoneWork(Status s) {
  auto w = std::make_shared<AsyncWork>();
  w->Complete(std::move(s));
  return w;
}

namespace {
thread_local bool t_inline = false;
}  // namespace

InlineScope::InlineScope() : previous_(t_inline) { t_inline = true; }
InlineScope::~InlineScope() { t_inline = previous_; }
bool InlineScope::active() { return t_inline; }

OpQueue::OpQueue(std::string name) : name_(std::move(name)) {
  thread_ = std::thread([this] { Run(); });
}

OpQueue::~OpQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool OpQueue::broken() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !broken_.ok();
}

std::shared_ptr<Work> OpQueue::Submit(std::string op_name, std::function<Status()> fn) {
  auto work = std::make_shared<AsyncWork>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!broken_.ok()) {
      work->Complete(Aborted(name_ + ": " + op_name + " not started: the group is broken after an earlier error (" +
                             broken_.message() + "); form a new generation"));
      return work;
    }
    if (stop_) {
      work->Complete(Aborted(name_ + ": " + op_name + " not started: the group is shutting down"));
      return work;
    }
    if (!InlineScope::active() || !items_.empty() || running_inline_ || busy_) {
      items_.push_back(Item{std::move(op_name), std::move(fn), work});
      cv_.notify_all();
      return work;
    }
    running_inline_ = true;
  }
  // Idle queue and a synchronous caller: run here. The op thread does not start queued items
  // until running_inline_ is cleared.
  Status s = fn();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!s.ok()) {
      s = s.WithContext(name_ + " " + op_name);
      GT_WARN("comms", "collective failed: " << s.ToString());
      broken_ = s;
    }
    running_inline_ = false;
  }
  cv_.notify_all();
  work->Complete(std::move(s));
  return work;
}

void OpQueue::Run() {
  while (true) {
    Item item;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return (stop_ || !items_.empty()) && !running_inline_; });
      if (items_.empty()) return;  // stop_ and nothing left
      item = std::move(items_.front());
      items_.pop_front();
      busy_ = true;
      if (!broken_.ok()) {
        item.work->Complete(Aborted(name_ + ": " + item.name + " not started: the group is broken after an earlier error (" +
                                    broken_.message() + "); form a new generation"));
        continue;
      }
    }
    Status s = item.fn();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!s.ok()) {
        s = s.WithContext(name_ + " " + item.name);
        GT_WARN("comms", "collective failed: " << s.ToString());
        broken_ = s;
      }
      busy_ = false;
    }
    item.work->Complete(std::move(s));
  }
}

std::string GroupPrefix(const CollectiveOptions& options) {
  return options.job + "/g" + std::to_string(options.generation);
}

}  // namespace comms_internal

namespace {
// Sync helpers wait for the operation's own deadline plus a margin for scheduling.
std::chrono::milliseconds SyncWait(std::chrono::milliseconds t) { return t + t / 2 + std::chrono::milliseconds(1000); }
}  // namespace

Status Collective::AllReduceSync(TensorView t, ReduceOp op) {
  comms_internal::InlineScope inline_ok;
  return AllReduce(t, op)->Wait(SyncWait(timeout()));
}
Status Collective::BroadcastSync(TensorView t, int root) {
  comms_internal::InlineScope inline_ok;
  return Broadcast(t, root)->Wait(SyncWait(timeout()));
}
Status Collective::AllGatherSync(TensorView in, TensorView out) {
  comms_internal::InlineScope inline_ok;
  return AllGather(in, out)->Wait(SyncWait(timeout()));
}
Status Collective::BarrierSync() {
  comms_internal::InlineScope inline_ok;
  return Barrier()->Wait(SyncWait(timeout()));
}

Result<int> RankOf(const CollectiveOptions& options) {
  if (options.members.empty()) return InvalidArgument("CollectiveOptions.members is empty; list the group's worker ids");
  std::set<int> seen;
  int rank = -1;
  for (size_t i = 0; i < options.members.size(); ++i) {
    int m = options.members[i];
    if (m < 0) return InvalidArgument("CollectiveOptions.members[" + std::to_string(i) + "] is negative");
    if (!seen.insert(m).second) {
      return InvalidArgument("CollectiveOptions.members lists worker " + std::to_string(m) + " twice");
    }
    if (m == options.self) rank = static_cast<int>(i);
  }
  if (rank < 0) {
    return InvalidArgument("CollectiveOptions.self (" + std::to_string(options.self) +
                           ") is not in members; workers outside a group must not call MakeCollective");
  }
  return rank;
}

std::vector<std::string> CompiledBackends() {
  std::vector<std::string> v = {"gloo"};
#if GT_HAVE_NCCL
  v.push_back("nccl");
#endif
#if GT_HAVE_MPI
  v.push_back("mpi");
#endif
  return v;
}

bool BackendCompiled(const std::string& backend) {
  for (const auto& b : CompiledBackends()) {
    if (b == backend) return true;
  }
  return false;
}

namespace {
Status CheckCompiled(const std::string& backend) {
  if (backend != "gloo" && backend != "nccl" && backend != "mpi") {
    return InvalidArgument("unknown collective backend '" + backend + "'; expected gloo, nccl or mpi");
  }
  if (!BackendCompiled(backend)) {
    if (backend == "nccl") {
      return Unavailable("backend 'nccl' was not compiled in; rebuild with CUDA and NCCL installed "
                         "(-DGREENTRAIN_WITH_NCCL=ON, nccl.h and libnccl findable)");
    }
    return Unavailable("backend 'mpi' was not compiled in; rebuild with MPI installed (-DGREENTRAIN_WITH_MPI=ON)");
  }
  return Status::Ok();
}
}  // namespace

Status BackendUsable(const std::string& backend) {
  RETURN_IF_ERROR(CheckCompiled(backend));
#if GT_HAVE_NCCL
  if (backend == "nccl") return comms_internal::NcclUsable();
#endif
#if GT_HAVE_MPI
  if (backend == "mpi") return comms_internal::MpiUsable();
#endif
  return Status::Ok();
}

Result<std::unique_ptr<Collective>> MakeCollective(const std::string& backend, const CollectiveOptions& options) {
  RETURN_IF_ERROR(CheckCompiled(backend));
  if (!options.store && backend != "mpi") {
    return InvalidArgument("CollectiveOptions.store is null; every member needs the same rendezvous store");
  }
  if (options.timeout.count() <= 0) return InvalidArgument("CollectiveOptions.timeout must be positive");
  if (options.job.empty()) return InvalidArgument("CollectiveOptions.job is empty");
  ASSIGN_OR_RETURN(int rank, RankOf(options));
  if (backend == "gloo") return comms_internal::MakeGlooCollective(options, rank);
#if GT_HAVE_NCCL
  if (backend == "nccl") return comms_internal::MakeNcclCollective(options, rank);
#endif
#if GT_HAVE_MPI
  if (backend == "mpi") return comms_internal::MakeMpiCollective(options, rank);
#endif
  return Internal("backend '" + backend + "' is listed as compiled but has no constructor");
}

}  // namespace gt
