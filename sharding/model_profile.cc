#include "sharding/model_profile.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace gt {

const char* LayerKindName(LayerKind kind) {
  switch (kind) {
    case LayerKind::kEmbedding: return "embedding";
    case LayerKind::kBlock: return "block";
    case LayerKind::kHead: return "head";
  }
  return "?";
}

namespace {

Status CheckAtLeast(const char* field, long long value, long long min) {
  if (value < min) {
    return InvalidArgument("model." + std::string(field) + " = " + std::to_string(value) +
                           " must be >= " + std::to_string(min));
  }
  return Status::Ok();
}

bool Finite(double x) { return std::isfinite(x); }

}  // namespace

Result<ModelProfile> BuildGptProfile(const ModelConfig& c) {
  RETURN_IF_ERROR(CheckAtLeast("layers", c.layers, 1));
  RETURN_IF_ERROR(CheckAtLeast("hidden", c.hidden, 1));
  RETURN_IF_ERROR(CheckAtLeast("heads", c.heads, 1));
  RETURN_IF_ERROR(CheckAtLeast("seq_len", c.seq_len, 1));
  RETURN_IF_ERROR(CheckAtLeast("vocab", c.vocab, 1));
  RETURN_IF_ERROR(CheckAtLeast("micro_batch", c.micro_batch, 1));
  RETURN_IF_ERROR(CheckAtLeast("global_batch", c.global_batch, 1));
  RETURN_IF_ERROR(CheckAtLeast("bytes_per_param", c.bytes_per_param, 1));
  RETURN_IF_ERROR(CheckAtLeast("optimizer_bytes_per_param", c.optimizer_bytes_per_param, 0));

  const double h = c.hidden, s = c.seq_len, V = c.vocab, a = c.heads, b = c.micro_batch;
  const double p = c.bytes_per_param, o = c.optimizer_bytes_per_param;

  ModelProfile prof;
  prof.config_ = c;
  prof.layers_.reserve(c.layers + 2);

  auto finish = [&](LayerProfile l) {
    l.backward_flops_per_sample = 2.0 * l.forward_flops_per_sample;
    l.output_bytes_per_micro_batch = b * s * h * p;
    l.weight_bytes = l.params * p;
    l.grad_bytes = l.params * p;
    l.optimizer_bytes = l.params * o;
    prof.layers_.push_back(l);
  };

  LayerProfile emb;
  emb.kind = LayerKind::kEmbedding;
  emb.params = V * h + s * h;
  emb.forward_flops_per_sample = s * h;
  emb.stash_bytes_per_micro_batch = b * s * h * p;
  finish(emb);

  LayerProfile blk;
  blk.kind = LayerKind::kBlock;
  blk.params = 12.0 * h * h + 13.0 * h;
  blk.forward_flops_per_sample = s * (2.0 * blk.params + 4.0 * s * h);
  blk.stash_bytes_per_micro_batch = b * s * h * (34.0 + 5.0 * a * s / h) * p / 2.0;
  for (int i = 0; i < c.layers; ++i) finish(blk);

  LayerProfile head;
  head.kind = LayerKind::kHead;
  head.params = V * h + 2.0 * h;
  head.forward_flops_per_sample = s * 2.0 * V * h;
  head.stash_bytes_per_micro_batch = b * s * h * p + 4.0 * b * s * V;
  finish(head);
  return prof;
}

double ModelProfile::EffectiveTrainFlops(int i) const {
  const LayerProfile& l = layers_[i];
  if (l.measured_flop_equivalents_per_sample > 0) return l.measured_flop_equivalents_per_sample;
  return l.train_flops_per_sample() * calibration_;
}

double ModelProfile::TotalParams() const {
  double sum = 0;
  for (const auto& l : layers_) sum += l.params;
  return sum;
}

double ModelProfile::TotalEffectiveTrainFlops() const {
  double sum = 0;
  for (int i = 0; i < num_layers(); ++i) sum += EffectiveTrainFlops(i);
  return sum;
}

double ModelProfile::BoundaryBytesPerMicroBatch() const {
  return static_cast<double>(config_.micro_batch) * config_.seq_len * config_.hidden *
         config_.bytes_per_param;
}

int ModelProfile::MicroBatchesPerStep() const {
  if (config_.micro_batch <= 0) return 0;
  return (config_.global_batch + config_.micro_batch - 1) / config_.micro_batch;
}

double ModelProfile::StateBytes(int first, int last) const {
  double sum = 0;
  for (int i = std::max(first, 0); i < std::min(last, num_layers()); ++i) {
    sum += layers_[i].weight_bytes + layers_[i].optimizer_bytes;
  }
  return sum;
}

Status ModelProfile::SetCalibration(double factor) {
  if (!Finite(factor) || factor <= 0) {
    return InvalidArgument("calibration factor " + std::to_string(factor) + " must be > 0");
  }
  calibration_ = factor;
  return Status::Ok();
}

Status ModelProfile::SetMeasuredLayerTime(int layer, double seconds_per_sample,
                                          double gpu_effective_flops) {
  return SetMeasuredStageTime(layer, layer + 1, seconds_per_sample, gpu_effective_flops);
}

Status ModelProfile::SetMeasuredStageTime(int first, int last, double seconds_per_sample,
                                          double gpu_effective_flops) {
  if (first < 0 || last > num_layers() || first >= last) {
    return InvalidArgument("measured layer range [" + std::to_string(first) + ", " +
                           std::to_string(last) + ") is not inside [0, " +
                           std::to_string(num_layers()) + ")");
  }
  if (!Finite(seconds_per_sample) || seconds_per_sample <= 0) {
    return InvalidArgument("measured seconds per sample " + std::to_string(seconds_per_sample) +
                           " must be > 0");
  }
  if (!Finite(gpu_effective_flops) || gpu_effective_flops <= 0) {
    return InvalidArgument("GPU effective FLOP/s " + std::to_string(gpu_effective_flops) +
                           " of a measurement must be > 0");
  }
  double estimate = 0;
  for (int i = first; i < last; ++i) estimate += layers_[i].train_flops_per_sample();
  const double total = seconds_per_sample * gpu_effective_flops;
  for (int i = first; i < last; ++i) {
    const double share = estimate > 0 ? layers_[i].train_flops_per_sample() / estimate
                                      : 1.0 / (last - first);
    layers_[i].measured_flop_equivalents_per_sample = total * share;
  }
  return Status::Ok();
}

void ModelProfile::ClearMeasurements() {
  for (auto& l : layers_) l.measured_flop_equivalents_per_sample = 0;
}

}  // namespace gt
