// Forecasters: known answers on synthetic series, no look-ahead, rolling-origin evaluation, and
// "blend" against seasonal-naive on the bundled 2022 EIA-930 data.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "energy/forecast.h"
#include "energy/trace.h"

namespace gt {
namespace {

std::unique_ptr<Forecaster> Make(const std::string& name, const std::vector<double>* truth = nullptr,
                                 size_t period = 24) {
  auto f = MakeForecaster(name, truth, period);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? std::move(f).value() : nullptr;
}

std::vector<double> Sine(size_t n, size_t period, double level, double amp) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = level + amp * std::sin(2 * M_PI * static_cast<double>(i) / period);
  return v;
}

HistoryView Prefix(const std::vector<double>& v, size_t n) { return HistoryView{v.data(), n}; }

TEST(Forecasters, NamesAndFactory) {
  EXPECT_EQ(ForecasterNames(), (std::vector<std::string>{"oracle", "persistence", "seasonal-naive", "blend"}));
  std::vector<double> truth{1, 2, 3};
  for (const auto& name : ForecasterNames()) {
    auto f = MakeForecaster(name, &truth);
    ASSERT_TRUE(f.ok()) << name;
    EXPECT_EQ((*f)->name(), name);
  }
  auto bad = MakeForecaster("prophet", nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("prophet"), std::string::npos);
  EXPECT_FALSE(MakeForecaster("oracle", nullptr).ok());
  EXPECT_FALSE(MakeForecaster("blend", nullptr, 0).ok());
}

TEST(Forecasters, OracleReturnsTheTruth) {
  std::vector<double> truth = Sine(100, 24, 5, 3);
  auto f = Make("oracle", &truth);
  auto fc = f->Forecast(Prefix(truth, 40), 10);
  ASSERT_EQ(fc.size(), 10u);
  for (size_t h = 0; h < 10; ++h) EXPECT_EQ(fc[h], truth[40 + h]);
  fc = f->Forecast(Prefix(truth, 98), 5);  // past the end: the last value is held
  EXPECT_EQ(fc, (std::vector<double>{truth[98], truth[99], truth[99], truth[99], truth[99]}));
}

TEST(Forecasters, PersistenceRepeatsTheLastValue) {
  std::vector<double> x{3, 1, 4, 1, 5};
  auto fc = Make("persistence")->Forecast(Prefix(x, 5), 3);
  EXPECT_EQ(fc, (std::vector<double>{5, 5, 5}));
  EXPECT_EQ(Make("persistence")->Forecast(Prefix(x, 0), 2), (std::vector<double>{0, 0}));
}

TEST(Forecasters, SeasonalNaiveIsExactOnAPeriodicSeries) {
  std::vector<double> x = Sine(24 * 20, 24, 10, 4);
  auto f = Make("seasonal-naive");
  for (size_t n : {24u, 25u, 100u, 24u * 10 + 7}) {
    auto fc = f->Forecast(Prefix(x, n), 72);
    for (size_t h = 1; h <= 72; ++h) EXPECT_NEAR(fc[h - 1], x[n - 1 + h], 1e-12) << "n=" << n << " h=" << h;
  }
  // By hand: period 3, history 1 2 3 4 5 -> next steps repeat the last cycle 3 4 5.
  std::vector<double> y{1, 2, 3, 4, 5};
  EXPECT_EQ(Make("seasonal-naive", nullptr, 3)->Forecast(Prefix(y, 5), 5),
            (std::vector<double>{3, 4, 5, 3, 4}));
  // Shorter history than a period: observed phases repeat, unobserved ones take the last value.
  EXPECT_EQ(Make("seasonal-naive", nullptr, 4)->Forecast(Prefix(y, 2), 4), (std::vector<double>{2, 2, 1, 2}));
}

TEST(Forecasters, BlendIsExactOnAPeriodicSeries) {
  // Pure daily profile: the 7-day mean profile is the profile and the anomaly is zero.
  std::vector<double> x = Sine(24 * 30, 24, 10, 4);
  auto f = Make("blend");
  for (size_t n : {48u, 24u * 5 + 3, 24u * 8, 24u * 25 + 11}) {
    auto fc = f->Forecast(Prefix(x, n), 100);
    ASSERT_EQ(fc.size(), 100u);
    for (size_t h = 1; h <= 100; ++h) EXPECT_NEAR(fc[h - 1], 10 + 4 * std::sin(2 * M_PI * (n - 1 + h) / 24.0), 1e-9);
  }
  // A solar-like on/off profile (intermittent mode): also exact.
  std::vector<double> s(24 * 30);
  for (size_t i = 0; i < s.size(); ++i) s[i] = std::max(0.0, std::sin(2 * M_PI * (i % 24) / 24.0)) * 100;
  auto fc = f->Forecast(Prefix(s, 24 * 20 + 5), 48);
  for (size_t h = 1; h <= 48; ++h) EXPECT_NEAR(fc[h - 1], s[24 * 20 + 4 + h], 1e-9) << h;
}

TEST(Forecasters, AllExactOnAConstant) {
  std::vector<double> x(24 * 30, 42.5);
  for (const auto& name : ForecasterNames()) {
    auto f = Make(name, &x);
    for (size_t n : {1u, 5u, 30u, 24u * 9, 24u * 29}) {
      auto fc = f->Forecast(Prefix(x, n), 30);
      for (double v : fc) EXPECT_NEAR(v, 42.5, 1e-12) << name << " n=" << n;
    }
  }
}

TEST(Forecasters, BlendDecaysAnAnomalyByHand) {
  // Daily profile 100 + 10 sin, and +20 over the last 3 hours only. Blend's known answer:
  //   anomalies in the window are 0 except the last three (20, 20, 20), so the lag-1 least-squares
  //   coefficient is 800 / 800 = 1, clamped to phi = 0.99; a(now) = 20;
  //   the 7-day profile is exact except at the phases of the last 3 hours, where today's +20 is one
  //   of 7 values: + 20/7 at horizons 22, 23, 24.
  const size_t n = 24 * 20;
  std::vector<double> x = Sine(n, 24, 100, 10);
  for (size_t i = n - 3; i < n; ++i) x[i] += 20;
  auto fc = Make("blend")->Forecast(Prefix(x, n), 24);
  for (size_t h = 1; h <= 24; ++h) {
    double want = 100 + 10 * std::sin(2 * M_PI * (n - 1 + h) / 24.0) + (h >= 22 ? 20.0 / 7 : 0) +
                  std::pow(0.99, static_cast<double>(h)) * 20;
    EXPECT_NEAR(fc[h - 1], want, 1e-9) << h;
  }
}

// No forecaster (oracle excepted) may look past the end of its history: the same prefix followed by
// garbage must give bit-identical forecasts.
TEST(Forecasters, NoneReadsBeyondTheHistory) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(0, 1);
  // A carbon-like series (additive mode of blend) and a solar-like one (intermittent mode).
  std::vector<double> carbon(24 * 40), solar(24 * 40);
  for (size_t i = 0; i < carbon.size(); ++i) {
    carbon[i] = 50 + 30 * std::sin(2 * M_PI * i / 24.0) + 10 * u(rng);
    solar[i] = std::max(0.0, std::sin(2 * M_PI * ((i % 24) - 6.0) / 24.0)) * (100 + 50 * u(rng));
  }
  const std::vector<size_t> sizes{0, 1, 2, 23, 24, 47, 48, 49, 24 * 7, 24 * 8 + 3, 24 * 15, 24 * 22 + 13, 24 * 40};
  for (const std::vector<double>* series : {&carbon, &solar}) {
    const std::vector<double>& real = *series;
    for (size_t n : sizes) {
      std::vector<double> garbage(real.begin(), real.begin() + n);
      for (size_t i = n; i < real.size(); ++i) garbage.push_back(u(rng) < 0.5 ? 1e300 : -1e12 * u(rng));
      for (const auto& name : {"persistence", "seasonal-naive", "blend"}) {
        auto f = Make(name);
        auto fa = f->Forecast(Prefix(real, n), 60);
        auto fb = f->Forecast(Prefix(garbage, n), 60);
        ASSERT_EQ(fa.size(), 60u);
        for (size_t h = 0; h < 60; ++h) {
          ASSERT_TRUE(std::isfinite(fa[h])) << name << " n=" << n;
          ASSERT_EQ(fa[h], fb[h]) << name << " n=" << n << " h=" << h + 1;
        }
      }
    }
  }
}

