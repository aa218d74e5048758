// The model's layers, Stage, losses and the whole-model gradient step. The only worker source that
// includes torch (compile time); per-layer parameter order is the registration order below and must
// match LayerParamCount in layout.cc.
#include "worker/model.h"

#include <ATen/CPUGeneratorImpl.h>
#include <dlfcn.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>


namespace gt::worker {
namespace {

using torch::Tensor;

template <typename F>
auto TorchGuard(const std::string& context, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::Error& e) {
    return Internal(context + ": torch error: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Internal(context + ": " + e.what());
  }
}

constexpr double kInitStd = 0.02;
constexpr double kLnEps = 1e-5;

class Layer : public torch::nn::Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
};

// Layer 0: token embedding [vocab, hidden] then position embedding [seq_len, hidden].
class EmbeddingLayer : public Layer {
 public:
  EmbeddingLayer(const ModelConfig& m, at::Generator& gen) {
    tok_ = register_parameter("tok_emb", torch::empty({m.vocab, m.hidden}));
    pos_ = register_parameter("pos_emb", torch::empty({m.seq_len, m.hidden}));
    torch::NoGradGuard no_grad;
    tok_.normal_(0, kInitStd, gen);
    pos_.normal_(0, kInitStd, gen);
  }
  Tensor forward(const Tensor& tokens) override {
    return torch::embedding(tok_, tokens) + pos_.slice(0, 0, tokens.size(1));
  }

 private:
  Tensor tok_, pos_;
};

// Layers 1..L: x + attn(ln1(x)), then x + mlp(ln2(x)). Parameter order: ln1_weight, ln1_bias,
// qkv_weight [3h, h] (rows: q, k, v; each split into heads of h/heads), qkv_bias, proj_weight
// [h, h], proj_bias, ln2_weight, ln2_bias, fc_weight [4h, h], fc_bias, fc2_weight [h, 4h],
// fc2_bias.
class Block : public Layer {
 public:
  Block(const ModelConfig& m, at::Generator& gen) : hidden_(m.hidden), heads_(m.heads) {
    const int64_t h = m.hidden;
    ln1_w_ = register_parameter("ln1_weight", torch::ones({h}));
    ln1_b_ = register_parameter("ln1_bias", torch::zeros({h}));
    qkv_w_ = register_parameter("qkv_weight", torch::empty({3 * h, h}));
    qkv_b_ = register_parameter("qkv_bias", torch::zeros({3 * h}));
    proj_w_ = register_parameter("proj_weight", torch::empty({h, h}));
    proj_b_ = register_parameter("proj_bias", torch::zeros({h}));
    ln2_w_ = register_parameter("ln2_weight", torch::ones({h}));
    ln2_b_ = register_parameter("ln2_bias", torch::zeros({h}));
    fc_w_ = register_parameter("fc_weight", torch::empty({4 * h, h}));
    fc_b_ = register_parameter("fc_bias", torch::zeros({4 * h}));
    fc2_w_ = register_parameter("fc2_weight", torch::empty({h, 4 * h}));
    fc2_b_ = register_parameter("fc2_bias", torch::zeros({h}));
    const double resid_std = kInitStd / std::sqrt(2.0 * m.layers);
    torch::NoGradGuard no_grad;
    qkv_w_.normal_(0, kInitStd, gen);
    proj_w_.normal_(0, resid_std, gen);
    fc_w_.normal_(0, kInitStd, gen);
    fc2_w_.normal_(0, resid_std, gen);
    // True above the diagonal: key positions a query may not attend to.
    mask_ = torch::ones({m.seq_len, m.seq_len}, torch::kBool).triu(1);
  }

  Tensor forward(const Tensor& x) override {
    const int64_t b = x.size(0), t = x.size(1), hd = hidden_ / heads_;
    Tensor a = torch::layer_norm(x, {hidden_}, ln1_w_, ln1_b_, kLnEps);
    Tensor qkv =
        torch::linear(a, qkv_w_, qkv_b_).view({b, t, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
    Tensor q = qkv[0], k = qkv[1], v = qkv[2];  // [b, heads, t, hd]
    Tensor att = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(hd)));
    att = att.masked_fill(mask_.slice(0, 0, t).slice(1, 0, t),
                          -std::numeric_limits<float>::infinity());
    att = torch::softmax(att, -1);
    Tensor y = torch::matmul(att, v).transpose(1, 2).reshape({b, t, hidden_});
    Tensor h = x + torch::linear(y, proj_w_, proj_b_);
    Tensor c = torch::layer_norm(h, {hidden_}, ln2_w_, ln2_b_, kLnEps);
    return h + torch::linear(torch::gelu(torch::linear(c, fc_w_, fc_b_)), fc2_w_, fc2_b_);
  }

