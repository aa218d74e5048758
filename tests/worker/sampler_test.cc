// Torch-free parts of the worker: layer layout, sampler, AdamW arithmetic.
#include "worker/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "worker/adamw.h"
#include "worker/layout.h"

namespace gt::worker {
namespace {

ModelConfig SmallModel() {
  ModelConfig m;
  m.layers = 3;
  m.hidden = 4;
  m.heads = 2;
  m.seq_len = 3;
  m.vocab = 10;
  m.micro_batch = 1;
  return m;
}

TEST(LayoutTest, LayerIndexingAndParamCounts) {
  ModelConfig m = SmallModel();
  EXPECT_EQ(NumLayers(m), 5);
  // Hand counts: embedding 10*4 + 3*4; block 12*16 + 13*4; head ln 2*4 + head 4*10.
  EXPECT_EQ(LayerParamCount(m, 0), 52);
  EXPECT_EQ(LayerParamCount(m, 1), 244);
  EXPECT_EQ(LayerParamCount(m, 3), 244);
  EXPECT_EQ(LayerParamCount(m, 4), 48);
  EXPECT_EQ(LayerParamCount(m, 5), 0);
  EXPECT_EQ(RangeParamCount(m, 0, 5), 52 + 3 * 244 + 48);
  EXPECT_EQ(RangeParamCount(m, 1, 3), 488);
}

TEST(LayoutTest, ValidateRejectsBadModelsAndRanges) {
  ModelConfig m = SmallModel();
  EXPECT_TRUE(ValidateRange(m, 0, 5).ok());
  EXPECT_TRUE(ValidateRange(m, 4, 5).ok());
  EXPECT_EQ(ValidateRange(m, 2, 2).code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidateRange(m, 0, 6).code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidateRange(m, -1, 2).code(), Code::kInvalidArgument);
  m.heads = 3;
  Status s = ValidateModel(m);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("model.heads"), std::string::npos) << s.message();
  m = SmallModel();
  m.layers = 0;
  EXPECT_FALSE(ValidateModel(m).ok());
}

TEST(LayoutTest, LayerSeedsDifferAcrossLayersAndSeeds) {
  std::set<uint64_t> seen;
  for (uint64_t seed : {0, 1, 2})
    for (int l = 0; l < 10; ++l) seen.insert(LayerSeed(seed, l));
  EXPECT_EQ(seen.size(), 30u);  // seed + layer collisions (e.g. (0,1) vs (1,0)) must not happen
  EXPECT_EQ(LayerSeed(7, 3), LayerSeed(7, 3));
}

std::vector<uint8_t> Bytes(int n) {
  std::vector<uint8_t> v(n);
  for (int i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 7 + 3) % 251);
  return v;
}

TEST(SamplerTest, WindowsAreCorpusBytesAtTheirStart) {
  auto corpus = Bytes(1000);
  auto s = Sampler::Create(corpus, {8, 2, 4, 42});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto b = s->MicroBatch(3, 1, 2, 0);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->rows, 2);
  ASSERT_EQ(b->cols, 9);
  for (int r = 0; r < 2; ++r) {
    const int64_t start = s->WindowStart(3, 2 + r);  // replica 1 of 2 owns samples 2, 3
    ASSERT_GE(start, 0);
    ASSERT_LE(start + 9, 1000);
    for (int c = 0; c < 9; ++c) EXPECT_EQ(b->at(r, c), corpus[start + c]);
  }
}

TEST(SamplerTest, DeterministicForSeedAndDifferentAcrossSeeds) {
  auto a = Sampler::Create(Bytes(5000), {16, 4, 8, 1});
  auto b = Sampler::Create(Bytes(5000), {16, 4, 8, 1});
  auto c = Sampler::Create(Bytes(5000), {16, 4, 8, 2});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  int differ = 0;
  for (int step = 0; step < 5; ++step)
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(a->WindowStart(step, i), b->WindowStart(step, i));
      differ += a->WindowStart(step, i) != c->WindowStart(step, i);
    }
  EXPECT_GT(differ, 30);
}

