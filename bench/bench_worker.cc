// bench_worker: the live worker's training step against a bare libtorch loop, in the same run.
//
//   bench_worker                 step time (ours vs bare loop), checkpoint save vs raw write+fsync,
//                                analytic GPipe bubble
//   bench_worker --curve N       train N steps on the bundled corpus, loss every 10 steps
//   bench_worker --reps R        interleaved repetitions per side (default 20)
//
// Ours: Stage holding the whole model, sampler batches, gradient accumulation over micro-batches,
// a copy of the flat gradients to a staging buffer (what an all-reduce would read), flat AdamW.
// Baseline: the same architecture written directly with torch::nn modules and torch::optim::AdamW,
// fed pre-built token tensors (no data loading cost). Both at 1 thread (torch and OpenBLAS);
// repetitions alternate A, B, A, B; medians are reported. One JSON object per line.
#include <fcntl.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "worker/model.h"

namespace {

using gt::ModelConfig;
using torch::Tensor;
using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The bare loop's model: torch::nn modules, same shapes and operations as worker/model.cc.
struct BareBlock : torch::nn::Module {
  BareBlock(int64_t h, int64_t heads, int64_t seq) : h(h), heads(heads) {
    ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({h})));
    qkv = register_module("qkv", torch::nn::Linear(h, 3 * h));
    proj = register_module("proj", torch::nn::Linear(h, h));
    ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({h})));
    fc = register_module("fc", torch::nn::Linear(h, 4 * h));
    fc2 = register_module("fc2", torch::nn::Linear(4 * h, h));
    mask = torch::ones({seq, seq}, torch::kBool).triu(1);
  }
  Tensor forward(Tensor x) {
    const int64_t b = x.size(0), t = x.size(1), hd = h / heads;
    auto q3 = qkv(ln1(x)).view({b, t, 3, heads, hd}).permute({2, 0, 3, 1, 4});
    Tensor att = torch::matmul(q3[0], q3[1].transpose(-2, -1)) / std::sqrt(static_cast<double>(hd));
    att = torch::softmax(att.masked_fill(mask.slice(0, 0, t).slice(1, 0, t), -INFINITY), -1);
    x = x + proj(torch::matmul(att, q3[2]).transpose(1, 2).reshape({b, t, h}));
    return x + fc2(torch::gelu(fc(ln2(x))));
  }
  int64_t h, heads;
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  torch::nn::Linear qkv{nullptr}, proj{nullptr}, fc{nullptr}, fc2{nullptr};
  Tensor mask;
};

struct BareGpt : torch::nn::Module {
  explicit BareGpt(const ModelConfig& m) {
    tok = register_module("tok", torch::nn::Embedding(m.vocab, m.hidden));
    pos = register_module("pos", torch::nn::Embedding(m.seq_len, m.hidden));
    for (int l = 0; l < m.layers; ++l)
      blocks.push_back(register_module("b" + std::to_string(l),
                                       std::make_shared<BareBlock>(m.hidden, m.heads, m.seq_len)));
    lnf = register_module("lnf", torch::nn::LayerNorm(torch::nn::LayerNormOptions({m.hidden})));
    head = register_module(
        "head", torch::nn::Linear(torch::nn::LinearOptions(m.hidden, m.vocab).bias(false)));
  }
  Tensor forward(const Tensor& tokens) {
    Tensor x = tok(tokens) + pos(torch::arange(tokens.size(1), torch::kLong));
    for (auto& b : blocks) x = b->forward(x);
    return head(lnf(x));
  }
  torch::nn::Embedding tok{nullptr}, pos{nullptr};
  std::vector<std::shared_ptr<BareBlock>> blocks;
  torch::nn::LayerNorm lnf{nullptr};
  torch::nn::Linear head{nullptr};
};

int Fail(const gt::Status& s) {
  std::fprintf(stderr, "bench_worker: %s\n", s.ToString().c_str());
  return 1;
}

ModelConfig BenchModel() {
  ModelConfig m;
  m.layers = 6;
  m.hidden = 128;
  m.heads = 4;
  m.seq_len = 64;
  m.vocab = 256;
  m.micro_batch = 8;
  m.global_batch = 16;
  return m;
}

