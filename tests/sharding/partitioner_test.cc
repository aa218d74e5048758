#include "sharding/partitioner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

namespace gt {
namespace {

::testing::AssertionResult Contains(const std::string& haystack, const std::string& needle) {
  if (haystack.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << haystack << "' does not contain '" << needle << "'";
}

// 24 blocks of h = 2048 with a tiny vocabulary, so that embedding and head are light and layer
// counts track FLOPs.
ModelConfig Gpt24() {
  ModelConfig m;
  m.layers = 24;
  m.hidden = 2048;
  m.heads = 16;
  m.seq_len = 2048;
  m.vocab = 8;
  m.micro_batch = 1;
  m.global_batch = 512;
  return m;
}

SiteResources Site(const std::string& name, double peak_tflops = 312, double memory_gb = 80) {
  SiteResources s;
  s.name = name;
  s.peak_tflops = peak_tflops;
  s.mfu = 0.4;
  s.memory_gb = memory_gb;
  return s;
}

Partitioner MakePartitioner(const ModelConfig& mc, const Cluster& c, PartitionOptions o = {}) {
  auto prof = BuildGptProfile(mc);
  EXPECT_TRUE(prof.ok()) << prof.status().ToString();
  auto p = Partitioner::Create(*prof, c, o);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return std::move(p).value();
}

Cluster TwoSites(SiteResources a, SiteResources b, double gbps, double latency_ms) {
  Cluster c({a, b});
  if (gbps > 0) c.SetLink(0, 1, LinkSpec{gbps, latency_ms});
  return c;
}

double StageFlops(const ModelProfile& prof, const StagePlacement& st) {
  double f = 0;
  for (int i = st.first_layer; i < st.last_layer; ++i) f += prof.EffectiveTrainFlops(i);
  return f;
}

void ExpectWellFormed(const Partition& p, const Partitioner& pt, const std::vector<int>& gpus) {
  ASSERT_FALSE(p.stages.empty());
  EXPECT_EQ(p.stages.front().first_layer, 0);
  EXPECT_EQ(p.stages.back().last_layer, pt.profile().num_layers());
  std::vector<int> used(gpus.size(), 0);
  int total = 0;
  for (size_t k = 0; k < p.stages.size(); ++k) {
    const StagePlacement& s = p.stages[k];
    if (k > 0) {
      EXPECT_EQ(s.first_layer, p.stages[k - 1].last_layer);
      EXPECT_TRUE(pt.cluster().link(p.stages[k - 1].site, s.site).exists());
    }
    EXPECT_LT(s.first_layer, s.last_layer);
    EXPECT_EQ(used[s.site], 0) << "site holds two stages";
    used[s.site] = s.gpus_used;
    total += s.gpus_used;
    EXPECT_EQ(s.gpus_used, s.gpus_per_replica * s.data_parallel);
    EXPECT_LE(s.gpus_used, gpus[s.site]);
    EXPECT_LE(s.memory_bytes_per_gpu, pt.cluster().sites[s.site].memory_gb * 1e9);
  }
  EXPECT_EQ(used, p.gpus_used_per_site);
  EXPECT_EQ(total, p.total_gpus_used);
  EXPECT_NEAR(p.steps_per_hour * p.step_seconds, 3600.0, 1e-6);
  EXPECT_NEAR(p.fill_seconds + p.steady_seconds + p.allreduce_seconds, p.step_seconds,
              1e-9 * p.step_seconds);
}

// ---------------------------------------------------------------------------------------------
// Single site: the step is m micro-batches of FLOP time plus the ring allreduce, by hand.
TEST(Partitioner, SingleSiteEqualsHandComputedFlopTime) {
  ModelConfig mc;
  mc.layers = 4;
  mc.hidden = 1024;
  mc.heads = 16;
  mc.seq_len = 512;
  mc.vocab = 1000;
  mc.micro_batch = 2;
  mc.global_batch = 64;  // N = 32 micro-batches
  SiteResources s = Site("solo", 100);
  s.mfu = 0.5;  // 5e13 FLOP/s per GPU
  Cluster c({s});
  Partitioner pt = MakePartitioner(mc, c);
  auto r = pt.Solve({4});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectWellFormed(*r, pt, {4});
  ASSERT_EQ(r->num_stages(), 1);
  const StagePlacement& st = r->stages[0];
  EXPECT_EQ(st.gpus_per_replica, 1);
  EXPECT_EQ(st.data_parallel, 4);
  EXPECT_EQ(st.micro_batches_per_replica, 8);
  // Forward FLOPs per sample: embedding 512*1024 + 4 blocks * 13972275200 + head 1048576000
  // = 56938201088; train = 3x; per micro-batch of 2 samples on 5e13 FLOP/s.
  const double t = 2 * 3 * 56938201088.0 / 5e13;
  EXPECT_NEAR(st.compute_seconds_per_micro_batch, t, 1e-12);
  // Ring allreduce of 52959232 bf16 params among 4 replicas at 100 Gbps = 12.5e9 B/s.
  const double ar = 2.0 * 3 / 4 * (52959232.0 * 2) / 12.5e9;
  EXPECT_NEAR(r->allreduce_seconds, ar, 1e-12);
  // GPipe with S = 1: fwd m*t/3 + bwd m*2t/3 = m*t.
  EXPECT_NEAR(r->step_seconds, 8 * t + ar, 1e-9);
  EXPECT_NEAR(r->steps_per_hour, 3600.0 / (8 * t + ar), 1e-6);
  EXPECT_DOUBLE_EQ(st.state_bytes, 52959232.0 * 14);
  EXPECT_EQ(r->wan_bytes_per_step, 0);
  EXPECT_EQ(r->bottleneck.kind, BottleneckKind::kCompute);
  EXPECT_DOUBLE_EQ(pt.StepsPerHour({4}), r->steps_per_hour);
}

// Two stages on one GPU each, placed by hand: the flow-shop formula by hand.
TEST(Partitioner, EvaluateTwoStagesMatchesFlowShopByHand) {
  ModelConfig mc = Gpt24();
  Cluster c = TwoSites(Site("a"), Site("b"), 100, 10);
  Partitioner pt = MakePartitioner(mc, c);
  auto r = pt.Evaluate({1, 1}, {{0, 0, 13}, {1, 13, 26}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectWellFormed(*r, pt, {1, 1});
  const double F = 312e12 * 0.4;
  const double t0 = StageFlops(pt.profile(), r->stages[0]) / F;
  const double t1 = StageFlops(pt.profile(), r->stages[1]) / F;
  const double N = 512;
  const double cxfer = 2048.0 * 2048 * 2 / (100e9 / 8);  // 0.16777 ms per micro-batch
  const double lat = 0.010;
  ASSERT_GT((N - 1) * std::min(t0, t1) / 3, (N - 1) * cxfer);  // compute-bound in both phases
  const double fwd = t0 / 3 + t1 / 3 + cxfer + lat + (N - 1) * std::max(t0, t1) / 3;
  const double bwd = 2 * t0 / 3 + 2 * t1 / 3 + cxfer + lat + (N - 1) * 2 * std::max(t0, t1) / 3;
  EXPECT_NEAR(r->step_seconds, fwd + bwd, 1e-9 * (fwd + bwd));
  EXPECT_EQ(r->allreduce_seconds, 0);  // one replica per stage
  EXPECT_DOUBLE_EQ(r->wan_bytes_per_step, 2 * N * 2048.0 * 2048 * 2);
  EXPECT_EQ(r->stages[0].in_flight_micro_batches, 2);
  EXPECT_EQ(r->stages[1].in_flight_micro_batches, 1);
}

TEST(Partitioner, TwoEqualSitesSplitLayersEvenly) {
  Cluster c = TwoSites(Site("a"), Site("b"), 400, 5);
  Partitioner pt = MakePartitioner(Gpt24(), c);
  auto r = pt.Solve({8, 8});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectWellFormed(*r, pt, {8, 8});
  ASSERT_EQ(r->num_stages(), 2);
  // 26 layers (embedding + 24 blocks + head): 13 + 13.
  EXPECT_EQ(r->stages[0].last_layer, 13);
  EXPECT_EQ(r->stages[0].gpus_used, 8);
  EXPECT_EQ(r->stages[1].gpus_used, 8);
  EXPECT_EQ(r->bottleneck.kind, BottleneckKind::kCompute);
  // Twice the GPUs of one site: close to twice one site's steps per hour (less the bubble).
  const double one = pt.StepsPerHour({8, 0});
  EXPECT_GT(r->steps_per_hour, 1.8 * one);
  EXPECT_LT(r->steps_per_hour, 2.0 * one);
}

TEST(Partitioner, SlowLinkPrefersSingleSiteFastLinkUsesBoth) {
  struct Row {
    const char* name;
    double gbps, latency_ms;
    int want_stages;
    BottleneckKind two_site_bottleneck;
  };
  const Row rows[] = {
      {"slow 1 Gbps / 100 ms", 1, 100, 1, BottleneckKind::kWanLink},
      {"fast 400 Gbps / 2 ms", 400, 2, 2, BottleneckKind::kCompute},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    Cluster c = TwoSites(Site("a"), Site("b"), row.gbps, row.latency_ms);
    Partitioner pt = MakePartitioner(Gpt24(), c);
    auto r = pt.Solve({64, 64});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ExpectWellFormed(*r, pt, {64, 64});
    EXPECT_EQ(r->num_stages(), row.want_stages);
    // The forced two-site placement shows why.
    auto two = pt.Evaluate({64, 64}, {{0, 0, 13}, {1, 13, 26}});
    ASSERT_TRUE(two.ok());
    EXPECT_EQ(two->bottleneck.kind, row.two_site_bottleneck) << two->bottleneck.description;
    EXPECT_LE(r->step_seconds, two->step_seconds);
  }
}

TEST(Partitioner, SiteWithTwiceTheSpeedGetsTwiceTheWork) {
  Cluster c = TwoSites(Site("slow", 312), Site("fast", 624), 400, 5);
  Partitioner pt = MakePartitioner(Gpt24(), c);
  auto r = pt.Solve({8, 8});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectWellFormed(*r, pt, {8, 8});
  ASSERT_EQ(r->num_stages(), 2);
  double fast = 0, slow = 0;
  int fast_layers = 0;
  for (const auto& st : r->stages) {
    if (st.site == 1) {
      fast += StageFlops(pt.profile(), st);
      fast_layers = st.last_layer - st.first_layer;
    } else {
      slow += StageFlops(pt.profile(), st);
    }
  }
  EXPECT_NEAR(fast / slow, 2.0, 0.25);
  EXPECT_GE(fast_layers, 16);  // of 26: about 17 vs 9
  EXPECT_LE(fast_layers, 18);
}

TEST(Partitioner, MemoryForcesMultiGpuReplicas) {
  // 24 x 50.3M-param blocks = 1.2e9 params x 16 B = 19.3 GB + activations: > 16 GB per GPU.
  Cluster c({Site("small", 312, 16)});
  Partitioner pt = MakePartitioner(Gpt24(), c);
  auto r = pt.Solve({8});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectWellFormed(*r, pt, {8});
  const StagePlacement& st = r->stages[0];
  const ModelProfile& prof = pt.profile();
  double stash = 0;
  for (const auto& l : prof.layers()) stash += l.stash_bytes_per_micro_batch;
  const double need = prof.TotalParams() * 16 + stash;  // one micro-batch in flight
  const int g = static_cast<int>(std::ceil(need / 16e9));
  EXPECT_EQ(st.gpus_per_replica, g);
  EXPECT_EQ(st.data_parallel, 8 / g);
  EXPECT_NEAR(st.memory_bytes_per_gpu, need / g, 1.0);
}

TEST(Partitioner, SpareGpusWidenReplicasUpToTheCap) {
  ModelConfig mc = Gpt24();
  mc.global_batch = 64;  // N = 64 replicas at most
  Cluster c({Site("big")});
  Partitioner pt = MakePartitioner(mc, c);
  struct Row { int gpus, want_g, want_d, want_used; };
  const Row rows[] = {{64, 1, 64, 64}, {100, 1, 64, 64}, {256, 4, 64, 256}, {10000, 8, 64, 512}};
  for (const Row& row : rows) {
    auto r = pt.Solve({row.gpus});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->stages[0].gpus_per_replica, row.want_g) << row.gpus;
    EXPECT_EQ(r->stages[0].data_parallel, row.want_d) << row.gpus;
    EXPECT_EQ(r->gpus_used_per_site[0], row.want_used) << row.gpus;
  }
}

TEST(Partitioner, MeasuredTimesOverrideFlopEstimate) {
  ModelConfig mc = Gpt24();
  mc.global_batch = 8;
  Cluster c({Site("solo")});
  auto prof = BuildGptProfile(mc);
  ASSERT_TRUE(prof.ok());
  auto base = PartitionModel(*prof, c, {1});
  ASSERT_TRUE(base.ok());
  const double F = 312e12 * 0.4;
  const double est = prof->TotalEffectiveTrainFlops() / F;  // seconds per sample
  EXPECT_NEAR(base->step_seconds, 8 * est, 1e-9);
  ASSERT_TRUE(prof->SetMeasuredStageTime(0, prof->num_layers(), 2 * est, F).ok());
  auto measured = PartitionModel(*prof, c, {1});
  ASSERT_TRUE(measured.ok());
  EXPECT_NEAR(measured->step_seconds, 16 * est, 1e-9);
  prof->ClearMeasurements();
  ASSERT_TRUE(prof->SetCalibration(1.25).ok());
  EXPECT_NEAR(StepsPerHour(*prof, c, {1}), 3600.0 / (10 * est), 1e-6);
}

// ---------------------------------------------------------------------------------------------
// Infeasible and invalid inputs, as a table.
TEST(Partitioner, InfeasibleAndInvalidInputs) {
  ModelConfig gpt3;
  gpt3.layers = 96;
  gpt3.hidden = 12288;
  gpt3.heads = 96;
  gpt3.seq_len = 2048;
  gpt3.vocab = 50257;
  // Independent need: params x 16 B + one micro-batch of activations.
  const double h = 12288, s = 2048, V = 50257;
  const double params = (V * h + s * h) + 96 * (12 * h * h + 13 * h) + (V * h + 2 * h);
  const double acts = s * h * 2 + 96 * s * h * (34 + 5 * 96 * s / h) + (s * h * 2 + 4 * s * V);
  char need[64], state[64];
  std::snprintf(need, sizeof need, "%.1f GB", (params * 16 + acts) / 1e9);
  std::snprintf(state, sizeof state, "%.1f GB", params * 16 / 1e9);

  struct Row {
    const char* name;
    ModelConfig model;
    Cluster cluster;
    std::vector<int> gpus;
    Code code;
    std::vector<std::string> says;
  };
  const std::vector<Row> rows = {
      {"zero GPUs everywhere", Gpt24(), TwoSites(Site("a"), Site("b"), 100, 10), {0, 0},
       Code::kInfeasible, {"no GPUs", "2 sites"}},
      {"model too big for memory", gpt3, Cluster({Site("tiny")}), {8}, Code::kInfeasible,
       {"does not fit", need, state, "640.0 GB", "8 GPUs"}},
      {"too big even across two linked sites", gpt3, TwoSites(Site("a"), Site("b"), 100, 10),
       {8, 16}, Code::kInfeasible, {need, "1920.0 GB"}},
      // Each 24 GB GPU holds half of the 1.2e9-param model (31 GB with activations) but not all of it.
      {"needed link missing", Gpt24(), TwoSites(Site("x", 312, 24), Site("y", 312, 24), 0, 0),
       {1, 1}, Code::kInfeasible, {"no link between site 'x' and site 'y'"}},
      {"wrong number of sites", Gpt24(), TwoSites(Site("a"), Site("b"), 100, 10), {4},
       Code::kInvalidArgument, {"1 entries", "2 sites"}},
      {"negative GPUs", Gpt24(), TwoSites(Site("a"), Site("b"), 100, 10), {4, -1},
       Code::kInvalidArgument, {"gpus_per_site[1]", "site 'b'"}},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    Partitioner pt = MakePartitioner(row.model, row.cluster);
    auto r = pt.Solve(row.gpus);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), row.code) << r.status().ToString();
    for (const auto& s : row.says) EXPECT_TRUE(Contains(r.status().message(), s));
    EXPECT_EQ(pt.StepsPerHour(row.gpus), 0);
  }
}

TEST(Partitioner, LinkMakesTheSplitModelFeasible) {
  Cluster c = TwoSites(Site("x", 312, 24), Site("y", 312, 24), 10, 30);
  Partitioner pt = MakePartitioner(Gpt24(), c);
  auto r = pt.Solve({1, 1});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectWellFormed(*r, pt, {1, 1});
  EXPECT_EQ(r->num_stages(), 2);
}

TEST(Partitioner, InvalidClusterAndPlacement) {
  auto prof = BuildGptProfile(Gpt24());
  ASSERT_TRUE(prof.ok());
  SiteResources bad = Site("bad");
  bad.mfu = 1.5;
  auto p = Partitioner::Create(*prof, Cluster({Site("ok"), bad}));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Contains(p.status().message(), "'bad'"));
  EXPECT_TRUE(Contains(p.status().message(), "mfu"));

