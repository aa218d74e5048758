// One pipeline-parallel, data-parallel training rank: a model stage that exchanges activations and
// gradients with its neighbour stages over the ZeroMQ Transport (GPipe schedule) and averages its
// gradients with the replicas of the same stage through a Collective. No torch in this header.
//
// Schedule (GPipe). For optimizer step s, with M micro-batches per replica:
//   forward  m = 0..M-1: first stage reads micro-batch m of its replica from the Sampler, others
//                        receive activations (s, m) from the previous stage; the output is sent to
//                        the next stage (the last stage keeps the logits);
//   backward m = M-1..0: the last stage uses loss/M on the targets of micro-batch m, others
//                        receive the output gradient (s, m) from the next stage; the input gradient
//                        is sent to the previous stage (not by the first stage);
//   then the flat gradient buffer is averaged in place over the stage's replicas (if > 1), and
//   (Step only) one AdamW step is taken and the gradients are zeroed.
// The gradients left by ComputeGradients are those of the mean loss over the global batch of step s
// for this stage's parameters, i.e. equal (up to float rounding) to the gradient of the whole model
// on one process (worker/model.h ComputeGradients averaged over replicas).
//
// Wire tags (comms/frame.h TensorTag): job = PipelineRole::job, generation = step, stage = the
// SENDER's stage index, micro_batch = m. A receiver tells activations (sender stage k-1) from
// gradients (sender k+1) by the sender's stage; messages that arrive early are kept until asked for,
// so the order of arrival does not matter. Peers are named in the Transport by prev_peer/next_peer.
//
// Ownership and threads: a PipelineRank borrows `transport`, `collective` and `sampler` (they must
// outlive it) and owns its Stage. Not thread-safe: one thread drives a rank; distinct ranks may run on
// distinct threads of one process (tests, benchmarks) with distinct Transports.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/config.h"
#include "common/status.h"
#include "worker/adamw.h"
#include "worker/layer_state.h"
#include "worker/sampler.h"

namespace gt {
class Transport;
class Collective;
}  // namespace gt

namespace gt::worker {

struct PipelineRole {
  int stage = 0;            // index in the pipeline
  int num_stages = 1;
  int replica = 0;          // data-parallel replica index of this stage
  int replicas = 1;
  int first_layer = 0;      // layers [first_layer, last_layer) of the model (worker/layout.h)
  int last_layer = 0;
  std::string prev_peer;    // Transport peer names of the neighbour stages' same replica
  std::string next_peer;
  uint64_t job = 1;
  uint64_t seed = 1;        // model initialisation seed
  std::chrono::milliseconds receive_timeout{120000};  // per awaited activation / gradient
};

struct StepStats {
  int64_t step = 0;
  double loss = 0;               // last stage: this replica's mean loss over its micro-batches; else 0
  double compute_seconds = 0;    // forward, backward, optimizer (busy CPU time of this rank)
  double wall_seconds = 0;       // the whole step incl. waiting for neighbours and the allreduce
  double allreduce_seconds = 0;
};

class PipelineRank {
 public:
  // Builds the stage (layers of `role`, initialised from role.seed) and checks the role against the
  // sampler (replicas x micro_batch must divide global_batch). `transport` may be null only for a
  // single-stage pipeline; `collective` may be null only when role.replicas == 1 (else its size must
  // equal role.replicas and its rank role.replica).
  static Result<std::unique_ptr<PipelineRank>> Create(const ModelConfig& model, const PipelineRole& role,
                                                      const Sampler* sampler, Transport* transport,
                                                      Collective* collective, const AdamWOptions& adamw = {});
  ~PipelineRank();

  // Forward + backward of every micro-batch of step `step` and the gradient average over replicas.
  // Gradients accumulate into the flat buffer (call ZeroGrad between uses). `cancelled` is polled
  // while waiting for neighbours (may be empty); when it returns true the call fails with Aborted.
  Status ComputeGradients(int64_t step, StepStats* stats, const std::function<bool()>& cancelled = {});
  // One AdamW step with the current gradients, then ZeroGrad.
  Status ApplyGradients();
  // ComputeGradients + ApplyGradients (the optimizer time is added to stats' compute and wall time).
  Status Step(int64_t step, StepStats* stats, const std::function<bool()>& cancelled = {});

  int64_t num_params() const;
  const float* grad_data() const;
  const float* param_data() const;
  void ZeroGrad();
  int micro_batches() const { return micro_batches_; }
  const PipelineRole& role() const { return role_; }

  // Stage::Snapshot / Restore: the training state of this rank's layers (worker/layer_state.h).
  Status Snapshot(LayerState* out) const;
  Status Restore(const LayerState& state);

  struct Impl;

 private:
  PipelineRank(std::unique_ptr<Impl> impl, PipelineRole role, int micro_batches);
  std::unique_ptr<Impl> impl_;
  PipelineRole role_;
  int micro_batches_ = 0;
};

// Layers of stage k of S when the model's NumLayers(model) layers are split evenly (the first
// NumLayers % S stages get one more). Error if S < 1 or S > NumLayers(model).
Result<std::pair<int, int>> EvenLayerSplit(const ModelConfig& model, int stage, int num_stages);

}  // namespace gt::worker
