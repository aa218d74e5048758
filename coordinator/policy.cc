#include "coordinator/policy.h"

#include "coordinator/lp.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>

namespace gt {

namespace {

constexpr size_t kMaxHorizonSteps = 168;        // forecasting policies look at most a week ahead
constexpr size_t kMaxOracleHorizonSteps = 24 * 120;
// Above this many (outlook step x (option + placement)) cells greentrain plans with the greedy
// instead of the LP, whose branch and bound grows much faster than linearly. Three sites at four
// sizes over a week (every bundled scenario's largest: 168 x (12 + 3) = 2,520) stay within it.
constexpr size_t kMaxLpCells = 2600;
// The LP's tie-break between schedules of equal carbon (LpOptions::energy_kg_per_mwh): the one that
// draws least energy. A thousandth of the cleanest grid intensity in the data (~10 g/kWh), so that
// it decides only near-ties; measured, 0.001-0.1 plan alike on every scenario.
constexpr double kEnergyTieBreakKgPerMwh = 0.01;
// The LP's tie-break between schedules of equal carbon and energy (LpOptions::earliness_kg): the one
// that does its work soonest, worth at most this much over the whole outlook. A forecast that
// promises renewables for every plan makes waiting free on paper; done now, the work no longer
// depends on them coming. On 3x slack, 2022-07-06, the plan waited 12 hours for renewables that
// did not come and later paused on the grid holding its GPUs: 127 -> 23 kg. Greentrain over 36
// starts of the 3x job (12 weekly from each of 2022-03-02, -06-01 and -08-24), the sum of the three
// 12-start means: without it (and before pauses_hold) 564 kg, with 0.3 kg 465, with 1 kg 448.
constexpr double kEarlinessTieBreakKg = 1.0;
// A plan of at most this many intervals (the deadline near) is integral throughout
// (LpOptions::integral_steps): there no later interval is left to make up the work a mix of options
// promises and one option per interval does not deliver. Measured on 3x slack, 2022-08-17:
// 423 kg (relaxed) -> 364 kg (8) -> 309 kg (12); the default's table date 1,694 -> 1,692 -> 1,676 kg;
// but greentrain's decisions there took 1.3x (8) and 2.8x (12) the time, and 24 took minutes.
constexpr size_t kIntegralTailSteps = 8;
// greentrain's time reserve (policy.safety_margin) takes at most this share of the slack, the time
// left beyond the work at full speed, so that the plan keeps a choice of when to run. Measured on
// the 1.1x job (where 10 % was all of it): 6,439.2 -> 6,420.3 kg over the sweep's 12 starts,
// 7,715.1 -> 7,694.4 kg over 12 later ones; jobs with more slack plan the same.
constexpr double kMaxReserveShareOfSlack = 0.5;

size_t StepsToDeadline(const PolicyInput& in) { return StepsIn(in.hours_to_deadline, in.interval_hours); }

// Builds the plan for running menu option `option` (-1: pause where the state is) from `in.current`.
Plan MakePlan(const PolicyInput& in, int option, std::string reason) {
  const OptionMenu& menu = *in.menu;
  Plan p;
  p.option = option;
  p.reason = std::move(reason);
  p.state_bytes = menu.state_bytes();
  p.busy_gpus.assign(menu.num_sites(), 0);
  if (option >= 0) {
    const MenuOption& o = menu.option(option);
    p.busy_gpus = o.gpus;
    p.stages = o.partition.stages;
    p.steps_per_hour = o.steps_per_hour;
  } else {
    p.stages = in.current.stages;
  }
  p.actions = DeriveActions(in.current, p, in.hours_since_checkpoint, in.config->job.checkpoint_every_hours);
  return p;
}

// Hours of the interval option `o` loses before it trains, as IntervalEngine::Cost charges them:
// the checkpoint and the state's move when its stages differ, a restart when resuming or starting
// in place (`running`: whether the job runs when the option starts).
double LostHours(const PolicyInput& in, int o, bool running) {
  const OptionMenu& menu = *in.menu;
  const auto& to = menu.option(o).partition.stages;
  double secs = menu.StartSeconds(in.current.stages, running, to);
  if (menu.MigrationSeconds(in.current.stages, to) > 0) secs += menu.CheckpointSeconds(in.current.stages);
  return std::min(secs / 3600.0, in.interval_hours);
}
double LostHours(const PolicyInput& in, int o) { return LostHours(in, o, in.current.running()); }

// Work option `o` does in this interval after the time LostHours takes.
double WorkThisInterval(const PolicyInput& in, int o) {
  if (o < 0) return 0;
  return in.menu->option(o).steps_per_hour * (in.interval_hours - LostHours(in, o));
}

// The tail: the least grid carbon (kg, renewables counted, the battery not) of finishing all the
// remaining work within this interval, and the option that does it (-1: no option can). The run
// stops when the work is done, so only that part of the interval is charged; the planners price
// whole intervals and would otherwise put off a small remainder until the deadline guard acts.
int FinishNow(const PolicyInput& in, const ScheduleOptions& so, double* kg) {
  int best = -1;
  for (int o = 0; o < in.menu->size(); ++o) {
    const double w = WorkThisInterval(in, o);
    if (w <= 0 || w < in.work_remaining_steps) continue;
    const double run_share = in.work_remaining_steps / (in.menu->option(o).steps_per_hour * in.interval_hours);
    double c = OptionCarbonKg(*in.menu, o, in.outlook, 0, in.interval_hours, true) * run_share;
    if (!so.switch_carbon_kg.empty()) c += so.switch_carbon_kg[o];
    if (best < 0 || c < *kg) best = o, *kg = c;
  }
  return best;
}

// Grid carbon per step of option `o` now: each site's facility power beyond its renewables at the
// current interval's intensity, over the option's rate.
double KgPerStepNow(const PolicyInput& in, int o) {
  const MenuOption& opt = in.menu->option(o);
  double kg_per_h = 0;
  for (int s : opt.sites)
    kg_per_h += std::max(0.0, opt.facility_mw[s] - in.outlook[s].renewable_mw[0]) * in.outlook[s].carbon_g_per_kwh[0];
  return opt.steps_per_hour > 0 ? kg_per_h / opt.steps_per_hour : 1e300;
}

// The deadline guard every policy applies. An option is safe when, after this interval, the work left still fits at the
// fastest configuration with a reserve of one interval and two moves. An unsafe choice is replaced by
// the least-carbon safe option now (grid carbon per step; the fastest when it alone is safe), not by
// the fastest outright: hurrying at the worst energy per step wastes carbon at the deadline.
int Guard(const PolicyInput& in, int option, std::string* reason) {
  const OptionMenu& menu = *in.menu;
  const int fastest = menu.fastest();
  if (option == fastest) return option;
  const double dt = in.interval_hours;
  const double fast = menu.option(fastest).steps_per_hour;
  const double overhead_h =
      (menu.MigrationSeconds(in.current.stages, menu.option(fastest).partition.stages) +
       menu.CheckpointSeconds(menu.option(fastest).partition.stages)) / 3600.0;
  const double reserve_h = dt + 2 * overhead_h;
  const double can_do = fast * std::max(0.0, in.hours_to_deadline - dt - reserve_h);
  auto safe = [&](int o) { return in.work_remaining_steps - WorkThisInterval(in, o) <= can_do; };
  if (safe(option)) return option;
  int best = fastest;
  double best_kg = KgPerStepNow(in, fastest);
  for (int o = 0; o < menu.size(); ++o) {
    if (o == fastest || !safe(o)) continue;
    const double kg = KgPerStepNow(in, o);
    if (kg < best_kg) best = o, best_kg = kg;
  }
  *reason = "deadline guard: " + std::to_string(static_cast<long long>(in.work_remaining_steps)) + " steps left, " +
            std::to_string(in.hours_to_deadline) + " h to deadline; the least-carbon option that keeps it";
  return best;
}

Plan Guarded(const PolicyInput& in, int option, std::string reason) {
  int o = Guard(in, option, &reason);
  return MakePlan(in, o, reason);
}

// Mean forecast grid intensity over the sites of option `o` at step h.
double OptionIntensity(const PolicyInput& in, int o, size_t h) {
  const auto& sites = in.menu->option(o).sites;
  double sum = 0;
  for (int s : sites) sum += in.outlook[s].carbon_g_per_kwh[h];
  return sum / sites.size();
}

// Single-site options at full size, the candidates of "home"/"best region" policies.
std::vector<int> FullSingleSiteOptions(const OptionMenu& menu) {
  std::vector<int> out;
  for (int i = 0; i < menu.size(); ++i) {
    const auto& o = menu.option(i);
    if (o.sites.size() == 1 && o.gpus[o.sites[0]] == menu.config().sites[o.sites[0]].gpus) out.push_back(i);
  }
  if (out.empty()) out.push_back(menu.fastest());
  return out;
}

class CarbonAgnostic final : public Policy {
 public:
  std::string name() const override { return "carbon-agnostic"; }
  size_t horizon(const PolicyInput&) const override { return 1; }
  Plan Decide(const PolicyInput& in) const override {
    return MakePlan(in, in.menu->fastest(), "always run the fastest configuration");
  }
};

// Let's-Wait-Awhile style: run the fastest configuration when the forecast intensity is at or below
// a threshold, otherwise pause. Threshold: policy.carbon_threshold, or (when 0) the intensity
// below which just enough of the remaining intervals fall to finish the work.
class SuspendResume final : public Policy {
 public:
  std::string name() const override { return "suspend-resume"; }
  size_t horizon(const PolicyInput& in) const override { return std::min(StepsToDeadline(in), kMaxHorizonSteps); }
  Plan Decide(const PolicyInput& in) const override {
    const int o = in.menu->fastest();
    double threshold = in.config->policy.carbon_threshold;
    const size_t n = in.outlook[0].carbon_g_per_kwh.size();
    if (threshold <= 0) {
      const double per_step = in.menu->option(o).steps_per_hour * in.interval_hours;
      const size_t total = StepsToDeadline(in);
      // Work share due within the outlook, spread evenly over the time to the deadline.
      double need = in.work_remaining_steps * std::min(1.0, static_cast<double>(n) / total);
      size_t k = static_cast<size_t>(std::ceil(need / per_step - 1e-9));
      k = std::clamp<size_t>(k, 1, n);
      std::vector<double> ci(n);
      for (size_t h = 0; h < n; ++h) ci[h] = OptionIntensity(in, o, h);
      std::nth_element(ci.begin(), ci.begin() + (k - 1), ci.end());
      threshold = ci[k - 1];
    }
    const double now = OptionIntensity(in, o, 0);
    if (now <= threshold) return Guarded(in, o, "intensity " + std::to_string(now) + " <= threshold " + std::to_string(threshold));
    return Guarded(in, -1, "intensity " + std::to_string(now) + " above threshold " + std::to_string(threshold));
  }
};

// Picks, once at the start, the full single site with the least forecast carbon per step over the
// outlook, and runs there without interruption.
class StaticBestRegion final : public Policy {
 public:
  std::string name() const override { return "static-best-region"; }
  size_t horizon(const PolicyInput& in) const override { return std::min(StepsToDeadline(in), kMaxHorizonSteps); }
  Plan Decide(const PolicyInput& in) const override {
    if (in.current.option >= 0) return Guarded(in, in.current.option, "stay in the chosen region");
    int best = -1;
    double best_cost = 0;
    const size_t n = in.outlook[0].carbon_g_per_kwh.size();
    for (int o : FullSingleSiteOptions(*in.menu)) {
      double kg = 0;
      for (size_t h = 0; h < n; ++h) kg += OptionCarbonKg(*in.menu, o, in.outlook, h, in.interval_hours, true);
      double per_step = kg / (in.menu->option(o).steps_per_hour * in.interval_hours * n);
      if (best < 0 || per_step < best_cost) { best = o; best_cost = per_step; }
    }
    return Guarded(in, best, "best region by forecast carbon per step: " + in.menu->option(best).label);
  }
};

// Outlook steps a plan may use: all n, except that when the deadline lies within the outlook the
// last interval before it is the deadline guard's reserve (Guard), which a plan must not count on.
size_t PlanSteps(const PolicyInput& in, size_t n) {
  const size_t total = StepsToDeadline(in);
  return total <= n && total > 1 ? total - 1 : n;
}

// The work due within an outlook of n steps when the deadline is `total` steps away.
double WorkDueWithin(const PolicyInput& in, size_t n) {
  const size_t total = StepsToDeadline(in);
  return in.work_remaining_steps * std::min(1.0, static_cast<double>(n) / total);
}

// CarbonScaler style: each interval, allocate the remaining work greedily to the (interval,
// configuration) increments with the most throughput per unit of carbon, where carbon is the whole
// demand at grid intensity (CarbonScaler scales on grid carbon; it knows nothing of on-site supply
// or of migration costs).
class CarbonScaler final : public Policy {
 public:
  std::string name() const override { return "carbonscaler"; }
  size_t horizon(const PolicyInput& in) const override { return std::min(StepsToDeadline(in), kMaxHorizonSteps); }
  Plan Decide(const PolicyInput& in) const override {
    const size_t n = in.outlook[0].carbon_g_per_kwh.size();
    ScheduleOptions so;
    so.renewable_aware = false;
    Schedule s = PlanSchedule(*in.menu, in.outlook, in.interval_hours, WorkDueWithin(in, n), PlanSteps(in, n), so);
    Plan p = Guarded(in, s.option[0], "marginal throughput per grid carbon");
    p.planned.assign(s.option.begin() + std::min<size_t>(1, s.option.size()), s.option.end());
    return p;
  }
};

// The time to the deadline over the time the work left needs at full speed (infinite when none is
// left).
double Slack(const PolicyInput& in) {
  const double fast = in.menu->option(in.menu->fastest()).steps_per_hour;
  if (!(in.work_remaining_steps > 0)) return std::numeric_limits<double>::infinity();
  return in.hours_to_deadline * fast / in.work_remaining_steps;
}

// Whether any site is forecast renewable power after the interval being decided.
bool CountsOnRenewables(const PolicyInput& in) {
  for (const auto& o : in.outlook)
    for (size_t h = 1; h < o.renewable_mw.size(); ++h)
      if (o.renewable_mw[h] > 0) return true;
  return false;
}

}  // namespace

double GridSpread(std::vector<double> g) {
  if (g.empty()) return 1;
  auto at = [&](double q) {
    auto it = g.begin() + static_cast<std::ptrdiff_t>(q * static_cast<double>(g.size() - 1));
    std::nth_element(g.begin(), it, g.end());
    return *it;
  };
  const double lo = at(0.1), hi = at(0.9);
  if (!(hi > 0)) return 1;
  return lo > 0 ? hi / lo : std::numeric_limits<double>::infinity();
}

namespace {

// A least-carbon schedule reduced to what a policy executes: the option for the first interval (-1:
// pause), the options planned after it, its objective and whether the work fits the outlook.
struct Solved {
  int first = -1;
  std::vector<int> planned;
  double carbon_kg = 0;
  bool feasible = true;
  const char* how = "";
};

// The battery-aware LP (coordinator/lp.h) when `use_lp`, else (or should GLPK fail) the
// battery-blind greedy, linear in outlook x options.
Solved LeastCarbonSchedule(const PolicyInput& in, const std::vector<SiteOutlook>& outlook, double work, size_t usable,
                           const ScheduleOptions& so, bool use_lp) {
  const OptionMenu& menu = *in.menu;
  Solved out;
  if (use_lp) {
    LpOptions lpo;
    lpo.integral_steps = usable <= kIntegralTailSteps ? static_cast<int>(usable) : 1;
    lpo.energy_kg_per_mwh = kEnergyTieBreakKgPerMwh;
    lpo.earliness_kg = kEarlinessTieBreakKg;
    auto lp = SolveScheduleLp(menu, outlook, in.battery_soc_mwh, in.interval_hours, work, usable, so, lpo);
    if (lp.ok()) {
      out.first = lp->FirstOption();
      for (size_t t = 1; t < lp->fraction.size(); ++t) out.planned.push_back(lp->OptionAt(t));
      out.carbon_kg = lp->carbon_kg;
      out.feasible = lp->feasible;
      out.how = "LP";
      return out;
    }
  }
  Schedule s = PlanSchedule(menu, outlook, in.interval_hours, work, usable, so);
  out.first = s.option.empty() ? -1 : s.option[0];
  out.planned.assign(s.option.begin() + std::min<size_t>(1, s.option.size()), s.option.end());
  out.carbon_kg = s.carbon_kg;
  out.feasible = s.feasible;
  out.how = "greedy";
  return out;
}

// What switching configuration costs in greentrain's plan. The LP (`everywhere`) charges every entry
// to a placement, and over the next day every change of option (a resize's regroup), wherever the
// plan makes it: at step 0 each option is charged the time it loses before training (restart after
// a pause or at the start, a resize's regroup, a move's checkpoint and transfer: work lost, and the
// idle draw meanwhile, which the site's renewables and battery may cover); at later steps a change
// the plan makes is charged the same (ScheduleOptions::start_hours, enter_hours, regroup_hours), so
// a move, a resume or a resize costs the same whenever it is made and is neither put off nor
// hurried. The switch_* prices (idle draw at grid intensity) serve the finish-now test, and the
// greedy should GLPK fail. The greedy (`everywhere` false) can price step 0 only, so it charges what
// a plan may avoid: a move (not a resize, which it would put off to a later step, free there); a
// restart, which every plan pays sooner or later, is not charged to resuming now (the planner would
// put resumes off), and pausing a running job is charged the restart it commits to (every running
// option is credited it).
void ChargeSwitches(const PolicyInput& in, bool everywhere, ScheduleOptions* so) {
  const OptionMenu& menu = *in.menu;
  so->switch_carbon_kg.assign(menu.size(), 0);
  so->switch_work_loss.assign(menu.size(), 0);
  if (everywhere) {
    so->start_hours.assign(menu.size(), 0);
    so->enter_hours.assign(menu.size(), 0);
    so->regroup_hours = menu.settings().restart_seconds / 3600.0;
  }
  double restart_kg = 0;
  if (!everywhere && in.current.running()) {
    const double hours = menu.settings().restart_seconds / 3600.0;
    for (int s = 0; s < menu.num_sites(); ++s)
      if (s < static_cast<int>(in.allocated_gpus.size()))
        restart_kg += menu.IdleFacilityMw(s, in.allocated_gpus[s]) * hours * in.outlook[s].carbon_g_per_kwh[0];
  }
  for (int o = 0; o < menu.size(); ++o) {
    const auto& opt = menu.option(o);
    so->switch_carbon_kg[o] = -restart_kg;  // 0 with `everywhere`
    if (!everywhere && menu.MigrationSeconds(in.current.stages, opt.partition.stages) <= 0) continue;
    const double hours = LostHours(in, o);
    if (everywhere) {
      so->start_hours[o] = hours;
      so->enter_hours[o] = LostHours(in, o, false);
    }
    so->switch_work_loss[o] = opt.steps_per_hour * hours;
    for (int s : opt.sites)
      so->switch_carbon_kg[o] += menu.IdleFacilityMw(s, opt.gpus[s]) * hours * in.outlook[s].carbon_g_per_kwh[0];
  }
}

// greentrain: forecast-driven, spatial and temporal at once. Each interval it solves the least-carbon
// schedule over the forecast as a battery-aware linear program (coordinator/lp.h; the convex-hull
// greedy for large problems), charging each move, resume or start its time and energy wherever the
// plan makes it (ChargeSwitches) and counting the idle draw of the allocation kept while paused
// (none where the job gives its GPUs back, job.pause_releases_gpus);
// among plans of equal carbon it takes the one that draws least energy (kEnergyTieBreakKgPerMwh).
// Against forecast error it plans on derated renewables (by the shortfall of each site's forecast
// measured on the history before the job, policy.derate_quantile; else policy.renewable_derate) and, when it
// counts on forecast renewables, keeps a reserve of policy.safety_margin of the time left, both
// while the slack (time left over the work left at full speed) is below policy.hedge_below_slack
// and the job's grids vary (PolicyInput::grid_spread at least policy.hedge_min_spread: on a flat
// grid a shortfall costs about what hedging against it does);
// the deadline guard backs this up. It executes the first
// interval only (integral: one configuration or pause; near the deadline the whole plan is,
// kIntegralTailSteps) and replans the next one with fresh forecasts (receding horizon). The oracle
// is the same planner on the true supply, without derating.
class Greentrain : public Policy {
 public:
  // margin, derate < 0: the config's policy.safety_margin and renewable_derate (0 for the oracle).
  explicit Greentrain(bool oracle = false, double margin = -1, double derate = -1, bool idle_aware = true)
      : oracle_(oracle), margin_(margin), derate_(derate), idle_aware_(idle_aware) {}
  std::string name() const override { return oracle_ ? "oracle" : "greentrain"; }
  std::string describe() const override {
    if (!oracle_ || (margin_ < 0 && derate_ < 0)) return name();
    auto pct = [](double v) { return std::to_string(static_cast<int>(std::lround(100 * std::max(0.0, v)))) + " %"; };
    return "greentrain's planner on the true supply (reserve " + pct(margin_) + ", renewables derated " + pct(derate_) +
           (idle_aware_ ? ", idle draw counted)" : ", idle draw not counted)");
  }
  bool wants_truth() const override { return oracle_; }
  // The measured derate serves forecasts, and only where the config's derate is not fixed here.
  bool wants_renewable_derate() const override { return !oracle_ && derate_ < 0; }
  size_t horizon(const PolicyInput& in) const override {
    return std::min(StepsToDeadline(in), oracle_ ? kMaxOracleHorizonSteps : kMaxHorizonSteps);
  }
  Plan Decide(const PolicyInput& in) const override {
    const OptionMenu& menu = *in.menu;
    const size_t n = in.outlook[0].carbon_g_per_kwh.size();
    // The reserve hedges plans that count on forecast renewables; a grid-only outlook needs none
    // (a wrong intensity forecast costs carbon, not time: measured, a reserve there only cost carbon).
    // Nor on a flat grid, where the work a shortfall displaces costs about the same whenever it runs.
    const bool hedged = !oracle_ && Slack(in) < in.config->policy.hedge_below_slack &&
                        in.grid_spread >= in.config->policy.hedge_min_spread;
    const double margin = margin_ >= 0                               ? margin_
                          : !hedged || !CountsOnRenewables(in) ? 0.0
                                                               : in.config->policy.safety_margin;
    size_t usable = PlanSteps(in, n);
    double work = WorkDueWithin(in, n);
    if (margin > 0 && n > 1) {
      // Keep the last `margin` of the time to the deadline in reserve when the deadline lies within
      // the outlook (plan as if it came that much earlier), else plan `margin` more work than is
      // due within the outlook: forecast error is then absorbed before the deadline guard must act.
      // The reserve shrinks to what the deadline leaves: a plan that cannot fit the work at full
      // speed is no plan (the planners would fall back to the fastest everywhere). And it takes at
      // most kMaxReserveShareOfSlack of the slack (the time beyond the work at full speed): a
      // reserve of all of it leaves the plan no choice of when to run (a 10 % reserve is all the
      // slack of a job with 1.1x). The oracle's candidates keep their reserves whole: they are a
      // fixed grid of settings on the true supply, the reference every policy is measured against.
      const double share = margin_ >= 0 ? 1.0 : kMaxReserveShareOfSlack;
      const size_t total = StepsToDeadline(in);
      const double fast = menu.option(menu.fastest()).steps_per_hour * in.interval_hours;
      const size_t needed = static_cast<size_t>(std::ceil(work / fast - 1e-9));
      // (Where the cap does not bind, the arithmetic is the uncapped reserve's, to the last bit.)
      const double steps = static_cast<double>(total), most = fast * static_cast<double>(n);
      if (total <= n) {
        double kept = steps * (1 - margin);
        if (share < 1) kept = std::max(kept, steps - share * (steps - work / fast));
        usable = std::min(usable, std::max(static_cast<size_t>(std::floor(kept)), needed + 1));
      } else {
        double planned = work * (1 + margin);
        if (share < 1) planned = std::min(planned, work + share * (most - work));
        work = std::min(planned, most);
      }
    }
    ScheduleOptions so;
    so.renewable_aware = true;
    // Paused, the job keeps its allocation, idle (unless it gives the GPUs back,
    // job.pause_releases_gpus): pausing is not free (at night, without renewables, an idle
    // allocation draws from the grid). The current one here (none before the first run); after a
    // planned run, the LP charges a pause at the allocation of that run.
    so.paused_mw.assign(menu.num_sites(), 0);
    so.pauses_hold = idle_aware_ && !in.config->job.pause_releases_gpus;
    if (idle_aware_ && !in.current.stages.empty())
      for (int s = 0; s < menu.num_sites(); ++s)
        if (s < static_cast<int>(in.allocated_gpus.size()))
          so.paused_mw[s] = menu.IdleFacilityMw(s, in.config->job.HeldWhilePaused(in.allocated_gpus[s]));
    // The LP's size: per outlook step a column per option and one per placement (its entries),
    // over at least the job's first outlook (the whole job, at most a week): the planner is chosen
    // for the job, not by how near the deadline is, so a menu too large for the LP is planned by the
    // greedy to the end instead of switching to the LP for its last ~2 days (there it cost 0.1-0.6 s
    // a decision, and on bench_sim's year of 10 sites planned 0.5 % more carbon than the greedy),
    // while a short job whose whole outlook fits the LP keeps it.
    const size_t job_steps = std::min(StepsIn(in.config->job.deadline_hours, in.interval_hours), kMaxHorizonSteps);
    const bool use_lp = std::max(usable, job_steps) * (menu.size() + menu.placements().size()) <= kMaxLpCells;
    ChargeSwitches(in, use_lp, &so);
    so.checkpoint_period = PeriodicCheckpointIntervals(in.config->job.checkpoint_every_hours, in.interval_hours);
    double finish_kg = 0;
    const int finish = FinishNow(in, so, &finish_kg);
    const char* what = oracle_ ? "perfect-foresight" : "forecast";
    // Robustness to forecast error: beyond the interval being decided, plan on a derated renewable
    // forecast, so that a plan does not count on energy that may not come (if it comes, the
    // battery stores it or a later replan uses it).
    std::vector<SiteOutlook> derated;
    const std::vector<SiteOutlook>* outlook = &in.outlook;
    const double derate = derate_ >= 0 ? derate_ : !hedged ? 0.0 : in.config->policy.renewable_derate;
    const bool measured = derate_ < 0 && hedged && !in.renewable_derate.empty();
    if (derate > 0 || measured) {
      derated = in.outlook;
      for (size_t s = 0; s < derated.size(); ++s) {
        const std::vector<double>* m = measured && !in.renewable_derate[s].empty() ? &in.renewable_derate[s] : nullptr;
        auto& r = derated[s].renewable_mw;
        for (size_t h = 1; h < r.size(); ++h) r[h] *= 1 - (m ? (*m)[std::min(h, m->size() - 1)] : derate);
      }
      outlook = &derated;
    }
    Solved plan = LeastCarbonSchedule(in, *outlook, work, usable, so, use_lp);
    if (finish >= 0 && (!plan.feasible || finish_kg <= plan.carbon_kg))
      return MakePlan(in, finish, std::string(what) + ": finish the remaining work in this interval");
    Plan p = Guarded(in, plan.first, std::string(what) + " least-carbon schedule (" + plan.how + ")");
    p.planned = std::move(plan.planned);
    return p;
  }

