// Simulator and planner speed (issue: planner, policies and the whole-job simulator).
//
// Prints one JSON line per measurement: {"bench", "size", "value", "unit", "baseline",
// "baseline_value", "ratio"}. Growth measurements use the smaller size measured in the same run as
// the baseline; absolute targets (a year for 10 sites in under 0.5 s, one decision for 100 sites /
// 100,000 GPUs / 96 layers in under 50 ms) also print the target and value / target.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "common/config.h"
#include "coordinator/policy.h"
#include "coordinator/simulator.h"

using namespace gt;
using Clock = std::chrono::steady_clock;

namespace {

const char* kRegions[] = {"CISO", "ERCO", "MISO", "PJM", "BPAT"};

// n sites cycling over the bundled regions, `gpus` GPUs in all, a model of `layers` blocks.
Config MakeConfig(int n, int gpus, int layers, double deadline_hours) {
  Config c;
  c.name = "bench";
  c.interval_seconds = 3600;
  const std::string data = std::string(GREENTRAIN_SOURCE_DIR) + "/data/eia930-2022/";
  for (int s = 0; s < n; ++s) {
    SiteConfig site;
    site.name = "site" + std::to_string(s);
    site.gpus = gpus / n;
    site.pue = 1.1 + 0.01 * (s % 5);
    std::string file = data + kRegions[s % 5] + "_2022.csv";
    site.carbon = {file, "auto", "avg_CI"};
    site.wind_mw = 0.1 * site.gpus / 256;
    site.wind = TraceRef{file, "auto", "WND"};
    if (s % 5 != 4) {
      site.solar_mw = 0.1 * site.gpus / 256;
      site.solar = TraceRef{file, "auto", "SUN"};
    }
    site.battery.capacity_mwh = 0.2;
    site.battery.charge_mw = site.battery.discharge_mw = 0.05;
    c.sites.push_back(site);
    if (s > 0) c.links.push_back({"site" + std::to_string(s - 1), site.name, 10, 20});
  }
  c.model.name = "gpt";
  c.model.layers = layers;
  c.model.hidden = 4096;
  c.model.heads = 32;
  c.model.seq_len = 2048;
  c.model.micro_batch = 1;
  c.model.global_batch = 1024;
  c.job.start = 1641600000;  // 2022-01-08: a week of history for the forecasters
  c.job.deadline_hours = deadline_hours;
  c.sim_end = c.job.start + static_cast<int64_t>(deadline_hours * 3600);
  return c;
}

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

void Line(const std::string& bench, const std::string& size, double value, const char* unit,
          const std::string& baseline, double baseline_value) {
  std::printf("{\"bench\": \"%s\", \"size\": \"%s\", \"value\": %.6g, \"unit\": \"%s\", \"baseline\": \"%s\", "
              "\"baseline_value\": %.6g, \"ratio\": %.4g}\n",
              bench.c_str(), size.c_str(), value, unit, baseline.c_str(), baseline_value,
              baseline_value > 0 ? value / baseline_value : 0.0);
  std::fflush(stdout);
}

// Seconds to simulate the whole job under `policy` (the menu and supply are built outside the
// timed region; the best of `reps` runs). `hours`: the intervals simulated; `kg`: the job's grid carbon
// and `met`: whether it met its deadline, so that a faster plan is seen not to be a worse one.
double TimeSimulation(const Config& c, const std::string& policy, int reps, double* hours, double* kg, bool* met) {
  auto sim = Simulator::FromConfig(c);
  if (!sim.ok()) {
    std::fprintf(stderr, "bench_sim: %s\n", sim.status().ToString().c_str());
    std::exit(1);
  }
  auto p = MakePolicy(policy).value();
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    auto res = sim->Run(*p, "blend");
    auto t1 = Clock::now();
    if (!res.ok()) std::exit(1);
    *hours = static_cast<double>(res->timeline.size());
    *kg = res->totals.carbon_kg;
    *met = res->deadline_met;
    best = std::min(best, Seconds(t0, t1));
  }
  return best;
}

