#include "coordinator/simulator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "fixtures.h"

namespace gt {
namespace {

using testing::SmallConfig;
using testing::SyntheticSupply;

std::map<std::string, SimResult> RunAll(const Simulator& sim) {
  std::map<std::string, SimResult> out;
  auto runs = sim.RunPolicies(PolicyNames(), "blend");
  EXPECT_TRUE(runs.ok()) << runs.status().ToString();
  if (!runs.ok()) return out;
  for (auto& r : *runs) out[r.policy] = std::move(r);
  // The oracle weighs every policy's own run: it never loses to one.
  for (const auto& [name, r] : out) {
    if (!r.deadline_met) continue;
    EXPECT_LE(out["oracle"].totals.carbon_kg, r.totals.carbon_kg + 1e-9) << name;
  }
  return out;
}

// One site, grid only, no idle draw, free restarts: pausing costs nothing, so the least carbon is
// the fractional optimum of choosing, hour by hour, among the menu's sizes: the marginal greedy
// over (hour, step up the lower convex hull of power against speed), cheapest carbon per step
// first. It is computed here from the menu alone, independently of the policies and the LP.
double MarginalGreedyOptimumKg(const OptionMenu& menu, const std::vector<double>& carbon, size_t hours, double work) {
  std::vector<std::pair<double, double>> pts{{0, 0}};  // (steps/h, MW)
  for (const auto& o : menu.options()) pts.push_back({o.steps_per_hour, o.facility_mw[0]});
  std::sort(pts.begin(), pts.end());
  std::vector<std::pair<double, double>> hull;
  for (const auto& p : pts) {
    while (!hull.empty() && hull.back().first == p.first) hull.pop_back();
    while (hull.size() >= 2) {
      const auto& a = hull[hull.size() - 2];
      const auto& b = hull.back();
      if ((b.second - a.second) * (p.first - a.first) >= (p.second - a.second) * (b.first - a.first)) hull.pop_back();
      else break;
    }
    hull.push_back(p);
  }
  struct Slot { double kg_per_step, steps; };
  std::vector<Slot> slots;
  for (size_t h = 0; h < hours; ++h)
    for (size_t v = 1; v < hull.size(); ++v) {
      const double dw = hull[v].first - hull[v - 1].first, dp = hull[v].second - hull[v - 1].second;
      slots.push_back({carbon[h] * dp / dw, dw});  // MW x g/kWh / (steps/h) = kg per step
    }
  std::sort(slots.begin(), slots.end(), [](const Slot& a, const Slot& b) { return a.kg_per_step < b.kg_per_step; });
  double kg = 0;
  for (const Slot& s : slots) {
    const double take = std::min(work, s.steps);
    kg += take * s.kg_per_step;
    work -= take;
    if (work <= 0) break;
  }
  return kg;
}

void ExpectOptimalOnOneGridSite(Config c, double job_hours, uint32_t seed) {
  c.sites.resize(1);
  c.links.clear();
  c.sites[0].gpu.idle_w = 0;
  c.job.checkpoint_every_hours = 0;
  c.job.deadline_hours = 72;
  c.sim_end = c.job.start + 96 * 3600;
  MenuOptions mo;
  mo.restart_seconds = 0;
  mo.checkpoint_write_gbps = 1e9;
  auto menu = OptionMenu::Build(c, mo).value();
  c.job.steps = menu.option(menu.fastest()).steps_per_hour * job_hours;
  auto supply = SyntheticSupply(c, 24, 0);
  // An irregular grid: a daily cycle plus a deterministic pseudo-random part.
  uint32_t x = seed;
  for (double& g : supply[0].carbon_g_per_kwh) {
    x = x * 1664525u + 1013904223u;
    g = std::max(20.0, g + 120.0 * ((x >> 8) / 16777216.0 - 0.5));
  }
  const std::vector<double> job_carbon(supply[0].carbon_g_per_kwh.begin() + 24, supply[0].carbon_g_per_kwh.end());
  const double exact = MarginalGreedyOptimumKg(menu, job_carbon, 72, c.job.steps);
  auto sim = Simulator::Create(c, supply, 24, mo);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  EXPECT_NEAR(sim->CarbonLowerBoundKg(), exact, 1e-4 * exact);
  auto oracle = sim->Run(**MakePolicy("oracle"), "oracle").value();
  auto cs = sim->Run(**MakePolicy("carbonscaler"), "oracle").value();
  EXPECT_TRUE(oracle.deadline_met);
  EXPECT_TRUE(cs.deadline_met);
  SCOPED_TRACE("job of " + std::to_string(job_hours) + " h at full speed, seed " + std::to_string(seed));
  EXPECT_LE(oracle.totals.carbon_kg, exact * 1.005) << oracle.note;
  EXPECT_GE(oracle.totals.carbon_kg, exact * (1 - 1e-6));
  EXPECT_LE(cs.totals.carbon_kg, exact * 1.01);
}

TEST(Simulator, OracleIsTheExactOptimumOnOneGridSiteWithAConcaveCurve) {
  Config c = SmallConfig(1);
  auto menu = OptionMenu::Build(c).value();
  // The menu's speeds grow less than linearly with the GPUs (communication): a concave curve.
  std::vector<std::pair<int, double>> speed;
  for (const auto& o : menu.options()) speed.push_back({o.gpus[0], o.steps_per_hour});
  std::sort(speed.begin(), speed.end());
  ASSERT_GE(speed.size(), 3u);
  EXPECT_LT(speed.back().second / speed.back().first, speed.front().second / speed.front().first);
  // Job sizes whose last hour is a small, a middling and a large part of an interval.
  for (double hours : {30.0, 30.1, 21.45, 12.8})
    for (uint32_t seed : {1u, 2u, 3u}) ExpectOptimalOnOneGridSite(c, hours, seed);
}

TEST(Simulator, OracleIsTheExactOptimumOnOneGridSiteWithALinearCurve) {
  Config c = SmallConfig(1);
  c.model.global_batch = 16384;  // compute dwarfs the gradient exchange: speed ~ proportional to GPUs
  auto menu = OptionMenu::Build(c).value();
  for (const auto& o : menu.options())
    EXPECT_NEAR(o.steps_per_hour / o.gpus[0], menu.option(0).steps_per_hour / menu.option(0).gpus[0],
                0.03 * menu.option(0).steps_per_hour / menu.option(0).gpus[0]) << o.label;
  for (double hours : {30.0, 21.45})
    for (uint32_t seed : {1u, 2u}) ExpectOptimalOnOneGridSite(c, hours, seed);
}

// SmallConfig's sites with a job that needs 24 h at full speed (`c->job.steps` set), 48 h deadline,
// on synthetic supply.
Result<Simulator> SyntheticDayJob(Config* c) {
  auto menu = OptionMenu::Build(*c);
  if (!menu.ok()) return menu.status();
  c->job.steps = menu->option(menu->fastest()).steps_per_hour * 24;
  return Simulator::Create(*c, SyntheticSupply(*c, 72, 0.02), 72);
}

TEST(Simulator, SyntheticJobEveryPolicyFinishesBalancedAndAboveTheBound) {
  Config c = SmallConfig();
  auto sim = SyntheticDayJob(&c);
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

// The oracle says which schedule it is and lists every one it chose among: its perfect-foresight
// candidates (each named by its settings) and every other policy's own run; it is the least of
// those that meet the deadline.
TEST(Simulator, OracleNamesItsChoiceAndListsItsCandidates) {
  Config c = SmallConfig();
  auto sim = SyntheticDayJob(&c);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  auto all = RunAll(*sim);
  const SimResult& oracle = all["oracle"];
  const size_t own = PolicyNames().size() - 1;
  ASSERT_EQ(oracle.candidates.size(), OracleCandidates().size() + own);
  std::set<std::string> names;
  const SimResult::Candidate* least = nullptr;
  for (const auto& cand : oracle.candidates) {
    EXPECT_TRUE(names.insert(cand.what).second) << "two candidates named " << cand.what;
    if (cand.deadline_met && (!least || cand.carbon_kg < least->carbon_kg)) least = &cand;
  }
  ASSERT_NE(least, nullptr);
  EXPECT_EQ(oracle.totals.carbon_kg, least->carbon_kg);
  EXPECT_EQ(oracle.note, least->what);
  // The other policies' own runs are listed with their forecaster and their own figures.
  for (const auto& name : PolicyNames()) {
    if (name == "oracle") continue;
    const std::string what = name + " (forecaster blend)";
    auto it = std::find_if(oracle.candidates.begin(), oracle.candidates.end(),
                           [&](const SimResult::Candidate& cand) { return cand.what == what; });
    ASSERT_NE(it, oracle.candidates.end()) << what;
    EXPECT_EQ(it->carbon_kg, all[name].totals.carbon_kg) << what;
  }
  EXPECT_NE(oracle.candidates[0].what.find("reserve 0 %, renewables derated 0 %, idle draw not counted"),
            std::string::npos)
      << oracle.candidates[0].what;
  EXPECT_TRUE(all["greentrain"].candidates.empty());
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

// A pause that gives the GPUs back (job.pause_releases_gpus) books nothing after the checkpoint
// before it; one that keeps them books them idle. Suspend-resume does not price the idle draw, so
// both runs follow the same plan and differ only in what the pauses draw.
TEST(Simulator, AReleasedPauseDrawsNothingAHeldOneItsIdleGpus) {
  Config c = SmallConfig(1);
  c.sites[0].gpu.host_w = 50;
  c.job.checkpoint_every_hours = 0;
  c.policy.carbon_threshold = 300;  // runs below 300 g/kWh, pauses above: about half of each day
  auto menu = OptionMenu::Build(c).value();
  c.job.steps = menu.option(menu.fastest()).steps_per_hour * 20;
  auto supply = SyntheticSupply(c, 24, 0);
  auto run = [&](bool release) {
    Config cc = c;
    cc.job.pause_releases_gpus = release;
    auto sim = Simulator::Create(cc, supply, 24);
    EXPECT_TRUE(sim.ok()) << sim.status().ToString();
    return sim->Run(**MakePolicy("suspend-resume"), "oracle").value();
  };
  const SimResult held = run(false), released = run(true);
  ASSERT_TRUE(held.deadline_met && released.deadline_met);
  ASSERT_EQ(held.timeline.size(), released.timeline.size());
  const double idle_mw = menu.IdleFacilityMw(0, c.sites[0].gpus);
  int paused_after_pause = 0;
  for (size_t i = 1; i < held.timeline.size(); ++i) {
    ASSERT_EQ(held.timeline[i].placement, released.timeline[i].placement) << i;
    const bool paused = held.timeline[i].placement.rfind("paused@", 0) == 0;
    const bool was_paused = held.timeline[i - 1].placement.rfind("paused@", 0) == 0;
    if (!paused || !was_paused) continue;  // the first paused interval writes the checkpoint
    ++paused_after_pause;
    const LedgerRow& h = held.ledger.rows()[i];
    const LedgerRow& r = released.ledger.rows()[i];
    EXPECT_NEAR(h.flow.demand_mwh, idle_mw * h.hours, 1e-12) << i;
    EXPECT_EQ(h.idle_gpus, c.sites[0].gpus) << i;
    EXPECT_EQ(r.flow.demand_mwh, 0) << i;
    EXPECT_EQ(r.idle_gpus, 0) << i;
  }
  EXPECT_GT(paused_after_pause, 4);
  EXPECT_LT(released.totals.carbon_kg, held.totals.carbon_kg);
  EXPECT_LT(held.ledger.MaxImbalanceMwh(), 1e-9);
  EXPECT_LT(released.ledger.MaxImbalanceMwh(), 1e-9);
}

// Periodic checkpoints (job.checkpoint_every_hours) count the hours the job trained: one every 6
// trained hours, none just because a pause was long. Suspend-resume pauses about half of each day
// and checkpoints before each pause; within each stretch of training, whose count starts at 0 (at
// the start, or after the pause's checkpoint), one more at the start of its 7th, 13th, ... interval.
TEST(Simulator, OnlyTrainingAgesAPeriodicCheckpoint) {
  Config c = SmallConfig(1);
  c.job.checkpoint_every_hours = 6;
  c.policy.carbon_threshold = 300;
  auto menu = OptionMenu::Build(c).value();
  c.job.steps = menu.option(menu.fastest()).steps_per_hour * 40;
  c.job.deadline_hours = 120;
  auto supply = SyntheticSupply(c, 24, 0);
  auto sim = Simulator::Create(c, supply, 24);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  const SimResult r = sim->Run(**MakePolicy("suspend-resume"), "oracle").value();
  ASSERT_TRUE(r.deadline_met);
  int expected = r.pauses, stretch = 0, stretches = 0, longest = 0;
  auto close = [&] {
    if (stretch == 0) return;
    expected += (stretch - 1) / 6;
    ++stretches;
    longest = std::max(longest, stretch);
    stretch = 0;
  };
  for (const auto& p : r.timeline) {
    const bool training = p.placement != "-" && p.placement.rfind("paused@", 0) != 0;
    if (training) ++stretch;
    else close();
  }
  close();
  ASSERT_GE(r.pauses, 2);
  ASSERT_GE(stretches, 3);
  ASSERT_GE(longest, 7) << "a stretch long enough for a periodic checkpoint";
  EXPECT_EQ(r.checkpoints, expected);
}

TEST(Simulator, RejectsMismatchedSupply) {
  Config c = SmallConfig();
  auto supply = SyntheticSupply(c, 0, 0.01);
  supply.pop_back();
  EXPECT_FALSE(Simulator::Create(c, supply, 0).ok());
}

}  // namespace
}  // namespace gt
