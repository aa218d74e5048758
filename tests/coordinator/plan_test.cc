#include "coordinator/plan.h"

#include <gtest/gtest.h>

namespace gt {
namespace {

StagePlacement Stage(int site, int first, int last) {
  StagePlacement s;
  s.site = site;
  s.first_layer = first;
  s.last_layer = last;
  return s;
}

Plan Running(int option, std::vector<int> gpus, std::vector<StagePlacement> stages) {
  Plan p;
  p.option = option;
  p.busy_gpus = std::move(gpus);
  p.stages = std::move(stages);
  p.steps_per_hour = 100;
  return p;
}

Plan Paused(const Plan& from) {
  Plan p = from;
  p.option = -1;
  p.busy_gpus.assign(from.busy_gpus.size(), 0);
  p.steps_per_hour = 0;
  return p;
}

std::vector<ActionKind> Kinds(const std::vector<Action>& a) {
  std::vector<ActionKind> k;
  for (const auto& x : a) k.push_back(x.kind);
  return k;
}

TEST(DeriveActions, Table) {
  const Plan none;
  const Plan a = Running(0, {8, 0}, {Stage(0, 0, 10)});
  const Plan a_small = Running(1, {4, 0}, {Stage(0, 0, 10)});
  const Plan b = Running(2, {0, 8}, {Stage(1, 0, 10)});
  const Plan ab = Running(3, {8, 8}, {Stage(0, 0, 5), Stage(1, 5, 10)});
  using K = ActionKind;
  struct Case {
    const char* name;
    Plan prev, next;
    double since_ckpt;
    std::vector<ActionKind> want;
  };
  std::vector<Case> cases = {
      {"start", none, a, 0, {K::kStart}},
      {"not started, stay paused", none, Paused(a), 0, {}},
      {"steady", a, a, 1, {}},
      {"periodic checkpoint", a, a, 6, {K::kCheckpoint}},
      {"pause checkpoints first", a, Paused(a), 0, {K::kCheckpoint, K::kPause}},
      {"stay paused", Paused(a), Paused(a), 10, {}},
      {"resume", Paused(a), a, 10, {K::kResume}},
      {"resize", a, a_small, 0, {K::kResize}},
      {"migrate checkpoints first", a, b, 0, {K::kCheckpoint, K::kMigrate}},
      {"split across sites moves the second stage", a, ab, 0, {K::kCheckpoint, K::kMigrate}},
      {"resume elsewhere: state was saved at the pause", Paused(a), b, 0, {K::kMigrate, K::kResume}},
  };
  for (const auto& c : cases) EXPECT_EQ(Kinds(DeriveActions(c.prev, c.next, c.since_ckpt, 6)), c.want) << c.name;
  auto m = DeriveActions(a, b, 0, 6);
  EXPECT_EQ(m[1].from_site, 0);
  EXPECT_EQ(m[1].to_site, 1);
  auto split = DeriveActions(a, ab, 0, 6);
  EXPECT_EQ(split[1].stage, 1);
  EXPECT_EQ(split[1].to_site, 1);
}

// The periodic checkpoint rule: only training ages a checkpoint, and a job that trains throughout
// checkpoints every `every` hours (6 intervals of an hour for 6 h, not 7).
TEST(PeriodicCheckpoint, OnlyTrainingAgesACheckpoint) {
  double since = 0;
  int taken = 0, at = -1;
  for (int i = 0; i < 13; ++i) {
    const bool due = PeriodicCheckpointDue(since, 6);
    if (due) ++taken, at = i;
    since = HoursSinceCheckpointAfter(since, due, true, 1.0);
  }
  EXPECT_EQ(taken, 2);  // at the starts of intervals 6 and 12
  EXPECT_EQ(at, 12);
  // A checkpoint before a 20-hour pause: nothing is due when the job resumes.
  since = HoursSinceCheckpointAfter(4, true, false, 1.0);
  for (int i = 0; i < 20; ++i) since = HoursSinceCheckpointAfter(since, false, false, 1.0);
  EXPECT_EQ(since, 0);
  EXPECT_FALSE(PeriodicCheckpointDue(since, 6));
  // Thirds of an hour summed one by one reach 2 h after 6 intervals despite rounding.
  since = 0;
  for (int i = 0; i < 6; ++i) since = HoursSinceCheckpointAfter(since, false, true, 1.0 / 3);
  EXPECT_TRUE(PeriodicCheckpointDue(since, 2));
  EXPECT_FALSE(PeriodicCheckpointDue(1e9, 0));
}

TEST(PeriodicCheckpoint, IntervalsBetweenCheckpoints) {
  EXPECT_EQ(PeriodicCheckpointIntervals(6, 1), 6);
  EXPECT_EQ(PeriodicCheckpointIntervals(6, 0.25), 24);
  EXPECT_EQ(PeriodicCheckpointIntervals(2, 1.0 / 3), 6);
  EXPECT_EQ(PeriodicCheckpointIntervals(6.5, 1), 7);
  EXPECT_EQ(PeriodicCheckpointIntervals(0.5, 1), 1);
  EXPECT_EQ(PeriodicCheckpointIntervals(0, 1), 0);
  // What the rule gives, interval by interval, for a job that trains throughout.
  for (double every : {1.0, 2.5, 6.0}) {
    for (double dt : {0.25, 1.0 / 3, 1.0}) {
      double since = 0;
      int first = -1;
      for (int i = 0; first < 0 && i < 1000; ++i) {
        if (PeriodicCheckpointDue(since, every)) first = i;
        since = HoursSinceCheckpointAfter(since, false, true, dt);
      }
      EXPECT_EQ(first, PeriodicCheckpointIntervals(every, dt)) << every << " h every, intervals of " << dt << " h";
    }
  }
}

TEST(Plan, Describe) {
  Plan p = Running(0, {8, 4}, {Stage(0, 0, 5), Stage(1, 5, 10)});
  EXPECT_EQ(p.Describe({"a", "b"}), "a:8+b:4");
  EXPECT_EQ(Paused(p).Describe({"a", "b"}), "paused@a+b");
  EXPECT_EQ(Plan().Describe({"a"}), "-");
  EXPECT_EQ(p.Sites(), (std::vector<int>{0, 1}));
}

}  // namespace
}  // namespace gt
