// The NCCL backend: GPU collectives. Compiled only when CMake found CUDA and NCCL (GT_HAVE_NCCL).
//
// Formation: rank 0 creates an ncclUniqueId (unless the coordinator handed one out in
// CollectiveOptions::nccl_unique_id) and publishes it in the store under the generation prefix; every
// member then calls ncclCommInitRankConfig in non-blocking mode and polls until the communicator is
// ready, aborting it when options.timeout passes (a missing member cannot hang formation).
// Operations are enqueued on one CUDA stream per group in call order; a CUDA event marks the end of
// each. Work::Wait polls the event and ncclCommGetAsyncError; an asynchronous NCCL error, or an
// operation still unfinished `timeout` after it was enqueued, aborts the communicator
// (ncclCommAbort): the group is broken and the caller forms a new generation.
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "comms/backends.h"
#include "comms/work_queue.h"

#define RETURN_WORK_IF_ERROR(expr)     \
  do {                                 \
    ::gt::Status s_ = (expr);          \
    if (!s_.ok()) return DoneWork(s_); \
  } while (0)

namespace gt {
namespace comms_internal {
namespace {

std::string CudaErr(cudaError_t e) { return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e); }
std::string NcclErr(ncclResult_t r) { return std::string("NCCL error ") + std::to_string(r) + ": " + ncclGetErrorString(r); }

Result<ncclDataType_t> NcclType(DType t) {
  switch (t) {
    case DType::kFloat32: return ncclFloat32;
    case DType::kFloat16: return ncclFloat16;
    case DType::kBFloat16: return ncclBfloat16;
    case DType::kFloat64: return ncclFloat64;
    case DType::kInt32: return ncclInt32;
    case DType::kInt64: return ncclInt64;
    case DType::kUInt8: return ncclUint8;
    case DType::kInt8: return ncclInt8;
  }
  return InvalidArgument("dtype " + DTypeName(t) + " has no NCCL equivalent");
}

// State shared by a group and its outstanding Work handles.
struct NcclShared {
  std::mutex mu;
  ncclComm_t comm = nullptr;
  int device = 0;
  std::chrono::milliseconds timeout{30000};
  Status broken;  // first error; OK while healthy

  // Aborts the communicator once (kernels waiting on dead peers return). Caller holds mu.
  void AbortLocked(const Status& why) {
    if (broken.ok()) broken = why;
    if (comm != nullptr) {
      GT_WARN("comms", "aborting NCCL communicator: " << why.ToString());
      ncclCommAbort(comm);
      comm = nullptr;
    }
  }
};

class NcclWork : public Work {
 public:
  NcclWork(std::shared_ptr<NcclShared> shared, cudaEvent_t ev, std::string what)
      : shared_(std::move(shared)), event_(ev), what_(std::move(what)), start_(std::chrono::steady_clock::now()) {}
  ~NcclWork() override {
    if (event_ != nullptr) cudaEventDestroy(event_);
  }

  Status Wait(std::chrono::milliseconds timeout) override {
    const auto wait_deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (done_) return status_;
      }
      Status s = Poll();
      if (!s.ok() || IsCompleted()) return Finish(s);
      if (std::chrono::steady_clock::now() >= wait_deadline) {
        return Timeout(what_ + " did not finish within " + std::to_string(timeout.count()) + " ms (still running)");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

  bool IsCompleted() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
  }

 private:
  // Advances the state; returns an error when the operation failed.
  Status Poll() {
    cudaSetDevice(shared_->device);
    cudaError_t q = cudaEventQuery(event_);
    if (q == cudaSuccess) {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      return Status::Ok();
    }
    if (q != cudaErrorNotReady) return Unavailable(what_ + ": CUDA error " + CudaErr(q));
    std::lock_guard<std::mutex> lock(shared_->mu);
    if (!shared_->broken.ok()) return Aborted(what_ + ": the group was aborted: " + shared_->broken.message());
    if (shared_->comm != nullptr) {
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(shared_->comm, &async);
      if (async != ncclSuccess && async != ncclInProgress) {
        Status s = Unavailable(what_ + " failed: " + NcclErr(async) + " (a member likely died)");
        shared_->AbortLocked(s);
        return s;
      }
    }
    if (std::chrono::steady_clock::now() - start_ > shared_->timeout) {
      Status s = Timeout(what_ + " did not finish within the group timeout of " +
                         std::to_string(shared_->timeout.count()) + " ms (a member is stalled or dead)");
      shared_->AbortLocked(s);
      return s;
    }
    return Status::Ok();
  }

  Status Finish(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!done_) {
      done_ = true;
      status_ = s;
    }
    return status_;
  }

