// The GPT-style decoder-only model of the live worker as pipeline stages (libtorch, CPU, float32).
//
// WORKER-INTERNAL HEADER: includes torch. Only worker/*.cc, tests/worker and bench/bench_worker.cc
// may include it. Torch-free modules use worker/layout.h (layer indexing and parameter counts),
// worker/sampler.h, worker/adamw.h and worker/checkpoint.h.
//
// Layer indexing (see worker/layout.h): 0 = token + position embedding, 1..L = pre-LN transformer
// blocks (causal self-attention with an explicit masked softmax, GELU MLP 4x), L+1 = final
// LayerNorm + LM head. A Stage owns layers [first, last). No dropout: the model is deterministic.
//
// Contracts:
// - Initialisation: layer l is initialised from its own generator seeded with LayerSeed(seed, l)
//   (GPT-2 scheme: weights N(0, 0.02), residual output projections N(0, 0.02/sqrt(2L)), biases 0,
//   LayerNorm 1/0). Hence Stage(m, a, b, seed) holds bit-identical parameters to layers [a, b) of
//   Stage(m, 0, L+2, seed), for any split.
// - Flat buffers: all parameters of a stage live in one contiguous float32 buffer (param_data(),
//   num_params() floats, layer order, documented per-layer order), and their gradients in a second
//   one (grad_data()): every parameter tensor and its .grad() are views into these buffers, so a
//   collective can all-reduce grad_data() in place and the optimizer updates param_data() in place.
//   Backward accumulates into grad_data() until ZeroGrad().
// - Errors: every method returns Status/Result; torch exceptions (c10::Error) are caught here.
// - Thread-safety: a Stage is not thread-safe; use one per thread. Different Stages may be used on
//   different threads (initialisation uses private generators, not torch's global one).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "worker/adamw.h"
#include "worker/layer_state.h"
#include "worker/layout.h"
#include "worker/sampler.h"

namespace gt::worker {

// The state of one micro-batch's forward pass, kept until its backward. For a non-first stage,
// `input` is a detached copy of the received activations with requires_grad, so its gradient can
// be sent upstream after Backward.
struct StageForward {
  torch::Tensor input;
  torch::Tensor output;  // activations [B, T, hidden], or logits [B, T, vocab] on the last stage
};

struct StageBackward {
  torch::Tensor input_grad;  // d loss / d input activations; undefined on the first stage
  double loss = 0;           // unscaled mean cross-entropy (BackwardFromLoss only)
};

class Stage {
 public:
  // Builds layers [first, last) of the model `model`, initialised from `seed`.
  static Result<std::unique_ptr<Stage>> Create(const ModelConfig& model, int first, int last,
                                               uint64_t seed, const AdamWOptions& adamw = {});
  ~Stage();
  Stage(const Stage&) = delete;
  Stage& operator=(const Stage&) = delete;

  const ModelConfig& model() const;
  int first() const;
  int last() const;
  uint64_t seed() const;
  bool is_first() const { return first() == 0; }
  bool is_last() const { return last() == NumLayers(model()); }

  // Forward. First stage: int64 tokens [B, T] with values in [0, vocab). Others: float32
  // activations [B, T, hidden]. 1 <= T <= seq_len. Returns activations [B, T, hidden], or logits
  // [B, T, vocab] if the stage holds the head. The autograd graph is recorded (unless the caller
  // disabled grad mode).
  Result<torch::Tensor> Forward(const torch::Tensor& input);

  // Pipeline helpers. ForwardForBackward records what Backward needs; Backward propagates
  // `grad_output` (same shape as fwd.output) through the stage, accumulating parameter gradients,
  // and returns the input gradient; BackwardFromLoss (last stage only) uses
  // loss_scale * LmLoss(fwd.output, targets) as the objective. Both release fwd's graph.
  Result<StageForward> ForwardForBackward(const torch::Tensor& input);
  Result<StageBackward> Backward(StageForward& fwd, const torch::Tensor& grad_output);
  Result<StageBackward> BackwardFromLoss(StageForward& fwd, const torch::Tensor& targets,
                                         double loss_scale);

  // Flat parameter / gradient buffers (num_params() floats each, owned by the stage).
  int64_t num_params() const;
  float* param_data();
  const float* param_data() const;
  float* grad_data();
  const float* grad_data() const;
  // Copies between the flat buffers and caller memory; `count` must equal num_params().
  Status CopyParamsTo(float* out, int64_t count) const;
  Status CopyParamsFrom(const float* in, int64_t count);
  Status CopyGradsTo(float* out, int64_t count) const;
  Status CopyGradsFrom(const float* in, int64_t count);
  void ZeroGrad();
  // Parameters as "layer<l>.<name>" with views into the flat buffer, in flat-buffer order.
  std::vector<std::pair<std::string, torch::Tensor>> NamedParameters() const;
  // True if every parameter and gradient still aliases the flat buffers (a self-check for tests).
  bool BuffersAliased() const;

  // One AdamW step on the flat buffers with the current gradients.
  Status OptimizerStep();
  AdamW& optimizer();
  const AdamW& optimizer() const;

  // Copies parameters, AdamW moments and step count to `out` (worker/layer_state.h; the buffers are
  // reused), e.g. at a step boundary for a checkpoint written in the background.
  Status Snapshot(LayerState* out) const;
  // Restores a state of exactly this model and layer range (ReadLayerState assembles one from any
  // checkpoint); fails without changing the stage otherwise. The AdamW hyper-parameters of this
  // stage are kept (only moments and step count are restored); gradients are zeroed.
  Status Restore(const LayerState& state);

 private:
  struct Impl;
  explicit Stage(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Sets the intra-op threads of torch and of OpenBLAS (which torch::set_num_threads does not reach
// when torch uses OpenBLAS, as Debian's build does) for the whole process. Call it once at start-up
// when several workers or tests share the machine. Fails for threads < 1.
Status SetComputeThreads(int threads);

// Inputs [rows, cols-1] and targets [rows, cols-1] (int64) of a sampled token batch (copies).
// Fails if the batch is malformed (rows < 1, cols < 2, tokens.size() != rows * cols).
struct BatchTensors {
  torch::Tensor inputs;
  torch::Tensor targets;
};
Result<BatchTensors> ToTensors(const TokenBatch& batch);

// Mean next-token cross-entropy of logits [B, T, V] against targets [B, T] (int64).
Result<torch::Tensor> LmLoss(const torch::Tensor& logits, const torch::Tensor& targets);

// For a stage holding the whole model: zeroes the gradients, then runs forward + backward over the
// micro-batches of `replica` of `replicas` at `step` (gradient accumulation; each micro-batch's
// loss scaled by 1/micro-batches), leaving d(mean loss over the replica's samples)/d(params) in
// grad_data(). Averaging grad_data() over replicas gives the full-global-batch gradient. Returns
// the replica's mean loss.
Result<double> ComputeGradients(Stage& whole, const Sampler& sampler, int64_t step, int replica = 0,
                                int replicas = 1);

}  // namespace gt::worker