TEST(SamplerTest, ReplicasPartitionTheSameGlobalBatch) {
  auto s = Sampler::Create(Bytes(20000), {8, 2, 8, 9});
  ASSERT_TRUE(s.ok());
  for (int step : {0, 5}) {
    auto whole = s->Samples(step, 0, 8);
    for (int replicas : {1, 2, 4}) {
      auto micros = s->MicroBatchesPerReplica(replicas);
      ASSERT_TRUE(micros.ok());
      ASSERT_EQ(*micros * replicas * 2, 8);
      std::vector<int64_t> concat;
      std::set<int64_t> starts;
      for (int r = 0; r < replicas; ++r)
        for (int k = 0; k < *micros; ++k) {
          auto b = s->MicroBatch(step, r, replicas, k);
          ASSERT_TRUE(b.ok());
          concat.insert(concat.end(), b->tokens.begin(), b->tokens.end());
        }
      EXPECT_EQ(concat, whole.tokens) << "replicas=" << replicas;
      for (int i = 0; i < 8; ++i) starts.insert(s->WindowStart(step, i));
      EXPECT_EQ(starts.size(), 8u) << "samples of one step must be distinct windows";
    }
  }
}

TEST(SamplerTest, EachEpochVisitsEveryWindowOnce) {
  // 100 bytes, seq_len 9: 91 window starts; global batch 7 -> 13 steps per epoch.
  auto s = Sampler::Create(Bytes(100), {9, 7, 7, 5});
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->num_windows(), 91);
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::set<int64_t> seen;
    for (int step = epoch * 13; step < (epoch + 1) * 13; ++step)
      for (int i = 0; i < 7; ++i) seen.insert(s->WindowStart(step, i));
    EXPECT_EQ(seen.size(), 91u);
    EXPECT_EQ(*seen.begin(), 0);
    EXPECT_EQ(*seen.rbegin(), 90);
  }
  EXPECT_NE(s->WindowStart(0, 0) * 1000 + s->WindowStart(0, 1),
            s->WindowStart(13, 0) * 1000 + s->WindowStart(13, 1))
      << "epochs should use different permutations";
}

TEST(SamplerTest, RejectsBadOptionsAndIndices) {
  EXPECT_EQ(Sampler::Create(Bytes(10), {9, 1, 1, 0}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Sampler::Create(Bytes(100), {9, 3, 8, 0}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Sampler::Create(Bytes(100), {0, 1, 1, 0}).status().code(), Code::kInvalidArgument);
  auto s = Sampler::Create(Bytes(100), {9, 2, 4, 0});
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->MicroBatchesPerReplica(3).ok());
  EXPECT_FALSE(s->MicroBatch(0, 2, 2, 0).ok());
  EXPECT_FALSE(s->MicroBatch(0, 0, 2, 1).ok());
  EXPECT_FALSE(s->MicroBatch(-1, 0, 2, 0).ok());
  EXPECT_EQ(Sampler::FromFile("/nonexistent/corpus.txt", {9, 2, 4, 0}).status().code(),
            Code::kNotFound);
}

TEST(SamplerTest, BundledCorpusIsModestAscii) {
  auto s = Sampler::FromFile(DefaultCorpusPath(), {64, 8, 8, 1});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_GE(s->corpus_bytes(), 100000);
  EXPECT_LE(s->corpus_bytes(), 300000);
  auto b = s->Samples(0, 0, 8);
  for (int64_t t : b.tokens) {
    EXPECT_GE(t, 0);
    EXPECT_LT(t, 128);
  }
}

TEST(AdamWTest, HandComputedStep) {
  // m = 0.05, v = 0.00025, bias-corrected 0.5 and 0.25: update = lr * 0.5 / (0.5 + eps).
  AdamWOptions o;
  o.lr = 0.1;
  o.weight_decay = 0.1;
  AdamW opt(2, o);
  float p[2] = {1.0f, -2.0f};
  const float g[2] = {0.5f, 0.0f};
  ASSERT_TRUE(opt.Step(p, g, 2).ok());
  EXPECT_NEAR(p[0], 1.0 * (1 - 0.01) - 0.1, 1e-6);
  EXPECT_NEAR(p[1], -2.0 * (1 - 0.01), 1e-6);  // zero gradient: only the decay
  EXPECT_EQ(opt.steps_taken(), 1);
  EXPECT_NEAR(opt.exp_avg()[0], 0.05, 1e-7);
  EXPECT_NEAR(opt.exp_avg_sq()[0], 0.00025, 1e-9);
  EXPECT_EQ(opt.Step(p, g, 3).code(), Code::kInvalidArgument);
  EXPECT_EQ(opt.steps_taken(), 1);
  EXPECT_FALSE(opt.SetState(1, {0.f}, {0.f, 0.f}).ok());
  EXPECT_TRUE(opt.SetState(4, {0.f, 1.f}, {0.f, 1.f}).ok());
  EXPECT_EQ(opt.steps_taken(), 4);
}

}  // namespace
}  // namespace gt::worker
