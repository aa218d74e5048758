// The least-carbon schedule as a linear program with battery dynamics (solved by GLPK).
//
// Variables per outlook step t: x[t][o] in [0, 1], the fraction of the interval spent running menu
// option o (sum over o <= 1, the rest paused), and per site s: renewable used directly, battery
// charge and discharge, grid import and state of charge. Constraints: the work is done, each site's
// demand is met by renewables + battery + grid (renewables reach the load only during the fraction
// of the interval the site runs; the rest of the interval can charge the battery), charge only from
// renewable surplus within charge_mw, discharge within discharge_mw over that same fraction (a
// battery serves load only while its site has some), state of charge within [min_soc, 1] x
// capacity with round-trip losses on the way in. With an allocation held while paused
// (ScheduleOptions::paused_mw; pauses_hold, also before the job holds one), a non-increasing
// share a[t] of each interval the job is still under way: running only while under way, the idle
// draw charged for the rest of it, a[0] = 1, and over the next day a[t] at least the share of the
// work the intervals before t leave (a job with work left is under way for the whole interval).
// Over that day a pause holds the allocation the job last ran (of its placement group, at the
// group's smallest option's idle draw), or before any run the one held now; later, the one held
// now. A site holding idle GPUs then has load while the job runs there or is paused holding them,
// not while it runs or holds elsewhere, and so do its renewables and battery.
// Objective: grid MWh x intensity, plus the switch carbon of options at t = 0 (and the tie-breaks of
// LpOptions, which `carbon_kg` excludes).
//
// It is the exact optimum of the fractional relaxation of the simulator's problem (the simulator
// dispatches each phase of an interval separately, so its runs are feasible points here; no
// migration, checkpoint or idle energy except the switch costs given), so with the true supply and no switch
// costs its objective is a proven lower bound on the grid carbon of any schedule meeting the
// deadline. Pure function; thread-safe (GLPK problem objects are per call).
#pragma once

#include <vector>

#include "common/status.h"
#include "coordinator/menu.h"
#include "coordinator/policy.h"

namespace gt {

struct LpSchedule {
  std::vector<std::vector<double>> fraction;  // [t][o]
  double carbon_kg = 0;
  bool feasible = true;  // false: the work cannot be done within the outlook
  bool optimal = true;   // false: the MIP stopped at its node limit (carbon_kg is not a bound)
  int64_t nodes = 0;     // branch-and-bound subproblems the MIP explored
  // A proven lower bound on the objective of the problem solved (the MIP's, where there is one): the
  // LP relaxation's optimum, raised by branch and bound to the least bound of the subproblems left
  // open at the node limit (to the optimum when it finishes).
  double bound_kg = 0;
  // The option to run in the first interval (largest fraction), or -1 to pause when the planned
  // fraction of the first interval is below one half.
  int FirstOption() const;
  // The same rule for interval t of the outlook (-1 beyond it).
  int OptionAt(size_t t) const;
};

struct LpOptions {
  // Adds one binary per (interval, set of sites) so that each interval runs at most one placement
  // (no time-sharing between sites within an interval; levels at one placement may still mix).
  // Solved by branch and bound; `optimal` tells whether it finished within the node limit.
  bool one_placement_per_interval = false;
  // Branch and bound stops after this many subproblems: a count, not a wall-clock limit, so that the
  // same inputs give the same plan on any machine and under any load.
  int64_t node_limit = 20000;
  // With one placement per interval: entering a placement in interval t >= 1 that did not run in
  // t - 1 (a resume or a move) loses at least this much work, per placement group, in steps
  // (a lower estimate of restart plus transfer time times the group's slowest rate).
  bool charge_switches = false;
  // The first `integral_steps` intervals each run exactly one option or pause, as the simulator and
  // the live run execute them; the later ones may mix options. 1: x[0][o] binary, so that the
  // decision a policy executes is not a rounding of a mix. More: each of those intervals runs the
  // option it chose for the whole interval, except the last one that runs (the job's last interval
  // ends when its work is done), and `fraction` holds the choices (0 or 1). Over the whole
  // outlook this is a plan that promises only work executed intervals do (a mix promises work that
  // one option per interval does not deliver; pushed from replan to replan, the shortfall lands on
  // the deadline guard's fastest option).
  int integral_steps = 0;
  // A tie-break: every MWh the sites draw (renewable used directly, battery discharge or grid) adds
  // this many kg to the objective besides its grid carbon, so that among schedules of (nearly) equal
  // carbon the one that draws least energy wins, keeping battery charge and renewable headroom for
  // later. Without it, where renewables cover every plan the LP is indifferent, and it was seen to
  // run an option that draws a third more power for the same work, draining the battery a later
  // shortfall then needed. `carbon_kg` excludes it; `bound_kg` bounds the objective with it (0, the
  // default, for a bound on carbon alone).
  double energy_kg_per_mwh = 0;
  // A tie-break: work done at outlook step t adds earliness_kg x (t / steps) x (its share of the
  // work) to the objective, so that among schedules of (nearly) equal carbon the one that does its
  // work soonest wins. `carbon_kg` excludes it; `bound_kg` bounds the objective with it (0, the
  // default, for a bound on carbon alone).
  double earliness_kg = 0;
};

Result<LpSchedule> SolveScheduleLp(const OptionMenu& menu, const std::vector<SiteOutlook>& outlook,
                                   const std::vector<double>& soc_mwh, double interval_hours, double work,
                                   size_t steps, const ScheduleOptions& options, const LpOptions& lp = {});

}  // namespace gt
