// Intra-site collectives behind one interface: Gloo on CPU (always built), NCCL on GPU (built when CUDA
// and NCCL are found), MPI (optional, for processes launched by mpirun).
//
// Groups and generations. A group is formed by MakeCollective from a member list (global worker ids
// in rank order) and a generation number; all members must pass the same (job, generation, members).
// Rendezvous goes through a Store under the key prefix "<job>/g<generation>", so a new generation can
// be formed from any subset of the workers, at any time, without restarting processes; workers
// outside the member list do not take part. After any failed operation a group is broken for good:
// later operations fail fast with Aborted, and the caller forms a new generation (never reuses it).
//
// Failure detection. Every operation carries `timeout`; when a member dies or stalls, the other
// members' operations fail within about that timeout (a dead peer's closed socket usually makes them
// fail sooner) instead of hanging.
//
// Asynchrony and threads. Operations are started in call order on one background thread per group
// (all members must issue the same operations in the same order, as in MPI). Each returns a Work
// handle; Work::Wait may be called from any thread. Buffers belong to the caller and must stay alive
// and untouched until Wait returned OK or the Collective was destroyed. A Collective's methods are
// thread-safe; destroying it waits (at most about `timeout`) for operations in flight.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "comms/store.h"
#include "comms/tensor.h"

namespace gt {

// The outcome of one asynchronous collective operation.
class Work {
 public:
  virtual ~Work() = default;
  // Blocks until the operation finished or `timeout` passed. Returns OK, the operation's error, or
  // Timeout (the operation is then still running; Wait may be called again).
  virtual Status Wait(std::chrono::milliseconds timeout) = 0;
  // True once the operation finished (successfully or not).
  virtual bool IsCompleted() const = 0;
};

enum class ReduceOp { kSum, kAvg };

struct CollectiveOptions {
  std::shared_ptr<Store> store;            // required: the rendezvous store shared by all members
  std::string job = "job";                 // isolates jobs that share a store
  uint64_t generation = 0;                 // a new group = a new generation
  std::vector<int> members;                // global worker ids in rank order (>= 1 entry, unique)
  int self = -1;                           // this worker's global id; must be in `members`
  std::chrono::milliseconds timeout{30000};  // rendezvous and per-operation deadline
  std::string hostname = "127.0.0.1";      // Gloo: address to listen on (reachable by the other members)
  int cuda_device = -1;                    // NCCL: device ordinal; -1 = rank % visible devices
  // NCCL: the ncclUniqueId (128 bytes) handed out by the coordinator; empty = rank 0 creates one and
  // publishes it through the store.
  std::string nccl_unique_id;
};

class Collective {
 public:
  virtual ~Collective() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const std::string& backend() const = 0;
  virtual uint64_t generation() const = 0;

  // In place; sum or average (sum / size) over all members. float32, float16 and bfloat16 on every
  // backend (16-bit values are added in float32 and rounded once per addition).
  virtual std::shared_ptr<Work> AllReduce(TensorView t, ReduceOp op) = 0;
  // In place; after completion every member holds root's values.
  virtual std::shared_ptr<Work> Broadcast(TensorView t, int root) = 0;
  // `out` holds size() * in.numel elements; rank r's input lands at offset r * in.numel.
  virtual std::shared_ptr<Work> AllGather(TensorView in, TensorView out) = 0;
  virtual std::shared_ptr<Work> Barrier() = 0;

  // Synchronous helpers: start the operation and wait up to the group's timeout (plus a margin).
  // When no asynchronous operation is pending they run it on the calling thread (no hand-off).
  Status AllReduceSync(TensorView t, ReduceOp op);
  Status BroadcastSync(TensorView t, int root);
  Status AllGatherSync(TensorView in, TensorView out);
  Status BarrierSync();

 protected:
  virtual std::chrono::milliseconds timeout() const = 0;
};

// Forms a group with the backend named `backend` ("gloo", "nccl", "mpi"). Blocks until every member
// arrived or options.timeout passed. Errors: InvalidArgument for bad options (names the field),
// Unavailable for a backend that was not compiled in or has no device, Timeout when members are
// missing, IoError for network failures.
Result<std::unique_ptr<Collective>> MakeCollective(const std::string& backend, const CollectiveOptions& options);

// The backends compiled into this binary, e.g. {"gloo", "nccl"}.
std::vector<std::string> CompiledBackends();
bool BackendCompiled(const std::string& backend);
// OK if `backend` is compiled in and usable in this process right now (nccl: a CUDA device is visible;
// mpi: the process was launched by mpirun); otherwise Unavailable (or InvalidArgument) saying why.
Status BackendUsable(const std::string& backend);

// Validates members/self and returns this worker's rank (its index in members).
Result<int> RankOf(const CollectiveOptions& options);

}  // namespace gt