int Curve(int steps) {
  ModelConfig m = BenchModel();
  gt::worker::AdamWOptions o;
  o.lr = 2e-3;
  auto stage = gt::worker::Stage::Create(m, 0, gt::worker::NumLayers(m), 1, o);
  if (!stage.ok()) return Fail(stage.status());
  auto sampler = gt::worker::Sampler::FromFile(gt::worker::DefaultCorpusPath(),
                                               {m.seq_len, m.micro_batch, m.global_batch, 1});
  if (!sampler.ok()) return Fail(sampler.status());
  const auto t0 = Clock::now();
  for (int s = 0; s <= steps; ++s) {
    auto loss = gt::worker::ComputeGradients(**stage, *sampler, s);
    if (!loss.ok()) return Fail(loss.status());
    if (s % 10 == 0 || s == steps)
      std::printf(
          "{\"bench\":\"worker_loss_curve\",\"model\":\"%s\",\"micro_batch\":%d,\"global_batch\":%"
          "d,"
          "\"lr\":%g,\"threads\":1,\"step\":%d,\"loss\":%.4f,\"elapsed_s\":%.2f}\n",
          gt::worker::DescribeModel(m).c_str(), m.micro_batch, m.global_batch, o.lr, s, *loss,
          std::chrono::duration<double>(Clock::now() - t0).count());
    std::fflush(stdout);
    if (s < steps) {
      gt::Status st = (*stage)->OptimizerStep();
      if (!st.ok()) return Fail(st);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (gt::Status st = gt::worker::SetComputeThreads(1); !st.ok()) return Fail(st);
  int reps = 20, curve = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--reps") == 0)
      reps = std::max(1, std::atoi(argv[i + 1]));
    else if (std::strcmp(argv[i], "--curve") == 0)
      curve = std::max(1, std::atoi(argv[i + 1]));
  }
  if (curve > 0) return Curve(curve);

  const ModelConfig m = BenchModel();
  const std::string desc = gt::worker::DescribeModel(m);
  auto stage_r = gt::worker::Stage::Create(m, 0, gt::worker::NumLayers(m), 1);
  if (!stage_r.ok()) return Fail(stage_r.status());
  auto& stage = *stage_r;
  auto sampler = gt::worker::Sampler::FromFile(gt::worker::DefaultCorpusPath(),
                                               {m.seq_len, m.micro_batch, m.global_batch, 1});
  if (!sampler.ok()) return Fail(sampler.status());
  const int micros = m.global_batch / m.micro_batch;
  std::vector<float> staging(stage->num_params());

  torch::manual_seed(1);
  auto bare = std::make_shared<BareGpt>(m);
  torch::optim::AdamW bare_opt(bare->parameters(), torch::optim::AdamWOptions(1e-3));
  std::vector<gt::worker::BatchTensors> bare_batches;
  for (int k = 0; k < micros; ++k)
    bare_batches.push_back(gt::worker::ToTensors(sampler->MicroBatch(0, 0, 1, k).value()).value());
  int64_t bare_params = 0;
  for (auto& p : bare->parameters()) bare_params += p.numel();
  if (bare_params != stage->num_params()) {
    std::fprintf(stderr, "bench_worker: bare model has %lld params, stage %lld\n",
                 (long long)bare_params, (long long)stage->num_params());
    return 1;
  }

  int64_t step = 0;
  auto ours = [&]() -> gt::Status {
    auto loss = gt::worker::ComputeGradients(*stage, *sampler, step++);
    if (!loss.ok()) return loss.status();
    RETURN_IF_ERROR(stage->CopyGradsTo(staging.data(), stage->num_params()));
    return stage->OptimizerStep();
  };
  auto baseline = [&]() {
    bare_opt.zero_grad();
    for (auto& b : bare_batches) {
      Tensor logits = bare->forward(b.inputs);
      (torch::cross_entropy_loss(logits.reshape({-1, m.vocab}), b.targets.reshape({-1})) / micros)
          .backward();
    }
    bare_opt.step();
  };
  for (int w = 0; w < 3; ++w) {
    gt::Status st = ours();
    if (!st.ok()) return Fail(st);
    baseline();
  }
  std::vector<double> a, b;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    gt::Status st = ours();
    auto t1 = Clock::now();
    if (!st.ok()) return Fail(st);
    baseline();
    auto t2 = Clock::now();
    a.push_back(Ms(t1 - t0));
    b.push_back(Ms(t2 - t1));
  }
  const double ma = Median(a), mb = Median(b);
  std::printf(
      "{\"bench\":\"worker_train_step\",\"model\":\"%s\",\"params\":%lld,\"micro_batch\":%d,"
      "\"global_batch\":%d,\"threads\":1,\"reps\":%d,\"value\":%.3f,\"unit\":\"ms/step\","
      "\"baseline\":\"bare libtorch loop (torch::nn modules + torch::optim::AdamW)\","
      "\"baseline_value\":%.3f,\"ratio\":%.3f}\n",
      desc.c_str(), (long long)stage->num_params(), m.micro_batch, m.global_batch, reps, ma, mb,
      ma / mb);
  std::fflush(stdout);

  // Checkpoints are measured by bench_checkpoint (time lost per checkpoint, write throughput).

  // GPipe bubble, analytic: (S-1)/(m+S-1). Stages run one after another in one process cannot show
  // it; the distributed pipeline measures the real value later.
  for (int s : {2, 3})
    for (int mm : {4, 8, 16})
      std::printf(
          "{\"bench\":\"pipeline_bubble_analytic\",\"stages\":%d,\"micro_batches\":%d,\"value\":%."
          "4f,"
          "\"unit\":\"fraction of step idle\",\"baseline\":\"analytic GPipe formula (not "
          "measured)\","
          "\"baseline_value\":null,\"ratio\":null}\n",
          s, mm, static_cast<double>(s - 1) / (mm + s - 1));
  return 0;
}