  Cluster c({Site("a"), Site("b"), Site("c")});
  c.SetLink(0, 1, LinkSpec{100, 10});
  Partitioner pt = MakePartitioner(Gpt24(), c);
  struct Row {
    const char* name;
    std::vector<StageSpec> stages;
    Code code;
    const char* says;
  };
  const Row rows[] = {
      {"gap in cover", {{0, 0, 10}, {1, 11, 26}}, Code::kInvalidArgument, "contiguous"},
      {"short cover", {{0, 0, 10}, {1, 10, 25}}, Code::kInvalidArgument, "contiguous"},
      {"same site twice", {{0, 0, 10}, {0, 10, 26}}, Code::kInvalidArgument, "already holds"},
      {"unknown site", {{7, 0, 26}}, Code::kInvalidArgument, "out of range"},
      {"unlinked neighbours", {{1, 0, 10}, {2, 10, 26}}, Code::kInfeasible,
       "no link between site 'b' and site 'c'"},
      {"no GPUs on a stage's site", {{0, 0, 10}, {1, 10, 26}}, Code::kInfeasible, "site 'b' (0 GPUs"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    auto r = pt.Evaluate({8, 0, 8}, row.stages);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), row.code) << r.status().ToString();
    EXPECT_TRUE(Contains(r.status().message(), row.says));
  }
}

