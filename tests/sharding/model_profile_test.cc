#include "sharding/model_profile.h"

#include <gtest/gtest.h>

namespace gt {
namespace {

ModelConfig SmallModel() {
  ModelConfig m;
  m.layers = 4;
  m.hidden = 1024;
  m.heads = 16;
  m.seq_len = 512;
  m.vocab = 1000;
  m.micro_batch = 2;
  m.global_batch = 64;
  m.bytes_per_param = 2;
  m.optimizer_bytes_per_param = 12;
  return m;
}

TEST(ModelProfile, GptFormulasByHand) {
  auto p = BuildGptProfile(SmallModel());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->num_layers(), 6);
  EXPECT_EQ(p->layer(0).kind, LayerKind::kEmbedding);
  EXPECT_EQ(p->layer(3).kind, LayerKind::kBlock);
  EXPECT_EQ(p->layer(5).kind, LayerKind::kHead);

  // Embedding: 1000*1024 + 512*1024; block: 12*1024^2 + 13*1024; head: 1000*1024 + 2*1024.
  EXPECT_DOUBLE_EQ(p->layer(0).params, 1548288.0);
  EXPECT_DOUBLE_EQ(p->layer(1).params, 12596224.0);
  EXPECT_DOUBLE_EQ(p->layer(5).params, 1026048.0);
  EXPECT_DOUBLE_EQ(p->TotalParams(), 52959232.0);

  // Block forward per sample: 512 * (2 * 12596224 + 4 * 512 * 1024) = 13972275200.
  EXPECT_DOUBLE_EQ(p->layer(2).forward_flops_per_sample, 13972275200.0);
  EXPECT_DOUBLE_EQ(p->layer(2).backward_flops_per_sample, 2 * 13972275200.0);
  // Head forward per sample: 512 * 2 * 1000 * 1024.
  EXPECT_DOUBLE_EQ(p->layer(5).forward_flops_per_sample, 1048576000.0);
  EXPECT_DOUBLE_EQ(p->layer(0).forward_flops_per_sample, 524288.0);

  // Boundary: b s h p = 2 * 512 * 1024 * 2.
  EXPECT_DOUBLE_EQ(p->BoundaryBytesPerMicroBatch(), 2097152.0);
  EXPECT_DOUBLE_EQ(p->layer(3).output_bytes_per_micro_batch, 2097152.0);
  // Block stash: 2*512*1024*(34 + 5*16*512/1024) * 2/2 = 1048576 * 74.
  EXPECT_DOUBLE_EQ(p->layer(3).stash_bytes_per_micro_batch, 77594624.0);
  // Head stash: b s h p + 4 b s V = 2097152 + 4096000.
  EXPECT_DOUBLE_EQ(p->layer(5).stash_bytes_per_micro_batch, 6193152.0);

  EXPECT_DOUBLE_EQ(p->layer(1).weight_bytes, 2 * 12596224.0);
  EXPECT_DOUBLE_EQ(p->layer(1).optimizer_bytes, 12 * 12596224.0);
  EXPECT_DOUBLE_EQ(p->StateBytes(1, 3), 2 * 14 * 12596224.0);
  EXPECT_EQ(p->MicroBatchesPerStep(), 32);
}

TEST(ModelProfile, MicroBatchesRoundUp) {
  ModelConfig m = SmallModel();
  m.global_batch = 65;
  auto p = BuildGptProfile(m);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->MicroBatchesPerStep(), 33);
}

TEST(ModelProfile, RejectsBadConfigNamingTheField) {
  struct Case {
    const char* field;
    void (*mutate)(ModelConfig&);
  };
  const Case cases[] = {
      {"model.layers", [](ModelConfig& m) { m.layers = 0; }},
      {"model.hidden", [](ModelConfig& m) { m.hidden = -1; }},
      {"model.heads", [](ModelConfig& m) { m.heads = 0; }},
      {"model.seq_len", [](ModelConfig& m) { m.seq_len = 0; }},
      {"model.vocab", [](ModelConfig& m) { m.vocab = 0; }},
      {"model.micro_batch", [](ModelConfig& m) { m.micro_batch = 0; }},
      {"model.global_batch", [](ModelConfig& m) { m.global_batch = 0; }},
      {"model.bytes_per_param", [](ModelConfig& m) { m.bytes_per_param = 0; }},
      {"model.optimizer_bytes_per_param", [](ModelConfig& m) { m.optimizer_bytes_per_param = -4; }},
  };
  for (const Case& c : cases) {
    ModelConfig m = SmallModel();
    c.mutate(m);
    auto p = BuildGptProfile(m);
    ASSERT_FALSE(p.ok()) << c.field;
    EXPECT_EQ(p.status().code(), Code::kInvalidArgument);
    EXPECT_NE(p.status().message().find(c.field), std::string::npos) << p.status().message();
  }
}

TEST(ModelProfile, MeasurementsOverrideAndCalibrationScales) {
  auto p = BuildGptProfile(SmallModel());
  ASSERT_TRUE(p.ok());
  const double est = p->layer(2).train_flops_per_sample();
  EXPECT_DOUBLE_EQ(p->EffectiveTrainFlops(2), est);

  ASSERT_TRUE(p->SetCalibration(1.5).ok());
  EXPECT_DOUBLE_EQ(p->EffectiveTrainFlops(2), 1.5 * est);

  // 0.01 s per sample on a 1e14 FLOP/s GPU = 1e12 flop-equivalents, regardless of calibration.
  ASSERT_TRUE(p->SetMeasuredLayerTime(2, 0.01, 1e14).ok());
  EXPECT_DOUBLE_EQ(p->EffectiveTrainFlops(2), 1e12);
  EXPECT_DOUBLE_EQ(p->EffectiveTrainFlops(3), 1.5 * est);

  // A stage measurement spreads by FLOP share: two equal blocks get half each.
  ASSERT_TRUE(p->SetMeasuredStageTime(1, 3, 0.02, 1e14).ok());
  EXPECT_DOUBLE_EQ(p->EffectiveTrainFlops(1), 1e12);
  EXPECT_DOUBLE_EQ(p->EffectiveTrainFlops(2), 1e12);

  p->ClearMeasurements();
  EXPECT_DOUBLE_EQ(p->EffectiveTrainFlops(2), 1.5 * est);

  EXPECT_EQ(p->SetCalibration(0).code(), Code::kInvalidArgument);
  EXPECT_EQ(p->SetMeasuredLayerTime(6, 0.01, 1e14).code(), Code::kInvalidArgument);
  EXPECT_EQ(p->SetMeasuredLayerTime(-1, 0.01, 1e14).code(), Code::kInvalidArgument);
  EXPECT_EQ(p->SetMeasuredLayerTime(1, 0, 1e14).code(), Code::kInvalidArgument);
  EXPECT_EQ(p->SetMeasuredLayerTime(1, 0.01, -1).code(), Code::kInvalidArgument);
  EXPECT_EQ(p->SetMeasuredStageTime(3, 3, 0.01, 1e14).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace gt