 private:
  bool oracle_;
  double margin_;
  double derate_;
  bool idle_aware_;
};

}  // namespace

size_t Policy::horizon(const PolicyInput& in) const { return std::min(StepsToDeadline(in), kMaxHorizonSteps); }

double OptionCarbonKg(const OptionMenu& menu, int o, const std::vector<SiteOutlook>& outlook, size_t h,
                      double interval_hours, bool renewable_aware) {
  const MenuOption& opt = menu.option(o);
  double kg = 0;
  for (int s : opt.sites) {
    double mw = opt.facility_mw[s];
    if (renewable_aware) mw = std::max(0.0, mw - outlook[s].renewable_mw[h]);
    kg += mw * interval_hours * outlook[s].carbon_g_per_kwh[h];  // MWh x g/kWh = kg
  }
  return kg;
}

namespace {

// An increment along one step's hull: its carbon per unit of work, the step, and its vertex in that
// step's hull (1-based: vertex 0 is "off").
struct Inc {
  float ratio;
  uint32_t step;
  uint16_t vertex;
};

// Sorts by (ratio, step, vertex). Where steps fit 16 bits (always in practice), as one integer key
// each: the float's bits mapped to an order-preserving unsigned (-0 as +0, which compare equal), then
// step and vertex; the same order as the three-field comparator, which it is faster than.
void SortIncrements(std::vector<Inc>* incs) {
  const bool fits = std::all_of(incs->begin(), incs->end(), [](const Inc& i) { return i.step <= 0xffff; });
  if (!fits) {
    std::sort(incs->begin(), incs->end(), [](const Inc& a, const Inc& b) {
      return a.ratio < b.ratio || (a.ratio == b.ratio && (a.step < b.step || (a.step == b.step && a.vertex < b.vertex)));
    });
    return;
  }
  std::vector<uint64_t> keys(incs->size());
  for (size_t k = 0; k < incs->size(); ++k) {
    const Inc& i = (*incs)[k];
    const float r = i.ratio == 0 ? 0.0f : i.ratio;
    uint32_t bits;
    std::memcpy(&bits, &r, sizeof bits);
    bits = bits & 0x80000000u ? ~bits : bits | 0x80000000u;
    keys[k] = static_cast<uint64_t>(bits) << 32 | static_cast<uint64_t>(i.step) << 16 | i.vertex;
  }
  std::sort(keys.begin(), keys.end());
  for (size_t k = 0; k < keys.size(); ++k) {
    uint32_t bits = static_cast<uint32_t>(keys[k] >> 32);
    bits = bits & 0x80000000u ? bits & 0x7fffffffu : ~bits;
    Inc& i = (*incs)[k];
    std::memcpy(&i.ratio, &bits, sizeof bits);
    i.step = static_cast<uint32_t>(keys[k] >> 16 & 0xffff);
    i.vertex = static_cast<uint16_t>(keys[k] & 0xffff);
  }
}

// A vertex of one step's hull: work, carbon, and the option (-1: off).
struct HullPoint {
  double w, c;
  int option;
};

// Every step's lower hull, one after another: step h's vertices are at(h)[0 .. size(h)), vertex 0
// being off at (0, 0).
struct StepHulls {
  std::vector<HullPoint> verts;
  std::vector<size_t> from;  // step h's first vertex; from[steps] = verts.size()
  const HullPoint* at(size_t h) const { return verts.data() + from[h]; }
  size_t size(size_t h) const { return from[h + 1] - from[h]; }
};

// Each step's hull over the options: work and carbon as OptionCarbonKg computes them (the same
// arithmetic in the same order), step 0 net of options.switch_*.
StepHulls BuildStepHulls(const OptionMenu& menu, const std::vector<SiteOutlook>& outlook, double interval_hours,
                         size_t steps, const ScheduleOptions& options) {
  const int m = menu.size();
  std::vector<int> by_speed(m);
  for (int o = 0; o < m; ++o) by_speed[o] = o;
  std::stable_sort(by_speed.begin(), by_speed.end(), [&](int a, int b) {
    return menu.option(a).steps_per_hour < menu.option(b).steps_per_hour;
  });
  // Each option's work per step and its sites' facility power, in speed order, flattened once: the
  // loop below prices every option at every step.
  struct Draw {
    int site;
    double mw;
  };
  std::vector<Draw> draws;
  std::vector<size_t> draws_from(m + 1, 0);
  std::vector<double> option_work(m);
  for (int k = 0; k < m; ++k) {
    const MenuOption& opt = menu.option(by_speed[k]);
    draws_from[k] = draws.size();
    for (int s : opt.sites) draws.push_back({s, opt.facility_mw[s]});
    option_work[k] = opt.steps_per_hour * interval_hours;
  }
  draws_from[m] = draws.size();

  StepHulls out;
  std::vector<HullPoint>& verts = out.verts;
  verts.reserve(steps * 4);
  out.from.assign(steps + 1, 0);
  std::vector<HullPoint> pts(m);  // this step's options that do work, pts[0 .. np)
  std::vector<double> renew(outlook.size()), intensity(outlook.size());
  for (size_t h = 0; h < steps; ++h) {
    size_t np = 0;
    for (size_t s = 0; s < outlook.size(); ++s) {
      renew[s] = outlook[s].renewable_mw[h];
      intensity[s] = outlook[s].carbon_g_per_kwh[h];
    }
    for (int k = 0; k < m; ++k) {
      const int o = by_speed[k];
      double w = option_work[k];
      double c = 0;
      for (size_t d = draws_from[k]; d < draws_from[k + 1]; ++d) {
        const Draw& dr = draws[d];
        const double mw = options.renewable_aware ? std::max(0.0, dr.mw - renew[dr.site]) : dr.mw;
        c += mw * interval_hours * intensity[dr.site];
      }
      if (h == 0 && !options.switch_work_loss.empty()) {
        w = std::max(0.0, w - options.switch_work_loss[o]);
        c += options.switch_carbon_kg[o];
      }
      if (w > 0) {
        HullPoint& p = pts[np++];  // written in place: a pushed temporary stalled on store forwarding
        p.w = w;
        p.c = c;
        p.option = o;
      }
    }
    // Work per option is the same at every step but the first (switch losses), so the options are
    // sorted by speed once; only the first step sorts its own points.
    if (h == 0)
      std::sort(pts.begin(), pts.begin() + np, [](const HullPoint& a, const HullPoint& b) { return a.w < b.w; });
    const size_t base = verts.size();
    out.from[h] = base;
    verts.push_back({0, 0, -1});
    for (size_t k = 0; k < np; ++k) {
      const HullPoint& p = pts[k];
      if (p.w == verts.back().w && p.c < verts.back().c) verts.pop_back();  // same work, less carbon
      if (p.w <= verts.back().w) continue;
      // Keep the hull convex: remove the last vertex while it lies on or above the chord.
      while (verts.size() - base >= 2) {
        const HullPoint& a = verts[verts.size() - 2];
        const HullPoint& b = verts.back();
        if ((b.c - a.c) * (p.w - a.w) >= (p.c - a.c) * (b.w - a.w)) verts.pop_back();
        else break;
      }
      verts.push_back(p);
    }
  }
  out.from[steps] = verts.size();
  return out;
}

}  // namespace

Schedule PlanSchedule(const OptionMenu& menu, const std::vector<SiteOutlook>& outlook, double interval_hours,
                      double work, size_t steps, const ScheduleOptions& options) {
  Schedule out;
  out.work.assign(steps, 0);
  out.option.assign(steps, -1);
  if (steps == 0) return out;

  // Per step: the lower convex hull of (work, carbon) over the options plus "off" at (0, 0).
  // Increments along a hull have increasing carbon per step; choosing the cheapest increments
  // across all steps is the optimum of the fractional problem.
  const StepHulls hulls = BuildStepHulls(menu, outlook, interval_hours, steps, options);
  std::vector<Inc> incs;
  incs.reserve(steps * 4);
  double total_possible = 0;
  for (size_t h = 0; h < steps; ++h) {
    const HullPoint* hull = hulls.at(h);
    for (size_t v = 1; v < hulls.size(h); ++v) {
      double dw = hull[v].w - hull[v - 1].w, dc = hull[v].c - hull[v - 1].c;
      incs.push_back({static_cast<float>(dc / dw), static_cast<uint32_t>(h), static_cast<uint16_t>(v)});
    }
    total_possible += hull[hulls.size(h) - 1].w;
  }
  if (total_possible < work * (1 - 1e-12)) {
    out.feasible = false;
    for (size_t h = 0; h < steps; ++h) {
      out.option[h] = menu.fastest();
      out.work[h] = menu.option(menu.fastest()).steps_per_hour * interval_hours;
      out.carbon_kg += OptionCarbonKg(menu, menu.fastest(), outlook, h, interval_hours, options.renewable_aware);
    }
    return out;
  }
  // Cheapest increments first; ties go to the earlier step (less exposure to forecast error).
  SortIncrements(&incs);
  double left = work;
  std::vector<uint16_t> reached(steps, 0);
  size_t partial = incs.size();  // the increment taken in part, if any
  for (size_t k = 0; k < incs.size() && left > 0; ++k) {
    const Inc& inc = incs[k];
    const HullPoint* hull = hulls.at(inc.step);
    // Convexity: increments of one step come in vertex order, so this extends the previous one.
    double dw = hull[inc.vertex].w - hull[inc.vertex - 1].w;
    double dc = hull[inc.vertex].c - hull[inc.vertex - 1].c;
    // The last increment is taken in part, and ends the loop: subtracting a part leaves a rounding
    // residue in `left` that would otherwise mark later, untaken increments as reached.
    const double take = std::min(1.0, left / dw);
    out.work[inc.step] += take * dw;
    out.carbon_kg += take * dc;
    left = take < 1.0 ? 0.0 : left - dw;
    reached[inc.step] = inc.vertex;
    if (take < 1.0) partial = k;
  }
  // Only the partial increment leaves a step between two vertices. Where that step is the first
  // (the one executed), it is rounded by the exchange it forces on the rest of the plan: rounding
  // down moves the shortfall to the cheapest untaken increment elsewhere, rounding up displaces
  // the dearest taken one; the cheaper exchange wins. Other steps are only informational.
  auto other_step_ratio = [&](size_t from, int dir) -> double {
    for (size_t k = from; k < incs.size(); k += dir)
      if (incs[k].step != 0) return incs[k].ratio;
    return dir > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  };
  for (size_t h = 0; h < steps; ++h) {
    if (reached[h] == 0) continue;
    const HullPoint* hull = hulls.at(h);
    int v = reached[h];
    const bool between = partial < incs.size() && incs[partial].step == h;
    if (between && h == 0) {
      // All the work planned here (the job's tail): round up, since the run stops when the work
      // is done.
      const bool tail = out.work[0] >= work * (1 - 1e-9);
      const double lambda = incs[partial].ratio;
      const double down = out.work[0] - hull[v - 1].w, up = hull[v].w - out.work[0];
      const double next = other_step_ratio(partial + 1, 1);
      const double prev = partial > 0 ? other_step_ratio(partial - 1, -1) : 0.0;
      if (!tail && down * (next - lambda) < up * (lambda - prev)) --v;
    } else if (between && out.work[h] - hull[v - 1].w < hull[v].w - out.work[h]) {
      --v;  // nearest vertex
    }
    out.option[h] = hull[v].option;
  }
  return out;
}

Result<std::unique_ptr<Policy>> MakePolicy(const std::string& name) {
  if (name == "carbon-agnostic") return std::unique_ptr<Policy>(new CarbonAgnostic());
  if (name == "suspend-resume") return std::unique_ptr<Policy>(new SuspendResume());
  if (name == "static-best-region") return std::unique_ptr<Policy>(new StaticBestRegion());
  if (name == "carbonscaler") return std::unique_ptr<Policy>(new CarbonScaler());
  if (name == "greentrain") return std::unique_ptr<Policy>(new Greentrain(false));
  if (name == "oracle") return std::unique_ptr<Policy>(new Greentrain(true));
  std::string all;
  for (const auto& n : PolicyNames()) all += (all.empty() ? "" : ", ") + n;
  return InvalidArgument("unknown policy '" + name + "'; choose one of: " + all);
}

std::vector<std::unique_ptr<Policy>> OracleCandidates() {
  std::vector<std::unique_ptr<Policy>> out;
  for (double m : {0.0, 0.1, 0.2})
    for (double d : {0.0, 0.35})
      for (bool idle : {false, true}) out.emplace_back(new Greentrain(true, m, d, idle));
  out.emplace_back(new CarbonScaler());
  out.emplace_back(new SuspendResume());
  out.emplace_back(new StaticBestRegion());
  out.emplace_back(new CarbonAgnostic());
  return out;
}

std::vector<std::string> PolicyNames() {
  return {"carbon-agnostic", "suspend-resume", "static-best-region", "carbonscaler", "greentrain", "oracle"};
}

}  // namespace gt
