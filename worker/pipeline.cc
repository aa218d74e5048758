// PipelineRank: the GPipe schedule of worker/pipeline.h on top of worker/model.h, comms Transport and
// Collective.
#include "worker/pipeline.h"

#include <chrono>
#include <map>
#include <tuple>

#include "common/log.h"
#include "comms/collective.h"
#include "comms/transport.h"
#include "worker/layout.h"
#include "worker/model.h"

namespace gt::worker {
namespace {

using SteadyClock = std::chrono::steady_clock;

double Since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

}  // namespace

struct PipelineRank::Impl {
  ModelConfig model;
  PipelineRole role;
  const Sampler* sampler = nullptr;
  Transport* transport = nullptr;
  Collective* collective = nullptr;
  std::unique_ptr<Stage> stage;
  // Early arrivals: (step, sender stage, micro) -> message.
  std::map<std::tuple<int64_t, int, int>, ReceivedMessage> stash;

  Status Send(const std::string& peer, int64_t step, int micro, const torch::Tensor& t) {
    torch::Tensor c = t.detach().contiguous();
    TensorTag tag;
    tag.job = role.job;
    tag.generation = static_cast<uint64_t>(step);
    tag.stage = role.stage;
    tag.micro_batch = micro;
    std::vector<int64_t> shape(c.sizes().begin(), c.sizes().end());
    return transport->SendTensorCopy(peer, tag, DType::kFloat32, shape, c.data_ptr<float>(),
                                     static_cast<size_t>(c.numel()) * sizeof(float));
  }

