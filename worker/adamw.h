// AdamW over one flat float32 buffer (decoupled weight decay), without torch.
//
// Contract: Step(params, grads, count) applies exactly the update of torch::optim::AdamW
// (torch 1.13, amsgrad off) to every element, up to float rounding:
//   t += 1; p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
//   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// Weight decay applies to every element (as torch does for a single parameter group). The state
// (m, v, t) is owned by the object and exposed for checkpoints. Not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"

namespace gt::worker {

struct AdamWOptions {  // defaults are torch::optim::AdamWOptions'
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

class AdamW {
 public:
  AdamW(int64_t count, const AdamWOptions& options);

  // Fails (changing nothing) if `count` differs from the size given at construction.
  Status Step(float* params, const float* grads, int64_t count);

  const AdamWOptions& options() const { return options_; }
  void set_lr(double lr) { options_.lr = lr; }
  int64_t count() const { return static_cast<int64_t>(m_.size()); }

  // Optimizer state, for checkpoints.
  int64_t steps_taken() const { return steps_; }
  const std::vector<float>& exp_avg() const { return m_; }
  const std::vector<float>& exp_avg_sq() const { return v_; }
  // Replaces the state; fails if the sizes differ from count() or steps < 0.
  Status SetState(int64_t steps, std::vector<float> exp_avg, std::vector<float> exp_avg_sq);

 private:
  AdamWOptions options_;
  int64_t steps_ = 0;
  std::vector<float> m_, v_;
};

}  // namespace gt::worker
