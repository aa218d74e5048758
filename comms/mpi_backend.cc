// The MPI backend: for processes launched by mpirun. Worker ids are MPI_COMM_WORLD ranks; a group is
// an MPI communicator made with MPI_Comm_create_group, which only the members call, so a new
// generation can be any subset. MPI is initialised on first use (MPI_THREAD_MULTIPLE requested; with
// less, all MPI calls of this process are serialised by one mutex) and finalised at exit.
// Limits: MPI cannot abort a collective, so Work::Wait returns Timeout after its deadline but the
// operation keeps running, and a killed rank usually ends the whole mpirun job. Use gloo or nccl when
// members may die.
#include <mpi.h>

#include <cstdlib>
#include <mutex>

#include "common/log.h"
#include "comms/backends.h"
#include "comms/work_queue.h"

namespace gt {
namespace comms_internal {
namespace {

std::mutex g_mpi_mu;         // guards initialisation, and every MPI call below MPI_THREAD_MULTIPLE
bool g_mpi_multiple = false;
MPI_Op g_sum_fp16 = MPI_OP_NULL;
MPI_Op g_sum_bf16 = MPI_OP_NULL;

void SumFp16(void* in, void* inout, int* len, MPI_Datatype*) { SumInto(DType::kFloat16, inout, inout, in, *len); }
void SumBf16(void* in, void* inout, int* len, MPI_Datatype*) { SumInto(DType::kBFloat16, inout, inout, in, *len); }

void FinalizeAtExit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

bool LaunchedByMpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMI_SIZE") != nullptr ||
         std::getenv("PMIX_RANK") != nullptr;
}

Status EnsureMpi() {
  std::lock_guard<std::mutex> lock(g_mpi_mu);
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    if (!LaunchedByMpirun()) {
      return Unavailable("backend 'mpi' needs processes launched by mpirun (no MPI launcher environment found)");
    }
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
      return Unavailable("MPI_Init_thread failed");
    }
    std::atexit(FinalizeAtExit);
    g_mpi_multiple = provided >= MPI_THREAD_MULTIPLE;
  } else {
    int provided = 0;
    MPI_Query_thread(&provided);
    g_mpi_multiple = provided >= MPI_THREAD_MULTIPLE;
  }
  if (g_sum_fp16 == MPI_OP_NULL) {
    MPI_Op_create(&SumFp16, 1, &g_sum_fp16);
    MPI_Op_create(&SumBf16, 1, &g_sum_bf16);
  }
  return Status::Ok();
}

Result<MPI_Datatype> MpiType(DType t) {
  switch (t) {
    case DType::kFloat32: return MPI_FLOAT;
    case DType::kFloat64: return MPI_DOUBLE;
    case DType::kInt32: return MPI_INT32_T;
    case DType::kInt64: return MPI_INT64_T;
    case DType::kUInt8: return MPI_UINT8_T;
    case DType::kInt8: return MPI_INT8_T;
    case DType::kFloat16:
    case DType::kBFloat16: return MPI_UINT16_T;  // reduced by our own MPI_Op
  }
  return InvalidArgument("dtype " + DTypeName(t) + " has no MPI equivalent");
}

Status MpiStatus(int rc, const std::string& what) {
  if (rc == MPI_SUCCESS) return Status::Ok();
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, buf, &len);
  return Unavailable(what + " failed: " + std::string(buf, len));
}