 private:
  int64_t hidden_, heads_;
  Tensor ln1_w_, ln1_b_, qkv_w_, qkv_b_, proj_w_, proj_b_, ln2_w_, ln2_b_, fc_w_, fc_b_, fc2_w_,
      fc2_b_;
  Tensor mask_;
};

// Layer L+1: final LayerNorm, then the LM head [vocab, hidden] without bias.
class HeadLayer : public Layer {
 public:
  HeadLayer(const ModelConfig& m, at::Generator& gen) : hidden_(m.hidden) {
    ln_w_ = register_parameter("ln_f_weight", torch::ones({m.hidden}));
    ln_b_ = register_parameter("ln_f_bias", torch::zeros({m.hidden}));
    head_w_ = register_parameter("lm_head_weight", torch::empty({m.vocab, m.hidden}));
    torch::NoGradGuard no_grad;
    head_w_.normal_(0, kInitStd, gen);
  }
  Tensor forward(const Tensor& x) override {
    return torch::linear(torch::layer_norm(x, {hidden_}, ln_w_, ln_b_, kLnEps), head_w_);
  }

 private:
  int64_t hidden_;
  Tensor ln_w_, ln_b_, head_w_;
};

std::string ShapeString(const Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
  return s + "]";
}

}  // namespace

struct Stage::Impl {
  ModelConfig model;
  int first = 0, last = 0;
  uint64_t seed = 0;
  std::vector<std::shared_ptr<Layer>> layers;
  std::vector<std::pair<std::string, Tensor>> params;  // flat-buffer order
  std::vector<int64_t> offsets;
  Tensor flat_params, flat_grads;
  std::unique_ptr<AdamW> adamw;

  Status CheckInput(const Tensor& input) const {
    if (!input.defined()) return InvalidArgument("stage input is an undefined tensor");
    if (input.device().type() != torch::kCPU)
      return InvalidArgument("stage input must be a CPU tensor");
    const std::string where = "stage [" + std::to_string(first) + ", " + std::to_string(last) + ")";
    if (first == 0) {
      if (input.scalar_type() != torch::kLong || input.dim() != 2)
        return InvalidArgument(where + " holds the embedding and takes int64 tokens [B, T], got " +
                               std::string(c10::toString(input.scalar_type())) +
                               ShapeString(input));
    } else if (input.scalar_type() != torch::kFloat || input.dim() != 3 ||
               input.size(2) != model.hidden) {
      return InvalidArgument(where + " takes float32 activations [B, T, " +
                             std::to_string(model.hidden) + "], got " +
                             std::string(c10::toString(input.scalar_type())) + ShapeString(input));
    }
    if (input.size(0) < 1 || input.size(1) < 1 || input.size(1) > model.seq_len)
      return InvalidArgument(where + ": input " + ShapeString(input) +
                             " needs B >= 1 and 1 <= T <= seq_len (" +
                             std::to_string(model.seq_len) + ")");
    if (first == 0) {
      const int64_t lo = input.min().item<int64_t>(), hi = input.max().item<int64_t>();
      if (lo < 0 || hi >= model.vocab)
        return InvalidArgument(where + ": token ids must be in [0, " + std::to_string(model.vocab) +
                               "), got range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                               "]");
    }
    return Status::Ok();
  }

  Tensor Run(const Tensor& input) {
    Tensor x = input;
    for (auto& layer : layers) x = layer->forward(x);
    return x;
  }
};

