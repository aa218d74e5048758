#include "coordinator/lp.h"

#include <gtest/gtest.h>

#include "fixtures.h"

namespace gt {
namespace {

using testing::SmallConfig;

// A menu of one option per site: the whole site.
OptionMenu WholeSiteOnly(const Config& c) {
  MenuOptions one;
  one.levels = {1.0};
  one.include_all_sites = false;
  return OptionMenu::Build(c, one).value();
}

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
  auto menu = WholeSiteOnly(c);  // so that the arithmetic below is the whole story
  ASSERT_EQ(menu.size(), 1);
  const int o = 0;
  const double p_mw = menu.option(o).facility_mw[0];
  const double work = menu.option(o).steps_per_hour;  // one interval at full speed
  auto outlook = GridOnly({500, 500, 500, 500, 500, 100, 500, 500});
  LpOptions integral;
  integral.integral_steps = 1;
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

// A pause while work is left holds the allocation for the whole interval: long before the job's end
// the LP may not count it as under way for only the share of an interval its later runs take. Eight
// intervals of work; renewables cover the whole draw at t = 0 and half of it from t = 2 on (so the
// later runs take half an interval each, free), none at t = 1. Executed, t = 1 costs at least its
// full idle draw at 500 g/kWh (running costs more). The relaxation counts the interval under way for
// at least the share of the work left after t = 0 (7 of 8); without that row, for the half its
// later runs take (half the idle draw).
TEST(ScheduleLp, APauseWithWorkLeftIsChargedTheWholeIntervalsIdleDraw) {
  Config c = SmallConfig(1);
  auto menu = WholeSiteOnly(c);
  ASSERT_EQ(menu.size(), 1);
  const double p_mw = menu.option(0).facility_mw[0];
  const double idle_mw = 0.2 * p_mw;
  const int T = 24;
  SiteOutlook o;
  o.carbon_g_per_kwh.assign(T, 500);
  o.renewable_mw.assign(T, 0.5 * p_mw);
  o.renewable_mw[0] = p_mw;
  o.renewable_mw[1] = 0;
  ScheduleOptions so;
  so.paused_mw = {idle_mw};
  LpOptions integral;
  integral.integral_steps = 1;
  const double work = 8 * menu.option(0).steps_per_hour;
  auto lp = SolveScheduleLp(menu, {o}, {0}, 1.0, work, T, so, integral);
  ASSERT_TRUE(lp.ok()) << lp.status().ToString();
  ASSERT_TRUE(lp->feasible);
  EXPECT_EQ(lp->FirstOption(), 0);
  EXPECT_GE(lp->carbon_kg, 7.0 / 8 * idle_mw * 500 * (1 - 1e-9));
}

// A pause holds the allocation the job last ran, not the one it holds now: after a planned move,
// its idle draw is at the site moved to. The job holds site a's GPUs now; two intervals of work;
// site b is clean at t = 0 and 2, both grids dirty at t = 1, where a's renewables would just cover
// a's idle draw. The plan runs at b, pauses at t = 1 holding b's GPUs (their idle draw from b's
// grid) and runs at b again. Charged at a's allocation, that pause was free.
TEST(ScheduleLp, APauseAfterAMoveIsChargedWhereTheJobThenHoldsItsGpus) {
  Config c = SmallConfig(2);
  auto menu = WholeSiteOnly(c);
  ASSERT_EQ(menu.size(), 2);
  const double p_mw = menu.option(0).facility_mw[0];
  const double idle_a = menu.IdleFacilityMw(0, menu.option(0).gpus[0]);
  const double idle_b = menu.IdleFacilityMw(1, menu.option(1).gpus[1]);
  ASSERT_GT(idle_b, 0);
  ASSERT_DOUBLE_EQ(menu.option(1).facility_mw[1], p_mw);
  std::vector<SiteOutlook> outlook(2);
  outlook[0].carbon_g_per_kwh = {1000, 1000, 1000};
  outlook[0].renewable_mw = {0, idle_a, 0};
  outlook[1].carbon_g_per_kwh = {0, 1000, 0};
  outlook[1].renewable_mw = {0, 0, 0};
  ScheduleOptions so;
  so.paused_mw = {idle_a, 0};
  for (int integral : {1, 3}) {
    SCOPED_TRACE("integral steps " + std::to_string(integral));
    LpOptions lpo;
    lpo.integral_steps = integral;
    auto lp = SolveScheduleLp(menu, outlook, {0, 0}, 1.0, 2 * menu.option(1).steps_per_hour, 3, so, lpo);
    ASSERT_TRUE(lp.ok()) << lp.status().ToString();
    EXPECT_EQ(lp->FirstOption(), 1);
    EXPECT_NEAR(lp->carbon_kg, idle_b * 1000, 1e-6 * p_mw * 1000);
  }
}

// A mix of options (or a part of an interval) promises work that one option per interval, as
// intervals are executed, does not deliver. 1.4 intervals of work over a clean, a middling and a
// dirty interval: relaxed after the first step, the plan runs 0.4 of the middling one, which rounds
// to a pause (the plan as executed does 1 interval of work); integral throughout, it runs both of
// the cleaner ones, the second until the work is done (the job's last interval may end early: one
// interval's worth of the chosen intervals may go unused, so the carbon is the same here).
TEST(ScheduleLp, APlanIntegralThroughoutPromisesOnlyWorkExecutedIntervalsDo) {
  Config c = SmallConfig(1);
  auto menu = WholeSiteOnly(c);
  ASSERT_EQ(menu.size(), 1);
  const double p_mw = menu.option(0).facility_mw[0];
  const double rate = menu.option(0).steps_per_hour;
  auto outlook = GridOnly({100, 200, 500});
  auto executed_work = [&](const LpSchedule& lp) {
    double w = 0;
    for (size_t t = 0; t < lp.fraction.size(); ++t) w += lp.OptionAt(t) >= 0 ? rate : 0;
    return w;
  };
  LpOptions first;
  first.integral_steps = 1;
  auto relaxed = SolveScheduleLp(menu, outlook, {0}, 1.0, 1.4 * rate, 3, ScheduleOptions{}, first);
  ASSERT_TRUE(relaxed.ok()) << relaxed.status().ToString();
  EXPECT_NEAR(relaxed->carbon_kg, p_mw * (100 + 0.4 * 200), 1e-6 * p_mw);
  EXPECT_LT(executed_work(*relaxed), 1.4 * rate);
  LpOptions all;
  all.integral_steps = 3;
  auto integral = SolveScheduleLp(menu, outlook, {0}, 1.0, 1.4 * rate, 3, ScheduleOptions{}, all);
  ASSERT_TRUE(integral.ok()) << integral.status().ToString();
  EXPECT_NEAR(integral->carbon_kg, p_mw * (100 + 0.4 * 200), 1e-6 * p_mw);
  EXPECT_EQ(integral->OptionAt(2), -1);
  EXPECT_GE(executed_work(*integral), 1.4 * rate);
  for (const auto& step : integral->fraction)
    for (double x : step) EXPECT_TRUE(x < 1e-9 || x > 1 - 1e-9) << x;
}

// An entry to a placement at a later step (here a resume after a pause) is charged the work it loses
// and the idle draw meanwhile, wherever the plan makes it. Two clean intervals around a dirty one:
// free entries run the two clean ones; charged entries must make up the lost work, with a share a
// of the dirty interval such that 1 + a + (1 - h) (1 - a) = 2 (running at t = 1 lowers the resume
// at t = 2 by a), a = h / (1 + h).
TEST(ScheduleLp, EntriesAtLaterStepsAreChargedTheirLostWorkAndIdleDraw) {
  Config c = SmallConfig(1);
  auto menu = WholeSiteOnly(c);
  ASSERT_EQ(menu.size(), 1);
  const double p_mw = menu.option(0).facility_mw[0];
  const double idle_mw = menu.IdleFacilityMw(0, menu.option(0).gpus[0]);
  const double work = 2 * menu.option(0).steps_per_hour;
  auto outlook = GridOnly({100, 500, 100});
  ScheduleOptions free_entries;
  auto a = SolveScheduleLp(menu, outlook, {0}, 1.0, work, 3, free_entries);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_NEAR(a->carbon_kg, 200 * p_mw, 1e-6 * p_mw);
  const double h = 0.5;
  ScheduleOptions charged;
  charged.enter_hours = {h};
  auto b = SolveScheduleLp(menu, outlook, {0}, 1.0, work, 3, charged);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  const double share = h / (1 + h);
  const double expect = p_mw * (200 + 500 * share) + idle_mw * h * 100 * (1 - share);
  ASSERT_LT(expect, 600 * p_mw);  // cheaper than running straight through t = 0, 1
  EXPECT_NEAR(b->carbon_kg, expect, 1e-6 * expect);
  EXPECT_NEAR(b->fraction[1][0], share, 1e-6);
  // Part of the entry charged as the option's regroup: the same entry, charged once.
  charged.regroup_hours = 0.2;
  auto r = SolveScheduleLp(menu, outlook, {0}, 1.0, work, 3, charged);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NEAR(r->carbon_kg, expect, 1e-6 * expect);
}

// A change of option at one placement (a resize) is charged its regroup at a later step too, as the
// simulator books it: its work lost and the idle draw meanwhile. Half the site, then the whole site
// in the cleaner second interval: the resize there costs the whole site's idle draw for the regroup
// and the work it loses, which the second interval must make up in full.
TEST(ScheduleLp, AResizeAtALaterStepIsChargedItsRegroup) {
  Config c = SmallConfig(1);
  MenuOptions levels;
  levels.levels = {0.5, 1.0};
  levels.include_all_sites = false;
  auto menu = OptionMenu::Build(c, levels).value();
  ASSERT_EQ(menu.size(), 2);
  const int half = menu.option(0).gpus[0] < menu.option(1).gpus[0] ? 0 : 1, full = 1 - half;
  const double p_half = menu.option(half).facility_mw[0], p_full = menu.option(full).facility_mw[0];
  const double idle_full = menu.IdleFacilityMw(0, menu.option(full).gpus[0]);
  const double rh = 0.25;
  const double work = menu.option(half).steps_per_hour + menu.option(full).steps_per_hour * (1 - rh);
  auto outlook = GridOnly({200, 100});
  LpOptions lpo;
  lpo.integral_steps = 2;
  ScheduleOptions so;
  so.enter_hours = {rh, rh};  // the same placement: an entry is its regroup alone
  so.regroup_hours = rh;
  auto lp = SolveScheduleLp(menu, outlook, {0}, 1.0, work, 2, so, lpo);
  ASSERT_TRUE(lp.ok()) << lp.status().ToString();
  EXPECT_EQ(lp->OptionAt(0), half);
  EXPECT_EQ(lp->OptionAt(1), full);
  const double expect = 200 * p_half + 100 * (p_full + idle_full * rh);
  EXPECT_NEAR(lp->carbon_kg, expect, 1e-6 * expect);
  // Without the regroup the resize was free: the second interval ran only the share it needed.
  so.regroup_hours = 0;
  auto free_resize = SolveScheduleLp(menu, outlook, {0}, 1.0, work, 2, so, lpo);
  ASSERT_TRUE(free_resize.ok()) << free_resize.status().ToString();
  EXPECT_NEAR(free_resize->carbon_kg, 200 * p_half + 100 * p_full * (1 - rh), 1e-6 * expect);
}

// Periodic checkpoints take their time from the intervals they fall in; one every two intervals
// costs each interval the job runs half a checkpoint's time: two clean intervals at full speed no
// longer do two intervals of work, and the rest runs in the dear one.
TEST(ScheduleLp, PeriodicCheckpointsTakeTheirTimeFromTheIntervals) {
  Config c = SmallConfig(1);
  auto menu = WholeSiteOnly(c);
  ASSERT_EQ(menu.size(), 1);
  const double p_mw = menu.option(0).facility_mw[0];
  const double lost_h = menu.CheckpointSeconds(menu.option(0).partition.stages) / 3600.0 / 2;
  ASSERT_GT(lost_h, 0);
  const double work = 2 * menu.option(0).steps_per_hour;
  auto outlook = GridOnly({100, 100, 500});
  auto free = SolveScheduleLp(menu, outlook, {0}, 1.0, work, 3, ScheduleOptions{});
  ASSERT_TRUE(free.ok()) << free.status().ToString();
  EXPECT_NEAR(free->carbon_kg, 200 * p_mw, 1e-6 * p_mw);
  ScheduleOptions periodic;
  periodic.checkpoint_period = 2;
  auto lp = SolveScheduleLp(menu, outlook, {0}, 1.0, work, 3, periodic);
  ASSERT_TRUE(lp.ok()) << lp.status().ToString();
  const double share = 2 * lost_h / (1 - lost_h);  // of t = 2, for the work t = 0 and 1 lost
  EXPECT_NEAR(lp->fraction[2][0], share, 1e-6);
  EXPECT_NEAR(lp->carbon_kg, p_mw * (200 + 500 * share), 1e-6 * p_mw);
}

// A battery serves load only while its site has some: an interval time-shared between two sites
// cannot draw both batteries at their full rate for the whole interval (no executed interval runs
// two placements; one site at a time, each battery covers its rate over that site's share). Two
// equal sites, each battery discharging at half an option's power: the interval's work costs half
// its energy from the grid however it is split (without the limit, the split drew nothing).
TEST(ScheduleLp, ABatteryDischargesOnlyWhileItsSiteRuns) {
  Config c = SmallConfig(2);
  for (auto& site : c.sites) {
    site.battery.capacity_mwh = 1.0;
    site.battery.min_soc = 0.0;
    site.battery.charge_mw = 0.0;
  }
  auto menu = WholeSiteOnly(c);
  ASSERT_EQ(menu.size(), 2);
  const double p_mw = menu.option(0).facility_mw[0];
  ASSERT_DOUBLE_EQ(menu.option(1).facility_mw[1], p_mw);
  ASSERT_DOUBLE_EQ(menu.option(1).steps_per_hour, menu.option(0).steps_per_hour);
  for (auto& site : c.sites) site.battery.discharge_mw = p_mw / 2;
  menu = WholeSiteOnly(c);
  std::vector<SiteOutlook> outlook(2);
  for (auto& o : outlook) {
    o.carbon_g_per_kwh = {400};
    o.renewable_mw = {0};
  }
  // Without and with an allocation held while paused (then a site has load while the job is
  // paused too, but not while it runs at the other site only).
  for (bool held : {false, true}) {
    SCOPED_TRACE(held ? "allocation held while paused" : "no allocation held");
    ScheduleOptions so;
    if (held) {
      so.paused_mw = {menu.IdleFacilityMw(0, menu.option(0).gpus[0]), menu.IdleFacilityMw(1, menu.option(1).gpus[1])};
    }
    auto lp = SolveScheduleLp(menu, outlook, {1.0, 1.0}, 1.0, menu.option(0).steps_per_hour, 1, so);
    ASSERT_TRUE(lp.ok()) << lp.status().ToString();
    EXPECT_NEAR(lp->carbon_kg, 0.5 * p_mw * 400, 1e-6 * p_mw * 400);
  }
}

// Where renewables cover every option at every step, every schedule emits nothing: the energy
// tie-break then takes the one that draws least energy (the most work per MWh throughout, keeping
// supply for later), and reports the carbon alone. Without it the LP is indifferent, and was seen
// to run an option drawing a third more power for the same work.
TEST(ScheduleLp, AnEnergyTieBreakDrawsTheLeastEnergyAmongEqualCarbonSchedules) {
  Config c = SmallConfig(1);
  auto menu = OptionMenu::Build(c).value();
  ASSERT_GT(menu.size(), 1);
  int thrifty = 0;
  double max_mw = 0;
  auto per_mwh = [&](int o) { return menu.option(o).steps_per_hour / menu.option(o).facility_mw[0]; };
  for (int o = 0; o < menu.size(); ++o) {
    if (per_mwh(o) > per_mwh(thrifty)) thrifty = o;
    max_mw = std::max(max_mw, menu.option(o).facility_mw[0]);
  }
  ASSERT_NE(thrifty, menu.fastest());  // else the test could not tell plans apart
  SiteOutlook o;
  o.carbon_g_per_kwh.assign(6, 400);
  o.renewable_mw.assign(6, 2 * max_mw);
  const double work = menu.option(thrifty).steps_per_hour * 3;  // half the outlook at the thrifty option
  LpOptions lpo;
  lpo.energy_kg_per_mwh = 0.01;
  auto lp = SolveScheduleLp(menu, {o}, {0}, 1.0, work, 6, ScheduleOptions{}, lpo);
  ASSERT_TRUE(lp.ok()) << lp.status().ToString();
  EXPECT_NEAR(lp->carbon_kg, 0.0, 1e-9);
  double mwh = 0;
  for (const auto& step : lp->fraction)
    for (int k = 0; k < menu.size(); ++k) mwh += step[k] * menu.option(k).facility_mw[0];
  EXPECT_NEAR(mwh, work / per_mwh(thrifty), 1e-6 * mwh);
}

// The tie-breaks are not carbon, and never buy energy or lateness with it: with one option the
// energy of every schedule is the same, the plan is the least-carbon one (its cleanest interval,
// 60 g/kWh, near the end) and its reported carbon excludes the tie-break (here large weights: 1 kg
// per MWh would add 0.25-1 % at these intensities).
TEST(ScheduleLp, TheReportedCarbonExcludesTheTieBreaks) {
  Config c = SmallConfig(1);
  auto menu = WholeSiteOnly(c);
  auto outlook = GridOnly({420, 380, 150, 90, 300, 250, 120, 500, 60, 330});
  const double work = menu.option(0).steps_per_hour * 3.3;
  Schedule greedy = PlanSchedule(menu, outlook, 1.0, work, 10, ScheduleOptions{});
  for (const bool early : {false, true}) {
    SCOPED_TRACE(early ? "earliness" : "energy");
    LpOptions lpo;
    (early ? lpo.earliness_kg : lpo.energy_kg_per_mwh) = 1.0;
    auto lp = SolveScheduleLp(menu, outlook, {0}, 1.0, work, 10, ScheduleOptions{}, lpo);
    ASSERT_TRUE(lp.ok()) << lp.status().ToString();
    EXPECT_NEAR(lp->carbon_kg, greedy.carbon_kg, 1e-6 * greedy.carbon_kg);
    EXPECT_NEAR(lp->fraction[8][0], 1.0, 1e-9);
  }
}

// Among schedules of equal carbon the earliness tie-break does the work soonest, and the reported
// carbon excludes it. Renewables cover the whole draw at every step: every schedule is free, and
// without the tie-break the LP may run the work anywhere (here, integral throughout, its last
// interval at the end of the outlook; on 3x slack, 2022-07-06, it waited 12 hours for renewables
// the forecast promised and that did not come).
TEST(ScheduleLp, AnEarlinessTieBreakDoesTheWorkSoonestAmongEqualCarbonSchedules) {
  Config c = SmallConfig(1);
  auto menu = WholeSiteOnly(c);
  const double p_mw = menu.option(0).facility_mw[0];
  SiteOutlook o;
  o.carbon_g_per_kwh.assign(8, 400);
  o.renewable_mw.assign(8, 2 * p_mw);
  const double work = menu.option(0).steps_per_hour * 3;
  LpOptions lpo;
  lpo.earliness_kg = 1.0;
  for (int integral : {0, 1, 8}) {
    SCOPED_TRACE("integral steps " + std::to_string(integral));
    lpo.integral_steps = integral;
    ScheduleOptions so;
    so.paused_mw = {0};  // before the first run
    so.pauses_hold = true;
    auto lp = SolveScheduleLp(menu, {o}, {0}, 1.0, work, 8, so, lpo);
    ASSERT_TRUE(lp.ok()) << lp.status().ToString();
    EXPECT_NEAR(lp->carbon_kg, 0.0, 1e-9);
    for (int t = 0; t < 8; ++t) EXPECT_NEAR(lp->fraction[t][0], t < 3 ? 1.0 : 0.0, 1e-9) << t;
  }
}

// A job that holds no GPUs yet (before its first run) still holds the allocation it runs, idle,
// through a pause after that run (ScheduleOptions::pauses_hold). Two intervals of work; renewables
// cover the whole draw at t = 0 and 3 only, the grid is dirty in between. Run, pause, run is free
// where pauses are free; holding the GPUs, the pause costs two intervals of idle draw (less than
// running one interval on the grid), as the simulator charges it.
TEST(ScheduleLp, BeforeTheFirstRunAPauseAfterARunHoldsThatRunsGpus) {
  Config c = SmallConfig(1);
  auto menu = WholeSiteOnly(c);
  const double p_mw = menu.option(0).facility_mw[0];
  const double idle_mw = menu.IdleFacilityMw(0, menu.option(0).gpus[0]);
  ASSERT_GT(idle_mw, 0);
  ASSERT_LT(2 * idle_mw, p_mw);
  SiteOutlook o;
  o.carbon_g_per_kwh = {500, 500, 500, 500};
  o.renewable_mw = {p_mw, 0, 0, p_mw};
  const double work = 2 * menu.option(0).steps_per_hour;
  LpOptions lpo;
  lpo.integral_steps = 1;
  for (bool hold : {false, true}) {
    SCOPED_TRACE(hold ? "pauses hold" : "pauses free");
    ScheduleOptions so;
    so.paused_mw = {0};
    so.pauses_hold = hold;
    auto lp = SolveScheduleLp(menu, {o}, {0}, 1.0, work, 4, so, lpo);
    ASSERT_TRUE(lp.ok()) << lp.status().ToString();
    EXPECT_NEAR(lp->carbon_kg, hold ? 2 * idle_mw * 500 : 0.0, 1e-6 * p_mw * 500);
  }
}

// Stopped at its node limit, branch and bound still proves a bound: the least bound of the
// subproblems left open, never above the optimum (found with a limit it does not reach) and never
// below the relaxation; finished, the bound is the optimum.
TEST(ScheduleLp, ANodeLimitedMipStillProvesABound) {
  Config c = testing::SmallConfig(3);
  for (auto& site : c.sites) {
    site.battery.capacity_mwh = 0.03;
    site.battery.charge_mw = site.battery.discharge_mw = 0.01;
  }
  auto menu = OptionMenu::Build(c).value();
  auto supply = testing::SyntheticSupply(c, 0, 0.008);
  const size_t T = 24;
  std::vector<SiteOutlook> outlook(3);
  for (int s = 0; s < 3; ++s) {
    outlook[s].renewable_mw.assign(supply[s].renewable_mw.begin(), supply[s].renewable_mw.begin() + T);
    outlook[s].carbon_g_per_kwh.assign(supply[s].carbon_g_per_kwh.begin(), supply[s].carbon_g_per_kwh.begin() + T);
  }
  const double work = menu.option(menu.fastest()).steps_per_hour * 16.5;
  const std::vector<double> soc(3, 0.0);
  auto relaxed = SolveScheduleLp(menu, outlook, soc, 1.0, work, T, ScheduleOptions{});
  ASSERT_TRUE(relaxed.ok()) << relaxed.status().ToString();
  EXPECT_DOUBLE_EQ(relaxed->bound_kg, relaxed->carbon_kg);
  LpOptions mip;
  mip.one_placement_per_interval = true;
  mip.charge_switches = true;
  mip.node_limit = 1000000;
  auto exact = SolveScheduleLp(menu, outlook, soc, 1.0, work, T, ScheduleOptions{}, mip);
  ASSERT_TRUE(exact.ok()) << exact.status().ToString();
  ASSERT_TRUE(exact->optimal);
  EXPECT_DOUBLE_EQ(exact->bound_kg, exact->carbon_kg);
  ASSERT_GT(exact->nodes, 100);  // the limits below stop it
  double last = relaxed->carbon_kg;
  for (int64_t limit : {1, 10, 100}) {
    mip.node_limit = limit;
    auto cut = SolveScheduleLp(menu, outlook, soc, 1.0, work, T, ScheduleOptions{}, mip);
    ASSERT_TRUE(cut.ok()) << cut.status().ToString();
    EXPECT_FALSE(cut->optimal) << limit;
    EXPECT_GE(cut->bound_kg, last * (1 - 1e-9)) << limit;  // more subproblems, no weaker a bound
    EXPECT_LE(cut->bound_kg, exact->carbon_kg * (1 + 1e-9)) << limit;
    last = cut->bound_kg;
  }
  // Here a hundred subproblems close more than half of the gap between relaxation and optimum.
  EXPECT_GT(last - relaxed->carbon_kg, 0.5 * (exact->carbon_kg - relaxed->carbon_kg));
}

}  // namespace
}  // namespace gt
