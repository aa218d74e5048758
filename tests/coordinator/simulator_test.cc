#include "coordinator/simulator.h"

#include <gtest/gtest.h>

#include <map>

#include "fixtures.h"

namespace gt {
namespace {

using testing::SmallConfig;
using testing::SyntheticSupply;

std::map<std::string, SimResult> RunAll(const Simulator& sim) {
  std::map<std::string, SimResult> out;
  for (const auto& name : PolicyNames()) {
    auto res = sim.Run(**MakePolicy(name), "blend");
    EXPECT_TRUE(res.ok()) << name << ": " << res.status().ToString();
    if (res.ok()) out[name] = std::move(res).value();
  }
  return out;
}

TEST(Simulator, SyntheticJobEveryPolicyFinishesBalancedAndAboveTheBound) {
  Config c = SmallConfig();
  auto menu = OptionMenu::Build(c).value();
  // A job that needs 24 h at full speed, 48 h deadline.
  c.job.steps = menu.option(menu.fastest()).steps_per_hour * 24;
  auto sim = Simulator::Create(c, SyntheticSupply(c, 72, 0.02), 72);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  const double bound = sim->CarbonLowerBoundKg();
  EXPECT_GT(bound, 0);
  auto all = RunAll(*sim);
  ASSERT_EQ(all.size(), PolicyNames().size());
  for (const auto& [name, r] : all) {
    EXPECT_TRUE(r.finished) << name;
    EXPECT_TRUE(r.deadline_met) << name << " took " << r.completion_hours << " h";
    EXPECT_NEAR(r.work_steps, c.job.steps, 1e-6 * c.job.steps) << name;
    EXPECT_LT(r.ledger.MaxImbalanceMwh(), 1e-9) << name;
    EXPECT_GE(r.totals.carbon_kg, bound * (1 - 1e-9)) << name;
    EXPECT_EQ(r.ledger.rows().size(), r.timeline.size() * c.sites.size()) << name;
    // Energy adds up: demand = renewable + battery + grid (+ unmet, none here).
    EXPECT_NEAR(r.totals.demand_mwh,
                r.totals.renewable_used_mwh + r.totals.battery_discharge_mwh + r.totals.grid_mwh, 1e-9);
  }
  EXPECT_LT(all["greentrain"].totals.carbon_kg, all["carbon-agnostic"].totals.carbon_kg);
  EXPECT_LT(all["oracle"].totals.carbon_kg, all["carbon-agnostic"].totals.carbon_kg);
  EXPECT_EQ(all["carbon-agnostic"].pauses, 0);
  EXPECT_NEAR(all["carbon-agnostic"].completion_hours, 24, 0.2);
}

TEST(Simulator, TightDeadlineIsStillMet) {
  Config c = SmallConfig();
  auto menu = OptionMenu::Build(c).value();
  c.job.steps = menu.option(menu.fastest()).steps_per_hour * 40;
  c.job.deadline_hours = 44;  // 1.1x the fastest completion
  auto sim = Simulator::Create(c, SyntheticSupply(c, 48, 0.02), 48);
  ASSERT_TRUE(sim.ok());
  for (const auto& [name, r] : RunAll(*sim)) EXPECT_TRUE(r.deadline_met) << name << " " << r.completion_hours;
}

TEST(Simulator, ImpossibleDeadlineIsReportedNotHidden) {
  Config c = SmallConfig();
  auto menu = OptionMenu::Build(c).value();
  c.job.steps = menu.option(menu.fastest()).steps_per_hour * 60;  // 60 h of work, 48 h deadline
  auto sim = Simulator::Create(c, SyntheticSupply(c, 24, 0.02), 24);
  ASSERT_TRUE(sim.ok());
  auto r = sim->Run(**MakePolicy("greentrain"), "blend").value();
  EXPECT_TRUE(r.finished);
  EXPECT_FALSE(r.deadline_met);
  EXPECT_GT(r.completion_hours, 48);
}

TEST(Simulator, BundledDefaultRuns) {
  auto c = LoadConfig(DefaultConfigPath());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto sim = Simulator::FromConfig(*c);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  for (const auto& [name, r] : RunAll(*sim)) {
    EXPECT_TRUE(r.deadline_met) << name;
    EXPECT_LT(r.ledger.MaxImbalanceMwh(), 1e-9) << name;
  }
}

TEST(Simulator, JobStartingAtTheFirstTraceValueRunsWithoutHistory) {
  Config c = SmallConfig();
  auto menu = OptionMenu::Build(c).value();
  c.job.steps = menu.option(menu.fastest()).steps_per_hour * 12;
  auto sim = Simulator::Create(c, SyntheticSupply(c, 0, 0.02), 0);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  for (const auto& [name, r] : RunAll(*sim)) {
    EXPECT_TRUE(r.deadline_met) << name;
    EXPECT_LT(r.ledger.MaxImbalanceMwh(), 1e-9) << name;
  }
}

TEST(Simulator, RejectsMismatchedSupply) {
  Config c = SmallConfig();
  auto supply = SyntheticSupply(c, 0, 0.01);
  supply.pop_back();
  EXPECT_FALSE(Simulator::Create(c, supply, 0).ok());
}

}  // namespace
}  // namespace gt