TEST(Partitioner, EvaluateReproducesSolve) {
  Cluster c({Site("a", 312), Site("b", 624), Site("c", 989)});
  c.SetLink(0, 1, LinkSpec{100, 10});
  c.SetLink(1, 2, LinkSpec{200, 20});
  c.SetLink(0, 2, LinkSpec{50, 40});
  Partitioner pt = MakePartitioner(Gpt24(), c);
  const std::vector<int> gpus = {16, 8, 4};
  auto r = pt.Solve(gpus);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectWellFormed(*r, pt, gpus);
  std::vector<StageSpec> specs;
  for (const auto& st : r->stages) specs.push_back({st.site, st.first_layer, st.last_layer});
  auto e = pt.Evaluate(gpus, specs);
  ASSERT_TRUE(e.ok());
  EXPECT_DOUBLE_EQ(e->step_seconds, r->step_seconds);
  // The solver's choice is at least as good as every single-site or hand-made alternative.
  for (int i = 0; i < 3; ++i) {
    auto one = pt.Evaluate(gpus, {{i, 0, 26}});
    if (one.ok()) {
      EXPECT_LE(r->step_seconds, one->step_seconds);
    }
  }
  auto even = pt.Evaluate(gpus, {{0, 0, 9}, {1, 9, 18}, {2, 18, 26}});
  ASSERT_TRUE(even.ok());
  EXPECT_LE(r->step_seconds, even->step_seconds);
}

