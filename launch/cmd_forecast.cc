// `greentrain forecast [CONFIG] [--horizon H] [--stride S]`: for each site and signal (on-site
// renewable MW when the site has wind or solar; grid carbon intensity), the error of every
// forecaster at horizons 1, 2, 3, 6, 12, 24 (those <= H, and H) over the whole span of the site's
// trace files (rolling origin after a 7-day warm-up), and the best non-oracle forecaster.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "energy/forecast.h"
#include "energy/power.h"
#include "launch/command.h"

namespace gt::cli {
namespace {

// The span [start, end) covered by every trace the site's supply is built from.
Result<std::pair<UnixSeconds, UnixSeconds>> TraceSpan(const SiteConfig& site) {
  std::vector<std::pair<const char*, const TraceRef*>> refs{{"carbon", &site.carbon}};
  std::vector<Signal> sigs{Signal::kCarbon};
  if (site.wind_mw > 0 && site.wind) { refs.push_back({"wind", &*site.wind}); sigs.push_back(Signal::kWind); }
  if (site.solar_mw > 0 && site.solar) { refs.push_back({"solar", &*site.solar}); sigs.push_back(Signal::kSolar); }
  if (site.price) { refs.push_back({"price", &*site.price}); sigs.push_back(Signal::kPrice); }
  UnixSeconds start = std::numeric_limits<UnixSeconds>::min(), end = std::numeric_limits<UnixSeconds>::max();
  for (size_t i = 0; i < refs.size(); ++i) {
    auto s = ReadSeries(refs[i].second->file, refs[i].second->format, refs[i].second->column, sigs[i]);
    if (!s.ok()) return s.status().WithContext("site '" + site.name + "': " + refs[i].first + " trace");
    start = std::max(start, s->start);
    end = std::min(end, s->end());
  }
  if (end <= start)
    return InvalidArgument("site '" + site.name + "': its traces do not overlap in time");
  return std::make_pair(start, end);
}

double Mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

void PrintSignal(const std::string& title, const std::vector<double>& truth, size_t horizon, size_t warmup,
                 size_t stride, size_t steps_per_day, const std::vector<size_t>& shown) {
  std::printf("  %s\n", title.c_str());
  std::printf("    %-15s %-5s", "forecaster", "");
  for (size_t h : shown) std::printf(" %9s", ("h=" + std::to_string(h)).c_str());
  std::printf(" %9s\n", ("mean 1-" + std::to_string(horizon)).c_str());
  std::string best;
  double best_mae = 0, sn_mae = 0;
  for (const std::string& name : ForecasterNames()) {
    auto f = MakeForecaster(name, &truth, steps_per_day);
    if (!f.ok()) { std::printf("    %s: %s\n", name.c_str(), f.status().ToString().c_str()); continue; }
    ForecastError e = EvaluateForecaster(**f, truth, horizon, warmup, stride);
    std::printf("    %-15s %-5s", name.c_str(), "MAE");
    for (size_t h : shown) std::printf(" %9.4g", e.mae[h - 1]);
    std::printf(" %9.4g\n", Mean(e.mae));
    std::printf("    %-15s %-5s", "", "nMAE");
    for (size_t h : shown) std::printf(" %8.1f%%", 100 * e.nmae[h - 1]);
    std::printf(" %8.1f%%\n", 100 * Mean(e.nmae));
    const double m = Mean(e.mae);
    if (name == "seasonal-naive") sn_mae = m;
    if (name != "oracle" && (best.empty() || m < best_mae)) { best = name; best_mae = m; }
  }
  std::printf("    best (lowest mean MAE, oracle aside): %s", best.c_str());
  if (best != "seasonal-naive" && sn_mae > 0) std::printf(", %.1f%% below seasonal-naive", 100 * (1 - best_mae / sn_mae));
  std::printf("\n");
}

struct ForecastArgs {
  std::string config;
  long horizon = 24, stride = 1;
};

int RunForecast(const ForecastArgs& args) {
  const auto t0 = std::chrono::steady_clock::now();
  const long horizon = args.horizon, stride = args.stride;
  auto cfg = LoadConfigOrDefault(args.config);
  if (!cfg.ok()) return Fail("forecast", cfg.status());

  const int64_t step = cfg->interval_seconds;
  const size_t steps_per_day = static_cast<size_t>(std::max<int64_t>(1, (86400 + step / 2) / step));
  const size_t warmup = 7 * steps_per_day;
  const size_t H = static_cast<size_t>(horizon);
  std::vector<size_t> shown;
  for (size_t h : {1, 2, 3, 6, 12, 24})
    if (h <= H) shown.push_back(h);
  if (shown.empty() || shown.back() != H) shown.push_back(H);

  std::printf("%s: forecast error by horizon (steps of %g h), rolling origin over each site's traces after a "
              "%zu-step warm-up%s\n",
              cfg->path.c_str(), static_cast<double>(step) / 3600, warmup,
              stride > 1 ? (", every " + std::to_string(stride) + "th origin").c_str() : ", every origin");
  std::printf("MAE in the signal's unit; nMAE = MAE / mean |signal|\n");
  for (const SiteConfig& site : cfg->sites) {
    auto span = TraceSpan(site);
    if (!span.ok()) return Fail("forecast", span.status());
    auto sup = LoadSiteSupply(site, span->first, span->second, step);
    if (!sup.ok()) return Fail("forecast", sup.status());
    std::printf("\n%s: %zu steps from %s to %s\n", site.name.c_str(), sup->size(),
                FormatIsoTime(span->first).c_str(), FormatIsoTime(span->second).c_str());
    if (sup->size() <= warmup + 1) {
      std::printf("  (too short to evaluate: fewer than %zu steps)\n", warmup + 2);
      continue;
    }
    if (site.wind_mw + site.solar_mw > 0) {
      char title[160];
      std::snprintf(title, sizeof title, "on-site renewable MW (wind %g MW + solar %g MW nameplate)", site.wind_mw,
                    site.solar_mw);
      PrintSignal(title, sup->renewable_mw, H, warmup, stride, steps_per_day, shown);
    }
    PrintSignal("grid carbon intensity (gCO2/kWh)", sup->carbon_g_per_kwh, H, warmup, stride, steps_per_day, shown);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\n(read and evaluated in %.2f s)\n", secs);
  return 0;
}

}  // namespace

GT_REGISTER_COMMAND(forecast_cmd, "forecast",
                    "forecast error (MAE, nMAE) of each forecaster by horizon on each site's traces",
                    [](CLI::App& app) -> std::function<int()> {
                      auto a = std::make_shared<ForecastArgs>();
                      AddConfigArg(app, &a->config);
                      app.add_option("--horizon", a->horizon, "intervals ahead to score")->check(WholeNumberIn(1, 24 * 14))->capture_default_str();
                      app.add_option("--stride", a->stride, "forecast every Nth interval")->check(WholeNumberIn(1, 24 * 7))->capture_default_str();
                      return [a] { return RunForecast(*a); };
                    });

}  // namespace gt::cli