TEST(Forecasters, BlendNonNegativeForNonNegativeSignals) {
  // Solar-like with clouds and sudden drops; wind-like with spikes to zero.
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> solar(24 * 60), wind(24 * 60);
  double w = 50;
  for (size_t i = 0; i < solar.size(); ++i) {
    double sun = std::max(0.0, std::sin(2 * M_PI * ((i % 24) - 6.0) / 24.0));
    solar[i] = sun * 1000 * (u(rng) < 0.3 ? 0.1 : 1.0);
    w = std::max(0.0, w + 20 * (u(rng) - 0.5));
    wind[i] = u(rng) < 0.05 ? 0 : w;
  }
  auto f = Make("blend");
  for (const auto* x : {&solar, &wind})
    for (size_t n = 30; n <= x->size(); n += 7)
      for (double v : f->Forecast(Prefix(*x, n), 100)) ASSERT_GE(v, 0.0) << "n=" << n;
}

TEST(Evaluate, RollingOriginMaeByHorizon) {
  // A ramp x[i] = i: persistence is off by exactly h at horizon h.
  std::vector<double> x(200);
  std::iota(x.begin(), x.end(), 0.0);
  auto f = Make("persistence");
  ForecastError e = EvaluateForecaster(*f, x, 5, 10);
  EXPECT_EQ(e.forecaster, "persistence");
  ASSERT_EQ(e.mae.size(), 5u);
  const double level = 199.0 / 2;  // mean |x|
  for (size_t h = 1; h <= 5; ++h) {
    EXPECT_NEAR(e.mae[h - 1], static_cast<double>(h), 1e-12);
    EXPECT_NEAR(e.nmae[h - 1], h / level, 1e-12);
  }
  // Stride gives the same answer on a ramp, and the oracle is perfect.
  EXPECT_NEAR(EvaluateForecaster(*f, x, 5, 10, 7).mae[2], 3.0, 1e-12);
  auto o = Make("oracle", &x);
  for (double m : EvaluateForecaster(*o, x, 5, 10).mae) EXPECT_EQ(m, 0);
}

