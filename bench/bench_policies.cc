// Policy quality over many start dates (issue: planner, policies and the whole-job simulator).
//
// For each configuration given (default: the bundled default and launch/configs/scenarios/*.json)
// the job is started at `starts` dates a week apart from the configured start, and every policy is
// simulated. One JSON line per (configuration, policy): mean grid carbon, the mean and worst ratio
// to the oracle measured in the same run, the share of runs meeting the deadline, and the number of
// runs in which the policy used less grid carbon than every baseline (greentrain only: in all runs,
// and in the runs where the oracle needs more than 1 kg, the target). Then one line with the
// best single schedule the oracle chooses among (the least mean over the starts) beside the
// oracle's mean, which takes the least of them per start.
// With --per-run, also one line per (configuration, start) with every policy's grid carbon and
// every oracle candidate's (-1: missed the deadline). With
// --forecaster NAME every forecast-driven policy plans on that forecaster instead of the config's
// (`oracle`: perfect forecasts, to tell the planner's share of a gap from the forecasts').
//   bench_policies [--starts N] [--per-run] [--forecaster NAME] [CONFIG...]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "common/config.h"
#include "coordinator/policy.h"
#include "coordinator/simulator.h"

using namespace gt;

int main(int argc, char** argv) {
  int starts = 12;
  bool per_run = false;
  std::string forecaster;  // empty: each config's policy.forecaster
  std::vector<std::string> configs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--starts" && i + 1 < argc) starts = std::atoi(argv[++i]);
    else if (a == "--per-run") per_run = true;
    else if (a == "--forecaster" && i + 1 < argc) forecaster = argv[++i];
    else configs.push_back(a);
  }
  if (configs.empty()) {
    configs.push_back(DefaultConfigPath());
    const std::string dir = std::string(GREENTRAIN_SOURCE_DIR) + "/launch/configs/scenarios";
    std::vector<std::string> more;
    for (const auto& e : std::filesystem::directory_iterator(dir))
      if (e.path().extension() == ".json") more.push_back(e.path().string());
    std::sort(more.begin(), more.end());
    configs.insert(configs.end(), more.begin(), more.end());
  }
  const std::vector<std::string> baselines = {"carbon-agnostic", "suspend-resume", "static-best-region", "carbonscaler"};
  for (const auto& path : configs) {
    auto base = LoadConfig(path);
    if (!base.ok()) {
      std::fprintf(stderr, "bench_policies: %s\n", base.status().ToString().c_str());
      return 1;
    }
    struct Acc {
      double carbon = 0, ratio_sum = 0, ratio_worst = 0, met = 0, wins = 0, runs = 0, excess_kg = 0;
      double oracle_carbon = 0, positive_runs = 0, positive_wins = 0;
    };
    std::map<std::string, Acc> acc;
    // The oracle's candidates by what they are: total carbon over the starts, starts counted, and
    // in the order first seen (the simulator's order).
    std::map<std::string, std::pair<double, int>> cand;
    std::vector<std::string> cand_order;
    const std::string fc = forecaster.empty() ? base->policy.forecaster : forecaster;
    for (int k = 0; k < starts; ++k) {
      Config c = *base;
      const int64_t shift = static_cast<int64_t>(k) * 7 * 86400;
      c.job.start += shift;
      c.sim_end += shift;
      auto sim = Simulator::FromConfig(c);
      if (!sim.ok()) {
        std::fprintf(stderr, "bench_policies: %s (start +%d weeks): %s\n", path.c_str(), k, sim.status().ToString().c_str());
        break;
      }
      auto runs = sim->RunPolicies(PolicyNames(), fc);
      if (!runs.ok()) {
        std::fprintf(stderr, "bench_policies: %s: %s\n", path.c_str(), runs.status().ToString().c_str());
        return 1;
      }
      std::map<std::string, SimResult> res;
      for (auto& r : *runs) res[r.policy] = std::move(r);
      const double oracle = res["oracle"].totals.carbon_kg;
      double best_baseline = 1e300;
      for (const auto& b : baselines) best_baseline = std::min(best_baseline, res[b].totals.carbon_kg);
      if (per_run) {
        std::printf("{\"bench\": \"policy_run\", \"config\": \"%s\", \"forecaster\": \"%s\", \"start_week\": %d",
                    base->name.c_str(), fc.c_str(), k);
        for (const auto& name : PolicyNames()) std::printf(", \"%s\": %.2f", name.c_str(), res[name].totals.carbon_kg);
        std::printf(", \"oracle_candidates\": {");
        const auto& cs = res["oracle"].candidates;
        for (size_t i = 0; i < cs.size(); ++i)
          std::printf("%s\"%s\": %.2f", i ? ", " : "", cs[i].what.c_str(), cs[i].deadline_met ? cs[i].carbon_kg : -1.0);
        std::printf("}}\n");
        std::fflush(stdout);
      }
      for (const auto& c : res["oracle"].candidates) {
        auto [it, fresh] = cand.try_emplace(c.what, 0.0, 0);
        if (fresh) cand_order.push_back(c.what);
        // A schedule that misses the deadline is no answer: its start counts at infinite carbon.
        it->second.first += c.deadline_met ? c.carbon_kg : std::numeric_limits<double>::infinity();
        it->second.second += 1;
      }
      for (auto& [name, r] : res) {
        Acc& a = acc[name];
        a.runs += 1;
        a.carbon += r.totals.carbon_kg;
        // Ratio to the oracle; where the oracle is (nearly) carbon-free, count the excess instead.
        const double ratio = oracle > 1.0 ? r.totals.carbon_kg / oracle : 1.0;
        a.excess_kg += r.totals.carbon_kg - oracle;
        a.ratio_sum += ratio;
        a.ratio_worst = std::max(a.ratio_worst, ratio);
        a.met += r.deadline_met;
        a.oracle_carbon += oracle;
        const bool wins = r.totals.carbon_kg <= best_baseline + 1e-9;
        if (name == "greentrain") {
          a.wins += wins;
          a.positive_runs += oracle > 1.0;
          a.positive_wins += oracle > 1.0 && wins;
        }
      }
    }
    for (const auto& name : PolicyNames()) {
      const Acc& a = acc[name];
      if (a.runs == 0) continue;
      std::printf("{\"bench\": \"policy_quality\", \"config\": \"%s\", \"policy\": \"%s\", \"runs\": %d, "
                  "\"mean_grid_carbon_kg\": %.1f, \"value\": %.4f, \"unit\": \"mean carbon / oracle\", "
                  "\"baseline\": \"oracle\", \"baseline_value\": 1, \"ratio\": %.4f, \"worst_ratio\": %.4f, "
                  "\"mean_excess_kg\": %.1f, \"deadline_met_share\": %.3f, \"forecaster\": \"%s\"",
                  base->name.c_str(), name.c_str(), static_cast<int>(a.runs), a.carbon / a.runs, a.ratio_sum / a.runs,
                  a.ratio_sum / a.runs, a.ratio_worst, a.excess_kg / a.runs, a.met / a.runs,
                  fc.c_str());
      std::printf(", \"ratio_of_means\": %.4f", a.oracle_carbon > 0 ? a.carbon / a.oracle_carbon : 0.0);
      if (name == "greentrain")
        std::printf(", \"runs_beating_every_baseline\": %d, \"runs_oracle_above_1kg\": %d, "
                    "\"of_those_beating_every_baseline\": %d",
                    static_cast<int>(a.wins), static_cast<int>(a.positive_runs), static_cast<int>(a.positive_wins));
      std::printf("}\n");
      std::fflush(stdout);
    }
    // The best single schedule-maker against the oracle, which takes the least of them per start:
    // where outcomes spread widely, the best of many beats every one of them on average.
    const Acc& o = acc["oracle"];
    std::string best;
    for (const auto& w : cand_order)
      if (cand[w].second == o.runs && (best.empty() || cand[w].first < cand[best].first)) best = w;
    if (!best.empty() && o.runs > 0) {
      const double mean = cand[best].first / o.runs, oracle_mean = o.carbon / o.runs;
      std::printf("{\"bench\": \"oracle_best_single_candidate\", \"config\": \"%s\", \"runs\": %d, \"candidate\": \"%s\", "
                  "\"value\": %.1f, \"unit\": \"mean grid carbon kg\", \"baseline\": \"oracle (least per start)\", "
                  "\"baseline_value\": %.1f, \"ratio\": %.4f, \"candidates\": %zu, \"forecaster\": \"%s\"}\n",
                  base->name.c_str(), static_cast<int>(o.runs), best.c_str(), mean, oracle_mean,
                  oracle_mean > 0 ? mean / oracle_mean : 0.0, cand_order.size(), fc.c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
