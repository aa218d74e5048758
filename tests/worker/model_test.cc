// The libtorch model: slicing, a reference forward, pipeline and data-parallel gradient
// equivalence, determinism, AdamW against torch's, checkpoints. The only worker test file that
// includes torch.
#include "worker/async_checkpoint.h"
#include "worker/model.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

namespace gt::worker {
namespace {

namespace fs = std::filesystem;
using torch::Tensor;

ModelConfig TinyModel() {
  ModelConfig m;
  m.layers = 4;
  m.hidden = 32;
  m.heads = 4;
  m.seq_len = 16;
  m.vocab = 256;
  m.micro_batch = 2;
  return m;
}

class ModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(SetComputeThreads(1).ok()); }

  static std::unique_ptr<Stage> Make(const ModelConfig& m, int first, int last, uint64_t seed,
                                     const AdamWOptions& o = {}) {
    auto s = Stage::Create(m, first, last, seed, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  static Sampler MakeSampler(int seq_len, int micro_batch, int global_batch, uint64_t seed = 3) {
    auto s = Sampler::FromFile(DefaultCorpusPath(), {seq_len, micro_batch, global_batch, seed});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(s).value();
  }
  static Tensor Flat(const float* p, int64_t n) {
    return torch::from_blob(const_cast<float*>(p), {n}, torch::kFloat).clone();
  }
  // ||a - b|| / ||b|| per parameter of `whole`, comparing against the same slice of `got`.
  static void ExpectGradsClose(const Stage& whole, const Tensor& got, double rel_tol) {
    int64_t off = 0;
    Tensor want = Flat(whole.grad_data(), whole.num_params());
    ASSERT_EQ(got.numel(), want.numel());
    for (auto& [name, p] : whole.NamedParameters()) {
      const int64_t n = p.numel();
      Tensor a = got.narrow(0, off, n), b = want.narrow(0, off, n);
      const double nb = b.norm().item<double>();
      ASSERT_GT(nb, 0) << name << " has no gradient in the reference";
      EXPECT_LE((a - b).norm().item<double>() / nb, rel_tol) << name;
      off += n;
    }
  }
};

TEST_F(ModelTest, StageSizesFollowTheLayout) {
  ModelConfig m = TinyModel();
  auto whole = Make(m, 0, NumLayers(m), 1);
  EXPECT_EQ(whole->num_params(), RangeParamCount(m, 0, NumLayers(m)));
  for (int l = 0; l < NumLayers(m); ++l) {
    auto s = Make(m, l, l + 1, 1);
    EXPECT_EQ(s->num_params(), LayerParamCount(m, l)) << "layer " << l;
    EXPECT_EQ(s->is_first(), l == 0);
    EXPECT_EQ(s->is_last(), l == NumLayers(m) - 1);
  }
  EXPECT_EQ(Stage::Create(m, 2, 2, 1).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Stage::Create(m, 0, 7, 1).status().code(), Code::kInvalidArgument);
}

TEST_F(ModelTest, AnySliceHasTheWholeModelsParameters) {
  ModelConfig m = TinyModel();
  auto whole = Make(m, 0, 6, 11);
  for (auto [a, b] : {std::pair{0, 1}, {1, 4}, {2, 3}, {3, 6}, {5, 6}, {0, 6}}) {
    auto s = Make(m, a, b, 11);
    const int64_t off = RangeParamCount(m, 0, a);
    ASSERT_EQ(
        std::memcmp(s->param_data(), whole->param_data() + off, sizeof(float) * s->num_params()), 0)
        << "[" << a << ", " << b << ")";
  }
  auto other = Make(m, 0, 6, 12);
  EXPECT_NE(
      std::memcmp(other->param_data(), whole->param_data(), sizeof(float) * whole->num_params()),
      0);
  // Blocks differ from each other (each layer has its own generator).
  const int64_t e = LayerParamCount(m, 0), blk = LayerParamCount(m, 1);
  EXPECT_NE(
      std::memcmp(whole->param_data() + e, whole->param_data() + e + blk, sizeof(float) * blk), 0);
}

// An independent forward pass written with explicit per-position loops (no mask), from the
// stage's named parameters.
Tensor ReferenceLogits(const Stage& whole, const Tensor& tokens) {
  const ModelConfig& m = whole.model();
  std::map<std::string, Tensor> w;
  for (auto& [name, p] : whole.NamedParameters()) w[name] = p.detach();
  const int64_t B = tokens.size(0), T = tokens.size(1), H = m.hidden, nh = m.heads, hd = H / nh;
  auto ln = [&](const Tensor& x, const std::string& pre) {
    Tensor mean = x.mean(-1, true);
    Tensor var = (x - mean).pow(2).mean(-1, true);
    return (x - mean) / torch::sqrt(var + 1e-5) * w[pre + "_weight"] + w[pre + "_bias"];
  };
  Tensor x = torch::zeros({B, T, H});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      x[b][t] = w["layer0.tok_emb"][tokens[b][t].item<int64_t>()] + w["layer0.pos_emb"][t];
  for (int l = 1; l <= m.layers; ++l) {
    const std::string p = "layer" + std::to_string(l) + ".";
    Tensor a = ln(x, p + "ln1");
    Tensor qkv = torch::matmul(a, w[p + "qkv_weight"].t()) + w[p + "qkv_bias"];
    Tensor y = torch::zeros({B, T, H});
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < nh; ++h)
        for (int64_t t = 0; t < T; ++t) {
          Tensor q = qkv[b][t].slice(0, h * hd, (h + 1) * hd);
          Tensor k = qkv[b].slice(0, 0, t + 1).slice(1, H + h * hd, H + (h + 1) * hd);
          Tensor v = qkv[b].slice(0, 0, t + 1).slice(1, 2 * H + h * hd, 2 * H + (h + 1) * hd);
          Tensor s = torch::matmul(k, q) / std::sqrt(static_cast<double>(hd));
          Tensor e = torch::exp(s - s.max());
          y[b][t].slice(0, h * hd, (h + 1) * hd) =
              torch::matmul((e / e.sum()).unsqueeze(0), v).squeeze(0);
        }
    x = x + torch::matmul(y, w[p + "proj_weight"].t()) + w[p + "proj_bias"];
    Tensor c = torch::matmul(ln(x, p + "ln2"), w[p + "fc_weight"].t()) + w[p + "fc_bias"];
    c = 0.5 * c * (1 + torch::erf(c / std::sqrt(2.0)));
    x = x + torch::matmul(c, w[p + "fc2_weight"].t()) + w[p + "fc2_bias"];
  }
  const std::string hp = "layer" + std::to_string(m.layers + 1) + ".";
  return torch::matmul(ln(x, hp + "ln_f"), w[hp + "lm_head_weight"].t());
}

TEST_F(ModelTest, ForwardMatchesAReferenceImplementation) {
  ModelConfig m = TinyModel();
  m.layers = 2;
  auto whole = Make(m, 0, 4, 5);
  // Random-ish weights so that LayerNorm affine and biases matter too.
  {
    torch::NoGradGuard ng;
    auto gen = at::detail::createCPUGenerator(99);
    for (auto& [name, p] : whole->NamedParameters()) p.add_(torch::randn(p.sizes(), gen) * 0.1);
  }
  Tensor tokens = torch::randint(0, 256, {2, 9}, at::detail::createCPUGenerator(1), torch::kLong);
  auto got = whole->Forward(tokens);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->sizes(), (std::vector<int64_t>{2, 9, 256}));
  torch::NoGradGuard ng;
  Tensor want = ReferenceLogits(*whole, tokens);
  EXPECT_LE((*got - want).abs().max().item<double>(), 1e-4 * want.abs().max().item<double>());
}

