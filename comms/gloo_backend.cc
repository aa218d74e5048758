// The Gloo backend: CPU collectives over gloo's TCP transport (gloo used directly, no torch).
//
// Rendezvous: gloo's connectFullMesh through an adapter that maps gloo's throwing Store onto our
// Status-returning Store under the generation's prefix. Failures: gloo throws (IoException on timeouts
// and broken connections, EnforceNotMet on misuse); the op thread catches and converts them, and the
// group is then broken (OpQueue). Writes to a dead peer's socket would raise SIGPIPE (gloo uses
// writev), so forming a Gloo group ignores SIGPIPE process-wide if it still has the default action.
#include <signal.h>

#include <cstring>
#include <exception>

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>

#include "common/log.h"
#include "comms/backends.h"
#include "comms/work_queue.h"

namespace gt {
namespace comms_internal {
namespace {

// gloo's Store interface over ours. Errors are thrown as std::runtime_error carrying our message;
// MakeGlooCollective catches them.
class GlooStoreAdapter : public gloo::rendezvous::Store {
 public:
  GlooStoreAdapter(std::shared_ptr<gt::Store> store, std::string prefix, std::chrono::milliseconds timeout)
      : store_(std::move(store)), prefix_(std::move(prefix)), timeout_(timeout) {}

  void set(const std::string& key, const std::vector<char>& data) override {
    Status s = store_->Set(prefix_ + "/" + key, std::string(data.begin(), data.end()));
    if (!s.ok()) throw std::runtime_error(s.ToString());
  }
  std::vector<char> get(const std::string& key) override {
    auto r = store_->Get(prefix_ + "/" + key, timeout_);
    if (!r.ok()) throw std::runtime_error(r.status().ToString());
    return std::vector<char>(r->begin(), r->end());
  }
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (const auto& k : keys) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() < 1) left = std::chrono::milliseconds(1);
      auto r = store_->Get(prefix_ + "/" + k, left);
      if (!r.ok()) throw std::runtime_error(r.status().ToString());
    }
  }

 private:
  std::shared_ptr<gt::Store> store_;
  std::string prefix_;
  std::chrono::milliseconds timeout_;
};

Status FromGlooException(const std::exception& e, const char* what) {
  std::string msg = e.what();
  // gloo's messages start with the source location "[.../pair.cc:123] "; keep them, they help.
  if (dynamic_cast<const gloo::IoException*>(&e) != nullptr) {
    if (msg.find("imed out") != std::string::npos || msg.find("imeout") != std::string::npos) {
      return Timeout(std::string(what) + " timed out: " + msg + " (a member is slow, stalled or dead)");
    }
    return Unavailable(std::string(what) + " failed on the network: " + msg + " (a member likely died)");
  }
  if (dynamic_cast<const gloo::EnforceNotMet*>(&e) != nullptr) {
    return Internal(std::string(what) + " violated a gloo precondition: " + msg);
  }
  return Unavailable(std::string(what) + " failed: " + msg);
}

void BFloat16Sum(void* c, const void* a, const void* b, size_t n) { SumInto(DType::kBFloat16, c, a, b, n); }
void Float16Sum(void* c, const void* a, const void* b, size_t n) { SumInto(DType::kFloat16, c, a, b, n); }
void Float64Sum(void* c, const void* a, const void* b, size_t n) { SumInto(DType::kFloat64, c, a, b, n); }
void Int32Sum(void* c, const void* a, const void* b, size_t n) { SumInto(DType::kInt32, c, a, b, n); }
void Int64Sum(void* c, const void* a, const void* b, size_t n) { SumInto(DType::kInt64, c, a, b, n); }
void UInt8Sum(void* c, const void* a, const void* b, size_t n) { SumInto(DType::kUInt8, c, a, b, n); }
void Int8Sum(void* c, const void* a, const void* b, size_t n) { SumInto(DType::kInt8, c, a, b, n); }

// Allreduce algorithm by message size. gloo's default ring moves 2(N-1) segments per rank, each a
// send/recv-ready handshake plus wake-ups of the event-loop and calling threads; BCube (recursive
// halving/doubling, base 2) needs about 2*log2(N) messages. Interleaved op by op in one process
// (loopback, 2 shared cores, gloo 0.0~git20220518), BCube's median was 5-30 % lower at 1 MiB
// (2 and 4 ranks, 6 of 6 comparisons), a tie at 4 MiB and up to 12 % higher at 16 MiB (4 ranks),
// where the ring's pipelining of 1 MiB segments pays off. What dominates 1-16 MiB on a loaded host
// is not the algorithm but the thread wake-ups: in the same test, pairs in gloo's sync mode (blocking
// I/O on the calling thread, legacy AllreduceHalvingDoubling) were 5-25x faster at 1 MiB and
// 1.6-5.6x at 4 MiB. Not used yet: sync mode cannot carry unbound buffers (broadcast, allgather,
// barrier) and simultaneous blocking writes larger than the socket buffers deadlock.
constexpr size_t kBcubeMaxBytes = size_t(1) << 20;