  // Waits for the tensor (step, from_stage, micro), keeping other arrivals.
  Result<torch::Tensor> Await(int64_t step, int from_stage, int micro, const std::function<bool()>& cancelled) {
    const auto key = std::make_tuple(step, from_stage, micro);
    const auto deadline = SteadyClock::now() + role.receive_timeout;
    while (true) {
      auto it = stash.find(key);
      if (it != stash.end()) {
        ReceivedMessage msg = std::move(it->second);
        stash.erase(it);
        torch::Tensor t = torch::empty(msg.shape, torch::kFloat32);
        if (static_cast<size_t>(t.numel()) * sizeof(float) != msg.size())
          return Internal("pipeline: tensor from stage " + std::to_string(from_stage) + " has " +
                          std::to_string(msg.size()) + " bytes for its shape");
        msg.CopyTo(t.data_ptr<float>());
        return t;
      }
      if (cancelled && cancelled()) return Aborted("pipeline: cancelled while waiting for stage " +
                                                    std::to_string(from_stage));
      if (SteadyClock::now() > deadline)
        return Timeout("pipeline stage " + std::to_string(role.stage) + ": nothing from stage " +
                       std::to_string(from_stage) + " for step " + std::to_string(step) + " micro-batch " +
                       std::to_string(micro) + " within " +
                       std::to_string(role.receive_timeout.count()) + " ms (is that rank alive?)");
      auto r = transport->Receive(std::chrono::milliseconds(200));
      if (!r.ok()) {
        if (r.status().code() == Code::kTimeout) continue;
        return r.status();
      }
      ReceivedMessage m = std::move(r).value();
      if (m.kind != FrameKind::kTensor || m.tag.job != role.job || m.dtype != DType::kFloat32) {
        GT_WARN("pipeline", "stage " << role.stage << " dropped an unexpected message from " << m.peer);
        continue;
      }
      if (m.tag.stage != role.stage - 1 && m.tag.stage != role.stage + 1) {
        GT_WARN("pipeline", "stage " << role.stage << " dropped a tensor tagged stage " << m.tag.stage);
        continue;
      }
      stash[std::make_tuple(static_cast<int64_t>(m.tag.generation), m.tag.stage, m.tag.micro_batch)] =
          std::move(m);
    }
  }
};

PipelineRank::PipelineRank(std::unique_ptr<Impl> impl, PipelineRole role, int micro_batches)
    : impl_(std::move(impl)), role_(std::move(role)), micro_batches_(micro_batches) {}
PipelineRank::~PipelineRank() = default;

Result<std::pair<int, int>> EvenLayerSplit(const ModelConfig& model, int stage, int num_stages) {
  const int n = NumLayers(model);
  if (num_stages < 1 || num_stages > n)
    return InvalidArgument("cannot split " + std::to_string(n) + " layers into " + std::to_string(num_stages) +
                           " stages (need 1 <= stages <= layers + 2)");
  if (stage < 0 || stage >= num_stages) return InvalidArgument("stage index out of range");
  const int base = n / num_stages, extra = n % num_stages;
  const int first = stage * base + std::min(stage, extra);
  const int last = first + base + (stage < extra ? 1 : 0);
  return std::make_pair(first, last);
}

Result<std::unique_ptr<PipelineRank>> PipelineRank::Create(const ModelConfig& model, const PipelineRole& role,
                                                           const Sampler* sampler, Transport* transport,
                                                           Collective* collective, const AdamWOptions& adamw) {
  if (!sampler) return InvalidArgument("PipelineRank: sampler is required");
  if (role.num_stages < 1 || role.stage < 0 || role.stage >= role.num_stages)
    return InvalidArgument("PipelineRank: stage " + std::to_string(role.stage) + " of " +
                           std::to_string(role.num_stages));
  if (role.replicas < 1 || role.replica < 0 || role.replica >= role.replicas)
    return InvalidArgument("PipelineRank: replica " + std::to_string(role.replica) + " of " +
                           std::to_string(role.replicas));
  if (role.num_stages > 1 && !transport) return InvalidArgument("PipelineRank: a multi-stage pipeline needs a transport");
  if (role.replicas > 1) {
    if (!collective) return InvalidArgument("PipelineRank: replicas > 1 need a collective");
    if (collective->size() != role.replicas || collective->rank() != role.replica)
      return InvalidArgument("PipelineRank: collective rank " + std::to_string(collective->rank()) + "/" +
                             std::to_string(collective->size()) + " does not match replica " +
                             std::to_string(role.replica) + "/" + std::to_string(role.replicas));
  }
  if ((role.stage == 0) != (role.first_layer == 0) ||
      (role.stage == role.num_stages - 1) != (role.last_layer == NumLayers(model)))
    return InvalidArgument("PipelineRank: layers [" + std::to_string(role.first_layer) + ", " +
                           std::to_string(role.last_layer) + ") do not fit stage " + std::to_string(role.stage) +
                           " of " + std::to_string(role.num_stages));
  if (sampler->options().seq_len > model.seq_len)
    return InvalidArgument("PipelineRank: sampler seq_len exceeds the model's seq_len");
  ASSIGN_OR_RETURN(int micros, sampler->MicroBatchesPerReplica(role.replicas));
  auto impl = std::make_unique<Impl>();
  impl->model = model;
  impl->role = role;
  impl->sampler = sampler;
  impl->transport = transport;
  impl->collective = collective;
  ASSIGN_OR_RETURN(impl->stage, Stage::Create(model, role.first_layer, role.last_layer, role.seed, adamw));
  return std::unique_ptr<PipelineRank>(new PipelineRank(std::move(impl), role, micros));
}

Status PipelineRank::ComputeGradients(int64_t step, StepStats* stats, const std::function<bool()>& cancelled) {
  Impl& I = *impl_;
  Stage& stage = *I.stage;
  const auto t_step = SteadyClock::now();
  StepStats st;
  st.step = step;
  const int M = micro_batches_;
  const bool first = role_.stage == 0, last = role_.stage == role_.num_stages - 1;
  std::vector<StageForward> fwds(M);
  std::vector<torch::Tensor> targets(M);
  try {
    for (int m = 0; m < M; ++m) {
      torch::Tensor input;
      if (first || last) {
        ASSIGN_OR_RETURN(TokenBatch batch, I.sampler->MicroBatch(step, role_.replica, role_.replicas, m));
        ASSIGN_OR_RETURN(BatchTensors bt, ToTensors(batch));
        if (first) input = bt.inputs;
        targets[m] = bt.targets;
      }
      if (!first) { ASSIGN_OR_RETURN(input, I.Await(step, role_.stage - 1, m, cancelled)); }
      auto t0 = SteadyClock::now();
      ASSIGN_OR_RETURN(fwds[m], stage.ForwardForBackward(input));
      st.compute_seconds += Since(t0);
      if (!last) RETURN_IF_ERROR(I.Send(role_.next_peer, step, m, fwds[m].output));
    }
    double loss_sum = 0;
    for (int m = M - 1; m >= 0; --m) {
      StageBackward b;
      if (last) {
        auto t0 = SteadyClock::now();
        ASSIGN_OR_RETURN(b, stage.BackwardFromLoss(fwds[m], targets[m], 1.0 / M));
        st.compute_seconds += Since(t0);
        loss_sum += b.loss;
      } else {
        ASSIGN_OR_RETURN(torch::Tensor g, I.Await(step, role_.stage + 1, m, cancelled));
        auto t0 = SteadyClock::now();
        ASSIGN_OR_RETURN(b, stage.Backward(fwds[m], g));
        st.compute_seconds += Since(t0);
      }
      fwds[m] = StageForward{};
      if (!first) RETURN_IF_ERROR(I.Send(role_.prev_peer, step, m, b.input_grad));
    }
    st.loss = last ? loss_sum / M : 0;
  } catch (const std::exception& e) {
    return Internal(std::string("pipeline step ") + std::to_string(step) + ": " + e.what());
  }
  if (role_.replicas > 1) {
    auto t0 = SteadyClock::now();
    Status s = I.collective->AllReduceSync(CpuView(stage.grad_data(), static_cast<size_t>(stage.num_params())),
                                           ReduceOp::kAvg);
    if (!s.ok()) return s.WithContext("gradient allreduce of stage " + std::to_string(role_.stage));
    st.allreduce_seconds = Since(t0);
  }
  st.wall_seconds = Since(t_step);
  if (stats) *stats = st;
  return Status::Ok();
}

Status PipelineRank::ApplyGradients() {
  RETURN_IF_ERROR(impl_->stage->OptimizerStep());
  impl_->stage->ZeroGrad();
  return Status::Ok();
}

Status PipelineRank::Step(int64_t step, StepStats* stats, const std::function<bool()>& cancelled) {
  StepStats st;
  RETURN_IF_ERROR(ComputeGradients(step, &st, cancelled));
  auto t0 = SteadyClock::now();
  RETURN_IF_ERROR(ApplyGradients());
  const double opt = Since(t0);
  st.compute_seconds += opt;
  st.wall_seconds += opt;
  if (stats) *stats = st;
  return Status::Ok();
}

int64_t PipelineRank::num_params() const { return impl_->stage->num_params(); }
const float* PipelineRank::grad_data() const { return impl_->stage->grad_data(); }
const float* PipelineRank::param_data() const { return impl_->stage->param_data(); }
void PipelineRank::ZeroGrad() { impl_->stage->ZeroGrad(); }

Status PipelineRank::Snapshot(LayerState* out) const { return impl_->stage->Snapshot(out); }
Status PipelineRank::Restore(const LayerState& state) { return impl_->stage->Restore(state); }

}  // namespace gt::worker
