#include "coordinator/engine.h"

#include <algorithm>

#include <tbb/task_group.h>

namespace gt {

Result<std::unique_ptr<IntervalEngine>> IntervalEngine::Create(const Config& config, const OptionMenu& menu,
                                                               const std::vector<SiteSupplyTrace>& supply,
                                                               size_t history, const Policy& policy,
                                                               const std::string& forecaster) {
  if (supply.size() != config.sites.size() || supply.empty())
    return InvalidArgument("engine: one supply trace per site is needed");
  for (const auto& s : supply)
    if (s.size() != supply[0].size()) return Internal("engine: supply traces of unequal length");
  std::unique_ptr<IntervalEngine> e(new IntervalEngine(config, menu, supply, history, policy));
  e->dt_ = config.interval_seconds / 3600.0;
  e->forecaster_ = policy.wants_truth() ? "oracle" : forecaster;  // "oracle" = the truth
  const size_t per_day = static_cast<size_t>(std::max<int64_t>(1, 86400 / config.interval_seconds));
  const size_t n = config.sites.size();
  e->f_renew_.resize(n);
  e->f_carbon_.resize(n);
  for (size_t s = 0; s < n; ++s) {
    ASSIGN_OR_RETURN(e->f_renew_[s], MakeForecaster(e->forecaster_, &supply[s].renewable_mw, per_day));
    ASSIGN_OR_RETURN(e->f_carbon_[s], MakeForecaster(e->forecaster_, &supply[s].carbon_g_per_kwh, per_day));
  }
  e->in_.config = &config;
  e->in_.menu = &menu;
  e->in_.interval_hours = e->dt_;
  e->in_.work_total_steps = config.job.steps;
  e->in_.outlook.resize(n);
  if (history > 0) {
    // How much the sites' grids vary: every site's intensity over (at most) kHistorySeconds before
    // the job.
    const auto window = static_cast<size_t>(std::max<int64_t>(1, kHistorySeconds / config.interval_seconds));
    const size_t from = history - std::min(history, window);
    std::vector<double> g;
    g.reserve(n * (history - from));
    for (const auto& site : supply)
      g.insert(g.end(), site.carbon_g_per_kwh.begin() + from, site.carbon_g_per_kwh.begin() + history);
    e->in_.grid_spread = GridSpread(std::move(g));
  }
  if (config.policy.derate_quantile > 0 && policy.wants_renewable_derate() && history > 0) {
    // The renewables forecaster's shortfall, measured once on the history before the job, origins
    // every quarter day, as far ahead as the policy looks at the start.
    const size_t horizon = e->HorizonAt(history);
    const size_t stride = std::max<size_t>(1, per_day / 4);
    // Set once: the policy's horizon only shrinks as the deadline nears, and reads it by step.
    auto& derate = e->in_.renewable_derate;
    derate.resize(n);
    // A site whose history is too short to measure keeps an empty vector (the policy then uses the
    // fixed policy.renewable_derate there).
    for (size_t s = 0; s < n; ++s)
      derate[s] = MeasuredShortfall(*e->f_renew_[s], supply[s].renewable_mw, history, horizon, stride,
                                    config.policy.derate_quantile);
  }
  return e;
}

UnixSeconds IntervalEngine::TimeOf(size_t i) const {
  return supply_[0].start + static_cast<int64_t>(i) * config_.interval_seconds;
}

struct IntervalEngine::Prefetch {
  tbb::task_group tasks;
  bool in_flight = false;
  size_t i = 0, horizon = 0;
  std::vector<SiteOutlook> outlook;
};

IntervalEngine::IntervalEngine(const Config& c, const OptionMenu& m, const std::vector<SiteSupplyTrace>& s,
                               size_t h, const Policy& p)
    : config_(c), menu_(m), supply_(s), history_(h), policy_(p), prefetch_(std::make_unique<Prefetch>()) {
  for (const auto& site : c.sites) site_names_.push_back(site.name);
}

IntervalEngine::~IntervalEngine() {
  if (prefetch_->in_flight) prefetch_->tasks.wait();
}

void IntervalEngine::Forecast(size_t i, size_t horizon, std::vector<SiteOutlook>* out) const {
  out->resize(supply_.size());
  for (size_t s = 0; s < supply_.size(); ++s) {
    auto fill = [&](const Forecaster& f, const std::vector<double>& truth, std::vector<double>& v) {
      if (i == 0) {
        // No history at all (the traces start with the job): the reading at the decision (a grid
        // operator's current intensity, the site's current output) is held, never zeros.
        v.assign(horizon, truth[0]);
        return;
      }
      v = f.Forecast(HistoryView{truth.data(), i}, horizon);
      v.resize(horizon, !v.empty() ? v.back() : truth[i - 1]);
    };
    fill(*f_renew_[s], supply_[s].renewable_mw, (*out)[s].renewable_mw);
    fill(*f_carbon_[s], supply_[s].carbon_g_per_kwh, (*out)[s].carbon_g_per_kwh);
  }
}

void IntervalEngine::SetTime(size_t i) {
  const double elapsed_h = (static_cast<double>(i) - static_cast<double>(history_)) * dt_;
  in_.now = TimeOf(i);
  in_.hours_to_deadline = std::max(dt_, config_.job.deadline_hours - elapsed_h);
}

size_t IntervalEngine::HorizonAt(size_t i) {
  SetTime(i);
  return std::max<size_t>(1, policy_.horizon(in_));
}

Plan IntervalEngine::Decide(size_t i, const EngineState& st) {
  in_.work_remaining_steps = st.work_left_steps;
  in_.hours_since_checkpoint = st.hours_since_checkpoint;
  in_.battery_soc_mwh = st.battery_soc_mwh;
  in_.allocated_gpus = st.allocated_gpus;
  in_.current = st.current;
  // The next interval's horizon as the policy will see it (its time fields set for i + 1), then
  // this interval's; the input is left set for i.
  const bool ahead = i + 1 < supply_[0].size();
  const size_t next_horizon = ahead ? HorizonAt(i + 1) : 0;
  const size_t horizon = HorizonAt(i);
  Prefetch& pf = *prefetch_;
  if (pf.in_flight) {
    pf.tasks.wait();
    pf.in_flight = false;
  }
  if (pf.i == i && pf.horizon == horizon && pf.outlook.size() == supply_.size()) {
    in_.outlook.swap(pf.outlook);
  } else {
    Forecast(i, horizon, &in_.outlook);
  }
  pf.i = i + 1;
  pf.horizon = next_horizon;
  if (ahead) {
    pf.in_flight = true;
    pf.tasks.run([this, &pf] { Forecast(pf.i, pf.horizon, &pf.outlook); });
  }
  Plan plan = policy_.Decide(in_);
  checkpoint_ = CheckpointFor(i, st, plan);
  const bool has = std::any_of(plan.actions.begin(), plan.actions.end(),
                               [](const Action& a) { return a.kind == ActionKind::kCheckpoint; });
  if (checkpoint_.take && !has) plan.actions.insert(plan.actions.begin(), {ActionKind::kCheckpoint, -1, -1, -1, checkpoint_.reason});
  return plan;
}

CheckpointTrigger IntervalEngine::CheckpointFor(size_t i, const EngineState& st, const Plan& next) const {
  CheckpointTriggerInput t;
  t.interval_hours = dt_;
  t.hours_since_checkpoint = st.hours_since_checkpoint;
  t.every_hours = config_.job.checkpoint_every_hours;
  t.measured_checkpoint_hours =
      st.checkpoint_hours > 0 ? st.checkpoint_hours : menu_.CheckpointSeconds(st.current.stages) / 3600.0;
  t.current = &st.current;
  t.next = &next;
  const bool trains_on = st.current.running() && next.running() && next.option >= 0 && next.option < menu_.size();
  if (trains_on) {
    // Only the forecast steps the rule looks at: the outlook's first value forecasts interval i.
    // Where the policy looked less far ahead (carbon-agnostic: this interval only; the deadline
    // near), the same forecaster looks as far as the rule needs.
    const size_t ahead = static_cast<size_t>(CheckpointHorizonIntervals(t.measured_checkpoint_hours, dt_));
    std::vector<SiteOutlook> longer;
    const std::vector<SiteOutlook>* look = &in_.outlook;
    if (look->empty() || look->front().renewable_mw.size() < ahead + 1) {
      Forecast(i, ahead + 1, &longer);
      look = &longer;
    }
    for (size_t s = 0; s < config_.sites.size(); ++s) {
      if (s >= next.busy_gpus.size() || next.busy_gpus[s] <= 0) continue;
      const SiteConfig& site = config_.sites[s];
      CheckpointSiteOutlook o;
      o.name = site.name;
      o.load_mw = menu_.option(next.option).facility_mw[s];
      o.renewable_now_mw = supply_[s].renewable_mw[i];
      const auto& f = (*look)[s].renewable_mw;
      if (f.size() > 1) o.renewable_forecast_mw.assign(f.begin() + 1, f.begin() + std::min(f.size(), ahead + 1));
      const double soc = s < st.battery_soc_mwh.size() ? st.battery_soc_mwh[s] : 0.0;
      o.battery_mwh = std::max(0.0, soc - site.battery.min_soc * site.battery.capacity_mwh);
      t.sites.push_back(std::move(o));
    }
  }
  t.site_names = &site_names_;
  return DecideCheckpoint(t);
}

Transition IntervalEngine::Cost(const Plan& current, const Plan& next) const {
  Transition t;
  double overhead_s = 0;
  for (const Action& a : next.actions) {
    switch (a.kind) {
      case ActionKind::kCheckpoint: t.checkpoint = true; break;
      case ActionKind::kPause: ++t.pauses; break;
      case ActionKind::kResume: ++t.resumes; break;
      case ActionKind::kResize: ++t.resizes; break;
      case ActionKind::kMigrate: ++t.migrations; break;
      default: break;
    }
  }
  if (t.checkpoint) overhead_s += menu_.CheckpointSeconds(current.stages);
  if (!next.paused()) {
    t.migrated_bytes = menu_.MigrationBytes(current.stages, next.stages);
    overhead_s += menu_.StartSeconds(current.stages, current.running(), next.stages);
  }
  t.overhead_hours = std::min(dt_, overhead_s / 3600.0);
  return t;
}

SitePhases IntervalEngine::Phases(int s, const Plan& next, int allocated, double hours, double overhead_hours,
                                  double run_hours) const {
  SitePhases p;
  p.overhead_hours = overhead_hours;
  p.run_hours = run_hours;
  p.rest_hours = std::max(0.0, hours - overhead_hours - run_hours);
  if (!next.paused()) {
    const int busy = s < static_cast<int>(next.busy_gpus.size()) ? next.busy_gpus[s] : 0;
    p.overhead_gpus = busy > 0 ? busy : allocated;
    p.run_gpus = busy;
  } else {
    // The checkpoint before a pause keeps the allocated GPUs (and their hosts) drawing; then they
    // wait idle, or are given back.
    p.overhead_gpus = allocated;
    p.rest_gpus = config_.job.HeldWhilePaused(allocated);
  }
  return p;
}

std::vector<GpuPhase> SitePhases::ToGpuPhases() const {
  return {{overhead_hours, 0, overhead_gpus, true}, {run_hours, run_gpus, 0, false}, {rest_hours, 0, rest_gpus, false}};
}

PowerFlow IntervalEngine::Dispatch(int s, size_t i, double soc_mwh, const SitePhases& p, LoadBreakdown* breakdown) const {
  return DispatchGpuPhases(config_.sites[s], soc_mwh, supply_[s].At(i), p.ToGpuPhases(), breakdown);
}

std::vector<double> IntervalEngine::WanBytes(const Plan& current, const Plan& next, const Transition& tr,
                                             double work) const {
  std::vector<double> out(config_.sites.size(), 0.0);
  auto share = [&out](const std::vector<int>& sites, double bytes) {
    if (sites.empty() || !(bytes > 0)) return;
    for (int s : sites)
      if (s >= 0 && s < static_cast<int>(out.size())) out[s] += bytes / static_cast<double>(sites.size());
  };
  if (!next.paused() && next.option >= 0 && next.option < menu_.size())
    share(next.Sites(), menu_.option(next.option).partition.wan_bytes_per_step * work);
  if (tr.migrated_bytes > 0) {
    std::vector<int> ends = current.Sites();
    for (int s : next.Sites())
      if (std::find(ends.begin(), ends.end(), s) == ends.end()) ends.push_back(s);
    share(ends, tr.migrated_bytes);
  }
  return out;
}

}  // namespace gt