TEST_F(ModelTest, AttentionIsCausal) {
  ModelConfig m = TinyModel();
  auto whole = Make(m, 0, 6, 2);
  Tensor tokens = torch::randint(0, 256, {1, 12}, at::detail::createCPUGenerator(4), torch::kLong);
  Tensor changed = tokens.clone();
  changed[0][7] = (tokens[0][7].item<int64_t>() + 1) % 256;
  torch::NoGradGuard ng;
  Tensor a = whole->Forward(tokens).value(), b = whole->Forward(changed).value();
  EXPECT_TRUE(torch::equal(a.slice(1, 0, 7), b.slice(1, 0, 7)));
  for (int t = 7; t < 12; ++t) EXPECT_FALSE(torch::equal(a.select(1, t), b.select(1, t))) << t;
}

TEST_F(ModelTest, BadInputsAreErrorsNotCrashes) {
  ModelConfig m = TinyModel();
  auto first = Make(m, 0, 2, 1);
  auto mid = Make(m, 2, 4, 1);
  auto last = Make(m, 4, 6, 1);
  EXPECT_EQ(first->Forward(torch::full({1, 4}, 256, torch::kLong)).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(first->Forward(torch::full({1, 4}, -1, torch::kLong)).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(first->Forward(torch::zeros({1, 17}, torch::kLong)).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(first->Forward(torch::zeros({1, 4, 32})).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(mid->Forward(torch::zeros({1, 4}, torch::kLong)).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(mid->Forward(torch::zeros({1, 4, 31})).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(mid->Forward(Tensor()).status().code(), Code::kInvalidArgument);
  auto f = mid->ForwardForBackward(torch::zeros({1, 4, 32}));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(mid->BackwardFromLoss(*f, torch::zeros({1, 4}, torch::kLong), 1).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(mid->Backward(*f, torch::zeros({1, 4, 5})).status().code(), Code::kInvalidArgument);
  ASSERT_TRUE(mid->Backward(*f, torch::ones({1, 4, 32})).ok());
  EXPECT_EQ(mid->Backward(*f, torch::ones({1, 4, 32})).status().code(), Code::kInvalidArgument);
  auto g = last->ForwardForBackward(torch::zeros({1, 4, 32}));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(last->BackwardFromLoss(*g, torch::zeros({1, 3}, torch::kLong), 1).status().code(),
            Code::kInvalidArgument);
  TokenBatch bad;
  bad.rows = 2;
  bad.cols = 5;
  bad.tokens.resize(9);
  EXPECT_EQ(ToTensors(bad).status().code(), Code::kInvalidArgument);
  std::vector<float> buf(10);
  EXPECT_EQ(first->CopyGradsTo(buf.data(), 10).code(), Code::kInvalidArgument);
  EXPECT_EQ(first->CopyParamsFrom(buf.data(), 10).code(), Code::kInvalidArgument);
}

TEST_F(ModelTest, InitialLossIsNearUniform) {
  ModelConfig m = TinyModel();
  auto whole = Make(m, 0, 6, 1);
  Sampler s = MakeSampler(16, 4, 4);
  auto loss = ComputeGradients(*whole, s, 0);
  ASSERT_TRUE(loss.ok());
  EXPECT_NEAR(*loss, std::log(256.0), 0.1);  // small init: close to the uniform distribution
}

TEST_F(ModelTest, GradientsAliasTheFlatBuffer) {
  ModelConfig m = TinyModel();
  auto whole = Make(m, 0, 6, 1);
  Sampler s = MakeSampler(16, 2, 4);
  ASSERT_TRUE(ComputeGradients(*whole, s, 0).ok());
  ASSERT_TRUE(whole->BuffersAliased());
  std::vector<Tensor> grads;
  for (auto& [name, p] : whole->NamedParameters()) grads.push_back(p.grad().flatten().clone());
  Tensor cat = torch::cat(grads);
  std::vector<float> flat(whole->num_params());
  ASSERT_TRUE(whole->CopyGradsTo(flat.data(), whole->num_params()).ok());
  EXPECT_TRUE(torch::equal(cat, Flat(flat.data(), whole->num_params())));
  EXPECT_GT(cat.abs().sum().item<double>(), 0);
  // Writing the flat gradient buffer is what parameters see (the in-place all-reduce path).
  for (float& g : flat) g *= 2;
  ASSERT_TRUE(whole->CopyGradsFrom(flat.data(), whole->num_params()).ok());
  EXPECT_TRUE(torch::equal(whole->NamedParameters()[3].second.grad().flatten(), 2 * grads[3]));
  // Params: the optimizer's in-place update is visible through the parameter tensors.
  Tensor before = whole->NamedParameters()[2].second.detach().clone();
  ASSERT_TRUE(whole->OptimizerStep().ok());
  EXPECT_FALSE(torch::equal(before, whole->NamedParameters()[2].second.detach()));
  EXPECT_TRUE(whole->BuffersAliased());
  whole->ZeroGrad();
  EXPECT_EQ(whole->NamedParameters()[0].second.grad().abs().sum().item<double>(), 0.0);
  // A second backward after ZeroGrad still accumulates into the same buffer.
  ASSERT_TRUE(ComputeGradients(*whole, s, 1).ok());
  EXPECT_TRUE(whole->BuffersAliased());
}

// GPipe by hand with plain torch calls: all forwards, then all backwards (last stage first);
// activations cross stages as detached tensors, gradients as out.backward(grad_from_next).
Tensor PipelineGradsByHand(const ModelConfig& m, const std::vector<int>& cuts, const Sampler& s,
                           int64_t step, uint64_t seed) {
  std::vector<std::unique_ptr<Stage>> stages;
  for (size_t i = 0; i + 1 < cuts.size(); ++i)
    stages.push_back(Stage::Create(m, cuts[i], cuts[i + 1], seed).value());
  const int S = static_cast<int>(stages.size());
  const int micros = s.MicroBatchesPerReplica(1).value();
  std::vector<std::vector<Tensor>> in(S, std::vector<Tensor>(micros)), out = in;
  std::vector<Tensor> targets(micros);
  for (int k = 0; k < micros; ++k) {
    BatchTensors t = ToTensors(s.MicroBatch(step, 0, 1, k).value()).value();
    targets[k] = t.targets;
    Tensor x = t.inputs;
    for (int i = 0; i < S; ++i) {
      in[i][k] = i == 0 ? x : x.detach().requires_grad_(true);
      out[i][k] = stages[i]->Forward(in[i][k]).value();
      x = out[i][k];
    }
  }
  for (int k = micros - 1; k >= 0; --k) {
    Tensor g;
    for (int i = S - 1; i >= 0; --i) {
      if (i == S - 1)
        (LmLoss(out[i][k], targets[k]).value() / micros).backward();
      else
        out[i][k].backward(g);
      if (i > 0) g = in[i][k].grad();
    }
  }
  std::vector<Tensor> flat;
  for (auto& st : stages)
    flat.push_back(torch::from_blob(st->grad_data(), {st->num_params()}).clone());
  return torch::cat(flat);
}

// The same with the Stage pipeline helpers (ForwardForBackward / Backward / BackwardFromLoss).
Tensor PipelineGradsWithHelpers(const ModelConfig& m, const std::vector<int>& cuts,
                                const Sampler& s, int64_t step, uint64_t seed) {
  std::vector<std::unique_ptr<Stage>> stages;
  for (size_t i = 0; i + 1 < cuts.size(); ++i)
    stages.push_back(Stage::Create(m, cuts[i], cuts[i + 1], seed).value());
  const int S = static_cast<int>(stages.size());
  const int micros = s.MicroBatchesPerReplica(1).value();
  std::vector<std::vector<StageForward>> fwd(S, std::vector<StageForward>(micros));
  std::vector<Tensor> targets(micros);
  for (int k = 0; k < micros; ++k) {
    BatchTensors t = ToTensors(s.MicroBatch(step, 0, 1, k).value()).value();
    targets[k] = t.targets;
    Tensor x = t.inputs;
    for (int i = 0; i < S; ++i) {
      fwd[i][k] = stages[i]->ForwardForBackward(x).value();
      x = fwd[i][k].output.detach();  // what would be sent over the wire
    }
  }
  for (int k = 0; k < micros; ++k) {
    Tensor g;
    for (int i = S - 1; i >= 0; --i) {
      StageBackward b =
          i == S - 1 ? stages[i]->BackwardFromLoss(fwd[i][k], targets[k], 1.0 / micros).value()
                     : stages[i]->Backward(fwd[i][k], g).value();
      g = b.input_grad;
      EXPECT_EQ(g.defined(), i > 0);
    }
  }
  std::vector<Tensor> flat;
  for (auto& st : stages)
    flat.push_back(torch::from_blob(st->grad_data(), {st->num_params()}).clone());
  return torch::cat(flat);
}

TEST_F(ModelTest, PipelineStagesGiveTheWholeModelsGradients) {
  ModelConfig m = TinyModel();
  const int G = 8;
  Sampler full = MakeSampler(16, G, G);   // reference: the whole batch in one forward
  Sampler micro = MakeSampler(16, 2, G);  // pipeline: 4 micro-batches of 2
  auto whole = Make(m, 0, 6, 21);
  {
    BatchTensors t = ToTensors(full.Samples(3, 0, G)).value();
    Tensor logits = whole->Forward(t.inputs).value();
    LmLoss(logits, t.targets).value().backward();
  }
  for (const std::vector<int>& cuts : {std::vector<int>{0, 3, 6}, {0, 2, 4, 6}, {0, 1, 5, 6}}) {
    SCOPED_TRACE(::testing::PrintToString(cuts));
    ExpectGradsClose(*whole, PipelineGradsByHand(m, cuts, micro, 3, 21), 1e-5);
  }
  ExpectGradsClose(*whole, PipelineGradsWithHelpers(m, {0, 2, 4, 6}, micro, 3, 21), 1e-5);
  ExpectGradsClose(*whole, PipelineGradsWithHelpers(m, {0, 3, 6}, micro, 3, 21), 1e-5);
}

TEST_F(ModelTest, DataParallelReplicasAverageToTheFullBatchGradient) {
  ModelConfig m = TinyModel();
  Sampler s = MakeSampler(16, 2, 8);
  auto whole = Make(m, 0, 6, 8);
  auto r0 = Make(m, 0, 6, 8), r1 = Make(m, 0, 6, 8);
  auto full_loss = ComputeGradients(*whole, s, 2, 0, 1);
  auto l0 = ComputeGradients(*r0, s, 2, 0, 2), l1 = ComputeGradients(*r1, s, 2, 1, 2);
  ASSERT_TRUE(full_loss.ok() && l0.ok() && l1.ok());
  EXPECT_NEAR((*l0 + *l1) / 2, *full_loss, 1e-5 * *full_loss);
  EXPECT_NE(*l0, *l1);  // the replicas really saw different samples
  Tensor avg =
      (Flat(r0->grad_data(), r0->num_params()) + Flat(r1->grad_data(), r1->num_params())) / 2;
  ExpectGradsClose(*whole, avg, 1e-5);
}

std::vector<double> TrainLosses(const ModelConfig& m, const Sampler& s, uint64_t seed, int steps,
                                std::vector<float>* final_params = nullptr) {
  auto st = Stage::Create(m, 0, NumLayers(m), seed).value();
  std::vector<double> losses;
  for (int i = 0; i < steps; ++i) {
    losses.push_back(ComputeGradients(*st, s, i).value());
    EXPECT_TRUE(st->OptimizerStep().ok());
  }
  if (final_params) final_params->assign(st->param_data(), st->param_data() + st->num_params());
  return losses;
}

TEST_F(ModelTest, SameSeedGivesBitIdenticalLossCurves) {
  ModelConfig m = TinyModel();
  Sampler s = MakeSampler(16, 2, 4);
  std::vector<float> pa, pb;
  auto a = TrainLosses(m, s, 7, 4, &pa), b = TrainLosses(m, s, 7, 4, &pb);
  EXPECT_EQ(a, b);  // exact, not approximate
  EXPECT_EQ(pa, pb);
  auto c = TrainLosses(m, s, 8, 4);
  EXPECT_NE(a, c);
}

TEST_F(ModelTest, LossFallsOnTheCorpus) {
  ModelConfig m = TinyModel();
  m.layers = 2;
  m.seq_len = 32;
  AdamWOptions o;
  o.lr = 3e-3;
  auto st = Make(m, 0, 4, 1, o);
  Sampler s = MakeSampler(32, 8, 8);
  double first = 0, last5 = 0;
  for (int i = 0; i < 60; ++i) {
    double l = ComputeGradients(*st, s, i).value();
    ASSERT_TRUE(st->OptimizerStep().ok());
    if (i == 0) first = l;
    if (i >= 55) last5 += l / 5;
  }
  EXPECT_GT(first, 5.3);
  EXPECT_LT(last5, 3.2)
      << "a bigram-free model would sit near the corpus' unigram entropy (~3.0 nats)";
}

TEST_F(ModelTest, FlatAdamWMatchesTorchAdamW) {
  auto gen = at::detail::createCPUGenerator(3);
  Tensor p0 = torch::randn({1000}, gen);
  AdamWOptions o;
  o.lr = 0.01;
  o.weight_decay = 0.05;
  AdamW ours(1000, o);
  std::vector<float> mine(p0.data_ptr<float>(), p0.data_ptr<float>() + 1000);
  Tensor theirs = p0.clone().requires_grad_(true);
  torch::optim::AdamW ref({theirs}, torch::optim::AdamWOptions(0.01).weight_decay(0.05));
  for (int step = 0; step < 5; ++step) {
    Tensor g = torch::randn({1000}, gen);
    theirs.mutable_grad() = g.clone();
    ref.step();
    ASSERT_TRUE(ours.Step(mine.data(), g.data_ptr<float>(), 1000).ok());
  }
  Tensor diff = Flat(mine.data(), 1000) - theirs.detach();
  EXPECT_LE(diff.abs().max().item<double>(), 1e-6);
  EXPECT_GT((theirs.detach() - p0).abs().max().item<double>(), 0.04);  // it did move
}

class CheckpointTest : public ModelTest {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("gt_stage_ckpt_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& n) const { return (dir_ / n).string(); }
  fs::path dir_;
};

// Writes `stage`'s layers into dir_ as the checkpoint writer does, shared by `writers` replicas.
void WriteAll(const Stage& stage, const std::string& dir, int writers) {
  LayerState st;
  ASSERT_TRUE(stage.Snapshot(&st).ok());
  for (int r = 0; r < writers; ++r) {
    auto files = WriteLayerFiles(dir, st, LayersWrittenBy(stage.first(), stage.last(), r, writers));
    ASSERT_TRUE(files.ok()) << files.status().ToString();
    for (const auto& f : *files) EXPECT_EQ(f.sha256.size(), 64u);
  }
}

TEST_F(CheckpointTest, ResumeContinuesTheIdenticalLossCurve) {
  ModelConfig m = TinyModel();
  Sampler s = MakeSampler(16, 2, 4);
  auto uninterrupted = TrainLosses(m, s, 5, 6);

  auto a = Make(m, 0, 6, 5);
  std::vector<double> resumed;
  for (int i = 0; i < 3; ++i) {
    resumed.push_back(ComputeGradients(*a, s, i).value());
    ASSERT_TRUE(a->OptimizerStep().ok());
  }
  WriteAll(*a, dir_.string(), 2);  // two replicas share the writing
  a.reset();
  auto b = Make(m, 0, 6, 999);  // a different init: everything must come from the files
  LayerState st;
  Status read = ReadLayerState(dir_.string(), m, 0, 6, &st);
  ASSERT_TRUE(read.ok()) << read.ToString();
  EXPECT_EQ(st.adamw_steps, 3);
  EXPECT_EQ(st.seed, 5u);
  ASSERT_TRUE(b->Restore(st).ok());
  EXPECT_EQ(b->optimizer().steps_taken(), 3);
  for (int64_t i = 3; i < 6; ++i) {
    resumed.push_back(ComputeGradients(*b, s, i).value());
    ASSERT_TRUE(b->OptimizerStep().ok());
  }
  EXPECT_EQ(resumed, uninterrupted);
  EXPECT_TRUE(b->BuffersAliased());
}

TEST_F(CheckpointTest, AnySplitLoadsWhatAnotherSplitWrote) {
  ModelConfig m = TinyModel();
  Sampler s = MakeSampler(16, 2, 4);
  auto whole = Make(m, 0, 6, 5);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(ComputeGradients(*whole, s, i).ok());
    ASSERT_TRUE(whole->OptimizerStep().ok());
  }
  // Written by three stages [0,2) [2,4) [4,6) restored from the whole model's state...
  LayerState all;
  ASSERT_TRUE(whole->Snapshot(&all).ok());
  const fs::path three = dir_ / "three", two = dir_ / "two";
  fs::create_directories(three);
  fs::create_directories(two);
  for (auto [f, l] : {std::pair{0, 2}, {2, 4}, {4, 6}}) {
    auto part = Make(m, f, l, 77);
    LayerState st;
    ASSERT_TRUE(ReadLayerState(dir_.string(), m, f, l, &st).code() == Code::kNotFound);  // nothing there yet
    WriteAll(*whole, dir_.string(), 1);
    ASSERT_TRUE(ReadLayerState(dir_.string(), m, f, l, &st).ok());
    ASSERT_TRUE(part->Restore(st).ok());
    WriteAll(*part, three.string(), 1);
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.is_regular_file()) fs::remove(e.path());
  }
  // ...read back as two stages [0,3) [3,6), then written again and read as one.
  for (auto [f, l] : {std::pair{0, 3}, {3, 6}}) {
    auto part = Make(m, f, l, 88);
    LayerState st;
    Status r = ReadLayerState(three.string(), m, f, l, &st);
    ASSERT_TRUE(r.ok()) << r.ToString();
    ASSERT_TRUE(part->Restore(st).ok());
    const int64_t off = RangeParamCount(m, 0, f);
    EXPECT_EQ(std::memcmp(part->param_data(), whole->param_data() + off, sizeof(float) * part->num_params()), 0);
    EXPECT_EQ(std::memcmp(st.exp_avg.data(), all.exp_avg.data() + off, sizeof(float) * part->num_params()), 0);
    EXPECT_EQ(st.adamw_steps, 2);
    WriteAll(*part, two.string(), 2);
  }
  LayerState back;
  ASSERT_TRUE(ReadLayerState(two.string(), m, 0, 6, &back).ok());
  EXPECT_EQ(back.params, all.params);
  EXPECT_EQ(back.exp_avg, all.exp_avg);
  EXPECT_EQ(back.exp_avg_sq, all.exp_avg_sq);
}

TEST_F(CheckpointTest, DamagedOrForeignLayerFilesAreRejectedAndChangeNothing) {
  ModelConfig m = TinyModel();
  auto a = Make(m, 0, 3, 5);
  WriteAll(*a, dir_.string(), 1);
  const std::string file = (dir_ / LayerFileName(1)).string();
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();

  auto b = Make(m, 0, 3, 6);
  std::vector<float> before(b->param_data(), b->param_data() + b->num_params());
  auto unchanged = [&] {
    return std::memcmp(before.data(), b->param_data(), sizeof(float) * before.size()) == 0;
  };
  LayerState st;
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x01;
  std::ofstream(file, std::ios::binary | std::ios::trunc) << flipped;
  Status r = ReadLayerState(dir_.string(), m, 0, 3, &st);
  EXPECT_EQ(r.code(), Code::kParseError);
  EXPECT_NE(r.message().find("corrupt"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find(LayerFileName(1)), std::string::npos) << r.message();

  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() * 3 / 4);
  r = ReadLayerState(dir_.string(), m, 0, 3, &st);
  EXPECT_EQ(r.code(), Code::kParseError);
  EXPECT_NE(r.message().find("truncated"), std::string::npos) << r.message();
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;

  ModelConfig wider = m;
  wider.hidden = 64;
  r = ReadLayerState(dir_.string(), wider, 0, 3, &st);
  EXPECT_EQ(r.code(), Code::kInvalidArgument) << r.ToString();
  EXPECT_EQ(ReadLayerState(dir_.string(), m, 0, 4, &st).code(), Code::kNotFound);  // layer 3 was not written

  ASSERT_TRUE(ReadLayerState(dir_.string(), m, 0, 3, &st).ok());
  auto other_range = Make(m, 0, 2, 5);
  EXPECT_EQ(other_range->Restore(st).code(), Code::kInvalidArgument);
  EXPECT_TRUE(unchanged());
  ASSERT_TRUE(b->Restore(st).ok());
  EXPECT_EQ(std::memcmp(a->param_data(), b->param_data(), sizeof(float) * a->num_params()), 0);
}

TEST_F(CheckpointTest, AsyncWriterWritesInTheBackgroundOneAtATime) {
  ModelConfig m = TinyModel();
  auto a = Make(m, 0, 6, 5);
  AsyncCheckpointWriter w;
  for (int step = 1; step <= 3; ++step) {
    LayerState* buf = w.AcquireBuffer();  // waits for the previous write
    ASSERT_TRUE(a->Snapshot(buf).ok());
    w.Submit({step, (dir_ / ("step" + std::to_string(step))).string(), LayersWrittenBy(0, 6, 0, 1)});
  }
  int finished = 0;
  while (auto f = w.TakeFinished()) {
    EXPECT_TRUE(f->status.ok()) << f->status.ToString();
    ++finished;
  }
  if (auto f = w.WaitFinished()) ++finished;
  EXPECT_EQ(finished, 3);
  EXPECT_FALSE(w.busy());
  for (int step = 1; step <= 3; ++step) {
    LayerState st;
    EXPECT_TRUE(ReadLayerState((dir_ / ("step" + std::to_string(step))).string(), m, 0, 6, &st).ok());
  }
  // An unwritable directory is an error reported back, not a crash.
  LayerState* buf = w.AcquireBuffer();
  ASSERT_TRUE(a->Snapshot(buf).ok());
  std::ofstream(dir_ / "file") << "x";
  w.Submit({4, (dir_ / "file" / "sub").string(), {0}});
  auto f = w.WaitFinished();
  ASSERT_TRUE(f.has_value());
  EXPECT_FALSE(f->status.ok());
}

}  // namespace
}  // namespace gt::worker
