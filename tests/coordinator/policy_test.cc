#include "coordinator/policy.h"

#include <gtest/gtest.h>

#include <cmath>

#include "fixtures.h"

namespace gt {
namespace {

using testing::SmallConfig;

struct Fixture {
  Config config = SmallConfig();
  OptionMenu menu = OptionMenu::Build(config).value();
  int FullOption(int site) const {
    for (int o = 0; o < menu.size(); ++o)
      if (menu.option(o).sites == std::vector<int>{site} && menu.option(o).gpus[site] == 64) return o;
    return -1;
  }
};

std::vector<SiteOutlook> Flat(size_t n, std::vector<double> carbon, std::vector<double> renew) {
  std::vector<SiteOutlook> out(carbon.size());
  for (size_t s = 0; s < carbon.size(); ++s) {
    out[s].carbon_g_per_kwh.assign(n, carbon[s]);
    out[s].renewable_mw.assign(n, renew[s]);
  }
  return out;
}

TEST(Menu, OffersEverySiteAtEveryLevelAndKnowsTheFastest) {
  Fixture f;
  EXPECT_GE(f.menu.size(), 8);  // 2 sites x 4 levels (+ both sites, if feasible)
  const auto& fast = f.menu.option(f.menu.fastest());
  for (int o = 0; o < f.menu.size(); ++o) EXPECT_LE(f.menu.option(o).steps_per_hour, fast.steps_per_hour);
  int full = f.FullOption(0);
  ASSERT_GE(full, 0);
  EXPECT_DOUBLE_EQ(f.menu.option(full).facility_mw[0], 64 * 500 / 1e6);
  EXPECT_GT(f.menu.state_bytes(), 0);
  // The nodes' hosts and the PUE are in the power every policy plans with.
  Config c = testing::SmallConfig();
  c.sites[0].gpu.host_w = 200;
  c.sites[0].pue = 1.5;
  auto m = OptionMenu::Build(c);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_DOUBLE_EQ(m->option(full).it_mw[0], 64 * 700 / 1e6);
  EXPECT_DOUBLE_EQ(m->option(full).facility_mw[0], 64 * 700 * 1.5 / 1e6);
  EXPECT_DOUBLE_EQ(m->IdleFacilityMw(0, 10), 10 * 300 * 1.5 / 1e6);
}

TEST(Menu, MigrationAndCheckpointTimesFollowBytesAndBandwidth) {
  Fixture f;
  const auto& a = f.menu.option(f.FullOption(0)).partition.stages;
  const auto& b = f.menu.option(f.FullOption(1)).partition.stages;
  EXPECT_EQ(f.menu.MigrationSeconds(a, a), 0);
  const double bytes = f.menu.MigrationBytes(a, b);
  EXPECT_NEAR(bytes, f.menu.state_bytes(), 1e-6 * bytes);
  // 10 Gbit/s link, 20 ms latency, plus the restart.
  EXPECT_NEAR(f.menu.MigrationSeconds(a, b), bytes * 8 / 10e9 + 0.02 + f.menu.settings().restart_seconds, 1e-6);
  EXPECT_NEAR(f.menu.CheckpointSeconds(a), bytes * 8 / 16e9, 1e-6);
}

// A running job whose stages change in place (a resize) halts and regroups, as the live run does:
// it costs the restart, although no state crosses a link. Staying costs nothing.
TEST(Menu, AResizeCostsARegroupAndStayingNothing) {
  Fixture f;
  const auto& full = f.menu.option(f.FullOption(0)).partition.stages;
  const auto& quarter = f.menu.option(0).partition.stages;  // site a at 25 %
  ASSERT_EQ(f.menu.MigrationSeconds(full, quarter), 0);
  ASSERT_FALSE(SameStages(full, quarter));
  const double restart = f.menu.settings().restart_seconds;
  EXPECT_EQ(f.menu.StartSeconds(full, true, full), 0);
  EXPECT_EQ(f.menu.StartSeconds(full, true, quarter), restart);
  EXPECT_EQ(f.menu.StartSeconds(quarter, true, full), restart);
  EXPECT_EQ(f.menu.StartSeconds(full, false, full), restart);  // a resume in place
  EXPECT_EQ(f.menu.StartSeconds({}, false, full), restart);    // the start
}

TEST(PlanSchedule, PutsWorkInTheCleanestHours) {
  Fixture f;
  const int o = f.FullOption(0);
  const double per_hour = f.menu.option(o).steps_per_hour;
  auto outlook = Flat(10, {500, 800}, {0, 0});
  for (size_t h : {2, 5, 7}) outlook[0].carbon_g_per_kwh[h] = 100;
  ScheduleOptions so;
  Schedule s = PlanSchedule(f.menu, outlook, 1.0, 3 * per_hour, 10, so);
  ASSERT_TRUE(s.feasible);
  for (size_t h = 0; h < 10; ++h) {
    bool clean = h == 2 || h == 5 || h == 7;
    EXPECT_EQ(s.option[h], clean ? o : -1) << h;
    EXPECT_NEAR(s.work[h], clean ? per_hour : 0, 1e-6 * per_hour) << h;
  }
  EXPECT_NEAR(s.carbon_kg, 3 * f.menu.option(o).facility_mw[0] * 100, 1e-6);
}

TEST(PlanSchedule, PrefersPartialSpeedWhenMarginalSpeedIsExpensive) {
  // Throughput is concave in GPUs (allreduce, fixed batch), so with uniform carbon the cheapest way
  // to do a little work over many hours is a small configuration, not bursts of the full site.
  Fixture f;
  auto outlook = Flat(20, {400, 400}, {0, 0});
  const double small = f.menu.option(0).steps_per_hour;  // site a at 25 %
  ScheduleOptions so;
  Schedule s = PlanSchedule(f.menu, outlook, 1.0, 10 * small, 20, so);
  double work = 0;
  for (size_t h = 0; h < 20; ++h) {
    work += s.work[h];
    if (s.option[h] >= 0) {
      EXPECT_LE(f.menu.option(s.option[h]).steps_per_hour, small * 1.0001);
    }
  }
  EXPECT_NEAR(work, 10 * small, 1e-6 * small);
}

// A remainder smaller than half of the smallest option's hour, all planned at the first (the
// cleanest) step: it is run there, not rounded down to a pause and put off to dearer hours.
TEST(PlanSchedule, RunsASmallTailInTheCleanestFirstStep) {
  Fixture f;
  auto outlook = Flat(6, {500, 800}, {0, 0});
  outlook[0].carbon_g_per_kwh[0] = 100;
  const double small = f.menu.option(0).steps_per_hour;
  Schedule s = PlanSchedule(f.menu, outlook, 1.0, 0.2 * small, 6, ScheduleOptions{});
  ASSERT_GE(s.option[0], 0);
  EXPECT_EQ(f.menu.option(s.option[0]).sites, std::vector<int>{0});
  for (size_t h = 1; h < 6; ++h) EXPECT_EQ(s.option[h], -1) << h;
}

// Only increments actually taken mark a step as used: the rounding residue of the last, partial
// one must not switch on later steps (it once ran a dear hour at a size nothing was planned for).
TEST(PlanSchedule, StepsWithoutPlannedWorkStayOff) {
  Fixture f;
  const double small = f.menu.option(0).steps_per_hour;
  auto outlook = Flat(24, {300, 300}, {0, 0});
  for (size_t h = 0; h < 24; ++h) outlook[0].carbon_g_per_kwh[h] = outlook[1].carbon_g_per_kwh[h] = 100 + 17 * ((h * 7) % 24);
  for (double k = 0.3; k < 20; k += 0.377) {
    Schedule s = PlanSchedule(f.menu, outlook, 1.0, k * small, 24, ScheduleOptions{});
    for (size_t h = 0; h < 24; ++h)
      if (s.work[h] == 0) { EXPECT_EQ(s.option[h], -1) << "k " << k << " step " << h; }
  }
}

TEST(PlanSchedule, RenewableAwarenessChangesTheSite) {
  Fixture f;
  // Site b is on a dirtier grid but has on-site renewables covering its whole demand.
  auto outlook = Flat(4, {200, 600}, {0, 1.0});
  const double per_hour = f.menu.option(f.FullOption(1)).steps_per_hour;
  ScheduleOptions aware;
  Schedule s = PlanSchedule(f.menu, outlook, 1.0, per_hour, 4, aware);
  EXPECT_EQ(s.carbon_kg, 0);
  ASSERT_GE(s.option[0], 0);
  EXPECT_EQ(f.menu.option(s.option[0]).sites, std::vector<int>{1});
  ScheduleOptions blind;
  blind.renewable_aware = false;
  Schedule b = PlanSchedule(f.menu, outlook, 1.0, per_hour, 4, blind);
  ASSERT_GE(b.option[0], 0);
  EXPECT_EQ(f.menu.option(b.option[0]).sites, std::vector<int>{0});
}

TEST(PlanSchedule, InfeasibleRunsFastestEverywhere) {
  Fixture f;
  auto outlook = Flat(3, {100, 100}, {0, 0});
  ScheduleOptions so;
  Schedule s = PlanSchedule(f.menu, outlook, 1.0, 1e9, 3, so);
  EXPECT_FALSE(s.feasible);
  for (int o : s.option) EXPECT_EQ(o, f.menu.fastest());
}

PolicyInput Input(const Fixture& f, double work, double hours, std::vector<SiteOutlook> outlook) {
  PolicyInput in;
  in.config = &f.config;
  in.menu = &f.menu;
  in.interval_hours = 1;
  in.work_total_steps = work;
  in.work_remaining_steps = work;
  in.hours_to_deadline = hours;
  in.outlook = std::move(outlook);
  in.battery_soc_mwh = {0, 0};
  return in;
}

// Sets `in` to the job running option `o` on its whole allocation.
void RunningAt(const Fixture& f, int o, PolicyInput* in) {
  in->current.option = o;
  in->current.stages = f.menu.option(o).partition.stages;
  in->current.busy_gpus = f.menu.option(o).gpus;
  in->current.steps_per_hour = f.menu.option(o).steps_per_hour;
  in->allocated_gpus = f.menu.option(o).gpus;
}

TEST(Policies, EveryPolicyRunsFastestWhenTheDeadlineLeavesNoSlack) {
  Fixture f;
  const double fast = f.menu.option(f.menu.fastest()).steps_per_hour;
  for (const auto& name : PolicyNames()) {
    auto p = MakePolicy(name);
    ASSERT_TRUE(p.ok()) << name;
    // Dirty now, clean later: only the deadline forces running now.
    auto outlook = Flat(10, {900, 900}, {0, 0});
    for (size_t h = 1; h < 10; ++h) outlook[0].carbon_g_per_kwh[h] = outlook[1].carbon_g_per_kwh[h] = 10;
    PolicyInput in = Input(f, fast * 9.5, 10, outlook);
    Plan plan = (*p)->Decide(in);
    EXPECT_EQ(plan.option, f.menu.fastest()) << name;
    EXPECT_EQ(plan.actions.size(), 1u) << name;
    EXPECT_EQ(plan.actions[0].kind, ActionKind::kStart) << name;
  }
}

// When a policy's choice would miss the deadline, the guard runs the least-carbon option that still
// keeps it, not the fastest: here suspend-resume wants to pause (its threshold is below every hour's
// intensity), just enough work is left that pausing is unsafe, and the clean site's options suffice.
TEST(Policies, DeadlineGuardRunsTheLeastCarbonSafeOptionNotTheFastest) {
  Fixture f;
  f.config.policy.carbon_threshold = 1;
  const int fastest = f.menu.fastest();
  const double fast = f.menu.option(fastest).steps_per_hour;
  const auto& stages = f.menu.option(fastest).partition.stages;
  const double overhead_h = (f.menu.MigrationSeconds({}, stages) + f.menu.CheckpointSeconds(stages)) / 3600.0;
  const double hours = 10, can_do = fast * (hours - 1 - (1 + 2 * overhead_h));
  PolicyInput in = Input(f, can_do + 0.05 * fast, hours, Flat(10, {900, 50}, {0, 0}));
  Plan plan = (*MakePolicy("suspend-resume"))->Decide(in);
  ASSERT_FALSE(plan.paused()) << "pausing would miss the deadline: " << plan.reason;
  EXPECT_EQ(plan.Sites(), std::vector<int>{1}) << "the clean site: " << plan.Describe({"a", "b"}) << ", " << plan.reason;
  EXPECT_NE(plan.reason.find("deadline guard"), std::string::npos) << plan.reason;
  EXPECT_NE(plan.option, fastest) << "the fastest (" << f.menu.option(fastest).label << ") is not the least carbon";
  // With no slack at all only the fastest keeps the deadline.
  Plan tight = (*MakePolicy("suspend-resume"))->Decide(Input(f, fast * 9.5, hours, Flat(10, {900, 50}, {0, 0})));
  EXPECT_EQ(tight.option, fastest);
}

TEST(Policies, ForecastPoliciesWaitForCleanHoursWhenThereIsSlack) {
  Fixture f;
  const double fast = f.menu.option(f.menu.fastest()).steps_per_hour;
  auto outlook = Flat(48, {900, 900}, {0, 0});
  for (size_t h = 10; h < 48; ++h) outlook[0].carbon_g_per_kwh[h] = outlook[1].carbon_g_per_kwh[h] = 10;
  for (const std::string name : {"suspend-resume", "carbonscaler", "greentrain", "oracle"}) {
    PolicyInput in = Input(f, fast * 5, 48, outlook);
    Plan plan = (*MakePolicy(name))->Decide(in);
    EXPECT_TRUE(plan.paused()) << name << " chose " << plan.Describe({"a", "b"});
  }
  Plan agnostic = (*MakePolicy("carbon-agnostic"))->Decide(Input(f, fast * 5, 48, outlook));
  EXPECT_EQ(agnostic.option, f.menu.fastest());
}

// The job's tail: what is left takes a fraction of this interval, which is the cleanest one
// left; greentrain and carbonscaler finish it now instead of waiting for the deadline guard.
TEST(Policies, TheTailIsFinishedInACleanIntervalNotPutOff) {
  Fixture f;
  const double small = f.menu.option(0).steps_per_hour;
  auto outlook = Flat(12, {600, 600}, {0, 0});
  outlook[0].carbon_g_per_kwh[0] = 50;
  for (const std::string name : {"carbonscaler", "greentrain", "oracle"}) {
    Plan plan = (*MakePolicy(name))->Decide(Input(f, 0.2 * small, 12, outlook));
    EXPECT_FALSE(plan.paused()) << name << ": " << plan.reason;
    EXPECT_EQ(plan.Sites(), std::vector<int>{0}) << name << ": " << plan.Describe({"a", "b"});
  }
}

// A move the plan makes later anyway is no reason to stay now. Running at site a, which turns
// dirty after this interval while b stays clean: were only the first interval charged for a move,
// a plan that stays this interval and moves next would look a move cheaper than moving now
// (greentrain stayed here before moves were priced wherever the plan makes them). greentrain moves
// now when b is cleaner now (by 2 g/kWh, less than the move's cost), and stays for the interval when
// a is the cleaner one now.
TEST(Policies, GreentrainMakesAMoveNowThatItsPlanWouldMakeLater) {
  Fixture f;
  const int at_a = f.FullOption(0);
  const double fast = f.menu.option(at_a).steps_per_hour;
  for (const double a_now : {102.0, 90.0}) {
    auto outlook = Flat(24, {900, 100}, {0, 0});
    outlook[0].carbon_g_per_kwh[0] = a_now;
    PolicyInput in = Input(f, fast * 16, 24, outlook);
    in.current = (*MakePolicy("carbon-agnostic"))->Decide(in);
    RunningAt(f, at_a, &in);
    Plan plan = (*MakePolicy("greentrain"))->Decide(in);
    ASSERT_FALSE(plan.paused()) << plan.reason;
    const std::vector<int> expect{a_now > 100 ? 1 : 0};
    EXPECT_EQ(plan.Sites(), expect) << "a at " << a_now << " g/kWh now: " << plan.Describe({"a", "b"}) << ", "
                                    << plan.reason;
  }
}

// The hedges' test case: site a at 150 g/kWh now and 500 after (b at 900), with sun that covers
// a's full size in the next interval only, and one interval of work at that size.
std::vector<SiteOutlook> SunNextInterval(const Fixture& f) {
  auto outlook = Flat(10, {500, 900}, {0, 0});
  outlook[0].carbon_g_per_kwh[0] = 150;
  outlook[0].renewable_mw[1] = f.menu.option(f.FullOption(0)).facility_mw[0];
  return outlook;
}
double OneIntervalAtA(const Fixture& f) { return f.menu.option(f.FullOption(0)).steps_per_hour; }

// greentrain's hedges against forecast error (derated renewables, a time reserve) apply only while
// the slack is below policy.hedge_below_slack. Site a: 150 g/kWh now, 500 after; renewables that
// cover its full size in the next interval only. Derated by 35 %, they cover part of it, so the
// hedged plan runs part of the work now; trusted, they cover it all and the plan waits for them.
TEST(Policies, GreentrainDropsItsHedgesWhenTheSlackAllowsWaitingAgain) {
  Fixture f;
  const double work = OneIntervalAtA(f);
  const auto outlook = SunNextInterval(f);
  for (const double below : {1e6, 2.0}) {
    f.config.policy.hedge_below_slack = below;
    PolicyInput in = Input(f, work, 10, outlook);  // slack: 10 h over well under 1 h at full speed
    Plan plan = (*MakePolicy("greentrain"))->Decide(in);
    EXPECT_EQ(plan.paused(), below == 2.0) << "hedge below slack " << below << ": " << plan.Describe({"a", "b"})
                                            << ", " << plan.reason;
  }
}

// Nor do the hedges apply to a job whose grids are flat (PolicyInput::grid_spread below
// policy.hedge_min_spread): the outlook above, where they make greentrain run now; with a spread of
// 1.2 it trusts the renewables and waits, with 3 it hedges.
TEST(Policies, GreentrainDropsItsHedgesOnAFlatGrid) {
  Fixture f;
  const double work = OneIntervalAtA(f);
  const auto outlook = SunNextInterval(f);
  f.config.policy.hedge_below_slack = 1e6;  // hedged whatever the slack
  ASSERT_EQ(f.config.policy.hedge_min_spread, 1.5);
  for (const double spread : {1.2, 3.0}) {
    PolicyInput in = Input(f, work, 10, outlook);
    in.grid_spread = spread;
    Plan plan = (*MakePolicy("greentrain"))->Decide(in);
    EXPECT_EQ(plan.paused(), spread < 1.5) << "grid spread " << spread << ": " << plan.Describe({"a", "b"}) << ", "
                                           << plan.reason;
  }
}

// The spread: the 90th over the 10th percentile (nearest rank below), 1 for nothing or an all-zero
// grid, infinite where the 10th percentile is zero and the 90th is not.
TEST(Policies, GridSpreadIsTheNinetiethOverTheTenthPercentile) {
  EXPECT_EQ(GridSpread({}), 1.0);
  EXPECT_EQ(GridSpread({0, 0, 0}), 1.0);
  EXPECT_EQ(GridSpread({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}), 9.0);
  EXPECT_EQ(GridSpread({200, 200, 200}), 1.0);
  EXPECT_TRUE(std::isinf(GridSpread({0, 0, 0, 0, 0, 5, 5, 5, 5, 5})));
}

// greentrain's time reserve takes at most half the slack, so that the plan keeps a choice of when
// to run. 16 intervals of work at full speed in 20, the first two dirty (800 and 900 g/kWh), the
// rest clean: a 20 % reserve would be all 4 intervals of slack, leaving 17 for the work, so one of
// the dirty two would run (the cheaper, now); capped at 2, the work fits the clean 18 and the job
// waits. Where the reserve is within half the slack it applies whole: 12 of work in 20, 11 clean
// intervals before the last 5 and the 4 cleanest last; the reserve (4) takes those, so the twelfth
// interval of work runs now. The job gives its GPUs back when it pauses, so that the pause after
// that run is free (holding them, it would cost three intervals of idle draw at 900 g/kWh, and the
// plan rightly runs the twelfth at t = 15 instead).
TEST(Policies, GreentrainsReserveLeavesThePlanHalfTheSlack) {
  Fixture f;
  f.config.policy.safety_margin = 0.2;
  f.config.job.pause_releases_gpus = true;
  const double fast = f.menu.option(f.menu.fastest()).steps_per_hour;
  auto dirty_first = [](std::vector<double> g) {
    auto outlook = Flat(g.size(), {0, 0}, {0, 0.001});  // a little wind at b: the plan counts on renewables
    for (auto& o : outlook) o.carbon_g_per_kwh = g;
    return outlook;
  };
  std::vector<double> g(20, 100);
  g[0] = 800;
  g[1] = 900;
  Plan capped = (*MakePolicy("greentrain"))->Decide(Input(f, 16 * fast, 20, dirty_first(g)));
  EXPECT_TRUE(capped.paused()) << capped.Describe({"a", "b"}) << ", " << capped.reason;
  g.assign(20, 100);
  g[0] = 800;
  for (size_t h : {1, 2, 3, 15}) g[h] = 900;
  for (size_t h = 16; h < 20; ++h) g[h] = 50;
  Plan whole = (*MakePolicy("greentrain"))->Decide(Input(f, 12 * fast, 20, dirty_first(g)));
  EXPECT_FALSE(whole.paused()) << whole.Describe({"a", "b"}) << ", " << whole.reason;
}

// Hedged, greentrain derates each site's forecast renewables by the shortfall measured for it
// (PolicyInput::renewable_derate) instead of the fixed policy.renewable_derate: the same outlook as
// above, where a 35 % derate makes the next interval's sun too little (it runs now on the grid) and
// a measured shortfall of nothing leaves it enough (it waits); a measured 35 % acts as the fixed.
TEST(Policies, GreentrainDeratesByTheMeasuredShortfallWhereThereIsOne) {
  Fixture f;
  const double work = OneIntervalAtA(f);
  const auto outlook = SunNextInterval(f);
  f.config.policy.hedge_below_slack = 1e6;  // hedged whatever the slack
  for (const double measured : {0.0, 0.35}) {
    PolicyInput in = Input(f, work, 10, outlook);
    in.renewable_derate.assign(2, std::vector<double>(10, measured));
    Plan plan = (*MakePolicy("greentrain"))->Decide(in);
    EXPECT_EQ(plan.paused(), measured == 0.0) << "measured shortfall " << measured << ": "
                                              << plan.Describe({"a", "b"}) << ", " << plan.reason;
  }
}

// The planner follows the job, not the time left: a menu small enough for the LP over the job's
// first outlook (a week here) is planned by the LP to the end, a larger one by the greedy to the
// end, also in the last hours, where its few steps would fit the LP (it cost 0.1-0.6 s a decision
// there, bench_sim).
TEST(Policies, GreentrainChoosesItsPlannerByTheMenuNotTheTimeLeft) {
  Fixture small;
  Fixture large;
  small.config.job.deadline_hours = large.config.job.deadline_hours = 200;  // the first outlook: a week
  large.config.sites.clear();
  large.config.links.clear();
  for (int s = 0; s < 12; ++s) {
    SiteConfig site = small.config.sites[0];
    site.name = "s" + std::to_string(s);
    large.config.sites.push_back(site);
    if (s > 0) large.config.links.push_back({large.config.sites[s - 1].name, site.name, 10, 20});
  }
  large.menu = OptionMenu::Build(large.config).value();
  ASSERT_GT(168 * (large.menu.size() + large.menu.placements().size()), 2600u) << "a menu too large for a week's LP";
  ASSERT_LE(168 * (small.menu.size() + small.menu.placements().size()), 2600u);
  for (const double hours : {200.0, 6.0}) {
    const double work = small.menu.option(small.menu.fastest()).steps_per_hour * 2;
    PolicyInput a = Input(small, work, hours, Flat(std::min<size_t>(168, hours), {300, 400}, {0, 0}));
    Plan lp = (*MakePolicy("greentrain"))->Decide(a);
    EXPECT_NE(lp.reason.find("(LP)"), std::string::npos) << hours << " h left: " << lp.reason;
    PolicyInput b = Input(large, work, hours,
                          Flat(std::min<size_t>(168, hours), std::vector<double>(12, 300), std::vector<double>(12, 0)));
    b.battery_soc_mwh.assign(12, 0);
    Plan greedy = (*MakePolicy("greentrain"))->Decide(b);
    EXPECT_NE(greedy.reason.find("(greedy)"), std::string::npos) << hours << " h left: " << greedy.reason;
  }
}

// greentrain prices a pause by what it draws: a held allocation's idle power until the job's last
// run, nothing when the job gives its GPUs back (job.pause_releases_gpus). Site a: 400 g/kWh now, a
// dear night of 9 hours, then 380 g/kWh for the rest of the day; site b dear throughout. Released,
// the job waits for the cheaper day; held, waiting would keep 64 GPUs idle through the night, and it
// runs now.
TEST(Policies, GreentrainPricesAPauseByWhatTheAllocationDrawsWhilePaused) {
  for (const bool release : {false, true}) {
    Fixture f;
    f.config.job.pause_releases_gpus = release;
    const int at_a = f.FullOption(0);
    const double fast = f.menu.option(at_a).steps_per_hour;
    auto outlook = Flat(24, {400, 5000}, {0, 0});
    for (size_t h = 1; h < 24; ++h) outlook[0].carbon_g_per_kwh[h] = h < 10 ? 5000 : 380;
    PolicyInput in = Input(f, fast * 4, 24, outlook);
    RunningAt(f, at_a, &in);
    Plan plan = (*MakePolicy("greentrain"))->Decide(in);
    EXPECT_EQ(plan.paused(), release) << (release ? "released: " : "held: ") << plan.Describe({"a", "b"}) << ", "
                                      << plan.reason;
  }
}

// Near the deadline greentrain's plan is one it can execute: each interval one option or a pause,
// together doing the work left. Site a clean for two more hours, then dear; site b dear throughout;
// 2.6 intervals of work at a's full speed with 6 hours left, the job running there. A plan that
// mixes options promises a share of an interval that rounds away, and the shortfall lands on the
// last hours.
TEST(Policies, GreentrainNearTheDeadlinePlansOnlyWorkItsIntervalsDo) {
  Fixture f;
  const int at_a = f.FullOption(0);
  const double fast = f.menu.option(at_a).steps_per_hour;
  auto outlook = Flat(6, {100, 5000}, {0, 0});
  outlook[0].carbon_g_per_kwh = {100, 120, 150, 900, 950, 1000};
  PolicyInput in = Input(f, fast * 2.6, 6, outlook);
  RunningAt(f, at_a, &in);
  Plan plan = (*MakePolicy("greentrain"))->Decide(in);
  double work = plan.paused() ? 0 : f.menu.option(plan.option).steps_per_hour;
  for (int o : plan.planned) work += o >= 0 ? f.menu.option(o).steps_per_hour : 0;
  EXPECT_GE(work, fast * 2.6 * (1 - 1e-9)) << plan.Describe({"a", "b"}) << ", " << plan.reason;
}

// A periodic checkpoint takes its time from the interval it falls in (IntervalEngine::Cost), and
// greentrain's plan counts it. Checkpoints of 0.3 h every other trained interval, the next one due
// in the second; site a clean for three hours, then dear; 2.6 intervals of work at a's full speed. Three
// clean hours at full speed would do 3 intervals of work without the checkpoints, 2.7 with them,
// and a plan that fills the third hour with less than full speed falls short: the plan must do
// the work its intervals do after the checkpoints, not leave the shortfall to the deadline.
TEST(Policies, GreentrainCountsThePeriodicCheckpointsItsPlanWillTake) {
  Fixture f;
  f.config.job.checkpoint_every_hours = 2;
  const int at_a = f.FullOption(0);
  double stage_bytes = 0;
  for (const auto& st : f.menu.option(at_a).partition.stages) stage_bytes = std::max(stage_bytes, st.state_bytes);
  MenuOptions slow_disk;
  slow_disk.checkpoint_write_gbps = stage_bytes * 8 / (0.3 * 3600 * 1e9);
  auto menu = OptionMenu::Build(f.config, slow_disk).value();
  ASSERT_EQ(menu.option(at_a).label, f.menu.option(at_a).label);
  const double fast = menu.option(at_a).steps_per_hour;
  auto outlook = Flat(6, {100, 5000}, {0, 0});
  outlook[0].carbon_g_per_kwh = {100, 120, 150, 900, 950, 1000};
  PolicyInput in = Input(f, fast * 2.6, 6, outlook);
  in.menu = &menu;
  RunningAt(f, at_a, &in);
  in.hours_since_checkpoint = 1;
  Plan plan = (*MakePolicy("greentrain"))->Decide(in);
  std::vector<int> options{plan.option};
  options.insert(options.end(), plan.planned.begin(), plan.planned.end());
  // What the plan's intervals do after the checkpoints (DeriveActions: due once the job has
  // trained two hours since the last one).
  double work = 0, since = in.hours_since_checkpoint;
  for (int o : options) {
    const bool due = since >= 2;
    since = (due ? 0 : since) + (o >= 0 ? 1 : 0);
    if (o < 0) continue;
    const double ckpt_h = due ? menu.CheckpointSeconds(menu.option(o).partition.stages) / 3600.0 : 0.0;
    ASSERT_GT(due ? ckpt_h : 1, 0.2);
    work += menu.option(o).steps_per_hour * (1 - ckpt_h);
  }
  EXPECT_GE(work, fast * 2.6 * (1 - 1e-9)) << plan.Describe({"a", "b"}) << ", " << plan.reason;
}

TEST(Policies, StaticBestRegionPicksTheCleanerSiteAndStays) {
  Fixture f;
  auto outlook = Flat(24, {500, 100}, {0, 0});
  auto p = std::move(MakePolicy("static-best-region")).value();
  PolicyInput in = Input(f, 100, 48, outlook);
  Plan first = p->Decide(in);
  ASSERT_FALSE(first.paused());
  EXPECT_EQ(f.menu.option(first.option).sites, std::vector<int>{1});
  in.current = first;
  in.outlook = Flat(24, {100, 500}, {0, 0});  // the other site is now cleaner: it stays
  EXPECT_EQ(p->Decide(in).option, first.option);
}

TEST(Policies, UnknownNameIsAClearError) {
  auto p = MakePolicy("fastest");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("greentrain"), std::string::npos);
}

}  // namespace
}  // namespace gt