// Brute force over every placement of up to three sites (every order, every cut) with the exact
// model: the solver's choice must be within 1 % of the best (it optimises cuts by a bound).
TEST(Partitioner, NearBruteForceOptimumOnThreeSites) {
  Cluster c({Site("a", 312), Site("b", 624), Site("c", 989, 40)});
  c.SetLink(0, 1, LinkSpec{100, 10});
  c.SetLink(1, 2, LinkSpec{25, 30});
  c.SetLink(0, 2, LinkSpec{400, 5});
  Partitioner pt = MakePartitioner(Gpt24(), c);
  const int L = pt.profile().num_layers();
  const std::vector<std::vector<int>> cases = {{8, 8, 8}, {32, 4, 2}, {2, 16, 64}, {1, 1, 1}};
  for (const auto& gpus : cases) {
    double best = std::numeric_limits<double>::infinity();
    auto consider = [&](const std::vector<StageSpec>& st) {
      auto e = pt.Evaluate(gpus, st);
      if (e.ok()) best = std::min(best, e->step_seconds);
    };
    for (int x = 0; x < 3; ++x) {
      consider({{x, 0, L}});
      for (int y = 0; y < 3; ++y) {
        if (y == x) continue;
        for (int cut = 1; cut < L; ++cut) consider({{x, 0, cut}, {y, cut, L}});
        const int z = 3 - x - y;
        for (int c1 = 1; c1 < L; ++c1)
          for (int c2 = c1 + 1; c2 < L; ++c2) consider({{x, 0, c1}, {y, c1, c2}, {z, c2, L}});
      }
    }
    auto r = pt.Solve(gpus);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_GE(r->step_seconds, best * (1 - 1e-12));
    EXPECT_LE(r->step_seconds, best * 1.01) << r->Describe();
  }
}

