#include "coordinator/simulator.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "coordinator/lp.h"
#include "energy/forecast.h"

namespace gt {

namespace {
constexpr int64_t kHistorySeconds = 14 * 86400;
}

Result<Simulator> Simulator::Create(const Config& config, std::vector<SiteSupplyTrace> supply,
                                    size_t history_steps, MenuOptions menu_options) {
  if (supply.size() != config.sites.size())
    return InvalidArgument("simulator: " + std::to_string(supply.size()) + " supply traces for " +
                           std::to_string(config.sites.size()) + " sites");
  for (const auto& s : supply)
    if (s.size() <= history_steps)
      return InvalidArgument("simulator: the supply of site '" + s.site + "' ends before the job starts");
  ASSIGN_OR_RETURN(OptionMenu menu, OptionMenu::Build(config, menu_options));
  return Simulator(config, std::move(menu), std::move(supply), history_steps);
}

Result<Simulator> Simulator::FromConfig(const Config& config, MenuOptions menu_options) {
  const int64_t step = config.interval_seconds;
  const int64_t history = kHistorySeconds / step * step;
  std::vector<SiteSupplyTrace> supply;
  size_t history_steps = static_cast<size_t>(history / step);
  for (const auto& site : config.sites) {
    auto t = LoadSiteSupply(site, config.job.start - history, config.sim_end, step);
    if (!t.ok()) {
      // The traces may begin at job.start: run without history (forecasters fall back).
      history_steps = 0;
      break;
    }
    supply.push_back(std::move(t).value());
  }
  if (history_steps == 0) {
    supply.clear();
    for (const auto& site : config.sites) {
      ASSIGN_OR_RETURN(SiteSupplyTrace t, LoadSiteSupply(site, config.job.start, config.sim_end, step));
      supply.push_back(std::move(t));
    }
  }
  return Create(config, std::move(supply), history_steps, std::move(menu_options));
}

Result<SimResult> Simulator::Run(const Policy& policy, const std::string& forecaster_name) const {
  if (!policy.wants_truth()) return RunOnce(policy, forecaster_name);
  // The oracle: the best perfect-foresight schedule among its candidates.
  std::optional<SimResult> best;
  for (const auto& candidate : OracleCandidates()) {
    ASSIGN_OR_RETURN(SimResult r, RunOnce(*candidate, "oracle"));
    auto better = [&](const SimResult& a, const SimResult& b) {
      if (a.deadline_met != b.deadline_met) return a.deadline_met;
      return a.totals.carbon_kg < b.totals.carbon_kg;
    };
    if (!best || better(r, *best)) {
      r.note = "best perfect-foresight schedule: " + r.policy;
      best = std::move(r);
    }
  }
  best->policy = policy.name();
  best->forecaster = "oracle";
  return std::move(*best);
}

Result<SimResult> Simulator::RunOnce(const Policy& policy, const std::string& forecaster_name) const {
  const int n_sites = static_cast<int>(config_.sites.size());
  const double dt = config_.interval_seconds / 3600.0;
  const size_t total_steps = supply_[0].size();
  for (const auto& s : supply_)
    if (s.size() != total_steps) return Internal("simulator: supply traces of unequal length");

  // Forecasters for each site and signal (the oracle's read the truth).
  std::vector<std::unique_ptr<Forecaster>> f_renew(n_sites), f_carbon(n_sites);
  const size_t per_day = static_cast<size_t>(std::max<int64_t>(1, 86400 / config_.interval_seconds));
  const std::string fname = policy.wants_truth() ? "oracle" : forecaster_name;  // "oracle" = the truth
  for (int s = 0; s < n_sites; ++s) {
    ASSIGN_OR_RETURN(f_renew[s], MakeForecaster(fname, &supply_[s].renewable_mw, per_day));
    ASSIGN_OR_RETURN(f_carbon[s], MakeForecaster(fname, &supply_[s].carbon_g_per_kwh, per_day));
  }

  SimResult r;
  r.policy = policy.name();
  r.forecaster = fname;
  for (const auto& s : config_.sites) r.site_names.push_back(s.name);

  std::vector<double> soc(n_sites);
  for (int s = 0; s < n_sites; ++s)
    soc[s] = config_.sites[s].battery.capacity_mwh * config_.sites[s].battery.initial_soc;
  std::vector<int> allocated(n_sites, 0);
  Plan current;
  double work_left = config_.job.steps;
  double since_ckpt = 0;
  const double deadline_h = config_.job.deadline_hours;

  PolicyInput in;
  in.config = &config_;
  in.menu = &menu_;
  in.interval_hours = dt;
  in.work_total_steps = config_.job.steps;
  in.outlook.resize(n_sites);

  for (size_t i = history_; i < total_steps && work_left > 1e-9; ++i) {
    const double elapsed_h = static_cast<double>(i - history_) * dt;
    const UnixSeconds t = supply_[0].start + static_cast<int64_t>(i) * config_.interval_seconds;
    in.now = t;
    in.work_remaining_steps = work_left;
    in.hours_to_deadline = std::max(dt, deadline_h - elapsed_h);
    in.hours_since_checkpoint = since_ckpt;
    in.battery_soc_mwh = soc;
    in.allocated_gpus = allocated;
    in.current = current;
    const size_t horizon = std::max<size_t>(1, policy.horizon(in));
    for (int s = 0; s < n_sites; ++s) {
      auto fill = [&](const Forecaster& f, const std::vector<double>& truth, std::vector<double>& out) {
        out = f.Forecast(HistoryView{truth.data(), i}, horizon);
        out.resize(horizon, !out.empty() ? out.back() : truth[i > 0 ? i - 1 : i]);
      };
      fill(*f_renew[s], supply_[s].renewable_mw, in.outlook[s].renewable_mw);
      fill(*f_carbon[s], supply_[s].carbon_g_per_kwh, in.outlook[s].carbon_g_per_kwh);
    }
    Plan next = policy.Decide(in);

    // Time lost to the actions before training resumes, and who waits during it.
    double overhead_s = 0;
    bool ckpt = false;
    for (const Action& a : next.actions) {
      switch (a.kind) {
        case ActionKind::kCheckpoint: ckpt = true; ++r.checkpoints; break;
        case ActionKind::kPause: ++r.pauses; break;
        case ActionKind::kResume: ++r.resumes; break;
        case ActionKind::kResize: ++r.resizes; break;
        case ActionKind::kMigrate: ++r.migrations; break;
        default: break;
      }
    }
    if (ckpt) overhead_s += menu_.CheckpointSeconds(current.stages);
    if (!next.paused()) {
      double move_s = menu_.MigrationSeconds(current.stages, next.stages);
      r.migrated_bytes += menu_.MigrationBytes(current.stages, next.stages);
      bool resumed = current.stages.empty() || current.paused();
      if (move_s == 0 && resumed) move_s = menu_.settings().restart_seconds;
      overhead_s += move_s;
    }
    const double overhead_h = std::min(dt, overhead_s / 3600.0);
    r.overhead_hours += overhead_h;
    since_ckpt = ckpt ? 0 : since_ckpt + dt;

    double run_h = 0, work = 0;
    if (!next.paused()) {
      run_h = dt - overhead_h;
      work = next.steps_per_hour * run_h;
      if (work >= work_left) {
        run_h = work_left / next.steps_per_hour;
        work = work_left;
      }
    }
    work_left -= work;
    r.work_steps += work;

    // Energy per site: busy GPUs while training; GPUs of the new placement idle during the
    // overhead; the old allocation idle while paused.
    TimelinePoint tp;
    tp.time = t;
    tp.placement = next.Describe(r.site_names);
    tp.busy_gpus = next.busy_gpus;
    for (int s = 0; s < n_sites; ++s) {
      const auto& site = config_.sites[s];
      // The interval in phases, each dispatched on its own (renewable power is constant within the
      // interval, so a load present for part of it meets only that part's renewable energy):
      // overhead (GPUs of the new and old placement idle while state is saved, moved, restarted),
      // training, and the rest (allocated GPUs idle while paused; nothing once the job is done).
      int busy = 0, idle = 0;
      double overhead_mw = 0, run_mw = 0, rest_mw = 0;
      if (!next.paused()) {
        busy = next.busy_gpus[s];
        int waiting = busy > 0 ? busy : allocated[s];
        overhead_mw = waiting * site.gpu.idle_w / 1e6;
        run_mw = busy * site.gpu.busy_w / 1e6;
      } else {
        idle = allocated[s];
        rest_mw = idle * site.gpu.idle_w / 1e6;
      }
      const PowerFlow flow = DispatchPhases(site, soc[s], supply_[s].At(i),
                                            {{overhead_h, overhead_mw},
                                             {run_h, run_mw},
                                             {dt - overhead_h - run_h, next.paused() ? rest_mw : 0.0}});
      soc[s] = flow.soc_after_mwh;
      LedgerRow row;
      row.time = t;
      row.hours = dt;
      row.site = site.name;
      row.busy_gpus = busy;
      row.idle_gpus = idle;
      row.work_steps = busy > 0 && next.steps_per_hour > 0 ? work : 0;
      if (next.Sites().size() > 1 && busy > 0) row.work_steps = work / next.Sites().size();
      row.carbon_g_per_kwh = supply_[s].carbon_g_per_kwh[i];
      row.flow = flow;
      RETURN_IF_ERROR(r.ledger.Add(row));
      tp.renewable_mw.push_back(supply_[s].renewable_mw[i]);
      tp.load_mw.push_back(flow.demand_mwh / dt);
      tp.carbon_g_per_kwh.push_back(supply_[s].carbon_g_per_kwh[i]);
    }
    if (!next.paused()) allocated = next.busy_gpus;
    tp.work_done = r.work_steps;
    r.timeline.push_back(std::move(tp));
    if (work_left <= 1e-9) {
      r.finished = true;
      r.completion_hours = elapsed_h + overhead_h + run_h;
    }
    current = std::move(next);
  }
  if (!r.finished) r.completion_hours = static_cast<double>(total_steps - history_) * dt;
  r.deadline_met = r.finished && r.completion_hours <= deadline_h + 1e-9;
  r.totals = r.ledger.Totals();
  return r;
}

double Simulator::CarbonLowerBoundKg() const {
  const int n_sites = static_cast<int>(config_.sites.size());
  const double dt = config_.interval_seconds / 3600.0;
  const size_t steps = std::min(supply_[0].size() - history_,
                                static_cast<size_t>(std::ceil(config_.job.deadline_hours / dt - 1e-9)));
  std::vector<SiteOutlook> truth(n_sites);
  std::vector<double> soc(n_sites);
  for (int s = 0; s < n_sites; ++s) {
    const auto& sup = supply_[s];
    truth[s].renewable_mw.assign(sup.renewable_mw.begin() + history_, sup.renewable_mw.begin() + history_ + steps);
    truth[s].carbon_g_per_kwh.assign(sup.carbon_g_per_kwh.begin() + history_,
                                     sup.carbon_g_per_kwh.begin() + history_ + steps);
    soc[s] = config_.sites[s].battery.capacity_mwh * config_.sites[s].battery.initial_soc;
  }
  // First the pure LP (always a bound), then the tighter one-placement-per-interval MIP when it
  // solves to optimality within its time limit.
  auto lp = SolveScheduleLp(menu_, truth, soc, dt, config_.job.steps, steps, ScheduleOptions{});
  if (!lp.ok() || !lp->feasible) return 0;
  double bound = lp->carbon_kg;
  LpOptions mip;
  mip.one_placement_per_interval = true;
  mip.charge_switches = true;
  auto tight = SolveScheduleLp(menu_, truth, soc, dt, config_.job.steps, steps, ScheduleOptions{}, mip);
  if (tight.ok() && tight->optimal) bound = std::max(bound, tight->carbon_kg);
  // GLPK's optimum is exact up to its tolerances; shave a relative 1e-7 to stay below.
  return std::max(0.0, bound * (1 - 1e-7));
}

}  // namespace gt
