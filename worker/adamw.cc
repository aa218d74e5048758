#include "worker/adamw.h"

#include <cmath>

namespace gt::worker {

AdamW::AdamW(int64_t count, const AdamWOptions& options)
    : options_(options),
      m_(static_cast<size_t>(count), 0.0f),
      v_(static_cast<size_t>(count), 0.0f) {}

Status AdamW::Step(float* params, const float* grads, int64_t count) {
  if (count != this->count())
    return InvalidArgument("AdamW::Step: buffer of " + std::to_string(count) +
                           " floats, optimizer was built for " + std::to_string(this->count()));
  ++steps_;
  const double bc1 = 1.0 - std::pow(options_.beta1, static_cast<double>(steps_));
  const double bc2 = 1.0 - std::pow(options_.beta2, static_cast<double>(steps_));
  const float decay = static_cast<float>(1.0 - options_.lr * options_.weight_decay);
  const float b1 = static_cast<float>(options_.beta1),
              one_b1 = static_cast<float>(1.0 - options_.beta1);
  const float b2 = static_cast<float>(options_.beta2),
              one_b2 = static_cast<float>(1.0 - options_.beta2);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const float eps = static_cast<float>(options_.eps);
  const float step_size = static_cast<float>(options_.lr / bc1);
  float* __restrict m = m_.data();
  float* __restrict v = v_.data();
  float* __restrict p = params;
  const float* __restrict g = grads;
  for (int64_t i = 0; i < count; ++i) {
    const float gi = g[i];
    const float mi = b1 * m[i] + one_b1 * gi;
    const float vi = b2 * v[i] + one_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) * inv_sqrt_bc2 + eps;
    p[i] = p[i] * decay - step_size * (mi / denom);
  }
  return Status::Ok();
}

Status AdamW::SetState(int64_t steps, std::vector<float> exp_avg, std::vector<float> exp_avg_sq) {
  if (steps < 0)
    return InvalidArgument("AdamW state: negative step count " + std::to_string(steps));
  if (exp_avg.size() != m_.size() || exp_avg_sq.size() != v_.size())
    return InvalidArgument("AdamW state: moments of " + std::to_string(exp_avg.size()) + "/" +
                           std::to_string(exp_avg_sq.size()) + " floats, optimizer holds " +
                           std::to_string(m_.size()));
  steps_ = steps;
  m_ = std::move(exp_avg);
  v_ = std::move(exp_avg_sq);
  return Status::Ok();
}

}  // namespace gt::worker