// Many sites: the fast heuristic must come close to exhaustive search on the same input.
TEST(Partitioner, HeuristicCloseToExhaustiveOnFiveSites) {
  Cluster c({Site("a", 312), Site("b", 989), Site("c", 624), Site("d", 312), Site("e", 400)});
  const double bw[5][5] = {{0, 100, 25, 10, 200},
                           {100, 0, 50, 400, 0},
                           {25, 50, 0, 100, 10},
                           {10, 400, 100, 0, 40},
                           {200, 0, 10, 40, 0}};
  for (int i = 0; i < 5; ++i)
    for (int j = i + 1; j < 5; ++j)
      if (bw[i][j] > 0) c.SetLink(i, j, LinkSpec{bw[i][j], 5.0 + 7 * i + 3 * j});
  PartitionOptions exhaustive, heuristic;
  exhaustive.exhaustive_max_sites = 5;
  heuristic.exhaustive_max_sites = 0;
  const std::vector<std::vector<int>> cases = {{8, 8, 8, 8, 8}, {64, 8, 0, 32, 16}, {1, 2, 3, 4, 5}};
  for (const auto& gpus : cases) {
    Partitioner ex = MakePartitioner(Gpt24(), c, exhaustive);
    Partitioner he = MakePartitioner(Gpt24(), c, heuristic);
    auto a = ex.Solve(gpus);
    auto b = he.Solve(gpus);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    ExpectWellFormed(*b, he, gpus);
    EXPECT_LE(a->step_seconds, b->step_seconds * (1 + 1e-12));
    EXPECT_GE(b->steps_per_hour, 0.85 * a->steps_per_hour) << a->Describe() << b->Describe();
  }
}