gloo::AllreduceOptions::Algorithm AllreduceAlgorithmFor(size_t bytes) {
  return bytes <= kBcubeMaxBytes ? gloo::AllreduceOptions::Algorithm::BCUBE : gloo::AllreduceOptions::Algorithm::RING;
}

Status CheckCpuView(const TensorView& t, const char* what) {
  if (t.memory != MemoryKind::kCpu) {
    return InvalidArgument(std::string(what) + ": the gloo backend takes CPU tensors; use the nccl backend for CUDA memory");
  }
  if (DTypeSize(t.dtype) == 0) return InvalidArgument(std::string(what) + ": unknown dtype " + DTypeName(t.dtype));
  if (t.numel > 0 && t.data == nullptr) return InvalidArgument(std::string(what) + ": null data with numel > 0");
  return Status::Ok();
}

class GlooCollective : public Collective {
 public:
  GlooCollective(const CollectiveOptions& o, int rank, std::shared_ptr<gloo::transport::Device> dev,
                 std::shared_ptr<gloo::rendezvous::Context> ctx)
      : rank_(rank),
        size_(static_cast<int>(o.members.size())),
        generation_(o.generation),
        timeout_(o.timeout),
        device_(std::move(dev)),
        context_(std::move(ctx)),
        queue_("gloo " + o.job + " g" + std::to_string(o.generation) + " rank " + std::to_string(rank)) {}

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& backend() const override { return name_; }
  uint64_t generation() const override { return generation_; }

