// When the coordinator checkpoints (coordinator/checkpoint_policy.h) and how it commits a live
// checkpoint (coordinator/live_checkpoints.h): pure decisions and temp files, no processes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "checkpoint/store.h"
#include "coordinator/checkpoint_policy.h"
#include "coordinator/live_checkpoints.h"

namespace gt {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

Plan At(int site, int option = 0) {
  Plan p;
  p.option = option;
  p.busy_gpus = {0, 0};
  p.busy_gpus[site] = 8;
  StagePlacement s;
  s.site = site;
  s.first_layer = 0;
  s.last_layer = 10;
  p.stages = {s};
  p.steps_per_hour = 100;
  return p;
}

const std::vector<std::string> kNames = {"a", "b"};

// `next` as a policy hands it over: with the actions that lead to it from `current`.
Plan After(const Plan& current, Plan next, double hours_since_checkpoint = 2) {
  next.actions = DeriveActions(current, next, hours_since_checkpoint, 6);
  return next;
}

CheckpointTriggerInput Base() {
  CheckpointTriggerInput in;
  in.interval_hours = 1;
  in.hours_since_checkpoint = 2;
  in.every_hours = 6;
  in.site_names = &kNames;
  CheckpointSiteOutlook s;
  s.name = "a";
  s.load_mw = 1.0;
  s.renewable_now_mw = 2.0;
  s.renewable_forecast_mw = {2.0, 2.0, 2.0};
  in.sites = {s};
  return in;
}

TEST(CheckpointPolicy, NothingWhileGreenPowerStaysAndThePlanHolds) {
  CheckpointTriggerInput in = Base();
  const Plan a = At(0);
  in.current = &a;
  in.next = &a;
  EXPECT_FALSE(DecideCheckpoint(in).take);
}

TEST(CheckpointPolicy, BeforeThePlanPausesOrMoves) {
  CheckpointTriggerInput in = Base();
  const Plan a = At(0);
  Plan paused = a;
  paused.option = -1;
  paused.busy_gpus = {0, 0};
  const Plan pausing = After(a, paused), moving = After(a, At(1));
  in.current = &a;
  in.next = &pausing;
  auto t = DecideCheckpoint(in);
  EXPECT_TRUE(t.take);
  EXPECT_EQ(t.kind, "plan");
  EXPECT_EQ(t.reason, "policy: before pausing (a:8 -> paused@a)");
  in.next = &moving;
  t = DecideCheckpoint(in);
  EXPECT_EQ(t.kind, "plan");
  EXPECT_EQ(t.reason, "policy: before moving state (a:8 -> b:8)");
  // A job already paused has its state on disk: resuming elsewhere needs no new checkpoint.
  const Plan resuming = After(paused, At(1));
  in.current = &paused;
  in.next = &resuming;
  EXPECT_FALSE(DecideCheckpoint(in).take);
  // The rule reads the plan's actions: a plan handed over without them (one that stays as it is)
  // is not a pause or move.
  in.current = &a;
  in.next = &paused;
  EXPECT_FALSE(DecideCheckpoint(in).take);
  // A move in the interval the periodic rule makes due is still a plan checkpoint; a plan that
  // stays, with the periodic one in its actions, a periodic one.
  const Plan moving_due = After(a, At(1), 6), staying_due = After(a, a, 6);
  in.hours_since_checkpoint = 6;
  in.next = &moving_due;
  EXPECT_EQ(DecideCheckpoint(in).kind, "plan");
  in.next = &staying_due;
  EXPECT_EQ(DecideCheckpoint(in).kind, "periodic");
}

TEST(CheckpointPolicy, BeforeForecastGreenPowerFallsBelowTheLoad) {
  CheckpointTriggerInput in = Base();
  in.sites[0].renewable_forecast_mw = {0.5, 2.0};
  auto t = DecideCheckpoint(in);
  EXPECT_TRUE(t.take);
  EXPECT_EQ(t.kind, "forecast");
  EXPECT_NE(t.reason.find("a renewables 500 kW fall below its load 1.0 MW in 1.0 h"), std::string::npos) << t.reason;
  // The battery covers the gap: no checkpoint.
  in.sites[0].battery_mwh = 0.6;
  EXPECT_FALSE(DecideCheckpoint(in).take);
  in.sites[0].battery_mwh = 0;
  // Already below the load now: the power has gone, nothing to get ahead of.
  in.sites[0].renewable_now_mw = 0.8;
  EXPECT_FALSE(DecideCheckpoint(in).take);
  in.sites[0].renewable_now_mw = 2;
  // A drop beyond the horizon is not yet acted on; a slower checkpoint widens the horizon.
  in.sites[0].renewable_forecast_mw = {2.0, 2.0, 0.5};
  EXPECT_FALSE(DecideCheckpoint(in).take);
  in.measured_checkpoint_hours = 0.9;  // 3 x 0.9 h -> 3 intervals
  EXPECT_EQ(CheckpointHorizonIntervals(0.9, 1), 3);
  in.hours_since_checkpoint = 5;
  EXPECT_EQ(DecideCheckpoint(in).kind, "forecast");
  // Taken recently (within the horizon): not again for the same drop.
  in.hours_since_checkpoint = 1;
  EXPECT_FALSE(DecideCheckpoint(in).take);
  // A site without work there is not watched.
  in.hours_since_checkpoint = 5;
  in.sites[0].load_mw = 0;
  EXPECT_FALSE(DecideCheckpoint(in).take);
}

TEST(CheckpointPolicy, PeriodicFallback) {
  CheckpointTriggerInput in = Base();
  in.hours_since_checkpoint = 6;
  auto t = DecideCheckpoint(in);
  EXPECT_EQ(t.kind, "periodic");
  // Only a running job: a paused one has no work at risk (DeriveActions' rule).
  const Plan a = At(0);
  Plan paused = a;
  paused.option = -1;
  in.current = &paused;
  in.next = &paused;
  EXPECT_FALSE(DecideCheckpoint(in).take);
  in.current = &a;
  in.next = &a;
  EXPECT_EQ(DecideCheckpoint(in).kind, "periodic");
  in.every_hours = 0;
  EXPECT_FALSE(DecideCheckpoint(in).take);
  EXPECT_EQ(CheckpointHorizonIntervals(0, 1), 1);
}

class LiveCheckpointsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("gt_live_ckpt_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  // What a worker reports after writing `name` into the step directory.
  json Written(int64_t step, const std::string& dir, const std::string& name) {
    auto e = ckpt::WriteFileDurably(dir + "/" + name, "payload of " + name);
    EXPECT_TRUE(e.ok());
    return {{"type", "checkpoint_written"}, {"step", step}, {"dir", dir}, {"snapshot_s", 0.01}, {"write_s", 0.2},
            {"files", json::array({{{"name", e->name}, {"bytes", e->bytes}, {"sha256", e->sha256}}})}};
  }
  fs::path root_;
};

TEST_F(LiveCheckpointsTest, CommitsWhenEveryWriterAndTheStateAreIn) {
  LiveCheckpoints lc(root_.string(), 2);
  auto cmd = lc.Open(10, "forecast", "why", "2022-06-01T00:00:00Z", {1, 2});
  ASSERT_TRUE(cmd.ok());
  const std::string dir = (*cmd)["dir"];
  EXPECT_EQ((*cmd)["step"], 10);
  EXPECT_TRUE(lc.BusyExcept({99}));
  EXPECT_FALSE(lc.Open(10, "x", "y", "", {1}).ok());
  auto r = lc.OnWritten(1, Written(10, dir, "layer-0000.gtck"));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  r = lc.OnWritten(2, Written(10, dir, "layer-0001.gtck"));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value()) << "not before the coordinator's state is captured";
  EXPECT_EQ(lc.AwaitingState(), std::vector<int64_t>{10});
  r = lc.SetState(10, {{"step", 10}, {"trace_time", "2022-06-01T03:00:00Z"}});
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  const json rec = **r;
  EXPECT_EQ(rec["kind"], "forecast");
  EXPECT_EQ(rec["files"], 3);
  EXPECT_EQ(rec["trace_time"], "2022-06-01T03:00:00Z");
  EXPECT_TRUE(ckpt::VerifyCheckpoint(dir).ok());
  EXPECT_FALSE(lc.BusyExcept({99}));
  EXPECT_EQ(lc.records().size(), 1u);
  // Retention: the third commit removes the first.
  for (int64_t s : {20, 30}) {
    auto c = lc.Open(s, "periodic", "p", "", {1});
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(lc.SetState(s, {{"step", s}}).ok());
    ASSERT_TRUE(lc.OnWritten(1, Written(s, (*c)["dir"], "layer-0000.gtck")).ok());
  }
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_EQ(ckpt::ListCheckpoints(root_.string(), true).size(), 2u);
}