Stage::Stage(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Stage::~Stage() = default;

Result<std::unique_ptr<Stage>> Stage::Create(const ModelConfig& model, int first, int last,
                                             uint64_t seed, const AdamWOptions& adamw) {
  RETURN_IF_ERROR(ValidateRange(model, first, last));
  return TorchGuard("Stage::Create", [&]() -> Result<std::unique_ptr<Stage>> {
    auto impl = std::make_unique<Impl>();
    impl->model = model;
    impl->first = first;
    impl->last = last;
    impl->seed = seed;
    for (int l = first; l < last; ++l) {
      at::Generator gen = at::detail::createCPUGenerator(LayerSeed(seed, l));
      std::shared_ptr<Layer> layer;
      if (l == 0)
        layer = std::make_shared<EmbeddingLayer>(model, gen);
      else if (l == model.layers + 1)
        layer = std::make_shared<HeadLayer>(model, gen);
      else
        layer = std::make_shared<Block>(model, gen);
      for (auto& kv : layer->named_parameters(/*recurse=*/true))
        impl->params.emplace_back("layer" + std::to_string(l) + "." + kv.key(), kv.value());
      impl->layers.push_back(std::move(layer));
    }
    int64_t total = 0;
    for (auto& p : impl->params) total += p.second.numel();
    const int64_t expected = RangeParamCount(model, first, last);
    if (total != expected)
      return Internal("Stage::Create: built " + std::to_string(total) +
                      " parameters, layout.cc expects " + std::to_string(expected));
    impl->flat_params = torch::empty({total}, torch::kFloat);
    impl->flat_grads = torch::zeros({total}, torch::kFloat);
    int64_t off = 0;
    torch::NoGradGuard no_grad;
    for (auto& [name, p] : impl->params) {
      const int64_t n = p.numel();
      Tensor pv = impl->flat_params.narrow(0, off, n).view(p.sizes());
      pv.copy_(p);
      p.set_data(pv);
      p.mutable_grad() = impl->flat_grads.narrow(0, off, n).view(p.sizes());
      impl->offsets.push_back(off);
      off += n;
    }
    impl->adamw = std::make_unique<AdamW>(total, adamw);
    return std::unique_ptr<Stage>(new Stage(std::move(impl)));
  });
}

const ModelConfig& Stage::model() const { return impl_->model; }
int Stage::first() const { return impl_->first; }
int Stage::last() const { return impl_->last; }
uint64_t Stage::seed() const { return impl_->seed; }

Result<torch::Tensor> Stage::Forward(const torch::Tensor& input) {
  return TorchGuard("Stage::Forward", [&]() -> Result<torch::Tensor> {
    RETURN_IF_ERROR(impl_->CheckInput(input));
    return impl_->Run(input);
  });
}

Result<StageForward> Stage::ForwardForBackward(const torch::Tensor& input) {
  return TorchGuard("Stage::ForwardForBackward", [&]() -> Result<StageForward> {
    RETURN_IF_ERROR(impl_->CheckInput(input));
    StageForward f;
    f.input = is_first() ? input : input.detach().requires_grad_(true);
    f.output = impl_->Run(f.input);
    return f;
  });
}

Result<StageBackward> Stage::Backward(StageForward& fwd, const torch::Tensor& grad_output) {
  return TorchGuard("Stage::Backward", [&]() -> Result<StageBackward> {
    if (!fwd.output.defined() || !fwd.output.requires_grad())
      return InvalidArgument(
          "Stage::Backward: no recorded forward (already backpropagated, or run under NoGrad)");
    if (!grad_output.defined() || grad_output.sizes() != fwd.output.sizes() ||
        grad_output.scalar_type() != fwd.output.scalar_type())
      return InvalidArgument(
          "Stage::Backward: output gradient " +
          (grad_output.defined() ? ShapeString(grad_output) : std::string("undefined")) +
          " does not match the output " + ShapeString(fwd.output));
    fwd.output.backward(grad_output);
    StageBackward b;
    if (!is_first()) b.input_grad = fwd.input.grad();
    fwd.output = Tensor();
    fwd.input = Tensor();
    return b;
  });
}

Result<StageBackward> Stage::BackwardFromLoss(StageForward& fwd, const torch::Tensor& targets,
                                              double loss_scale) {
  if (!is_last())
    return InvalidArgument("Stage::BackwardFromLoss: stage does not hold the LM head");
  return TorchGuard("Stage::BackwardFromLoss", [&]() -> Result<StageBackward> {
    if (!fwd.output.defined() || !fwd.output.requires_grad())
      return InvalidArgument(
          "Stage::BackwardFromLoss: no recorded forward (already backpropagated?)");
    ASSIGN_OR_RETURN(Tensor loss, LmLoss(fwd.output, targets));
    (loss * loss_scale).backward();
    StageBackward b;
    b.loss = loss.item<double>();
    if (!is_first()) b.input_grad = fwd.input.grad();
    fwd.output = Tensor();
    fwd.input = Tensor();
    return b;
  });
}

int64_t Stage::num_params() const { return impl_->flat_params.numel(); }
float* Stage::param_data() { return impl_->flat_params.data_ptr<float>(); }
const float* Stage::param_data() const { return impl_->flat_params.data_ptr<float>(); }
float* Stage::grad_data() { return impl_->flat_grads.data_ptr<float>(); }
const float* Stage::grad_data() const { return impl_->flat_grads.data_ptr<float>(); }

namespace {
Status CheckCount(const char* what, int64_t count, int64_t want) {
  if (count != want)
    return InvalidArgument(std::string(what) + ": buffer of " + std::to_string(count) +
                           " floats, the stage has " + std::to_string(want) + " parameters");
  return Status::Ok();
}
}  // namespace

Status Stage::CopyParamsTo(float* out, int64_t count) const {
  RETURN_IF_ERROR(CheckCount("CopyParamsTo", count, num_params()));
  std::memcpy(out, param_data(), sizeof(float) * count);
  return Status::Ok();
}
Status Stage::CopyParamsFrom(const float* in, int64_t count) {
  RETURN_IF_ERROR(CheckCount("CopyParamsFrom", count, num_params()));
  std::memcpy(param_data(), in, sizeof(float) * count);
  return Status::Ok();
}
Status Stage::CopyGradsTo(float* out, int64_t count) const {
  RETURN_IF_ERROR(CheckCount("CopyGradsTo", count, num_params()));
  std::memcpy(out, grad_data(), sizeof(float) * count);
  return Status::Ok();
}
Status Stage::CopyGradsFrom(const float* in, int64_t count) {
  RETURN_IF_ERROR(CheckCount("CopyGradsFrom", count, num_params()));
  std::memcpy(grad_data(), in, sizeof(float) * count);
  return Status::Ok();
}
void Stage::ZeroGrad() { std::memset(grad_data(), 0, sizeof(float) * num_params()); }

std::vector<std::pair<std::string, torch::Tensor>> Stage::NamedParameters() const {
  return impl_->params;
}

bool Stage::BuffersAliased() const {
  const float* pbase = param_data();
  const float* gbase = grad_data();
  for (size_t i = 0; i < impl_->params.size(); ++i) {
    const Tensor& p = impl_->params[i].second;
    if (!p.is_contiguous() || p.data_ptr<float>() != pbase + impl_->offsets[i]) return false;
    const Tensor& g = p.grad();
    if (!g.defined() || !g.is_contiguous() || g.data_ptr<float>() != gbase + impl_->offsets[i])
      return false;
  }
  return true;
}

Status Stage::OptimizerStep() {
  return impl_->adamw->Step(param_data(), grad_data(), num_params());
}
AdamW& Stage::optimizer() { return *impl_->adamw; }
const AdamW& Stage::optimizer() const { return *impl_->adamw; }

Status Stage::Snapshot(LayerState* out) const {
  const int64_t n = num_params();
  out->model = impl_->model;
  out->seed = impl_->seed;
  out->first = impl_->first;
  out->last = impl_->last;
  const AdamW& opt = *impl_->adamw;
  out->adamw_steps = opt.steps_taken();
  out->adamw = opt.options();
  // assign() reuses the buffers' capacity: a snapshot per checkpoint allocates nothing after the first.
  out->params.assign(param_data(), param_data() + n);
  out->exp_avg.assign(opt.exp_avg().begin(), opt.exp_avg().end());
  out->exp_avg_sq.assign(opt.exp_avg_sq().begin(), opt.exp_avg_sq().end());
  return Status::Ok();
}

Status Stage::Restore(const LayerState& s) {
  const std::string here = "stage [" + std::to_string(impl_->first) + ", " + std::to_string(impl_->last) +
                           ") of model " + DescribeModel(impl_->model);
  if (DescribeModel(s.model) != DescribeModel(impl_->model) || s.first != impl_->first || s.last != impl_->last)
    return InvalidArgument("cannot restore layers [" + std::to_string(s.first) + ", " + std::to_string(s.last) +
                           ") of model " + DescribeModel(s.model) + " into " + here);
  if (static_cast<int64_t>(s.params.size()) != num_params())
    return InvalidArgument("cannot restore " + here + ": " + std::to_string(s.params.size()) + " parameters given, " +
                           std::to_string(num_params()) + " expected");
  RETURN_IF_ERROR(impl_->adamw->SetState(s.adamw_steps, s.exp_avg, s.exp_avg_sq));
  std::memcpy(param_data(), s.params.data(), sizeof(float) * num_params());
  ZeroGrad();
  return Status::Ok();
}

Status SetComputeThreads(int threads) {
  if (threads < 1)
    return InvalidArgument("SetComputeThreads: threads must be >= 1, got " +
                           std::to_string(threads));
  return TorchGuard("SetComputeThreads", [&]() -> Status {
    torch::set_num_threads(threads);
    using SetFn = void (*)(int);
    if (auto fn = reinterpret_cast<SetFn>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
      fn(threads);
    return Status::Ok();
  });
}

Result<BatchTensors> ToTensors(const TokenBatch& batch) {
  if (batch.rows < 1 || batch.cols < 2 ||
      batch.tokens.size() != static_cast<size_t>(batch.rows) * static_cast<size_t>(batch.cols))
    return InvalidArgument("ToTensors: malformed token batch (rows " + std::to_string(batch.rows) +
                           ", cols " + std::to_string(batch.cols) + ", " +
                           std::to_string(batch.tokens.size()) + " tokens)");
  return TorchGuard("ToTensors", [&]() -> Result<BatchTensors> {
    Tensor all = torch::from_blob(const_cast<int64_t*>(batch.tokens.data()),
                                  {batch.rows, batch.cols}, torch::kLong);
    BatchTensors t;
    t.inputs = all.slice(1, 0, batch.cols - 1).clone();
    t.targets = all.slice(1, 1, batch.cols).clone();
    return t;
  });
}

Result<torch::Tensor> LmLoss(const torch::Tensor& logits, const torch::Tensor& targets) {
  return TorchGuard("LmLoss", [&]() -> Result<torch::Tensor> {
    if (!logits.defined() || !targets.defined() || logits.dim() != 3 || targets.dim() != 2 ||
        logits.size(0) != targets.size(0) || logits.size(1) != targets.size(1) ||
        targets.scalar_type() != torch::kLong)
      return InvalidArgument("LmLoss: need logits [B, T, V] and int64 targets [B, T], got " +
                             (logits.defined() ? ShapeString(logits) : std::string("undefined")) +
                             " and " +
                             (targets.defined() ? ShapeString(targets) : std::string("undefined")));
    const int64_t v = logits.size(2);
    return torch::cross_entropy_loss(logits.reshape({-1, v}), targets.reshape({-1}));
  });
}

Result<double> ComputeGradients(Stage& whole, const Sampler& sampler, int64_t step, int replica,
                                int replicas) {
  if (!whole.is_first() || !whole.is_last())
    return InvalidArgument("ComputeGradients needs a stage holding the whole model, got layers [" +
                           std::to_string(whole.first()) + ", " + std::to_string(whole.last()) +
                           ")");
  if (sampler.options().seq_len > whole.model().seq_len)
    return InvalidArgument("ComputeGradients: sampler seq_len " +
                           std::to_string(sampler.options().seq_len) + " exceeds the model's " +
                           std::to_string(whole.model().seq_len));
  ASSIGN_OR_RETURN(int micros, sampler.MicroBatchesPerReplica(replicas));
  whole.ZeroGrad();
  double total = 0;
  for (int k = 0; k < micros; ++k) {
    ASSIGN_OR_RETURN(TokenBatch batch, sampler.MicroBatch(step, replica, replicas, k));
    ASSIGN_OR_RETURN(BatchTensors t, ToTensors(batch));
    ASSIGN_OR_RETURN(StageForward fwd, whole.ForwardForBackward(t.inputs));
    ASSIGN_OR_RETURN(StageBackward b, whole.BackwardFromLoss(fwd, t.targets, 1.0 / micros));
    total += b.loss;
  }
  return total / micros;
}

}  // namespace gt::worker
