// Model profile: what each layer of a GPT-style model costs in parameters, FLOPs, activation bytes
// and optimizer state, so that the partitioner can turn "which layers on which GPUs" into time and
// memory.
//
// Layer list. Index 0 is the token+position embedding, 1..L are the transformer blocks, L+1 is the
// LM head (final layernorm + output projection). num_layers() == L + 2, and partitions cut this list
// into contiguous ranges [first, last).
//
// Formulas (h = hidden, s = seq_len, V = vocab, a = heads, b = micro_batch, p = bytes_per_param,
// o = optimizer_bytes_per_param). Sources: Narayanan et al. 2021 (Megatron-LM, SC'21) for FLOPs,
// Korthikanti et al. 2022 ("Reducing activation recomputation") for stored activations.
//   Block params        = 12 h^2 + 13 h   (QKV 3h^2+3h, out-proj h^2+h, MLP 8h^2+5h, 2 layernorms 4h)
//   Block fwd FLOPs/tok = 2 * params + 4 s h   (every weight one multiply-add, plus QK^T and AV:
//                                               2 s h each; the causal mask is not discounted)
//   Embedding params    = V h + s h  (token table + learned positions); fwd FLOPs/tok = h (the add)
//   LM head params      = V h + 2 h  (untied output projection + final layernorm);
//                         fwd FLOPs/tok = 2 V h
//   Backward FLOPs      = 2 x forward, for every layer (no activation recomputation).
//   Boundary activation = b s h p bytes per micro-batch: the tensor sent forward between stages; the
//                         gradient sent backward has the same size. Equal for every boundary.
//   Stored activations (kept from a micro-batch's forward until its backward), per micro-batch:
//     block     = b s h (34 + 5 a s / h) * p / 2   (Korthikanti eq. 2, scaled from 16-bit to p)
//     embedding = b s h p
//     LM head   = b s h p + 4 b s V               (its input, and fp32 logits for the loss)
//   Weight bytes = params * p; gradient bytes = params * p; optimizer bytes = params * o.
//
// Measured times. The FLOP estimate can be overridden per layer by a measurement: a measured
// forward+backward time t (seconds per sample) on a GPU whose effective speed is F FLOP/s
// (peak x mfu) is stored as the flop-equivalent t * F, so that the time on another GPU with
// effective speed F' is t * F / F'. A global calibration factor multiplies the FLOP estimate of
// every layer that has no measurement (e.g. measured step time / predicted step time).
//
// Thread-safety: a ModelProfile is a plain value; const access is safe from any thread.
#pragma once

#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace gt {

enum class LayerKind { kEmbedding, kBlock, kHead };

const char* LayerKindName(LayerKind kind);

struct LayerProfile {
  LayerKind kind = LayerKind::kBlock;
  double params = 0;
  double forward_flops_per_sample = 0;
  double backward_flops_per_sample = 0;   // 2 x forward
  double output_bytes_per_micro_batch = 0;  // activation sent to the next layer (= b s h p)
  double stash_bytes_per_micro_batch = 0;   // activations kept for backward per in-flight micro-batch
  double weight_bytes = 0;                  // params * bytes_per_param
  double grad_bytes = 0;                    // params * bytes_per_param
  double optimizer_bytes = 0;               // params * optimizer_bytes_per_param
  // Forward+backward flop-equivalents per sample from a measurement; 0 = not measured.
  double measured_flop_equivalents_per_sample = 0;

  double train_flops_per_sample() const { return forward_flops_per_sample + backward_flops_per_sample; }
};

class ModelProfile {
 public:
  ModelProfile() = default;

  const ModelConfig& config() const { return config_; }
  int num_layers() const { return static_cast<int>(layers_.size()); }
  const LayerProfile& layer(int i) const { return layers_[i]; }
  const std::vector<LayerProfile>& layers() const { return layers_; }

  // Forward+backward flop-equivalents per sample used for timing: the measurement if there is one,
  // else the FLOP estimate x calibration().
  double EffectiveTrainFlops(int i) const;
  double TotalParams() const;
  double TotalEffectiveTrainFlops() const;
  // Bytes sent across one stage boundary per micro-batch, in each direction (b s h p).
  double BoundaryBytesPerMicroBatch() const;
  // Micro-batches per optimizer step: ceil(global_batch / micro_batch).
  int MicroBatchesPerStep() const;
  // Weights + optimizer state of layers [first, last): what a checkpoint or migration moves.
  double StateBytes(int first, int last) const;

  double calibration() const { return calibration_; }
  // factor > 0 multiplies the FLOP estimate of layers without a measurement.
  Status SetCalibration(double factor);
  // Records a measured forward+backward time of one layer, seconds per sample, on a GPU of
  // effective speed gpu_effective_flops (peak_tflops * 1e12 * mfu).
  Status SetMeasuredLayerTime(int layer, double seconds_per_sample, double gpu_effective_flops);
  // Records a measured time for a whole stage [first, last); it is spread over the layers in
  // proportion to their FLOP estimates (overriding earlier per-layer measurements in the range).
  Status SetMeasuredStageTime(int first, int last, double seconds_per_sample,
                              double gpu_effective_flops);
  // Forgets all measurements (calibration stays).
  void ClearMeasurements();

 private:
  friend Result<ModelProfile> BuildGptProfile(const ModelConfig& config);
  ModelConfig config_;
  std::vector<LayerProfile> layers_;
  double calibration_ = 1.0;
};

// Builds the profile of a GPT-style model. Errors (InvalidArgument) name the ModelConfig field that
// is out of range (layers, hidden, heads, seq_len, vocab, micro_batch, global_batch must be >= 1,
// bytes_per_param >= 1, optimizer_bytes_per_param >= 0).
Result<ModelProfile> BuildGptProfile(const ModelConfig& config);

}  // namespace gt
