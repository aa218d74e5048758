// The pipeline path (worker/pipeline.h) against the same model on one process: 2 stages x 2
// data-parallel replicas as threads, activations and gradients over the real ZeroMQ Transport
// (inproc://), gradients averaged with the gloo collective (loopback sockets, MemoryStore).
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "comms/collective.h"
#include "comms/store.h"
#include "comms/transport.h"
#include "worker/layout.h"
#include "worker/model.h"
#include "worker/pipeline.h"

namespace gt::worker {
namespace {

ModelConfig TinyModel() {
  ModelConfig m;
  m.layers = 2;
  m.hidden = 32;
  m.heads = 2;
  m.seq_len = 16;
  m.vocab = 256;
  m.micro_batch = 2;
  m.global_batch = 8;
  return m;
}

std::vector<uint8_t> Corpus() {
  std::vector<uint8_t> c;
  const std::string words[] = {"wind ", "solar ", "grid ", "carbon ", "train ", "model ", "site "};
  uint64_t x = 7;
  while (c.size() < 8192) {
    x = Mix64(x);
    for (char ch : words[x % 7]) c.push_back(static_cast<uint8_t>(ch));
  }
  return c;
}

struct RankResult {
  Status status;
  std::vector<std::vector<float>> grads;  // per step, after the replica average (before the update)
  std::vector<double> losses;             // last stage: replica loss per step
  int first = 0, last = 0;
};

// Runs `steps` pipeline steps on S stages x R replicas (threads); returns results per [stage][replica].
std::vector<std::vector<RankResult>> RunPipeline(int S, int R, int steps, const Sampler& sampler,
                                                 const std::string& tag) {
  const ModelConfig model = TinyModel();
  auto store = std::make_shared<MemoryStore>();
  std::vector<std::vector<RankResult>> out(S, std::vector<RankResult>(R));
  auto name = [&](int k, int r) { return "inproc://gt-live-" + tag + "-s" + std::to_string(k) + "r" + std::to_string(r); };
  // Bind every transport before any thread connects.
  std::vector<std::vector<std::unique_ptr<Transport>>> tr(S);
  for (int k = 0; k < S; ++k)
    for (int r = 0; r < R; ++r) {
      TransportOptions o;
      o.name = "s" + std::to_string(k) + "r" + std::to_string(r);
      o.bind_endpoint = name(k, r);
      o.plaintext = true;
      auto t = Transport::Create(o);
      EXPECT_TRUE(t.ok()) << t.status().ToString();
      tr[k].push_back(t.ok() ? std::move(*t) : nullptr);
    }
  std::vector<std::thread> threads;
  for (int k = 0; k < S; ++k)
    for (int r = 0; r < R; ++r)
      threads.emplace_back([&, k, r] {
        RankResult& res = out[k][r];
        Transport* t = tr[k][r].get();
        if (!t) { res.status = Internal("no transport"); return; }
        PipelineRole role;
        role.stage = k;
        role.num_stages = S;
        role.replica = r;
        role.replicas = R;
        auto split = EvenLayerSplit(model, k, S);
        if (!split.ok()) { res.status = split.status(); return; }
        role.first_layer = split->first;
        role.last_layer = split->second;
        res.first = role.first_layer;
        res.last = role.last_layer;
        role.seed = 11;
        role.receive_timeout = std::chrono::milliseconds(30000);
        if (k > 0) { role.prev_peer = "prev"; res.status = t->Connect("prev", name(k - 1, r), ""); }
        if (k + 1 < S) { role.next_peer = "next"; res.status = t->Connect("next", name(k + 1, r), ""); }
        if (!res.status.ok()) return;
        std::unique_ptr<Collective> coll;
        if (R > 1) {
          CollectiveOptions co;
          co.store = store;
          co.job = tag + "-stage" + std::to_string(k);
          for (int i = 0; i < R; ++i) co.members.push_back(k * R + i);
          co.self = k * R + r;
          co.timeout = std::chrono::milliseconds(30000);
          auto c = MakeCollective("gloo", co);
          if (!c.ok()) { res.status = c.status(); return; }
          coll = std::move(*c);
        }
        auto rank = PipelineRank::Create(model, role, &sampler, t, coll.get());
        if (!rank.ok()) { res.status = rank.status(); return; }
        for (int s = 0; s < steps; ++s) {
          StepStats st;
          res.status = (*rank)->ComputeGradients(s, &st);
          if (!res.status.ok()) return;
          res.grads.emplace_back((*rank)->grad_data(), (*rank)->grad_data() + (*rank)->num_params());
          res.losses.push_back(st.loss);
          EXPECT_GT(st.wall_seconds, 0);
          EXPECT_GE(st.wall_seconds, st.compute_seconds);
          res.status = (*rank)->ApplyGradients();
          if (!res.status.ok()) return;
        }
      });
  for (auto& th : threads) th.join();
  return out;
}

// The whole model on one process: per step, the replica-averaged gradient and the mean loss.
void RunWhole(int R, int steps, const Sampler& sampler, std::vector<std::vector<float>>* grads,
              std::vector<double>* losses) {
  auto whole = Stage::Create(TinyModel(), 0, NumLayers(TinyModel()), 11);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  Stage& w = **whole;
  const int64_t n = w.num_params();
  for (int s = 0; s < steps; ++s) {
    std::vector<float> avg(n, 0.0f);
    double loss = 0;
    for (int r = 0; r < R; ++r) {
      auto l = ComputeGradients(w, sampler, s, r, R);
      ASSERT_TRUE(l.ok()) << l.status().ToString();
      loss += *l / R;
      for (int64_t i = 0; i < n; ++i) avg[i] += w.grad_data()[i] / R;
    }
    ASSERT_TRUE(w.CopyGradsFrom(avg.data(), n).ok());
    grads->push_back(avg);
    losses->push_back(loss);
    ASSERT_TRUE(w.OptimizerStep().ok());
  }
}

class PipelineTest : public ::testing::TestWithParam<std::pair<int, int>> {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(SetComputeThreads(1).ok()); }
};

TEST_P(PipelineTest, GradientsAndLossesMatchOneProcess) {
  const auto [S, R] = GetParam();
  const int steps = 3;
  SamplerOptions so;
  so.seq_len = TinyModel().seq_len;
  so.micro_batch = TinyModel().micro_batch;
  so.global_batch = TinyModel().global_batch;
  so.seed = 5;
  auto sampler = Sampler::Create(Corpus(), so);
  ASSERT_TRUE(sampler.ok()) << sampler.status().ToString();

  std::vector<std::vector<float>> want_grads;
  std::vector<double> want_losses;
  RunWhole(R, steps, *sampler, &want_grads, &want_losses);
  ASSERT_EQ(want_grads.size(), static_cast<size_t>(steps));

  auto got = RunPipeline(S, R, steps, *sampler, "p" + std::to_string(S) + "x" + std::to_string(R));
  const ModelConfig m = TinyModel();
  for (int k = 0; k < S; ++k)
    for (int r = 0; r < R; ++r) {
      const RankResult& res = got[k][r];
      ASSERT_TRUE(res.status.ok()) << "stage " << k << " replica " << r << ": " << res.status.ToString();
      ASSERT_EQ(res.grads.size(), static_cast<size_t>(steps));
      const int64_t offset = RangeParamCount(m, 0, res.first);
      const int64_t count = RangeParamCount(m, res.first, res.last);
      for (int s = 0; s < steps; ++s) {
        ASSERT_EQ(res.grads[s].size(), static_cast<size_t>(count));
        double max_diff = 0, max_abs = 0;
        for (int64_t i = 0; i < count; ++i) {
          max_diff = std::max(max_diff, std::fabs(double(res.grads[s][i]) - want_grads[s][offset + i]));
          max_abs = std::max(max_abs, std::fabs(double(want_grads[s][offset + i])));
        }
        EXPECT_GT(max_abs, 1e-6) << "stage " << k << " has a zero gradient";
        EXPECT_LE(max_diff, 1e-5 * std::max(1.0, max_abs))
            << "stage " << k << " replica " << r << " step " << s << " max |diff| " << max_diff;
      }
    }
  // The last stage's replica losses average to the whole model's loss, step by step (after updates).
  for (int s = 0; s < steps; ++s) {
    double loss = 0;
    for (int r = 0; r < R; ++r) loss += got[S - 1][r].losses[s] / R;
    EXPECT_NEAR(loss, want_losses[s], 1e-5) << "step " << s;
  }
}

INSTANTIATE_TEST_SUITE_P(StagesByReplicas, PipelineTest,
                         ::testing::Values(std::make_pair(2, 2), std::make_pair(3, 1)),
                         [](const auto& info) {
                           return std::to_string(info.param.first) + "stages_" + std::to_string(info.param.second) +
                                  "replicas";
                         });

TEST(EvenLayerSplit, CoversAllLayersInOrder) {
  ModelConfig m = TinyModel();  // 4 layers
  auto a = EvenLayerSplit(m, 0, 3), b = EvenLayerSplit(m, 1, 3), c = EvenLayerSplit(m, 2, 3);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a, std::make_pair(0, 2));
  EXPECT_EQ(*b, std::make_pair(2, 3));
  EXPECT_EQ(*c, std::make_pair(3, 4));
  EXPECT_FALSE(EvenLayerSplit(m, 0, 5).ok());
  EXPECT_FALSE(EvenLayerSplit(m, 3, 3).ok());
}

}  // namespace
}  // namespace gt::worker