  std::shared_ptr<NcclShared> shared_;
  cudaEvent_t event_;
  const std::string what_;
  const std::chrono::steady_clock::time_point start_;
  mutable std::mutex mu_;
  bool done_ = false;
  Status status_;
};

// Polls a non-blocking communicator until its pending work (init or enqueue) left ncclInProgress.
Status WaitNotInProgress(ncclComm_t comm, std::chrono::steady_clock::time_point deadline, const std::string& what) {
  while (true) {
    ncclResult_t st = ncclSuccess;
    ncclResult_t r = ncclCommGetAsyncError(comm, &st);
    if (r != ncclSuccess) return Unavailable(what + ": " + NcclErr(r));
    if (st == ncclSuccess) return Status::Ok();
    if (st != ncclInProgress) return Unavailable(what + ": " + NcclErr(st));
    if (std::chrono::steady_clock::now() >= deadline) return Timeout(what + " did not complete in time");
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

class NcclCollective : public Collective {
 public:
  NcclCollective(const CollectiveOptions& o, int rank, std::shared_ptr<NcclShared> shared, cudaStream_t stream,
                 int* scratch)
      : rank_(rank),
        size_(static_cast<int>(o.members.size())),
        generation_(o.generation),
        timeout_(o.timeout),
        shared_(std::move(shared)),
        stream_(stream),
        scratch_(scratch) {}

  ~NcclCollective() override {
    cudaSetDevice(shared_->device);
    // Give queued work its deadline, then abort if still stuck; finally free resources.
    auto deadline = std::chrono::steady_clock::now() + timeout_;
    while (cudaStreamQuery(stream_) == cudaErrorNotReady && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      if (cudaStreamQuery(stream_) == cudaErrorNotReady) shared_->AbortLocked(Aborted("group destroyed"));
      if (shared_->comm != nullptr) {
        ncclCommDestroy(shared_->comm);
        shared_->comm = nullptr;
      }
    }
    cudaFree(scratch_);
    cudaStreamDestroy(stream_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& backend() const override { return name_; }
  uint64_t generation() const override { return generation_; }

  std::shared_ptr<Work> AllReduce(TensorView t, ReduceOp op) override {
    auto type = NcclType(t.dtype);
    if (!type.ok()) return DoneWork(type.status());
    RETURN_WORK_IF_ERROR(CheckGpuView(t, "allreduce"));
    ncclRedOp_t rop = op == ReduceOp::kAvg ? ncclAvg : ncclSum;
    return Launch("allreduce", [&](ncclComm_t c) {
      return ncclAllReduce(t.data, t.data, t.numel, *type, rop, c, stream_);
    });
  }

  std::shared_ptr<Work> Broadcast(TensorView t, int root) override {
    auto type = NcclType(t.dtype);
    if (!type.ok()) return DoneWork(type.status());
    RETURN_WORK_IF_ERROR(CheckGpuView(t, "broadcast"));
    if (root < 0 || root >= size_) return DoneWork(InvalidArgument("broadcast: root " + std::to_string(root) + " out of range"));
    return Launch("broadcast", [&](ncclComm_t c) {
      return ncclBroadcast(t.data, t.data, t.numel, *type, root, c, stream_);
    });
  }

  std::shared_ptr<Work> AllGather(TensorView in, TensorView out) override {
    auto type = NcclType(in.dtype);
    if (!type.ok()) return DoneWork(type.status());
    RETURN_WORK_IF_ERROR(CheckGpuView(in, "allgather input"));
    RETURN_WORK_IF_ERROR(CheckGpuView(out, "allgather output"));
    if (in.dtype != out.dtype || out.numel != in.numel * static_cast<size_t>(size_)) {
      return DoneWork(InvalidArgument("allgather: output must have the input's dtype and size() * input elements"));
    }
    return Launch("allgather", [&](ncclComm_t c) {
      return ncclAllGather(in.data, out.data, in.numel, *type, c, stream_);
    });
  }

  std::shared_ptr<Work> Barrier() override {
    return Launch("barrier", [&](ncclComm_t c) {
      return ncclAllReduce(scratch_, scratch_, 1, ncclInt32, ncclSum, c, stream_);
    });
  }

 protected:
  std::chrono::milliseconds timeout() const override { return timeout_; }

 private:
  Status CheckGpuView(const TensorView& t, const char* what) const {
    if (t.memory != MemoryKind::kCuda) {
      return InvalidArgument(std::string(what) + ": the nccl backend takes CUDA tensors; use gloo for CPU memory");
    }
    if (t.device != shared_->device) {
      return InvalidArgument(std::string(what) + ": tensor is on cuda:" + std::to_string(t.device) +
                             " but this group uses cuda:" + std::to_string(shared_->device));
    }
    if (t.numel > 0 && t.data == nullptr) return InvalidArgument(std::string(what) + ": null data");
    return Status::Ok();
  }

  template <typename Fn>
  std::shared_ptr<Work> Launch(const char* what, Fn&& fn) {
    std::lock_guard<std::mutex> op_lock(launch_mu_);
    cudaSetDevice(shared_->device);
    std::string name = std::string("nccl g") + std::to_string(generation_) + " rank " + std::to_string(rank_) + " " + what;
    ncclComm_t comm;
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      if (!shared_->broken.ok()) {
        return DoneWork(Aborted(name + " not started: the group is broken (" + shared_->broken.message() +
                                "); form a new generation"));
      }
      comm = shared_->comm;
    }
    ncclResult_t r = fn(comm);
    if (r == ncclInProgress) {
      Status s = WaitNotInProgress(comm, std::chrono::steady_clock::now() + timeout_, name);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(shared_->mu);
        shared_->AbortLocked(s);
        return DoneWork(s);
      }
    } else if (r != ncclSuccess) {
      Status s = Unavailable(name + ": " + NcclErr(r));
      std::lock_guard<std::mutex> lock(shared_->mu);
      shared_->AbortLocked(s);
      return DoneWork(s);
    }
    cudaEvent_t ev = nullptr;
    cudaError_t ce = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
    if (ce == cudaSuccess) ce = cudaEventRecord(ev, stream_);
    if (ce != cudaSuccess) {
      if (ev != nullptr) cudaEventDestroy(ev);
      return DoneWork(Unavailable(name + ": " + CudaErr(ce)));
    }
    return std::make_shared<NcclWork>(shared_, ev, name);
  }

  const std::string name_ = "nccl";
  const int rank_;
  const int size_;
  const uint64_t generation_;
  const std::chrono::milliseconds timeout_;
  std::shared_ptr<NcclShared> shared_;
  cudaStream_t stream_;
  int* scratch_;
  std::mutex launch_mu_;
};

}  // namespace

Status NcclUsable() {
  int ndev = 0;
  cudaError_t ce = cudaGetDeviceCount(&ndev);
  if (ce != cudaSuccess) return Unavailable("backend 'nccl' is compiled in but CUDA reports " + CudaErr(ce));
  if (ndev == 0) return Unavailable("backend 'nccl' is compiled in but no CUDA device is visible");
  return Status::Ok();
}

Result<std::unique_ptr<Collective>> MakeNcclCollective(const CollectiveOptions& o, int rank) {
  const int size = static_cast<int>(o.members.size());
  int ndev = 0;
  cudaError_t ce = cudaGetDeviceCount(&ndev);
  if (ce != cudaSuccess || ndev == 0) {
    return Unavailable("backend 'nccl' is compiled in but no CUDA device is usable (" +
                       (ce != cudaSuccess ? CudaErr(ce) : std::string("0 devices")) + "); use gloo on this machine");
  }
  int device = o.cuda_device >= 0 ? o.cuda_device : rank % ndev;
  if (device >= ndev) {
    return InvalidArgument("CollectiveOptions.cuda_device " + std::to_string(device) + " but only " +
                           std::to_string(ndev) + " devices are visible");
  }
  ce = cudaSetDevice(device);
  if (ce != cudaSuccess) return Unavailable("cudaSetDevice(" + std::to_string(device) + "): " + CudaErr(ce));

  // The unique id: handed out by the coordinator, or created by rank 0 and published in the store.
  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  const std::string key = GroupPrefix(o) + "/nccl/unique_id";
  if (!o.nccl_unique_id.empty()) {
    if (o.nccl_unique_id.size() != sizeof(id)) {
      return InvalidArgument("CollectiveOptions.nccl_unique_id has " + std::to_string(o.nccl_unique_id.size()) +
                             " bytes; an ncclUniqueId has " + std::to_string(sizeof(id)));
    }
    std::memcpy(&id, o.nccl_unique_id.data(), sizeof(id));
  } else if (rank == 0) {
    ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess) return Unavailable("ncclGetUniqueId: " + NcclErr(r));
    RETURN_IF_ERROR(o.store->Set(key, std::string(reinterpret_cast<const char*>(&id), sizeof(id))));
  } else {
    ASSIGN_OR_RETURN(std::string bytes, o.store->Get(key, o.timeout));
    if (bytes.size() != sizeof(id)) return ParseError("store key '" + key + "' does not hold an ncclUniqueId");
    std::memcpy(&id, bytes.data(), sizeof(id));
  }

  auto shared = std::make_shared<NcclShared>();
  shared->device = device;
  shared->timeout = o.timeout;
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  ncclResult_t r = ncclCommInitRankConfig(&comm, size, id, rank, &config);
  if (r != ncclSuccess && r != ncclInProgress) return Unavailable("ncclCommInitRankConfig: " + NcclErr(r));
  Status s = WaitNotInProgress(comm, std::chrono::steady_clock::now() + o.timeout,
                               "forming NCCL group " + GroupPrefix(o) + " (rank " + std::to_string(rank) + ")");
  if (!s.ok()) {
    ncclCommAbort(comm);
    return s;
  }
  shared->comm = comm;
  cudaStream_t stream = nullptr;
  int* scratch = nullptr;
  ce = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (ce == cudaSuccess) ce = cudaMalloc(reinterpret_cast<void**>(&scratch), sizeof(int));
  if (ce != cudaSuccess) {
    ncclCommDestroy(comm);
    if (stream != nullptr) cudaStreamDestroy(stream);
    return Unavailable("CUDA set-up for the NCCL group failed: " + CudaErr(ce));
  }
  return std::unique_ptr<Collective>(new NcclCollective(o, rank, std::move(shared), stream, scratch));
}

}  // namespace comms_internal
}  // namespace gt
