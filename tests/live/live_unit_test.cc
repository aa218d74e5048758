// Pure parts of the live runtime: rank -> site mapping and the modelled energy of an interval.
#include <gtest/gtest.h>

#include "coordinator/live.h"
#include "coordinator/live_checkpoints.h"
#include "coordinator/protocol.h"
#include "tests/support/scratch_dir.h"

#include <sys/wait.h>

#include <filesystem>

namespace gt {
namespace {

Config ThreeSites() {
  Config c;
  for (const char* n : {"a", "b", "c"}) {
    SiteConfig s;
    s.name = n;
    s.ranks = 2;
    c.sites.push_back(s);
  }
  c.sites[1].ranks = 3;
  return c;
}

TEST(SiteForRank, ConsecutiveRanksInConfigOrder) {
  Config c = ThreeSites();
  const int want[] = {0, 0, 1, 1, 1, 2, 2};
  for (int r = 0; r < 7; ++r) EXPECT_EQ(live::SiteForRank(c, r, "anyhost").value(), want[r]) << r;
  auto beyond = live::SiteForRank(c, 7, "anyhost");
  ASSERT_FALSE(beyond.ok());
  EXPECT_NE(beyond.status().message().find("rank 7"), std::string::npos);
  EXPECT_EQ(live::TotalRanks(c), 7);
}

TEST(SiteForRank, HostsWinInClusterMode) {
  Config c = ThreeSites();
  c.sites[2].hosts = {"node-c1", "node-c2"};
  c.sites[0].hosts = {"node-a1"};
  EXPECT_EQ(live::SiteForRank(c, 0, "node-c2").value(), 2);
  EXPECT_EQ(live::SiteForRank(c, 5, "node-a1").value(), 0);
  auto unknown = live::SiteForRank(c, 0, "laptop");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("laptop"), std::string::npos);
}

TEST(AccountLiveInterval, DutyCycleScalesThePlanGpus) {
  SiteConfig s;
  s.name = "x";
  s.gpu.busy_w = 400;
  s.gpu.idle_w = 100;
  s.gpu.host_w = 50;
  s.pue = 1.5;
  SiteSupply sup{0.0, 200.0, 50.0};  // no renewables: everything from the grid
  // 2 workers over 10 s of wall time, 15 busy worker-seconds: duty 0.75 of 100 GPUs, 2 trace hours.
  auto row = AccountLiveInterval(s, 3600, 2.0, 10.0, 15.0, 2, 100, 7, sup, 0.0);
  ASSERT_TRUE(row.ok()) << row.status().ToString();
  const double it_mwh = (75 * 450.0 + 25 * 150.0) / 1e6 * 2.0;  // each GPU with its host's 50 W
  EXPECT_NEAR(row->flow.demand_mwh, it_mwh * 1.5, 1e-12);
  EXPECT_NEAR(row->flow.grid_mwh, it_mwh * 1.5, 1e-12);
  EXPECT_NEAR(row->flow.carbon_kg, it_mwh * 1.5 * 1000 * 200 / 1000, 1e-9);  // MWh -> kWh x g/kWh -> kg
  EXPECT_EQ(row->busy_gpus, 75);
  EXPECT_EQ(row->idle_gpus, 25);
  EXPECT_EQ(row->work_steps, 7);
  // The load columns add up to the demand: the plan's 100 GPUs busy 1.5 h, idle 0.5 h, with hosts.
  EXPECT_NEAR(row->load.gpu_busy_mwh, 100 * 400.0 * 1.5 / 1e6, 1e-12);
  EXPECT_NEAR(row->load.gpu_idle_mwh, 100 * 100.0 * 0.5 / 1e6, 1e-12);
  EXPECT_NEAR(row->load.host_mwh, 100 * 50.0 * 2.0 / 1e6, 1e-12);
  EXPECT_NEAR(row->load.pue_overhead_mwh, it_mwh * 0.5, 1e-12);
  EXPECT_NEAR(row->load.facility_mwh(), row->flow.demand_mwh, 1e-12);
  EXPECT_NEAR(row->load.busy_gpu_hours, 150, 1e-9);
  EXPECT_NEAR(row->load.idle_gpu_hours, 50, 1e-9);
  Ledger l;
  ASSERT_TRUE(l.Add(*row).ok());
  EXPECT_LT(l.MaxImbalanceMwh(), 1e-12);
  // Busy time beyond the wall time is clamped to a duty of 1; no workers draw nothing.
  auto full = AccountLiveInterval(s, 0, 1.0, 10.0, 999.0, 2, 100, 0, sup, 0.0);
  EXPECT_EQ(full->busy_gpus, 100);
  auto none = AccountLiveInterval(s, 0, 1.0, 10.0, 0.0, 0, 100, 0, sup, 0.0);
  EXPECT_EQ(none->flow.demand_mwh, 0.0);
  EXPECT_FALSE(AccountLiveInterval(s, 0, 0.0, 10.0, 1.0, 1, 1, 0, sup, 0.0).ok());
}

// A live run's pace against its plans': silent near 1, else which way it drifted and the trace
// compression that would match the plans on this box (the current one over the ratio, rounded up).
TEST(PaceAdvice, NamesTheDriftAndTheCompressionThatWouldMatchThePlans) {
  EXPECT_EQ(PaceAdvice(1.0, 4), "");
  EXPECT_EQ(PaceAdvice(0.91, 4), "");
  EXPECT_EQ(PaceAdvice(1.09, 4), "");
  EXPECT_EQ(PaceAdvice(0, 4), "");  // unknown: nothing trained or nothing planned
  const std::string behind = PaceAdvice(0.5, 4);
  EXPECT_NE(behind.find("0.50x"), std::string::npos) << behind;
  EXPECT_NE(behind.find("fell behind"), std::string::npos) << behind;
  EXPECT_NE(behind.find("runtime.wall_seconds_per_trace_hour 8 instead of 4 "), std::string::npos) << behind;
  EXPECT_NE(PaceAdvice(0.7, 4).find(" 5.8 instead of 4 "), std::string::npos) << PaceAdvice(0.7, 4);
  EXPECT_NE(PaceAdvice(1.29, 0.1).find(" 0.078 instead of 0.1 "), std::string::npos) << PaceAdvice(1.29, 0.1);
  const std::string ahead = PaceAdvice(2, 4);
  EXPECT_NE(ahead.find("ran ahead"), std::string::npos) << ahead;
  EXPECT_NE(ahead.find(" 2 instead of 4 "), std::string::npos) << ahead;
}

// Site storage: where a restoring stage rank gets each layer of the checkpoint.
ckpt::Manifest SiteManifest() {
  ckpt::Manifest m;
  m.files = {{"coordinator.json", 1, "x", ""},      {"layer-0000.gtck", 1, "x", "a"}, {"layer-0001.gtck", 1, "x", "a"},
             {"layer-0002.gtck", 1, "x", "b"},      {"layer-0003.gtck", 1, "x", "a"}, {"layer-0003.gtck", 1, "x", "c"},
             {"layer-0004.gtck", 1, "x", "c"},      {"notes.txt", 1, "x", "a"}};
  return m;
}

TEST(CheckpointFetch, OwnSiteFirstThenTheFirstSiteWithALiveRank) {
  const auto holders = LayerHolders(SiteManifest());
  ASSERT_EQ(holders.size(), 5u);
  EXPECT_EQ(holders.at(3), (std::set<std::string>{"a", "c"}));
  const std::vector<std::string> order = {"a", "b", "c"};
  const std::map<std::string, std::vector<int>> live = {{"a", {0, 1}}, {"b", {2}}, {"c", {3}}};
  // A rank of site c restoring layers [0, 5): [0,2) and 3 from a, 2 from b, [3,5) its own.
  auto plan = PlanCheckpointFetch(holders, "c", 3, 0, 5, order, live);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->size(), 3u);
  EXPECT_EQ((*plan)[0].rank, 0);
  EXPECT_EQ((*plan)[0].first, 0);
  EXPECT_EQ((*plan)[0].last, 2);
  EXPECT_FALSE((*plan)[0].local);
  EXPECT_EQ((*plan)[1].rank, 2);
  EXPECT_EQ((*plan)[1].first, 2);
  EXPECT_EQ((*plan)[2].rank, 3);
  EXPECT_TRUE((*plan)[2].local);
  EXPECT_EQ((*plan)[2].first, 3);
  EXPECT_EQ((*plan)[2].last, 5);
  // A rank of site b: layers 0,1 and 3 come from a in two ranges, which two distinct ranks of a send.
  plan = PlanCheckpointFetch(holders, "b", 2, 0, 4, order, live);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->size(), 3u);
  EXPECT_EQ((*plan)[0].rank, 0);
  EXPECT_TRUE((*plan)[1].local);
  EXPECT_EQ((*plan)[2].rank, 1);
  EXPECT_EQ((*plan)[2].first, 3);
}