  std::shared_ptr<Work> AllReduce(TensorView t, ReduceOp op) override {
    Status s = CheckCpuView(t, "allreduce");
    if (!s.ok()) return DoneWork(s);
    return queue_.Submit("allreduce", [this, t, op]() -> Status {
      if (size_ > 1 && t.numel > 0) {
        try {
          gloo::AllreduceOptions opts(context_);
          opts.setTimeout(timeout_);
          opts.setTag(NextTag());
          opts.setAlgorithm(AllreduceAlgorithmFor(t.bytes()));
          switch (t.dtype) {
            case DType::kFloat32:
              opts.setOutput(static_cast<float*>(t.data), t.numel);
              opts.setReduceFunction(static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<float>));
              break;
            case DType::kFloat16: Set16(opts, t, &Float16Sum); break;
            case DType::kBFloat16: Set16(opts, t, &BFloat16Sum); break;
            case DType::kFloat64:
              opts.setOutput(static_cast<double*>(t.data), t.numel);
              opts.setReduceFunction(&Float64Sum);
              break;
            case DType::kInt32:
              opts.setOutput(static_cast<int32_t*>(t.data), t.numel);
              opts.setReduceFunction(&Int32Sum);
              break;
            case DType::kInt64:
              opts.setOutput(static_cast<int64_t*>(t.data), t.numel);
              opts.setReduceFunction(&Int64Sum);
              break;
            case DType::kUInt8:
              opts.setOutput(static_cast<uint8_t*>(t.data), t.numel);
              opts.setReduceFunction(&UInt8Sum);
              break;
            case DType::kInt8:
              opts.setOutput(static_cast<int8_t*>(t.data), t.numel);
              opts.setReduceFunction(&Int8Sum);
              break;
          }
          gloo::allreduce(opts);
        } catch (const std::exception& e) {
          return FromGlooException(e, "allreduce");
        }
      }
      if (op == ReduceOp::kAvg) DivideBy(t.dtype, t.data, t.numel, size_);
      return Status::Ok();
    });
  }

  std::shared_ptr<Work> Broadcast(TensorView t, int root) override {
    Status s = CheckCpuView(t, "broadcast");
    if (s.ok() && (root < 0 || root >= size_)) {
      s = InvalidArgument("broadcast: root " + std::to_string(root) + " is not a rank of this group (size " +
                          std::to_string(size_) + ")");
    }
    if (!s.ok()) return DoneWork(s);
    return queue_.Submit("broadcast", [this, t, root]() -> Status {
      if (size_ == 1 || t.numel == 0) return Status::Ok();
      try {
        gloo::BroadcastOptions opts(context_);
        opts.setTimeout(timeout_);
        opts.setTag(NextTag());
        opts.setRoot(root);
        opts.setOutput(static_cast<uint8_t*>(t.data), t.bytes());
        gloo::broadcast(opts);
      } catch (const std::exception& e) {
        return FromGlooException(e, "broadcast");
      }
      return Status::Ok();
    });
  }

  std::shared_ptr<Work> AllGather(TensorView in, TensorView out) override {
    Status s = CheckCpuView(in, "allgather input");
    if (s.ok()) s = CheckCpuView(out, "allgather output");
    if (s.ok() && in.dtype != out.dtype) s = InvalidArgument("allgather: input and output dtypes differ");
    if (s.ok() && out.numel != in.numel * static_cast<size_t>(size_)) {
      s = InvalidArgument("allgather: output has " + std::to_string(out.numel) + " elements, expected size * input = " +
                          std::to_string(in.numel * size_));
    }
    if (!s.ok()) return DoneWork(s);
    return queue_.Submit("allgather", [this, in, out]() -> Status {
      if (in.numel == 0) return Status::Ok();
      if (size_ == 1) {
        if (out.data != in.data) std::memmove(out.data, in.data, in.bytes());
        return Status::Ok();
      }
      try {
        gloo::AllgatherOptions opts(context_);
        opts.setTimeout(timeout_);
        opts.setTag(NextTag());
        opts.setInput(static_cast<uint8_t*>(in.data), in.bytes());
        opts.setOutput(static_cast<uint8_t*>(out.data), out.bytes());
        gloo::allgather(opts);
      } catch (const std::exception& e) {
        return FromGlooException(e, "allgather");
      }
      return Status::Ok();
    });
  }

  std::shared_ptr<Work> Barrier() override {
    return queue_.Submit("barrier", [this]() -> Status {
      if (size_ == 1) return Status::Ok();
      try {
        gloo::BarrierOptions opts(context_);
        opts.setTimeout(timeout_);
        opts.setTag(NextTag());
        gloo::barrier(opts);
      } catch (const std::exception& e) {
        return FromGlooException(e, "barrier");
      }
      return Status::Ok();
    });
  }

 protected:
  std::chrono::milliseconds timeout() const override { return timeout_; }

 private:
  static void Set16(gloo::AllreduceOptions& opts, const TensorView& t,
                    void (*fn)(void*, const void*, const void*, size_t)) {
    opts.setOutput(static_cast<uint16_t*>(t.data), t.numel);
    opts.setReduceFunction(fn);
  }
  // Only called on the op thread; every member issues the same ops in the same order, so tags agree.
  uint32_t NextTag() { return tag_++; }

  const std::string name_ = "gloo";
  const int rank_;
  const int size_;
  const uint64_t generation_;
  const std::chrono::milliseconds timeout_;
  uint32_t tag_ = 0;
  std::shared_ptr<gloo::transport::Device> device_;
  std::shared_ptr<gloo::rendezvous::Context> context_;
  OpQueue queue_;  // last: destroyed (joined) before the context it uses
};

void IgnoreSigpipeOnce() {
  struct sigaction old;
  if (sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
    struct sigaction ign;
    std::memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, nullptr);
  }
}

}  // namespace

Result<std::unique_ptr<Collective>> MakeGlooCollective(const CollectiveOptions& o, int rank) {
  IgnoreSigpipeOnce();
  const int size = static_cast<int>(o.members.size());
  const std::string prefix = GroupPrefix(o) + "/gloo";
  try {
    gloo::transport::tcp::attr attr;
    attr.hostname = o.hostname;
    auto dev = gloo::transport::tcp::CreateDevice(attr);
    auto ctx = std::make_shared<gloo::rendezvous::Context>(rank, size);
    ctx->setTimeout(o.timeout);
    if (size > 1) {
      GlooStoreAdapter store(o.store, prefix, o.timeout);
      ctx->connectFullMesh(store, dev);
    }
    GT_DEBUG("comms", "gloo group formed job=" << o.job << " generation=" << o.generation << " rank=" << rank
                                              << " size=" << size);
    return std::unique_ptr<Collective>(new GlooCollective(o, rank, std::move(dev), std::move(ctx)));
  } catch (const std::exception& e) {
    std::string msg = e.what();
    Code code = msg.find("Timeout") != std::string::npos || msg.find("imed out") != std::string::npos
                    ? Code::kTimeout
                    : Code::kUnavailable;
    return Status(code, "forming gloo group " + prefix + " (rank " + std::to_string(rank) + " of " +
                            std::to_string(size) + ", listening on " + o.hostname + ") failed: " + msg);
  }
}

}  // namespace comms_internal
}  // namespace gt
