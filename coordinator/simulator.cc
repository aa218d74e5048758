#include "coordinator/simulator.h"

#include "coordinator/engine.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include <tbb/parallel_for.h>

#include "coordinator/lp.h"
#include "energy/contracts.h"
#include "energy/forecast.h"

namespace gt {

Result<Simulator> Simulator::Create(const Config& config, std::vector<SiteSupplyTrace> supply,
                                    size_t history_steps, MenuOptions menu_options) {
  if (supply.size() != config.sites.size())
    return InvalidArgument("simulator: " + std::to_string(supply.size()) + " supply traces for " +
                           std::to_string(config.sites.size()) + " sites");
  for (const auto& s : supply)
    if (s.size() <= history_steps)
      return InvalidArgument("simulator: the supply of site '" + s.site + "' ends before the job starts");
  ASSIGN_OR_RETURN(OptionMenu menu, OptionMenu::Build(config, menu_options));
  ASSIGN_OR_RETURN(std::string basis, ResolveBasis(config, supply));
  return Simulator(config, std::move(menu), std::move(supply), history_steps, std::move(basis));
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

namespace {

// Runs `policies[i]` with `forecasters[i]` for every i, in parallel; the first error wins.
Result<std::vector<SimResult>> RunEach(const Simulator& sim, const std::vector<const Policy*>& policies,
                                       const std::vector<std::string>& forecasters) {
  std::vector<std::optional<Result<SimResult>>> runs(policies.size());
  tbb::parallel_for(size_t{0}, policies.size(), [&](size_t i) { runs[i] = sim.RunOnce(*policies[i], forecasters[i]); });
  std::vector<SimResult> out;
  for (auto& r : runs) {
    if (!r->ok()) return r->status();
    out.push_back(std::move(*r).value());
  }
  return out;
}

// The oracle's answer: the least-carbon run that meets the deadline (a run that misses it only
// when all do); the first of equals, so the choice does not depend on thread timing. `policies[i]`
// made `runs[i]`; each becomes a Candidate, named by its description where that says more than its
// name, else by name and forecaster.
SimResult BestOf(const std::vector<SimResult>& runs, const std::vector<const Policy*>& policies) {
  size_t best = 0;
  auto better = [](const SimResult& a, const SimResult& b) {
    if (a.deadline_met != b.deadline_met) return a.deadline_met;
    return a.totals.carbon_kg < b.totals.carbon_kg;
  };
  for (size_t i = 1; i < runs.size(); ++i)
    if (better(runs[i], runs[best])) best = i;
  std::vector<SimResult::Candidate> all;
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string what = policies[i]->describe();
    all.push_back({what != policies[i]->name() ? what : runs[i].policy + " (forecaster " + runs[i].forecaster + ")",
                   runs[i].totals.carbon_kg, runs[i].deadline_met});
  }
  SimResult r = runs[best];
  r.note = all[best].what;
  r.policy = "oracle";
  r.forecaster = "oracle";
  r.candidates = std::move(all);
  return r;
}

}  // namespace

Result<SimResult> Simulator::Run(const Policy& policy, const std::string& forecaster_name) const {
  if (!policy.wants_truth()) return RunOnce(policy, forecaster_name);
  ASSIGN_OR_RETURN(auto runs, RunPolicies({"oracle"}, forecaster_name));
  return std::move(runs[0]);
}

Result<std::vector<SimResult>> Simulator::RunPolicies(const std::vector<std::string>& names,
                                                      const std::string& forecaster) const {
  // Every named policy but the oracle; with the oracle, every such policy (its candidates), then
  // the oracle's own perfect-foresight candidates.
  std::vector<std::string> own;
  bool oracle = false;
  for (const auto& n : names) {
    if (n == "oracle") oracle = true;
    else if (std::find(own.begin(), own.end(), n) == own.end()) own.push_back(n);
  }
  if (oracle)
    for (const auto& n : PolicyNames())
      if (n != "oracle" && std::find(own.begin(), own.end(), n) == own.end()) own.push_back(n);
  std::vector<std::unique_ptr<Policy>> held = oracle ? OracleCandidates() : std::vector<std::unique_ptr<Policy>>{};
  const size_t truth_runs = held.size();
  std::vector<std::string> forecasters(truth_runs, "oracle");
  for (const auto& n : own) {
    ASSIGN_OR_RETURN(auto p, MakePolicy(n));
    held.push_back(std::move(p));
    forecasters.push_back(forecaster);
  }
  std::vector<const Policy*> policies;
  for (const auto& p : held) policies.push_back(p.get());
  ASSIGN_OR_RETURN(std::vector<SimResult> runs, RunEach(*this, policies, forecasters));
  // The oracle's pick is copied out first; each named run is then moved to its place (copied
  // only where a name is asked for twice).
  std::optional<SimResult> best;
  if (oracle) best = BestOf(runs, policies);
  std::vector<SimResult> out;
  std::vector<size_t> placed(runs.size(), names.size());
  for (const auto& n : names) {
    if (n == "oracle") {
      out.push_back(*best);
      continue;
    }
    const size_t i = truth_runs + (std::find(own.begin(), own.end(), n) - own.begin());
    if (placed[i] < out.size()) {
      out.push_back(out[placed[i]]);
    } else {
      placed[i] = out.size();
      out.push_back(std::move(runs[i]));
    }
  }
  return out;
}

Result<SimResult> Simulator::RunOnce(const Policy& policy, const std::string& forecaster_name) const {
  const int n_sites = static_cast<int>(config_.sites.size());
  const double dt = config_.interval_seconds / 3600.0;
  const size_t total_steps = supply_[0].size();
  ASSIGN_OR_RETURN(auto engine, IntervalEngine::Create(config_, menu_, supply_, history_, policy, forecaster_name));

  SimResult r;
  r.policy = policy.name();
  r.forecaster = engine->forecaster();
  for (const auto& s : config_.sites) r.site_names.push_back(s.name);
  r.basis = basis_;
  std::vector<double> annual_left;
  for (const auto& s : config_.sites) annual_left.push_back(s.contracts.certificates_mwh);

  EngineState st;
  st.battery_soc_mwh.resize(n_sites);
  for (int s = 0; s < n_sites; ++s)
    st.battery_soc_mwh[s] = config_.sites[s].battery.capacity_mwh * config_.sites[s].battery.initial_soc;
  st.allocated_gpus.assign(n_sites, 0);
  st.work_left_steps = config_.job.steps;
  const double deadline_h = config_.job.deadline_hours;
  r.ledger.Reserve((total_steps - history_) * n_sites);
  r.timeline.reserve(total_steps - history_);

  for (size_t i = history_; i < total_steps && st.work_left_steps > 1e-9; ++i) {
    const double elapsed_h = static_cast<double>(i - history_) * dt;
    const UnixSeconds t = engine->TimeOf(i);
    Plan next = engine->Decide(i, st);

    // Time lost to the actions before training resumes.
    const Transition tr = engine->Cost(st.current, next);
    r.checkpoints += tr.checkpoint ? 1 : 0;
    r.pauses += tr.pauses;
    r.resumes += tr.resumes;
    r.resizes += tr.resizes;
    r.migrations += tr.migrations;
    r.migrated_bytes += tr.migrated_bytes;
    const double overhead_h = tr.overhead_hours;
    r.overhead_hours += overhead_h;
    st.hours_since_checkpoint = HoursSinceCheckpointAfter(st.hours_since_checkpoint, tr.checkpoint, !next.paused(), dt);

    double run_h = 0, work = 0;
    if (!next.paused()) {
      run_h = dt - overhead_h;
      work = next.steps_per_hour * run_h;
      if (work >= st.work_left_steps) {
        run_h = st.work_left_steps / next.steps_per_hour;
        work = st.work_left_steps;
      }
    }
    st.work_left_steps -= work;
    r.work_steps += work;

    // Energy per site, dispatched in phases (IntervalEngine::Phases).
    TimelinePoint tp;
    tp.time = t;
    tp.placement = next.Describe(r.site_names);
    tp.checkpoint = tr.checkpoint;
    tp.busy_gpus = next.busy_gpus;
    tp.renewable_mw.reserve(n_sites);
    tp.load_mw.reserve(n_sites);
    tp.carbon_g_per_kwh.reserve(n_sites);
    const std::vector<double> wan_bytes = engine->WanBytes(st.current, next, tr, work);
    const size_t run_sites = next.Sites().size();
    for (int s = 0; s < n_sites; ++s) {
      const SitePhases ph = engine->Phases(s, next, st.allocated_gpus[s], dt, overhead_h, run_h);
      LoadBreakdown load;
      const PowerFlow flow = engine->Dispatch(s, i, st.battery_soc_mwh[s], ph, &load);
      BookWan(load, wan_bytes[s] / 1e9, config_.accounting.wan_kwh_per_gb, supply_[s].carbon_g_per_kwh[i]);
      st.battery_soc_mwh[s] = flow.soc_after_mwh;
      const int busy = next.paused() ? 0 : next.busy_gpus[s];
      LedgerRow row;
      row.time = t;
      row.hours = dt;
      row.site = config_.sites[s].name;
      row.busy_gpus = busy;
      row.idle_gpus = next.paused() ? config_.job.HeldWhilePaused(st.allocated_gpus[s]) : 0;
      row.work_steps = busy > 0 && next.steps_per_hour > 0 ? work : 0;
      if (run_sites > 1 && busy > 0) row.work_steps = work / run_sites;
      row.carbon_g_per_kwh = supply_[s].carbon_g_per_kwh[i];
      row.flow = flow;
      row.load = load;
      BookMarket(config_.sites[s], config_.accounting, basis_ == "life-cycle", supply_[s].At(i), row,
                 &annual_left[s]);
      RETURN_IF_ERROR(r.ledger.Add(std::move(row)));
      tp.renewable_mw.push_back(supply_[s].renewable_mw[i]);
      tp.load_mw.push_back(flow.demand_mwh / dt);
      tp.carbon_g_per_kwh.push_back(supply_[s].carbon_g_per_kwh[i]);
    }
    if (!next.paused()) st.allocated_gpus = next.busy_gpus;
    tp.work_done = r.work_steps;
    r.timeline.push_back(std::move(tp));
    if (st.work_left_steps <= 1e-9) {
      r.finished = true;
      r.completion_hours = elapsed_h + overhead_h + run_h;
    }
    st.current = std::move(next);
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
  // First the pure LP (always a bound), then the tighter one-placement-per-interval MIP: its
  // optimum when branch and bound finishes within the node limit, else the least bound of the
  // subproblems it left open.
  auto lp = SolveScheduleLp(menu_, truth, soc, dt, config_.job.steps, steps, ScheduleOptions{});
  if (!lp.ok() || !lp->feasible) return 0;
  double bound = lp->carbon_kg;
  LpOptions mip;
  mip.one_placement_per_interval = true;
  mip.charge_switches = true;
  // About as far as the former 3 s wall-clock limit reached on this hardware, but the same on any
  // machine and load: the policies' own MIPs need at most a few dozen subproblems.
  mip.node_limit = 1000;
  auto tight = SolveScheduleLp(menu_, truth, soc, dt, config_.job.steps, steps, ScheduleOptions{}, mip);
  // Finished or not, its branch and bound proves a bound (LpSchedule::bound_kg).
  if (tight.ok()) bound = std::max(bound, tight->bound_kg);
  // GLPK's optimum is exact up to its tolerances; shave a relative 1e-7 to stay below.
  return std::max(0.0, bound * (1 - 1e-7));
}

}  // namespace gt