TEST(CheckpointFetch, LayersNoLiveRankCanReadAreNamedWithTheirSites) {
  const auto holders = LayerHolders(SiteManifest());
  const std::vector<std::string> order = {"a", "b", "c"};
  // Site b is down: layer 2 is kept only there.
  auto plan = PlanCheckpointFetch(holders, "c", 3, 0, 5, order, {{"a", {0}}, {"c", {3}}});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("layer 2"), std::string::npos) << plan.status().ToString();
  EXPECT_NE(plan.status().message().find("site(s) b"), std::string::npos) << plan.status().ToString();
  // Site a has one live rank but would have to send two separate ranges.
  plan = PlanCheckpointFetch(holders, "b", 2, 0, 4, order, {{"a", {0}}, {"b", {2}}});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("site a"), std::string::npos) << plan.status().ToString();
  // A layer no site keeps.
  plan = PlanCheckpointFetch(holders, "a", 0, 4, 6, order, {{"a", {0}}, {"c", {3}}});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("layer 5 is not in the checkpoint"), std::string::npos);
}

// The live tests' scratch directories: one left by a process that is gone (a test killed at its time
// limit) is removed when the next is made; one of a running process is kept.
TEST(ScratchDir, LeftoversOfDeadProcessesAreRemovedOthersKept) {
  namespace fs = std::filesystem;
  EXPECT_EQ(testing::ScratchDirOwner("gt-unit-scratch-123-AbC123", "gt-unit-scratch"), 123);
  EXPECT_EQ(testing::ScratchDirOwner("gt-unit-scratch-AbC123", "gt-unit-scratch"), -1);
  EXPECT_EQ(testing::ScratchDirOwner("gt-unit-scratch--AbC123", "gt-unit-scratch"), -1);
  EXPECT_EQ(testing::ScratchDirOwner("gt-other-123-AbC123", "gt-unit-scratch"), -1);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);  // reaped: its pid names no process now
  const std::string dead = "/tmp/gt-unit-scratch-" + std::to_string(child) + "-leftover";
  const std::string alive = "/tmp/gt-unit-scratch-" + std::to_string(getppid()) + "-running";
  fs::create_directories(dead + "/sub");
  fs::create_directories(alive);
  const std::string made = testing::MakeScratchDir("gt-unit-scratch");
  ASSERT_FALSE(made.empty());
  EXPECT_TRUE(fs::is_directory(made));
  EXPECT_NE(made.find("/tmp/gt-unit-scratch-" + std::to_string(getpid()) + "-"), std::string::npos) << made;
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(alive));
  std::error_code ec;
  fs::remove_all(made, ec);
  fs::remove_all(alive, ec);
}

}  // namespace
}  // namespace gt