class MpiCollective : public Collective {
 public:
  MpiCollective(const CollectiveOptions& o, int rank, MPI_Comm comm)
      : rank_(rank),
        size_(static_cast<int>(o.members.size())),
        generation_(o.generation),
        timeout_(o.timeout),
        comm_(comm),
        queue_(std::make_unique<OpQueue>("mpi " + o.job + " g" + std::to_string(o.generation) + " rank " +
                                         std::to_string(rank))) {}
  ~MpiCollective() override {
    queue_.reset();  // joins the op thread
    std::unique_lock<std::mutex> lock(g_mpi_mu, std::defer_lock);
    if (!g_mpi_multiple) lock.lock();
    MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& backend() const override { return name_; }
  uint64_t generation() const override { return generation_; }

  std::shared_ptr<Work> AllReduce(TensorView t, ReduceOp op) override {
    auto type = MpiType(t.dtype);
    if (!type.ok()) return DoneWork(type.status());
    if (t.memory != MemoryKind::kCpu) return DoneWork(InvalidArgument("allreduce: the mpi backend takes CPU tensors"));
    MPI_Datatype dt = *type;
    MPI_Op mop = t.dtype == DType::kFloat16 ? g_sum_fp16 : t.dtype == DType::kBFloat16 ? g_sum_bf16 : MPI_SUM;
    return queue_->Submit("allreduce", [this, t, op, dt, mop]() -> Status {
      RETURN_IF_ERROR(Call([&] {
        return MPI_Allreduce(MPI_IN_PLACE, t.data, static_cast<int>(t.numel), dt, mop, comm_);
      }, "MPI_Allreduce"));
      if (op == ReduceOp::kAvg) DivideBy(t.dtype, t.data, t.numel, size_);
      return Status::Ok();
    });
  }

  std::shared_ptr<Work> Broadcast(TensorView t, int root) override {
    if (t.memory != MemoryKind::kCpu) return DoneWork(InvalidArgument("broadcast: the mpi backend takes CPU tensors"));
    if (root < 0 || root >= size_) return DoneWork(InvalidArgument("broadcast: root out of range"));
    return queue_->Submit("broadcast", [this, t, root]() -> Status {
      return Call([&] { return MPI_Bcast(t.data, static_cast<int>(t.bytes()), MPI_BYTE, root, comm_); }, "MPI_Bcast");
    });
  }

  std::shared_ptr<Work> AllGather(TensorView in, TensorView out) override {
    if (in.memory != MemoryKind::kCpu || out.memory != MemoryKind::kCpu || in.dtype != out.dtype ||
        out.numel != in.numel * static_cast<size_t>(size_)) {
      return DoneWork(InvalidArgument("allgather: CPU tensors of one dtype, output = size() * input elements"));
    }
    return queue_->Submit("allgather", [this, in, out]() -> Status {
      return Call([&] {
        return MPI_Allgather(in.data, static_cast<int>(in.bytes()), MPI_BYTE, out.data, static_cast<int>(in.bytes()),
                             MPI_BYTE, comm_);
      }, "MPI_Allgather");
    });
  }

  std::shared_ptr<Work> Barrier() override {
    return queue_->Submit("barrier", [this]() -> Status { return Call([&] { return MPI_Barrier(comm_); }, "MPI_Barrier"); });
  }

 protected:
  std::chrono::milliseconds timeout() const override { return timeout_; }

 private:
  template <typename Fn>
  Status Call(Fn&& fn, const char* what) {
    if (g_mpi_multiple) return MpiStatus(fn(), what);
    std::lock_guard<std::mutex> lock(g_mpi_mu);
    return MpiStatus(fn(), what);
  }

  const std::string name_ = "mpi";
  const int rank_;
  const int size_;
  const uint64_t generation_;
  const std::chrono::milliseconds timeout_;
  MPI_Comm comm_;
  std::unique_ptr<OpQueue> queue_;
};

}  // namespace

Status MpiUsable() {
  int inited = 0;
  MPI_Initialized(&inited);
  if (inited || LaunchedByMpirun()) return Status::Ok();
  return Unavailable("backend 'mpi' needs processes launched by mpirun (no MPI launcher environment found)");
}

Result<std::unique_ptr<Collective>> MakeMpiCollective(const CollectiveOptions& o, int rank) {
  RETURN_IF_ERROR(EnsureMpi());
  int world_size = 0, world_rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  if (o.self != world_rank) {
    return InvalidArgument("backend 'mpi': CollectiveOptions.self (" + std::to_string(o.self) +
                           ") must equal this process's MPI_COMM_WORLD rank (" + std::to_string(world_rank) + ")");
  }
  for (int m : o.members) {
    if (m >= world_size) {
      return InvalidArgument("backend 'mpi': member " + std::to_string(m) + " is not a rank of MPI_COMM_WORLD (size " +
                             std::to_string(world_size) + ")");
    }
  }
  std::unique_lock<std::mutex> lock(g_mpi_mu, std::defer_lock);
  if (!g_mpi_multiple) lock.lock();
  MPI_Group world_group, group;
  MPI_Comm_group(MPI_COMM_WORLD, &world_group);
  MPI_Group_incl(world_group, static_cast<int>(o.members.size()), o.members.data(), &group);
  MPI_Comm comm = MPI_COMM_NULL;
  int rc = MPI_Comm_create_group(MPI_COMM_WORLD, group, static_cast<int>(o.generation % 32768), &comm);
  MPI_Group_free(&group);
  MPI_Group_free(&world_group);
  if (rc != MPI_SUCCESS || comm == MPI_COMM_NULL) return MpiStatus(rc == MPI_SUCCESS ? MPI_ERR_COMM : rc, "MPI_Comm_create_group");
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  int crank = -1;
  MPI_Comm_rank(comm, &crank);
  if (crank != rank) return Internal("MPI communicator rank " + std::to_string(crank) + " != member index " + std::to_string(rank));
  return std::unique_ptr<Collective>(new MpiCollective(o, rank, comm));
}

}  // namespace comms_internal
}  // namespace gt
