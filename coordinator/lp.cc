#include "coordinator/lp.h"

#include <glpk.h>

#include <algorithm>
#include <memory>

namespace gt {

int LpSchedule::OptionAt(size_t t) const {
  if (t >= fraction.size()) return -1;
  double total = 0, best = 0;
  int arg = -1;
  for (size_t o = 0; o < fraction[t].size(); ++o) {
    total += fraction[t][o];
    if (fraction[t][o] > best) { best = fraction[t][o]; arg = static_cast<int>(o); }
  }
  return total >= 0.5 ? arg : -1;
}

int LpSchedule::FirstOption() const { return OptionAt(0); }

namespace {

// How far ahead the LP keeps its rows that only the next day's decisions need (SolveScheduleLp): a
// held allocation's share under way tied to the work left, the last placement run, and the regroup
// of every change of option.
constexpr double kUnderWayRowHours = 24;

// A deterministic limit on branch and bound (GLPK's own limit is wall-clock time), and the proven
// bound when it stops: the least local bound over the subproblems still open (each bounds every
// schedule in its subtree; the incumbent's value is taken into account by the caller).
struct NodeBudget {
  int64_t limit, used;
  double open_bound = -1e300;  // set when the limit ends the search
  bool stopped = false;
};
void CountNodes(glp_tree* tree, void* info) {
  auto* b = static_cast<NodeBudget*>(info);
  if (glp_ios_reason(tree) != GLP_ISELECT || ++b->used <= b->limit) return;
  const int best = glp_ios_best_node(tree);
  b->open_bound = best > 0 ? glp_ios_node_bound(tree, best) : 1e300;
  b->stopped = true;
  glp_ios_terminate(tree);
}

// Solves the LP relaxation: GLPK's primal simplex after presolve, then, should it stall (primal
// simplex can cycle on degenerate problems; it did on a battery-heavy outlook), the dual simplex
// from a standard basis without presolve. Each attempt stops at a count of iterations, never at a
// clock, so the outcome does not depend on the machine. Returns the last attempt's code.
int SolveRelaxation(glp_prob* P) {
  constexpr int kIterations = 50000;
  glp_smcp parm;
  glp_init_smcp(&parm);
  parm.msg_lev = GLP_MSG_OFF;
  parm.presolve = GLP_ON;
  parm.it_lim = kIterations;
  int rc = glp_simplex(P, &parm);
  if (rc == 0 && glp_get_status(P) == GLP_OPT) return rc;
  glp_std_basis(P);
  parm.presolve = GLP_OFF;
  parm.meth = GLP_DUALP;
  return glp_simplex(P, &parm);
}

}  // namespace

Result<LpSchedule> SolveScheduleLp(const OptionMenu& menu, const std::vector<SiteOutlook>& outlook,
                                   const std::vector<double>& soc_mwh, double dt, double work, size_t steps,
                                   const ScheduleOptions& options, const LpOptions& lp_options) {
  const int O = menu.size();
  const int S = menu.num_sites();
  const int T = static_cast<int>(steps);
  if (T <= 0) return InvalidArgument("lp: no steps to plan");
  if (static_cast<int>(outlook.size()) != S) return InvalidArgument("lp: outlook does not match the sites");
  const Config& cfg = menu.config();

  std::unique_ptr<glp_prob, void (*)(glp_prob*)> lp(glp_create_prob(), glp_delete_prob);
  glp_prob* P = lp.get();
  glp_set_obj_dir(P, GLP_MIN);
  const double energy_w = std::max(0.0, lp_options.energy_kg_per_mwh);
  // Columns: x[t][o], then per (t, s): r, c, d, g, e.
  const int nx = T * O;
  auto X = [&](int t, int o) { return 1 + t * O + o; };
  auto Y = [&](int t, int s, int k) { return 1 + nx + (t * S + s) * 5 + k; };  // k: 0 r,1 c,2 d,3 g,4 e
  glp_add_cols(P, nx + T * S * 5);
  for (int t = 0; t < T; ++t) {
    for (int o = 0; o < O; ++o) {
      glp_set_col_bnds(P, X(t, o), GLP_DB, 0.0, 1.0);
      if (t == 0 && options.start_hours.empty() && !options.switch_carbon_kg.empty())
        glp_set_obj_coef(P, X(t, o), options.switch_carbon_kg[o]);
    }
    for (int s = 0; s < S; ++s) {
      const auto& b = cfg.sites[s].battery;
      const double renew = std::max(0.0, outlook[s].renewable_mw[t]) * dt;
      glp_set_col_bnds(P, Y(t, s, 0), renew > 0 ? GLP_DB : GLP_FX, 0.0, renew);
      const double cmax = std::min(renew, b.charge_mw * dt);
      const double dmax = b.discharge_mw * dt;
      glp_set_col_bnds(P, Y(t, s, 1), cmax > 0 && b.capacity_mwh > 0 ? GLP_DB : GLP_FX, 0.0, cmax);
      glp_set_col_bnds(P, Y(t, s, 2), dmax > 0 && b.capacity_mwh > 0 ? GLP_DB : GLP_FX, 0.0, dmax);
      glp_set_col_bnds(P, Y(t, s, 3), GLP_LO, 0.0, 0.0);
      glp_set_obj_coef(P, Y(t, s, 3), outlook[s].carbon_g_per_kwh[t] + energy_w);  // MWh x g/kWh = kg
      glp_set_obj_coef(P, Y(t, s, 0), energy_w);
      glp_set_obj_coef(P, Y(t, s, 2), energy_w);
      const double lo = b.min_soc * b.capacity_mwh, hi = b.capacity_mwh;
      glp_set_col_bnds(P, Y(t, s, 4), hi > lo ? GLP_DB : GLP_FX, lo, hi > lo ? hi : lo);
    }
  }
  std::vector<int> ia{0}, ja{0};
  std::vector<double> ar{0};
  auto put = [&](int row, int col, double v) {
    if (v == 0) return;
    ia.push_back(row);
    ja.push_back(col);
    ar.push_back(v);
  };
  // Work.
  int row = glp_add_rows(P, 1);
  glp_set_row_bnds(P, row, GLP_LO, work, 0.0);
  // The share of periodic checkpoints' time each interval an option runs loses (per option, a constant).
  std::vector<double> ckpt_hours(O, 0.0);
  if (options.checkpoint_period > 0)
    for (int o = 0; o < O; ++o)
      ckpt_hours[o] = menu.CheckpointSeconds(menu.option(o).partition.stages) / 3600.0 / options.checkpoint_period;
  std::vector<double> work_coef(static_cast<size_t>(T) * O, 0.0);  // [t * O + o]: steps per interval
  double possible = 0;
  for (int t = 0; t < T; ++t) {
    double best = 0;
    for (int o = 0; o < O; ++o) {
      const double ckpt_h = ckpt_hours[o];
      double w = menu.option(o).steps_per_hour * std::max(0.0, dt - ckpt_h);
      if (t == 0 && !options.start_hours.empty())
        w = menu.option(o).steps_per_hour * std::max(0.0, dt - ckpt_h - options.start_hours[o]);
      else if (t == 0 && !options.switch_work_loss.empty())
        w = std::max(0.0, w - options.switch_work_loss[o]);
      put(row, X(t, o), w);
      work_coef[t * O + o] = w;
      best = std::max(best, w);
    }
    possible += best;
  }
  // The earliness tie-break: work at step t adds earliness * (t / T) * (its share of the work).
  const double early_w = std::max(0.0, lp_options.earliness_kg) / T / std::max(work, 1e-9);
  auto early_coef = [&](int t, int o) { return early_w * t * work_coef[t * O + o]; };
  if (early_w > 0)
    for (int t = 1; t < T; ++t)
      for (int o = 0; o < O; ++o) glp_set_obj_coef(P, X(t, o), glp_get_obj_coef(P, X(t, o)) + early_coef(t, o));
  LpSchedule out;
  if (possible < work * (1 - 1e-12)) {
    out.feasible = false;
    out.fraction.assign(T, std::vector<double>(O, 0.0));
    for (int t = 0; t < T; ++t) out.fraction[t][menu.fastest()] = 1;
    return out;
  }
  // With an allocation held while paused: a[t] in [0, 1], the share of interval t the job is still
  // under way (it holds its GPUs), non-increasing, a[0] = 1 (the job runs or waits now), and
  // running only while under way. A pause costs the idle draw until the job's last run, not to the
  // end of the outlook: pausing to run later is charged, finishing early frees the GPUs.
  bool holds = options.pauses_hold && static_cast<int>(options.paused_mw.size()) == S;
  for (double mw : options.paused_mw) holds = holds || mw > 0;
  const int first_a = holds ? glp_add_cols(P, T) : 0;
  auto A = [&](int t) { return first_a + t; };
  const int day_rows = std::min(T, static_cast<int>(StepsIn(kUnderWayRowHours, dt)) + 1);
  const int under_way_rows = holds ? day_rows : 0;
  const int first_done = under_way_rows > 1 ? glp_add_cols(P, under_way_rows - 1) : 0;
  auto Done = [&](int t) { return first_done + t - 1; };  // 1 <= t < under_way_rows
  for (int t = 1; t < under_way_rows; ++t) glp_set_col_bnds(P, Done(t), GLP_LO, 0.0, 0.0);
  for (int t = 0; holds && t < T; ++t) {
    if (t == 0) glp_set_col_bnds(P, A(t), GLP_FX, 1.0, 1.0);
    else glp_set_col_bnds(P, A(t), GLP_DB, 0.0, 1.0);
    if (t > 0) {
      row = glp_add_rows(P, 1);  // a[t] - a[t-1] <= 0
      glp_set_row_bnds(P, row, GLP_UP, 0.0, 0.0);
      put(row, A(t), 1.0);
      put(row, A(t - 1), -1.0);
    }
    // Over the next day: work a[t] + done[t] >= work, done[t] the steps intervals 0..t-1 can do
    // (a running sum). A job is under way for the whole of every interval that starts with work
    // left, so this holds for every executed schedule (a[t] is 1 or 0 there). Without it the LP let
    // a[t] fall to the share of the work planned after t, so a pause days before the job's end
    // was charged a fraction of the held allocation's idle draw, and the simulator charged it in
    // full (on 3x slack's 2022-06-01 with perfect forecasts: 67.9 kg against 11.9 with the row).
    // Beyond a day the rows slowed the LP by a quarter and changed no decision measured: those
    // intervals are replanned many times before they run.
    if (t > 0 && t < under_way_rows) {
      row = glp_add_rows(P, 1);  // done[t] - done[t-1] - sum_o w x[t-1] = 0
      glp_set_row_bnds(P, row, GLP_FX, 0.0, 0.0);
      put(row, Done(t), 1.0);
      if (t > 1) put(row, Done(t - 1), -1.0);
      for (int o = 0; o < O; ++o) put(row, X(t - 1, o), -work_coef[(t - 1) * O + o]);
      row = glp_add_rows(P, 1);  // work a[t] + done[t] >= work
      glp_set_row_bnds(P, row, GLP_LO, work, 0.0);
      put(row, A(t), work);
      put(row, Done(t), 1.0);
    }
  }
  // Which allocation a pause holds: the one the job last ran (its placement group's), or before
  // any run in the outlook the one it holds now (options.paused_mw, "group" G). l[t][k]: the share
  // of the job whose last run by the end of interval t was in group k (sum 1; for an executed
  // schedule the indicator of the last placement run): l[t][k] >= z[t][k] and l[t][k] <= l[t-1][k]
  // + z[t][k], z the share of the interval group k runs. h[t][k] <= l[t-1][k]: the paused share of
  // interval t holding group k's allocation, sum_k h[t][k] = a[t] - sum_o x[t][o]. A group's idle
  // draw is its smallest option's (a lower estimate: the LP stays a relaxation). Without this the
  // idle draw of every pause was charged at the allocation held now, also after a planned move:
  // a plan could move to a site, drain its battery and pause there, charged as if paused at the
  // site it left. Over the next day only (`tracked` intervals, as the under-way rows): later
  // pauses are charged at the allocation held now, as before; those intervals are replanned many
  // times before they run, and tracking them doubled the LP's time.
  const auto& groups = menu.placements();
  const int G = static_cast<int>(groups.size());
  const int K1 = G + 1;
  std::vector<double> held_mw(static_cast<size_t>(K1) * S, 0.0);  // [k * S + s]
  if (holds) {
    for (int k = 0; k < G; ++k)
      for (int s = 0; s < S; ++s) held_mw[k * S + s] = 1e300;
    for (int o = 0; o < O; ++o) {
      const int k = menu.placement_of(o);
      for (int s = 0; s < S; ++s)
        held_mw[k * S + s] = std::min(held_mw[k * S + s], menu.IdleFacilityMw(s, cfg.job.HeldWhilePaused(menu.option(o).gpus[s])));
    }
    for (int s = 0; s < S; ++s) held_mw[G * S + s] = options.paused_mw[s];
  }
  const int tracked = under_way_rows;
  const int first_l = tracked > 0 ? glp_add_cols(P, 2 * tracked * K1) : 0;
  auto L = [&](int t, int k) { return first_l + t * K1 + k; };
  auto H = [&](int t, int k) { return first_l + tracked * K1 + t * K1 + k; };
  for (int t = 0; t < tracked; ++t) {
    row = glp_add_rows(P, 1);  // sum_k l[t][k] = 1
    glp_set_row_bnds(P, row, GLP_FX, 1.0, 1.0);
    for (int k = 0; k < K1; ++k) {
      glp_set_col_bnds(P, L(t, k), GLP_DB, 0.0, 1.0);
      glp_set_col_bnds(P, H(t, k), GLP_DB, 0.0, 1.0);
      put(row, L(t, k), 1.0);
      const double before = t == 0 && k == G ? 1.0 : 0.0;
      const int up = glp_add_rows(P, 1);  // l[t][k] - l[t-1][k] - z[t][k] <= before
      glp_set_row_bnds(P, up, GLP_UP, 0.0, before);
      put(up, L(t, k), 1.0);
      if (t > 0) put(up, L(t - 1, k), -1.0);
      const int hold = glp_add_rows(P, 1);  // h[t][k] - l[t-1][k] <= before
      glp_set_row_bnds(P, hold, GLP_UP, 0.0, before);
      put(hold, H(t, k), 1.0);
      if (t > 0) put(hold, L(t - 1, k), -1.0);
      if (k == G) continue;
      const int low = glp_add_rows(P, 1);  // l[t][k] - z[t][k] >= 0
      glp_set_row_bnds(P, low, GLP_LO, 0.0, 0.0);
      put(low, L(t, k), 1.0);
      for (int o = 0; o < O; ++o)
        if (menu.placement_of(o) == k) {
          put(up, X(t, o), -1.0);
          put(low, X(t, o), -1.0);
        }
    }
  }
  std::vector<int> demand_row(T * S);
  for (int t = 0; t < T; ++t) {
    // One interval's time: sum_o x <= 1, or <= a[t] while an allocation is held (= a[t] with the
    // held shares h where they are tracked).
    const bool track = t < tracked;
    row = glp_add_rows(P, 1);
    glp_set_row_bnds(P, row, track ? GLP_FX : GLP_UP, 0.0, holds ? 0.0 : 1.0);
    for (int o = 0; o < O; ++o) put(row, X(t, o), 1.0);
    if (holds) put(row, A(t), -1.0);
    for (int k = 0; track && k < K1; ++k) put(row, H(t, k), 1.0);
    for (int s = 0; s < S; ++s) {
      const auto& b = cfg.sites[s].battery;
      // Demand: sum_o P_os dt x + sum_k idle_ks dt h[t][k] - r - d - g = 0, where idle_ks is what
      // the site draws while the job is paused holding group k's allocation, idle; untracked:
      // sum_o P_os dt x + idle_s dt (a - sum_o x) - r - d - g = 0, idle_s the allocation held now.
      const double now_mw = options.paused_mw.empty() || track ? 0.0 : options.paused_mw[s];
      row = glp_add_rows(P, 1);
      glp_set_row_bnds(P, row, GLP_FX, 0.0, 0.0);
      demand_row[t * S + s] = row;
      for (int o = 0; o < O; ++o) {
        const auto& opt = menu.option(o);
        // At step 0, an option that starts (start_hours) draws its GPUs' idle power meanwhile.
        const double starting = t == 0 && !options.start_hours.empty() && opt.gpus[s] > 0
                                    ? menu.IdleFacilityMw(s, opt.gpus[s]) * std::min(options.start_hours[o], dt)
                                    : 0.0;
        put(row, X(t, o), (opt.facility_mw[s] - now_mw) * dt + starting);
      }
      for (int k = 0; track && k < K1; ++k) put(row, H(t, k), held_mw[k * S + s] * dt);
      if (holds) put(row, A(t), now_mw * dt);
      put(row, Y(t, s, 0), -1);
      put(row, Y(t, s, 2), -1);
      put(row, Y(t, s, 3), -1);
      // Renewables: r + c <= available; direct use only while the site runs:
      // r <= available x (fraction of the interval the site runs).
      const double avail = std::max(0.0, outlook[s].renewable_mw[t]) * dt;
      row = glp_add_rows(P, 1);
      glp_set_row_bnds(P, row, GLP_UP, 0.0, avail);
      put(row, Y(t, s, 0), 1);
      put(row, Y(t, s, 1), 1);
      // Direct use, and battery discharge, only while the site has load: while the job runs there,
      // or is paused holding an allocation there; not while it runs at other sites only or holds
      // an allocation elsewhere (the site then draws nothing). col <= per_interval x that share:
      // sum_{o at s} x + sum_{k holding at s} h; untracked, holding now: a - sum_{o not at s} x.
      auto only_under_load = [&](int col, double per_interval) {
        row = glp_add_rows(P, 1);
        glp_set_row_bnds(P, row, GLP_UP, 0.0, 0.0);
        put(row, col, 1);
        if (now_mw > 0) put(row, A(t), -per_interval);
        for (int o = 0; o < O; ++o) {
          const bool here = menu.option(o).gpus[s] > 0;
          if (now_mw > 0 && !here) put(row, X(t, o), per_interval);
          if (now_mw <= 0 && here) put(row, X(t, o), -per_interval);
        }
        for (int k = 0; track && k < K1; ++k)
          if (held_mw[k * S + s] > 0) put(row, H(t, k), -per_interval);
      };
      only_under_load(Y(t, s, 0), avail);
      // Without the discharge row an interval that time-shares between sites drew every site's
      // battery at its full rate for the whole interval, a plan no executed interval (one
      // placement) delivers.
      const double dmax = b.discharge_mw * dt;
      if (b.capacity_mwh > 0 && dmax > 0) only_under_load(Y(t, s, 2), dmax);
      // State of charge: e_t - e_{t-1} - eta c + d = 0 (e_{-1} = soc0).
      row = glp_add_rows(P, 1);
      const double soc0 = t == 0 ? std::clamp(soc_mwh.size() > static_cast<size_t>(s) ? soc_mwh[s] : 0.0,
                                              b.min_soc * b.capacity_mwh, b.capacity_mwh)
                                 : 0.0;
      glp_set_row_bnds(P, row, GLP_FX, soc0, soc0);
      put(row, Y(t, s, 4), 1);
      if (t > 0) put(row, Y(t - 1, s, 4), -1);
      put(row, Y(t, s, 1), -b.round_trip_efficiency);
      put(row, Y(t, s, 2), 1);
    }
  }
  if (!options.enter_hours.empty() && T > 1) {
    // Over the next day (`regrouped` intervals), option entries: n[t][o] >= x[t][o] - x[t-1][o],
    // each charged regroup_hours' work and idle energy: a resize, and the regroup part of every
    // move and resume (a placement's entry is also an option's). Without them a resize was free at
    // t >= 1 and charged at step 0 only, so plans put resizes off (on grid-only-autumn 2022-10-31,
    // two more hours at 512 GPUs on a rising grid). Beyond the day, as the held shares, entries to
    // a placement alone are charged, in full.
    const double rh = std::min(std::max(0.0, options.regroup_hours), dt);
    const int regrouped = rh > 0 ? day_rows : 1;
    if (regrouped > 1) {
      const int first_n = glp_add_cols(P, (regrouped - 1) * O);
      for (int t = 1; t < regrouped; ++t)
        for (int o = 0; o < O; ++o) {
          const int n = first_n + (t - 1) * O + o;
          const auto& opt = menu.option(o);
          glp_set_col_bnds(P, n, GLP_DB, 0.0, 1.0);
          for (int s : opt.sites) put(demand_row[t * S + s], n, menu.IdleFacilityMw(s, opt.gpus[s]) * rh);
          put(1, n, -opt.steps_per_hour * rh);  // row 1 is the work row
          row = glp_add_rows(P, 1);
          glp_set_row_bnds(P, row, GLP_LO, 0.0, 0.0);
          put(row, n, 1.0);
          put(row, X(t, o), -1.0);
          put(row, X(t - 1, o), 1.0);
        }
    }
    // Entries to a placement: e[t][g] >= z[t][g] - z[t-1][g], z the share of the interval placement
    // g runs, each charged the work and the idle energy (in its sites' demand) of the cheapest entry
    // among g's options; where option entries are charged too, less their regroup.
    std::vector<double> loss(2 * G, 1e300), idle_mwh(2 * G * S, 1e300);  // [rest? G: 0 + g]
    for (int o = 0; o < O; ++o) {
      const int g = menu.placement_of(o);
      const auto& opt = menu.option(o);
      const double h = std::min(options.enter_hours[o], dt);
      for (int rest = 0; rest < 2; ++rest) {
        const double hh = rest ? std::max(0.0, h - rh) : h;
        const int k = rest * G + g;
        loss[k] = std::min(loss[k], opt.steps_per_hour * hh);
        for (int s : opt.sites) idle_mwh[k * S + s] = std::min(idle_mwh[k * S + s], menu.IdleFacilityMw(s, opt.gpus[s]) * hh);
      }
    }
    const int first_e = glp_add_cols(P, (T - 1) * G);
    for (int t = 1; t < T; ++t)
      for (int g = 0; g < G; ++g) {
        const int e = first_e + (t - 1) * G + g;
        const int k = (t < regrouped ? G : 0) + g;
        glp_set_col_bnds(P, e, GLP_DB, 0.0, 1.0);
        for (int s : groups[g]) put(demand_row[t * S + s], e, idle_mwh[k * S + s]);
        put(1, e, -loss[k]);  // row 1 is the work row
        row = glp_add_rows(P, 1);
        glp_set_row_bnds(P, row, GLP_LO, 0.0, 0.0);
        put(row, e, 1.0);
        for (int o = 0; o < O; ++o)
          if (menu.placement_of(o) == g) {
            put(row, X(t, o), -1.0);
            put(row, X(t - 1, o), 1.0);
          }
      }
  }
  if (lp_options.one_placement_per_interval) {
    const int first = glp_add_cols(P, T * G);
    if (lp_options.charge_switches && T > 1) {
      // Smallest work lost when a group starts: restart plus the fastest transfer into it, at the
      // group's slowest rate.
      std::vector<double> loss(G, 0);
      for (int g = 0; g < G; ++g) {
        double rate = 1e300;
        for (int o = 0; o < O; ++o)
          if (menu.placement_of(o) == g) rate = std::min(rate, menu.option(o).steps_per_hour);
        double secs = menu.settings().restart_seconds;
        loss[g] = rate * secs / 3600.0;
      }
      const int sw = glp_add_cols(P, (T - 1) * G);
      for (int t = 1; t < T; ++t)
        for (int g = 0; g < G; ++g) {
          const int m = sw + (t - 1) * G + g;
          glp_set_col_bnds(P, m, GLP_DB, 0.0, 1.0);
          put(1, m, -loss[g]);  // row 1 is the work row
          row = glp_add_rows(P, 1);  // m >= z[t] - z[t-1]
          glp_set_row_bnds(P, row, GLP_LO, 0.0, 0.0);
          put(row, m, 1.0);
          put(row, first + t * G + g, -1.0);
          put(row, first + (t - 1) * G + g, 1.0);
        }
    }
    for (int t = 0; t < T; ++t) {
      row = glp_add_rows(P, 1);
      glp_set_row_bnds(P, row, GLP_UP, 0.0, 1.0);
      for (int g = 0; g < G; ++g) {
        const int z = first + t * G + g;
        glp_set_col_kind(P, z, GLP_BV);
        put(row, z, 1.0);
      }
      for (int o = 0; o < O; ++o) {
        row = glp_add_rows(P, 1);  // x[t][o] <= z[t][group(o)]
        glp_set_row_bnds(P, row, GLP_UP, 0.0, 0.0);
        put(row, X(t, o), 1.0);
        put(row, first + t * G + menu.placement_of(o), -1.0);
      }
    }
  }
  // Integral steps. One: x[0][o] binary. More: each runs one option chosen by a binary y[t][o] >=
  // x[t][o], for its whole interval unless no later one is chosen (the job's last interval ends when
  // its work is done, which the executors book as such).
  const int K = std::min(T, lp_options.integral_steps);
  const int first_y = K > 1 ? glp_add_cols(P, K * O) : 0;
  auto Yc = [&](int t, int o) { return first_y + t * O + o; };
  if (K == 1)
    for (int o = 0; o < O; ++o) glp_set_col_kind(P, X(0, o), GLP_BV);
  if (K > 1) {
    for (int t = 0; t < K; ++t) {
      const int one = glp_add_rows(P, 1);  // sum_o y[t][o] <= 1
      glp_set_row_bnds(P, one, GLP_UP, 0.0, 1.0);
      for (int o = 0; o < O; ++o) {
        glp_set_col_kind(P, Yc(t, o), GLP_BV);
        put(one, Yc(t, o), 1.0);
        row = glp_add_rows(P, 1);  // x[t][o] - y[t][o] <= 0
        glp_set_row_bnds(P, row, GLP_UP, 0.0, 0.0);
        put(row, X(t, o), 1.0);
        put(row, Yc(t, o), -1.0);
      }
      for (int later = t + 1; later < K; ++later) {
        row = glp_add_rows(P, 1);  // sum_o (y[t][o] - x[t][o]) + sum_o y[later][o] <= 1
        glp_set_row_bnds(P, row, GLP_UP, 0.0, 1.0);
        for (int o = 0; o < O; ++o) {
          put(row, Yc(t, o), 1.0);
          put(row, X(t, o), -1.0);
          put(row, Yc(later, o), 1.0);
        }
      }
    }
  }
  glp_load_matrix(P, static_cast<int>(ia.size()) - 1, ia.data(), ja.data(), ar.data());
  const int rc = SolveRelaxation(P);
  if (rc != 0 || glp_get_status(P) != GLP_OPT) {
    return Internal("lp: GLPK did not find the optimum (code " + std::to_string(rc) + ", status " +
                    std::to_string(glp_get_status(P)) + ")");
  }
  // The energy the sites draw in a solution (directly from renewables, from the battery, from the
  // grid), to take the tie-break out of the reported carbon.
  auto drawn_mwh = [&](bool from_mip) {
    double mwh = 0;
    if (energy_w > 0)
      for (int t = 0; t < T; ++t)
        for (int s = 0; s < S; ++s)
          for (int k : {0, 2, 3}) mwh += from_mip ? glp_mip_col_val(P, Y(t, s, k)) : glp_get_col_prim(P, Y(t, s, k));
    return mwh;
  };
  // ... and the earliness tie-break.
  auto lateness = [&](bool from_mip) {
    double kg = 0;
    if (early_w > 0)
      for (int t = 1; t < T; ++t)
        for (int o = 0; o < O; ++o)
          kg += early_coef(t, o) * (from_mip ? glp_mip_col_val(P, X(t, o)) : glp_get_col_prim(P, X(t, o)));
    return kg;
  };
  auto tie_breaks = [&](bool from_mip) { return energy_w * drawn_mwh(from_mip) + lateness(from_mip); };
  out.carbon_kg = glp_get_obj_val(P) - tie_breaks(false);
  out.bound_kg = glp_get_obj_val(P);
  bool mip = lp_options.one_placement_per_interval || lp_options.integral_steps > 0;
  if (mip) {
    glp_iocp iocp;
    glp_init_iocp(&iocp);
    iocp.msg_lev = GLP_MSG_OFF;
    iocp.mip_gap = 0.0;
    if (K > 1) {
      // Whole plans of integral steps: mixed-integer rounding cuts and pseudocost branching reach
      // the optimum in about a third of the time of GLPK's defaults (measured on the default's
      // table date, the same plans).
      iocp.mir_cuts = GLP_ON;
      iocp.br_tech = GLP_BR_PCH;
    }
    NodeBudget budget{lp_options.node_limit, 0};
    iocp.cb_func = CountNodes;
    iocp.cb_info = &budget;
    int mrc = glp_intopt(P, &iocp);
    out.nodes = budget.used;
    int st = glp_mip_status(P);
    out.optimal = mrc == 0 && st == GLP_OPT;
    const bool found = st == GLP_OPT || st == GLP_FEAS;
    if (out.optimal) {
      out.bound_kg = glp_mip_obj_val(P);
    } else if (budget.stopped) {
      // Every schedule lies in an open subtree or is no better than the incumbent.
      out.bound_kg = std::max(out.bound_kg, found ? std::min(budget.open_bound, glp_mip_obj_val(P)) : budget.open_bound);
    }
    if (!found) {
      // No integer solution found in time: keep the LP relaxation's values (still a valid bound).
      mip = false;
      out.optimal = false;
    } else {
      out.carbon_kg = glp_mip_obj_val(P) - tie_breaks(true);
    }
  }
  out.fraction.assign(T, std::vector<double>(O, 0.0));
  // Where an option was chosen (y), the interval runs it, even if only for the work left.
  for (int t = 0; t < T; ++t)
    for (int o = 0; o < O; ++o)
      out.fraction[t][o] = !mip ? glp_get_col_prim(P, X(t, o)) : t < K && K > 1 ? glp_mip_col_val(P, Yc(t, o))
                                                                                : glp_mip_col_val(P, X(t, o));
  return out;
}

}  // namespace gt