// Median seconds of one Decide() for the greentrain policy over a week-long outlook.
double TimeDecision(const Config& c, double* menu_build_seconds, int* options) {
  auto t0 = Clock::now();
  auto menu = OptionMenu::Build(c);
  auto t1 = Clock::now();
  if (!menu.ok()) {
    std::fprintf(stderr, "bench_sim: %s\n", menu.status().ToString().c_str());
    std::exit(1);
  }
  *menu_build_seconds = Seconds(t0, t1);
  *options = menu->size();
  const size_t horizon = 168;
  PolicyInput in;
  in.config = &c;
  in.menu = &*menu;
  in.interval_hours = 1;
  in.work_total_steps = in.work_remaining_steps = menu->option(menu->fastest()).steps_per_hour * 400;
  in.hours_to_deadline = 24 * 30;
  in.outlook.resize(c.sites.size());
  in.battery_soc_mwh.assign(c.sites.size(), 0.1);
  for (size_t s = 0; s < c.sites.size(); ++s)
    for (size_t h = 0; h < horizon; ++h) {
      in.outlook[s].carbon_g_per_kwh.push_back(200 + 100 * ((h * 7 + s * 13) % 11));
      in.outlook[s].renewable_mw.push_back(0.05 * ((h + s) % 24 < 12));
    }
  auto policy = MakePolicy("greentrain").value();
  std::vector<double> times;
  for (int r = 0; r < 7; ++r) {
    auto a = Clock::now();
    Plan p = policy->Decide(in);
    auto b = Clock::now();
    if (p.busy_gpus.size() != c.sites.size()) std::exit(1);
    times.push_back(Seconds(a, b));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main() {
  // A year of hourly intervals, 10 sites: target < 0.5 s (the planner issue's). Baseline: the same simulation with the
  // carbon-agnostic policy (no planning), measured in this run; each the best of three runs.
  {
    Config c = MakeConfig(10, 10 * 512, 32, 8760 - 24 * 8);
    auto menu = OptionMenu::Build(c).value();
    // Work for half the year at full speed, so the policy plans all year.
    c.job.steps = menu.option(menu.fastest()).steps_per_hour * 4000;
    double hours = 0, h2 = 0, kg = 0, kg2 = 0;
    bool met = false, met2 = false;
    double agnostic = TimeSimulation(c, "carbon-agnostic", 3, &h2, &kg2, &met2);
    double greentrain = TimeSimulation(c, "greentrain", 3, &hours, &kg, &met);
    if (!met || !met2) {
      std::fprintf(stderr, "bench_sim: the year's job missed its deadline (greentrain: %s, carbon-agnostic: %s)\n",
                   met ? "met" : "missed", met2 ? "met" : "missed");
      return 1;
    }
    Line("sim_year_10_sites_greentrain", std::to_string(static_cast<int>(hours)) + " intervals", greentrain, "s",
         "carbon-agnostic (" + std::to_string(static_cast<int>(h2)) + " intervals)", agnostic);
    Line("sim_year_10_sites_greentrain_vs_target", "10 sites", greentrain, "s", "target", 0.5);
    Line("sim_year_10_sites_greentrain_carbon", "10 sites", kg, "kg", "carbon-agnostic", kg2);
  }
  // One planning decision at 100 sites / 100,000 GPUs / 96 layers: target < 50 ms; growth when
  // sites, GPUs and layers double, against the smaller size measured here.
  struct Size {
    int sites, gpus, layers;
  };
  auto label = [](const Size& s) {
    return std::to_string(s.sites) + " sites/" + std::to_string(s.gpus) + " GPUs/" + std::to_string(s.layers) + " layers";
  };
  const Size base{25, 25000, 48};
  double base_menu = 0;
  int base_opts = 0;
  const double base_decide = TimeDecision(MakeConfig(base.sites, base.gpus, base.layers, 24 * 60), &base_menu, &base_opts);
  Line("decision", label(base) + " (" + std::to_string(base_opts) + " options)", base_decide, "s", label(base), base_decide);
  for (const Size& s : {Size{50, 25000, 48}, Size{25, 50000, 48}, Size{25, 25000, 96}, Size{100, 100000, 96}}) {
    double menu_s = 0;
    int opts = 0;
    double d = TimeDecision(MakeConfig(s.sites, s.gpus, s.layers, 24 * 60), &menu_s, &opts);
    Line("decision", label(s) + " (" + std::to_string(opts) + " options)", d, "s", label(base), base_decide);
    Line("menu_build", label(s), menu_s, "s", label(base), base_menu);
    if (s.sites == 100) Line("decision_vs_target", label(s), d, "s", "target", 0.050);
  }
  return 0;
}
