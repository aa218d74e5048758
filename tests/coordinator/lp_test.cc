#include "coordinator/lp.h"

#include <gtest/gtest.h>

#include "fixtures.h"

namespace gt {
namespace {

using testing::SmallConfig;

std::vector<SiteOutlook> GridOnly(std::vector<double> carbon) {
  SiteOutlook o;
  o.carbon_g_per_kwh = std::move(carbon);
  o.renewable_mw.assign(o.carbon_g_per_kwh.size(), 0.0);
  return {o};
}

// Without batteries or held GPUs the LP is the fractional problem the convex-hull greedy solves
// exactly: both find the same least carbon.
TEST(ScheduleLp, MatchesTheGreedyWithoutBatteries) {
  Config c = SmallConfig(1);
  auto menu = OptionMenu::Build(c).value();
  auto outlook = GridOnly({420, 380, 150, 90, 300, 250, 120, 500, 60, 330});
  const double work = menu.option(menu.fastest()).steps_per_hour * 3.3;
  auto lp = SolveScheduleLp(menu, outlook, {0}, 1.0, work, 10, ScheduleOptions{});
  ASSERT_TRUE(lp.ok()) << lp.status().ToString();
  Schedule greedy = PlanSchedule(menu, outlook, 1.0, work, 10, ScheduleOptions{});
  EXPECT_NEAR(lp->carbon_kg, greedy.carbon_kg, 1e-6 * greedy.carbon_kg);
}

// Paused, the job's GPUs draw idle power until its last run, not to the end of the outlook: with a
// small idle draw the work still waits for the clean hour; with a large one it runs now, and then
// nothing is charged for the rest of the outlook.
TEST(ScheduleLp, AHeldAllocationChargesPausesOnlyUntilTheLastRun) {
  Config c = SmallConfig(1);
  MenuOptions one;  // the whole site only, so that the arithmetic below is the whole story
  one.levels = {1.0};
  one.include_all_sites = false;
  auto menu = OptionMenu::Build(c, one).value();
  ASSERT_EQ(menu.size(), 1);
  const int o = 0;
  const double p_mw = menu.option(o).facility_mw[0];
  const double work = menu.option(o).steps_per_hour;  // one interval at full speed
  auto outlook = GridOnly({500, 500, 500, 500, 500, 100, 500, 500});
  LpOptions integral;
  integral.integral_first_step = true;
  for (double idle_share : {0.01, 0.5}) {
    ScheduleOptions so;
    so.paused_mw = {idle_share * p_mw};
    auto lp = SolveScheduleLp(menu, outlook, {0}, 1.0, work, 8, so, integral);
    ASSERT_TRUE(lp.ok()) << lp.status().ToString();
    // Waiting for t = 5: the run there plus five intervals of idle draw at 500 g/kWh.
    const double wait_kg = p_mw * 100 + 5 * idle_share * p_mw * 500;
    const double now_kg = p_mw * 500;
    EXPECT_NEAR(lp->carbon_kg, std::min(wait_kg, now_kg), 1e-6 * now_kg) << idle_share;
    EXPECT_EQ(lp->FirstOption() >= 0, now_kg < wait_kg) << idle_share;
  }
}

}  // namespace
}  // namespace gt