// A decaying series x[i] = r^i: persistence promises x[o-1] at every lead and gets x[o-1] r^(j+1),
// so every origin misses the same share by lead h, 1 - (r + ... + r^(h+1)) / (h + 1), whatever the
// quantile; the oracle misses nothing; a rising series is clamped at 0; no truth at or after `end`
// is read; too little history gives nothing.
TEST(Shortfall, MeasuredOnThePastByLead) {
  const double r = 0.97;
  std::vector<double> x(300);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::pow(r, static_cast<double>(i));
  auto f = Make("persistence");
  for (double q : {0.1, 0.5, 0.9}) {
    std::vector<double> s = MeasuredShortfall(*f, x, 200, 24, 6, q);
    ASSERT_EQ(s.size(), 24u);
    for (size_t h = 0; h < 24; ++h) {
      double got = 0;
      for (size_t j = 1; j <= h + 1; ++j) got += std::pow(r, static_cast<double>(j));
      EXPECT_NEAR(s[h], 1 - got / static_cast<double>(h + 1), 1e-9) << "q=" << q << " h=" << h;
    }
  }
  auto o = Make("oracle", &x);
  for (double v : MeasuredShortfall(*o, x, 200, 24, 6, 0.9)) EXPECT_NEAR(v, 0.0, 1e-12);
  std::vector<double> up(300);
  for (size_t i = 0; i < up.size(); ++i) up[i] = 1 + static_cast<double>(i);
  for (double v : MeasuredShortfall(*f, up, 200, 24, 6, 0.9)) EXPECT_EQ(v, 0.0);
  std::vector<double> changed = x;
  for (size_t i = 200; i < changed.size(); ++i) changed[i] = 0;
  EXPECT_EQ(MeasuredShortfall(*f, changed, 200, 24, 6, 0.5), MeasuredShortfall(*f, x, 200, 24, 6, 0.5));
  EXPECT_TRUE(MeasuredShortfall(*f, x, 20, 24, 6, 0.5).empty());
}