TEST(Partitioner, HundredSitesUsesManyAndAgreesWithStepsPerHour) {
  std::vector<SiteResources> sites;
  for (int i = 0; i < 100; ++i) sites.push_back(Site("s" + std::to_string(i), i % 3 ? 312 : 989));
  Cluster c(sites);
  for (int i = 0; i < 100; ++i)
    for (int j = i + 1; j < 100; ++j) c.SetLink(i, j, LinkSpec{100.0 + (i * 7 + j * 13) % 300, 5.0 + (i + j) % 50});
  ModelConfig mc = Gpt24();
  mc.layers = 96;
  mc.global_batch = 1536;
  Partitioner pt = MakePartitioner(mc, c);
  // 100 GPUs per site: one site alone would take ~31 micro-batches per replica; spreading the
  // pipeline over sites multiplies the GPUs.
  std::vector<int> gpus(100, 100);
  gpus[3] = 0;
  auto r = pt.Solve(gpus);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectWellFormed(*r, pt, gpus);
  EXPECT_GT(r->num_stages(), 1);
  EXPECT_EQ(r->gpus_used_per_site[3], 0);
  EXPECT_DOUBLE_EQ(pt.StepsPerHour(gpus), r->steps_per_hour);
  // More GPUs never hurt: a superset of resources is at least as fast.
  std::vector<int> fewer = gpus;
  for (int i = 50; i < 100; ++i) fewer[i] = 0;
  EXPECT_GE(r->steps_per_hour, pt.StepsPerHour(fewer) * 0.999);
}

TEST(Partitioner, ClusterFromConfig) {
  Config cfg;
  SiteConfig a, b;
  a.name = "north";
  a.gpu.peak_tflops = 989;
  a.gpu.mfu = 0.35;
  a.gpu.memory_gb = 94;
  b.name = "south";
  cfg.sites = {a, b};
  cfg.links = {LinkConfig{"south", "north", 40, 12}};
  auto c = ClusterFromConfig(cfg, 200);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->size(), 2);
  EXPECT_EQ(c->sites[0].name, "north");
  EXPECT_DOUBLE_EQ(c->sites[0].EffectiveFlopsPerGpu(), 989e12 * 0.35);
  EXPECT_DOUBLE_EQ(c->sites[0].memory_gb, 94);
  EXPECT_DOUBLE_EQ(c->sites[1].intra_site_gbps_per_gpu, 200);
  EXPECT_DOUBLE_EQ(c->link(0, 1).bandwidth_gbps, 40);
  EXPECT_DOUBLE_EQ(c->link(1, 0).latency_ms, 12);
  cfg.links.push_back(LinkConfig{"north", "west", 1, 1});
  auto bad = ClusterFromConfig(cfg);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Contains(bad.status().message(), "links[1]"));
}

}  // namespace
}  // namespace gt
