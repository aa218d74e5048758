// The interval engine's policy input (coordinator/engine.h): forecasts from the past only, and,
// where the traces hold nothing before the job, the reading at the decision instead of zeros.
#include "coordinator/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "coordinator/simulator.h"
#include "fixtures.h"

namespace gt {
namespace {

using testing::SmallConfig;
using testing::SyntheticSupply;

// A job about to start: all its work left, empty batteries, nothing allocated.
EngineState Fresh(const Config& c) {
  EngineState st;
  st.work_left_steps = c.job.steps;
  st.battery_soc_mwh.assign(c.sites.size(), 0.0);
  st.allocated_gpus.assign(c.sites.size(), 0);
  return st;
}

TEST(IntervalEngine, WithoutHistoryTheForecastHoldsTheCurrentReadingNotZero) {
  Config c = SmallConfig();
  auto menu = OptionMenu::Build(c).value();
  const auto supply = SyntheticSupply(c, 0, 0.02);
  auto policy = MakePolicy("greentrain").value();
  for (const std::string forecaster : {"blend", "seasonal-naive", "persistence"}) {
    SCOPED_TRACE(forecaster);
    auto engine = IntervalEngine::Create(c, menu, supply, 0, *policy, forecaster).value();
    const EngineState st = Fresh(c);
    (void)engine->Decide(0, st);
    for (size_t s = 0; s < c.sites.size(); ++s) {
      const auto& o = engine->input().outlook[s];
      ASSERT_FALSE(o.carbon_g_per_kwh.empty());
      for (double v : o.carbon_g_per_kwh) EXPECT_EQ(v, supply[s].carbon_g_per_kwh[0]);
      for (double v : o.renewable_mw) EXPECT_EQ(v, supply[s].renewable_mw[0]);
      EXPECT_GT(o.carbon_g_per_kwh[0], 0);
    }
  }
}

TEST(IntervalEngine, WithHistoryTheForecastUsesOnlyThePast) {
  Config c = SmallConfig();
  auto menu = OptionMenu::Build(c).value();
  auto supply = SyntheticSupply(c, 48, 0.02);
  auto policy = MakePolicy("greentrain").value();
  auto engine = IntervalEngine::Create(c, menu, supply, 48, *policy, "persistence").value();
  const EngineState st = Fresh(c);
  (void)engine->Decide(48, st);
  // Persistence: the last observed interval (47), not the one being decided (48).
  for (size_t s = 0; s < c.sites.size(); ++s)
    EXPECT_EQ(engine->input().outlook[s].carbon_g_per_kwh[0], supply[s].carbon_g_per_kwh[47]);
}

// The engine forecasts interval i + 1 while the policy decides i; whatever order the driver asks in
// (the next interval, the same one again, a jump back or ahead, a horizon shortened by the deadline),
// each input equals the one a fresh engine computes for that interval alone.
TEST(IntervalEngine, ForecastingAheadNeverChangesTheInput) {
  Config c = SmallConfig();
  auto menu = OptionMenu::Build(c).value();
  auto supply = SyntheticSupply(c, 48, 0.02);
  auto policy = MakePolicy("greentrain").value();
  const EngineState st = Fresh(c);
  auto engine = IntervalEngine::Create(c, menu, supply, 48, *policy, "blend").value();
  for (size_t i : {48, 49, 50, 50, 57, 58, 52, 90, 143}) {
    SCOPED_TRACE(i);
    (void)engine->Decide(i, st);
    auto fresh = IntervalEngine::Create(c, menu, supply, 48, *policy, "blend").value();
    (void)fresh->Decide(i, st);
    ASSERT_EQ(engine->input().outlook.size(), fresh->input().outlook.size());
    for (size_t s = 0; s < c.sites.size(); ++s) {
      EXPECT_EQ(engine->input().outlook[s].carbon_g_per_kwh, fresh->input().outlook[s].carbon_g_per_kwh);
      EXPECT_EQ(engine->input().outlook[s].renewable_mw, fresh->input().outlook[s].renewable_mw);
    }
    EXPECT_EQ(engine->input().now, fresh->input().now);
    EXPECT_EQ(engine->input().hours_to_deadline, fresh->input().hours_to_deadline);
  }
}

// With policy.derate_quantile, the engine measures each site's renewables forecast on the history
// before the job and hands the policy the shortfall by outlook step: a site whose sun failed on
// every other day of its history gets a derate, a site whose clean daily sun blend forecasts
// exactly gets none. Without the setting, or without history, there is none (the fixed derate).
TEST(IntervalEngine, MeasuresTheShortfallOfForecastRenewablesOnTheHistory) {
  Config c = SmallConfig();
  c.policy.derate_quantile = 0.8;
  auto menu = OptionMenu::Build(c).value();
  const size_t history = 24 * 8;
  auto supply = SyntheticSupply(c, history, 0.02);
  for (size_t i = 0; i < history; ++i)
    if ((i / 24) % 2 == 1) supply[0].renewable_mw[i] *= 0.4;
  auto policy = MakePolicy("greentrain").value();
  const EngineState st = Fresh(c);
  auto engine = IntervalEngine::Create(c, menu, supply, history, *policy, "blend").value();
  (void)engine->Decide(history, st);
  const auto& in = engine->input();
  ASSERT_EQ(in.renewable_derate.size(), c.sites.size());
  for (size_t s = 0; s < c.sites.size(); ++s) ASSERT_EQ(in.renewable_derate[s].size(), in.outlook[s].renewable_mw.size());
  double most = 0;
  for (double d : in.renewable_derate[0]) {
    EXPECT_GE(d, 0.0);
    EXPECT_LE(d, 1.0);
    most = std::max(most, d);
  }
  EXPECT_GT(most, 0.2);
  for (double d : in.renewable_derate[1]) EXPECT_NEAR(d, 0.0, 1e-9);
  c.policy.derate_quantile = 0;
  auto fixed = IntervalEngine::Create(c, menu, supply, history, *policy, "blend").value();
  (void)fixed->Decide(history, st);
  EXPECT_TRUE(fixed->input().renewable_derate.empty());
}

// The spread of the job's grids (PolicyInput::grid_spread, greentrain's hedges read it): the 90th
// over the 10th percentile of every site's intensity over the last 14 days before the job, measured
// once at the start; older history does not count; without history it is unknown (infinite: hedged).
TEST(IntervalEngine, MeasuresTheSpreadOfTheGridsOnTheLastTwoWeeks) {
  Config c = SmallConfig();
  auto menu = OptionMenu::Build(c).value();
  const size_t history = 24 * 20;
  auto supply = SyntheticSupply(c, history, 0.02);
  ASSERT_GE(supply.size(), 2u);
  for (size_t i = 0; i < history; ++i) {
    const bool old = i < history - 24 * 14;
    supply[0].carbon_g_per_kwh[i] = old ? 10000 : i % 2 ? 300 : 100;
    for (size_t s = 1; s < supply.size(); ++s) supply[s].carbon_g_per_kwh[i] = old ? 10000 : 200;
  }
  auto policy = MakePolicy("greentrain").value();
  const EngineState st = Fresh(c);
  auto engine = IntervalEngine::Create(c, menu, supply, history, *policy, "blend").value();
  (void)engine->Decide(history, st);
  EXPECT_NEAR(engine->input().grid_spread, 3.0, 1e-9);
  auto none = IntervalEngine::Create(c, menu, SyntheticSupply(c, 0, 0.02), 0, *policy, "blend").value();
  (void)none->Decide(0, st);
  EXPECT_TRUE(std::isinf(none->input().grid_spread));
}


// One site whose renewables carry the job for its first five hours and then stop (flat grid, no
// battery). Decided by the engine, the interval before the loss begins with a "forecast" checkpoint
// (DecideCheckpoint's rule: green power now, forecast to fall below the load next interval), in the
// plan's actions, so that the simulator books it as the live run takes it; the interval after a
// checkpoint, a job that did not train since, and a job whose power stays take none.
std::vector<SiteSupplyTrace> GreenUntil(const Config& c, size_t history, size_t green_hours) {
  auto supply = SyntheticSupply(c, history, 0.0);
  for (auto& t : supply)
    for (size_t i = 0; i < t.renewable_mw.size(); ++i) {
      t.renewable_mw[i] = i >= history && i < history + green_hours ? 0.1 : 0.0;
      t.carbon_g_per_kwh[i] = 300;
    }
  return supply;
}

TEST(IntervalEngine, ChecksAheadOfAForecastLossOfGreenPower) {
  Config c = SmallConfig(1);
  c.job.checkpoint_every_hours = 0;  // the forecast rule alone
  auto menu = OptionMenu::Build(c).value();
  c.job.steps = menu.option(menu.fastest()).steps_per_hour * 12;  // 12 h at full speed
  const size_t history = 24;
  const auto supply = GreenUntil(c, history, 5);
  auto policy = MakePolicy("carbon-agnostic").value();
  auto engine = IntervalEngine::Create(c, menu, supply, history, *policy, "oracle").value();
  EngineState st = Fresh(c);
  st.current = engine->Decide(history, st);  // the start
  ASSERT_TRUE(st.current.running());
  EXPECT_FALSE(engine->checkpoint().take);
  auto checkpoints = [](const Plan& p) {
    return std::count_if(p.actions.begin(), p.actions.end(), [](const Action& a) { return a.kind == ActionKind::kCheckpoint; });
  };
  st.hours_since_checkpoint = 3;
  EXPECT_EQ(checkpoints(engine->Decide(history + 3, st)), 0);  // the next hour is green too
  const Plan before_loss = engine->Decide(history + 4, st);
  ASSERT_EQ(checkpoints(before_loss), 1);
  EXPECT_EQ(engine->checkpoint().kind, "forecast");
  EXPECT_EQ(before_loss.actions.front().reason, engine->checkpoint().reason);
  EXPECT_NE(engine->checkpoint().reason.find("a renewables"), std::string::npos) << engine->checkpoint().reason;
  st.hours_since_checkpoint = 0;  // one was just taken
  EXPECT_EQ(checkpoints(engine->Decide(history + 4, st)), 0);
  st.hours_since_checkpoint = 3;
  st.current = Plan{};  // starting here: no work at risk yet
  EXPECT_EQ(checkpoints(engine->Decide(history + 4, st)), 0);

  // The simulator books it: a checkpoint at the start of hour 4 and none else, where the same job
  // with power throughout takes none.
  for (size_t green : {5, 96}) {
    SCOPED_TRACE(green);
    auto sim = Simulator::Create(c, GreenUntil(c, history, green), history).value();
    const SimResult r = sim.Run(*policy, "oracle").value();
    ASSERT_GT(r.timeline.size(), 6u);
    for (size_t k = 0; k < r.timeline.size(); ++k) EXPECT_EQ(r.timeline[k].checkpoint, green == 5 && k == 4) << k;
    EXPECT_EQ(r.checkpoints, green == 5 ? 1 : 0);
  }
}

// Both drivers book a plan change through IntervalEngine::Cost. A resize halts every stage and
// regroups (the live run starts a new pipeline epoch): it costs the restart, no checkpoint and no
// transfer; carrying on costs nothing.
TEST(IntervalEngine, BooksAResizeItsRegroup) {
  Config c = SmallConfig();
  auto menu = OptionMenu::Build(c).value();
  auto policy = MakePolicy("greentrain").value();
  auto engine = IntervalEngine::Create(c, menu, SyntheticSupply(c, 0, 0.02), 0, *policy, "oracle").value();
  auto plan_of = [&](int o) {
    Plan p;
    p.option = o;
    p.busy_gpus = menu.option(o).gpus;
    p.stages = menu.option(o).partition.stages;
    p.steps_per_hour = menu.option(o).steps_per_hour;
    return p;
  };
  int full = -1, quarter = -1;  // site 0 alone, at its largest and smallest level
  for (int o = 0; o < menu.size(); ++o) {
    if (menu.option(o).sites != std::vector<int>{0}) continue;
    if (full < 0 || menu.option(o).gpus[0] > menu.option(full).gpus[0]) full = o;
    if (quarter < 0 || menu.option(o).gpus[0] < menu.option(quarter).gpus[0]) quarter = o;
  }
  ASSERT_GE(full, 0);
  ASSERT_NE(full, quarter);
  const Plan from = plan_of(full);
  Plan to = plan_of(quarter);
  to.actions = DeriveActions(from, to, 0, c.job.checkpoint_every_hours);
  const Transition resize = engine->Cost(from, to);
  EXPECT_EQ(resize.resizes, 1);
  EXPECT_EQ(resize.migrations, 0);
  EXPECT_FALSE(resize.checkpoint);
  EXPECT_EQ(resize.migrated_bytes, 0);
  EXPECT_DOUBLE_EQ(resize.overhead_hours, menu.settings().restart_seconds / 3600.0);
  Plan same = plan_of(full);
  same.actions = DeriveActions(from, same, 0, c.job.checkpoint_every_hours);
  EXPECT_EQ(engine->Cost(from, same).overhead_hours, 0);
}

}  // namespace
}  // namespace gt