// On real wind, a higher quantile never measures a smaller shortfall, and a forecast of nothing
// (solar at night, as the first steps of an origin at dusk) is not counted as a shortfall.
TEST(Shortfall, QuantilesAreOrderedAndNightsAreLeftOut) {
  std::vector<double> wind(24 * 21), solar(24 * 21);
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0, 0.3);
  double level = 1;
  for (size_t i = 0; i < wind.size(); ++i) {
    level = std::clamp(level + noise(rng), 0.0, 3.0);
    wind[i] = level;
    const double hour = static_cast<double>(i % 24);
    solar[i] = hour >= 6 && hour <= 18 ? std::sin(M_PI * (hour - 6) / 12) : 0.0;
  }
  auto f = Make("blend", nullptr, 24);
  auto lo = MeasuredShortfall(*f, wind, wind.size(), 48, 6, 0.5);
  auto hi = MeasuredShortfall(*f, wind, wind.size(), 48, 6, 0.9);
  ASSERT_EQ(lo.size(), 48u);
  for (size_t h = 0; h < 48; ++h) EXPECT_LE(lo[h], hi[h]) << h;
  EXPECT_GT(hi[47], 0.0);  // a random walk does fall short of its forecast
  // A clean periodic sun is forecast exactly by blend, nights included: nothing is missing.
  for (double v : MeasuredShortfall(*f, solar, solar.size(), 48, 5, 0.9)) EXPECT_NEAR(v, 0.0, 1e-9);
}

TEST(Evaluate, MaeCountsOnlyTargetsThatExist) {
  // Period-2 series 0, 10, 0, 10, ...: persistence errs by 10 at odd horizons, 0 at even ones.
  std::vector<double> x(50);
  for (size_t i = 0; i < x.size(); ++i) x[i] = (i % 2) * 10.0;
  ForecastError e = EvaluateForecaster(*Make("persistence"), x, 4, 1);
  EXPECT_NEAR(e.mae[0], 10, 1e-12);
  EXPECT_NEAR(e.mae[1], 0, 1e-12);
  EXPECT_NEAR(e.mae[2], 10, 1e-12);
  // Horizon longer than the series: no crash, unevaluated horizons report 0.
  e = EvaluateForecaster(*Make("persistence"), std::vector<double>{1, 2}, 5, 1);
  EXPECT_NEAR(e.mae[0], 1, 1e-12);
  EXPECT_EQ(e.mae[4], 0);
}

// ---- Real data ------------------------------------------------------------------------------------

double Mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / v.size(); }

TEST(BlendOnEia930, BeatsSeasonalNaive) {
  const std::string dir = std::string(GREENTRAIN_SOURCE_DIR) + "/data/eia930-2022/";
  auto sn = Make("seasonal-naive");
  auto blend = Make("blend");
  for (const char* region : {"BPAT", "CISO", "ERCO", "MISO", "PJM"}) {
    for (auto [column, signal] : {std::pair{"avg_CI", Signal::kCarbon}, std::pair{"WND", Signal::kWind},
                                  std::pair{"SUN", Signal::kSolar}}) {
      const std::string file = dir + region + "_2022.csv";
      auto s = ReadSeries(file, "eia930", column, signal);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      ASSERT_EQ(s->values.size(), 8760u);
      ForecastError es = EvaluateForecaster(*sn, s->values, 24, 7 * 24);
      ForecastError eb = EvaluateForecaster(*blend, s->values, 24, 7 * 24);
      int wins = 0;
      for (size_t h = 0; h < 24; ++h) wins += eb.mae[h] < es.mae[h];
      SCOPED_TRACE(std::string(region) + " " + column);
      EXPECT_LT(Mean(eb.mae), 0.95 * Mean(es.mae));  // at least 5 % better over horizons 1..24
      EXPECT_GE(wins, 18);                           // and better at three quarters of them
    }
  }
}

}  // namespace
}  // namespace gt