TEST_F(LiveCheckpointsTest, AFailedWriterAbandonsTheRequest) {
  LiveCheckpoints lc(root_.string(), 3);
  auto cmd = lc.Open(5, "plan", "before pausing", "", {1, 2});
  ASSERT_TRUE(cmd.ok());
  ASSERT_TRUE(lc.OnWritten(1, Written(5, (*cmd)["dir"], "layer-0000.gtck")).ok());
  auto failed = lc.OnFailed(2, {{"step", 5}, {"message", "boundary passed"}});
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->reason, "before pausing");
  EXPECT_FALSE(fs::exists((*cmd)["dir"].get<std::string>()));
  EXPECT_FALSE(lc.IsOpen(5));
  // A late report for the abandoned step changes nothing.
  auto late = lc.OnWritten(2, {{"step", 5}, {"files", json::array()}});
  ASSERT_TRUE(late.ok());
  EXPECT_FALSE(late->has_value());
  EXPECT_FALSE(lc.OnWritten(2, {{"step", "x"}}).ok()) << "a malformed report is an error, not a crash";
  // Numbers no step or size can be: refused before any conversion (undefined behaviour otherwise).
  EXPECT_FALSE(lc.OnWritten(2, {{"step", 1e300}, {"files", json::array()}}).ok());
  EXPECT_FALSE(lc.OnWritten(2, {{"step", 5.5}, {"files", json::array()}}).ok());
  EXPECT_FALSE(lc.OnWritten(2, {{"step", 5}, {"files", {{{"name", "a"}, {"bytes", -1}, {"sha256", "00"}}}}}).ok());
}

}  // namespace
}  // namespace gt
