// Site power model: energy balance, battery limits, curtailment, grid limit, carbon arithmetic, PUE,
// and loading a site's supply from the bundled traces.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "common/config.h"
#include "energy/power.h"

namespace gt {
namespace {

const double kInf = std::numeric_limits<double>::infinity();

SiteConfig BasicSite() {
  SiteConfig s;
  s.name = "test";
  s.gpus = 1000;
  s.gpu.busy_w = 400;
  s.gpu.idle_w = 100;
  s.gpu.host_w = 0;  // GPU power only: the hand computations below
  s.pue = 1.0;
  s.battery.capacity_mwh = 0;
  s.battery.charge_mw = 0;
  s.battery.discharge_mw = 0;
  s.battery.round_trip_efficiency = 1.0;
  s.battery.min_soc = 0;
  return s;
}

TEST(ItEnergy, BusyAndIdleGpus) {
  GpuConfig g;
  g.busy_w = 400;
  g.idle_w = 90;
  g.host_w = 0;
  // 100 x 400 W + 50 x 90 W = 44.5 kW; over 2 h = 89 kWh = 0.089 MWh.
  EXPECT_NEAR(ItEnergyMwh(g, SiteLoad{100, 50, 0}, 2.0), 0.089, 1e-15);
  // Every allocated GPU's node adds host_w: + 150 x 200 W = 30 kW -> 0.149 MWh.
  g.host_w = 200;
  EXPECT_NEAR(ItEnergyMwh(g, SiteLoad{100, 50, 0}, 2.0), 0.149, 1e-15);
  EXPECT_DOUBLE_EQ(ItEnergyMwh(g, SiteLoad{0, 0, 0}, 1.0), 0.0);
  EXPECT_DOUBLE_EQ(ItEnergyMwh(g, SiteLoad{-5, 0, 0}, 1.0), 0.0);  // nonsense counts as nothing
}

TEST(Dispatch, PueMultipliesItEnergyIncludingExtra) {
  SiteConfig s = BasicSite();
  s.pue = 1.5;
  // 1000 busy x 400 W = 0.4 MW IT; plus 0.1 MWh of transfers; x 1.5 = 0.75 MWh over 1 h.
  PowerFlow f = Dispatch(s, 0, SiteSupply{0, 100, 0}, SiteLoad{1000, 0, 0.1}, 1.0);
  EXPECT_NEAR(f.demand_mwh, 0.75, 1e-12);
  EXPECT_NEAR(f.grid_mwh, 0.75, 1e-12);
  // Half an hour halves the GPU part only.
  f = Dispatch(s, 0, SiteSupply{0, 100, 0}, SiteLoad{1000, 0, 0.1}, 0.5);
  EXPECT_NEAR(f.demand_mwh, (0.2 + 0.1) * 1.5, 1e-12);
}

TEST(Dispatch, CarbonAndCostByHand) {
  SiteConfig s = BasicSite();
  // 1000 x 400 W for 1 h = 0.4 MWh; renewables give 0.15 MW -> grid 0.25 MWh.
  // 0.25 MWh = 250 kWh x 300 g/kWh = 75 000 g = 75 kg; cost 0.25 x 80 = 20.
  PowerFlow f = Dispatch(s, 0, SiteSupply{0.15, 300, 80}, SiteLoad{1000, 0, 0}, 1.0);
  EXPECT_NEAR(f.grid_mwh, 0.25, 1e-12);
  EXPECT_NEAR(f.carbon_kg, 75.0, 1e-9);
  EXPECT_NEAR(f.cost, 20.0, 1e-9);
  // All renewable: no carbon.
  f = Dispatch(s, 0, SiteSupply{1.0, 300, 80}, SiteLoad{1000, 0, 0}, 1.0);
  EXPECT_EQ(f.grid_mwh, 0);
  EXPECT_EQ(f.carbon_kg, 0);
  // Battery energy counts zero: 0.4 MWh demand, 0.1 from the battery, 0.3 grid at 500 g = 150 kg.
  s.battery.capacity_mwh = 1;
  s.battery.discharge_mw = 0.1;
  f = Dispatch(s, 0.5, SiteSupply{0, 500, 0}, SiteLoad{1000, 0, 0}, 1.0);
  EXPECT_NEAR(f.battery_discharge_mwh, 0.1, 1e-12);
  EXPECT_NEAR(f.carbon_kg, 150.0, 1e-9);
}

TEST(Dispatch, BatteryChargeLimitedByRateThenCurtails) {
  SiteConfig s = BasicSite();
  s.battery = {10, 0.2, 0.3, 0.8, 0.5, 0.1};  // cap, charge_mw, discharge_mw, eff, initial, min
  // Demand 0.4 MWh, renewables 1.0 MW over 1 h: surplus 0.6, charge 0.2 (rate), curtail 0.4.
  PowerFlow f = Dispatch(s, 5.0, SiteSupply{1.0, 200, 0}, SiteLoad{1000, 0, 0}, 1.0);
  EXPECT_NEAR(f.renewable_used_mwh, 0.4, 1e-12);
  EXPECT_NEAR(f.battery_charge_mwh, 0.2, 1e-12);
  EXPECT_NEAR(f.curtailed_mwh, 0.4, 1e-12);
  EXPECT_NEAR(f.battery_loss_mwh, 0.2 * 0.2, 1e-12);
  EXPECT_NEAR(f.soc_after_mwh, 5.0 + 0.2 * 0.8, 1e-12);
  EXPECT_EQ(f.grid_mwh, 0);
}

TEST(Dispatch, CurtailsWhenBatteryFull) {
  SiteConfig s = BasicSite();
  s.battery = {2, 5, 5, 0.5, 1.0, 0};
  // Full battery: the whole surplus is curtailed.
  PowerFlow f = Dispatch(s, 2.0, SiteSupply{3.0, 200, 0}, SiteLoad{1000, 0, 0}, 1.0);
  EXPECT_EQ(f.battery_charge_mwh, 0);
  EXPECT_NEAR(f.curtailed_mwh, 2.6, 1e-12);
  EXPECT_EQ(f.soc_after_mwh, 2.0);
  // 0.3 MWh of room at 50 % efficiency takes 0.6 MWh of surplus; the rest (2.0) is curtailed.
  f = Dispatch(s, 1.7, SiteSupply{3.0, 200, 0}, SiteLoad{1000, 0, 0}, 1.0);
  EXPECT_NEAR(f.battery_charge_mwh, 0.6, 1e-12);
  EXPECT_NEAR(f.battery_loss_mwh, 0.3, 1e-12);
  EXPECT_NEAR(f.curtailed_mwh, 2.0, 1e-12);
  EXPECT_EQ(f.soc_after_mwh, 2.0);  // exactly full, never above
}

TEST(Dispatch, DischargeLimitedByRateAndMinSoc) {
  SiteConfig s = BasicSite();
  s.battery = {10, 1, 0.25, 0.9, 0.5, 0.2};
  // Deficit 0.4: rate limit 0.25 from the battery, 0.15 from the grid.
  PowerFlow f = Dispatch(s, 5.0, SiteSupply{0, 100, 0}, SiteLoad{1000, 0, 0}, 1.0);
  EXPECT_NEAR(f.battery_discharge_mwh, 0.25, 1e-12);
  EXPECT_NEAR(f.grid_mwh, 0.15, 1e-12);
  EXPECT_NEAR(f.soc_after_mwh, 4.75, 1e-12);
  // Only 0.1 MWh above min_soc (2.0): discharge 0.1, soc stops at exactly 2.0.
  f = Dispatch(s, 2.1, SiteSupply{0, 100, 0}, SiteLoad{1000, 0, 0}, 1.0);
  EXPECT_NEAR(f.battery_discharge_mwh, 0.1, 1e-12);
  EXPECT_EQ(f.soc_after_mwh, 2.0);
  EXPECT_NEAR(f.grid_mwh, 0.3, 1e-12);
  // Below min_soc: nothing to give.
  f = Dispatch(s, 1.0, SiteSupply{0, 100, 0}, SiteLoad{1000, 0, 0}, 1.0);
  EXPECT_EQ(f.battery_discharge_mwh, 0);
  EXPECT_NEAR(f.grid_mwh, 0.4, 1e-12);
  // Never charges from the grid, even when empty and the grid is clean.
  f = Dispatch(s, 0.0, SiteSupply{0, 1, 0}, SiteLoad{0, 0, 0}, 1.0);
  EXPECT_EQ(f.battery_charge_mwh, 0);
  EXPECT_EQ(f.grid_mwh, 0);
}

TEST(Dispatch, GridLimitLeavesUnmet) {
  SiteConfig s = BasicSite();
  s.grid_limit_mw = 0.1;
  // Demand 0.4 MWh per hour over 2 h = 0.8; renewables 0.1 MW -> 0.2; grid cap 0.2; unmet 0.4.
  PowerFlow f = Dispatch(s, 0, SiteSupply{0.1, 100, 0}, SiteLoad{1000, 0, 0}, 2.0);
  EXPECT_NEAR(f.demand_mwh, 0.8, 1e-12);
  EXPECT_NEAR(f.renewable_used_mwh, 0.2, 1e-12);
  EXPECT_NEAR(f.grid_mwh, 0.2, 1e-12);
  EXPECT_NEAR(f.unmet_mwh, 0.4, 1e-12);
  EXPECT_NEAR(f.carbon_kg, 20.0, 1e-9);  // only grid energy delivered is counted
  s.grid_limit_mw = 0;
  f = Dispatch(s, 0, SiteSupply{0, 100, 0}, SiteLoad{1000, 0, 0}, 1.0);
  EXPECT_NEAR(f.unmet_mwh, 0.4, 1e-12);
  EXPECT_EQ(f.grid_mwh, 0);
}

TEST(Dispatch, ZeroHoursAndNonsenseInputsDoNotCrash) {
  SiteConfig s = BasicSite();
  s.battery = {1, 1, 1, 0.9, 0.5, 0.1};
  PowerFlow f = Dispatch(s, 0.5, SiteSupply{1, 100, 0}, SiteLoad{1000, 0, 0}, 0.0);
  EXPECT_EQ(f.demand_mwh, 0);
  EXPECT_EQ(f.grid_mwh, 0);
  EXPECT_EQ(f.soc_after_mwh, 0.5);
  f = Dispatch(s, std::nan(""), SiteSupply{-3, 100, 0}, SiteLoad{1000, 0, 0}, -1.0);
  EXPECT_EQ(f.demand_mwh, 0);
  EXPECT_EQ(f.renewable_available_mwh, 0);
  // A starting charge above capacity is clamped and reported as such.
  f = Dispatch(s, 7.0, SiteSupply{0, 100, 0}, SiteLoad{0, 0, 0}, 1.0);
  EXPECT_EQ(f.soc_before_mwh, 1.0);
}

// The contract of power.h over 10 000 random sites, supplies, loads and battery states.
TEST(Dispatch, RandomisedSweepBalancesEveryInterval) {
  std::mt19937_64 rng(20240601);
  std::uniform_real_distribution<double> u(0, 1);
  auto pick = [&](double lo, double hi) { return lo + (hi - lo) * u(rng); };
  int curtail_cases = 0, unmet_cases = 0, charge_cases = 0, discharge_cases = 0;
  for (int it = 0; it < 10000; ++it) {
    SiteConfig s;
    s.name = "r";
    s.gpus = 2000;
    s.gpu.busy_w = pick(100, 1000);
    s.gpu.idle_w = pick(0, s.gpu.busy_w);
    s.gpu.host_w = pick(0, 600);
    s.pue = pick(1.0, 2.0);
    s.grid_limit_mw = u(rng) < 0.5 ? kInf : pick(0, 1.0);
    BatteryConfig& b = s.battery;
    b.capacity_mwh = u(rng) < 0.2 ? 0 : pick(0, 5);
    b.charge_mw = pick(0, 1);
    b.discharge_mw = pick(0, 1);
    b.round_trip_efficiency = pick(0.5, 1.0);
    b.min_soc = pick(0, 0.5);
    const double lo = b.min_soc * b.capacity_mwh, cap = b.capacity_mwh;
    double r = u(rng);
    double soc = r < 0.1 ? lo : r < 0.2 ? cap : pick(lo, cap);
    SiteSupply sup{u(rng) < 0.2 ? 0 : pick(0, 2), pick(0, 900), pick(-50, 300)};
    int busy = static_cast<int>(pick(0, 2000)), idle = static_cast<int>(pick(0, 2000 - busy));
    SiteLoad load{busy, idle, u(rng) < 0.5 ? 0 : pick(0, 0.3)};
    const double hours = std::vector<double>{0.25, 0.5, 1, 2, 3.5}[it % 5];

    PowerFlow f = Dispatch(s, soc, sup, load, hours);
    const double scale = std::max({f.demand_mwh, f.renewable_available_mwh, cap, 1e-6});
    const double tol = 1e-9 * scale;
    SCOPED_TRACE("iteration " + std::to_string(it));

    // Demand = IT x PUE, renewables = MW x hours.
    const double it_mwh =
        (busy * (s.gpu.busy_w + s.gpu.host_w) + idle * (s.gpu.idle_w + s.gpu.host_w)) * hours / 1e6 + load.extra_it_mwh;
    ASSERT_NEAR(f.demand_mwh, it_mwh * s.pue, tol);
    ASSERT_NEAR(f.renewable_available_mwh, sup.renewable_mw * hours, tol);
    // The three balance equations and the loss.
    const double eff = b.round_trip_efficiency;
    ASSERT_NEAR(f.renewable_available_mwh, f.renewable_used_mwh + f.battery_charge_mwh + f.curtailed_mwh, tol);
    ASSERT_NEAR(f.demand_mwh, f.renewable_used_mwh + f.battery_discharge_mwh + f.grid_mwh + f.unmet_mwh, tol);
    ASSERT_NEAR(f.soc_after_mwh, f.soc_before_mwh + f.battery_charge_mwh * eff - f.battery_discharge_mwh, tol);
    ASSERT_NEAR(f.battery_loss_mwh, f.battery_charge_mwh * (1 - eff), tol);
    ASSERT_EQ(f.soc_before_mwh, soc);
    // Every flow non-negative.
    for (double v : {f.renewable_used_mwh, f.battery_charge_mwh, f.battery_discharge_mwh, f.battery_loss_mwh,
                     f.grid_mwh, f.unmet_mwh, f.curtailed_mwh})
      ASSERT_GE(v, 0);
    // Battery limits.
    ASSERT_GE(f.soc_after_mwh, lo - tol);
    ASSERT_LE(f.soc_after_mwh, cap + tol);
    ASSERT_LE(f.battery_charge_mwh, b.charge_mw * hours + tol);
    ASSERT_LE(f.battery_discharge_mwh, b.discharge_mw * hours + tol);
    ASSERT_TRUE(f.battery_charge_mwh == 0 || f.battery_discharge_mwh == 0);
    // Charging only from surplus: charge <= available - used.
    ASSERT_LE(f.battery_charge_mwh, f.renewable_available_mwh - f.renewable_used_mwh + tol);
    // Grid limit.
    if (std::isfinite(s.grid_limit_mw)) {
      ASSERT_LE(f.grid_mwh, s.grid_limit_mw * hours + tol);
    }
    // Carbon and cost.
    ASSERT_NEAR(f.carbon_kg, f.grid_mwh * sup.carbon_g_per_kwh, 1e-9 * std::max(1.0, f.carbon_kg));
    ASSERT_NEAR(f.cost, f.grid_mwh * sup.price_per_mwh, 1e-9 * std::max(1.0, std::fabs(f.cost)));
    // Nothing wasted needlessly: renewables go to the load first; curtailment only when the battery
    // cannot take more; grid only when the battery cannot give more; unmet only at the grid limit.
    ASSERT_NEAR(f.renewable_used_mwh, std::min(f.renewable_available_mwh, f.demand_mwh), tol);
    if (f.curtailed_mwh > tol) {
      ++curtail_cases;
      ASSERT_TRUE(f.battery_charge_mwh >= b.charge_mw * hours - tol || f.soc_after_mwh >= cap - tol);
    }
    if (f.grid_mwh + f.unmet_mwh > tol) {
      ASSERT_TRUE(f.battery_discharge_mwh >= b.discharge_mw * hours - tol || f.soc_after_mwh <= lo + tol);
    }
    if (f.unmet_mwh > tol) {
      ++unmet_cases;
      ASSERT_NEAR(f.grid_mwh, s.grid_limit_mw * hours, tol);
    }
    charge_cases += f.battery_charge_mwh > 0;
    discharge_cases += f.battery_discharge_mwh > 0;
  }
  // The sweep exercised every branch.
  EXPECT_GT(curtail_cases, 500);
  EXPECT_GT(unmet_cases, 500);
  EXPECT_GT(charge_cases, 500);
  EXPECT_GT(discharge_cases, 500);
}

// Battery state carried over many intervals stays within bounds and the energy adds up.
TEST(Dispatch, BatteryStateCarriedOverAYear) {
  SiteConfig s = BasicSite();
  s.battery = {0.4, 0.1, 0.1, 0.88, 0.5, 0.1};
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  double soc = 0.2, stored = 0, released = 0, lost = 0;
  for (int i = 0; i < 8760; ++i) {
    double ren = 0.4 * std::max(0.0, std::sin(i * 2 * M_PI / 24)) * u(rng) * 2;
    PowerFlow f = Dispatch(s, soc, SiteSupply{ren, 300, 0}, SiteLoad{500, 0, 0}, 1.0);
    ASSERT_GE(f.soc_after_mwh, 0.04 - 1e-12);
    ASSERT_LE(f.soc_after_mwh, 0.4 + 1e-12);
    stored += f.battery_charge_mwh;
    released += f.battery_discharge_mwh;
    lost += f.battery_loss_mwh;
    soc = f.soc_after_mwh;
  }
  EXPECT_GT(released, 10);  // the battery cycled
  EXPECT_NEAR(soc, 0.2 + stored - lost - released, 1e-9);
}

// ---- Loading supply from the bundled traces -------------------------------------------------------

const std::string kData = std::string(GREENTRAIN_SOURCE_DIR) + "/data/eia930-2022/";

// Minimal independent reader for the test: the rows of an EIA file as (timestamp text, cells).
std::vector<std::vector<std::string>> RawRows(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, ',')) cells.push_back(c);
    while (cells.size() < 4) cells.push_back("");
    rows.push_back(cells);
  }
  return rows;
}

double ColumnMax(const std::vector<std::vector<std::string>>& rows, int col) {
  double m = 0;
  for (const auto& r : rows)
    if (!r[col].empty()) m = std::max(m, std::stod(r[col]));
  return m;
}

SiteConfig CisoSite() {
  SiteConfig s = BasicSite();
  s.name = "california";
  s.solar_mw = 0.25;
  s.solar = TraceRef{kData + "CISO_2022.csv", "auto", "SUN"};
  s.wind_mw = 0.05;
  s.wind = TraceRef{kData + "CISO_2022.csv", "eia930", "WND"};
  s.carbon = TraceRef{kData + "CISO_2022.csv", "auto", ""};  // default carbon column: avg_CI
  s.price_per_mwh = 90;
  return s;
}

TEST(LoadSiteSupply, ProfilesScaledByYearlyMaximum) {
  auto rows = RawRows(kData + "CISO_2022.csv");
  ASSERT_EQ(rows.size(), 8760u);
  const double wmax = ColumnMax(rows, 1), smax = ColumnMax(rows, 2);
  // 2022-06-01 is day 151 of the year: row 151 * 24.
  const UnixSeconds from = *ParseIsoTime("2022-06-01T00:00:00Z");
  auto sup = LoadSiteSupply(CisoSite(), from, from + 48 * 3600, 3600);
  ASSERT_TRUE(sup.ok()) << sup.status().ToString();
  ASSERT_EQ(sup->size(), 48u);
  EXPECT_EQ(sup->site, "california");
  EXPECT_EQ(sup->start, from);
  for (size_t i = 0; i < 48; ++i) {
    const auto& r = rows[151 * 24 + i];
    ASSERT_EQ(r[0].substr(0, 10), i < 24 ? "2022-06-01" : "2022-06-02");
    double want = 0.05 * std::stod(r[1]) / wmax + 0.25 * std::stod(r[2]) / smax;
    EXPECT_NEAR(sup->renewable_mw[i], want, 1e-12) << i;
    EXPECT_NEAR(sup->carbon_g_per_kwh[i], std::stod(r[3]), 1e-9) << i;
    EXPECT_EQ(sup->price_per_mwh[i], 90);
    SiteSupply at = sup->At(i);
    EXPECT_EQ(at.renewable_mw, sup->renewable_mw[i]);
  }
  EXPECT_EQ(sup->filled, 9u);  // 3 empty cells in each of the three CISO columns used
}

TEST(LoadSiteSupply, ResamplesToTwoHourIntervals) {
  auto rows = RawRows(kData + "CISO_2022.csv");
  const UnixSeconds from = *ParseIsoTime("2022-06-01T00:00:00Z");
  auto sup = LoadSiteSupply(CisoSite(), from, from + 24 * 3600, 7200);
  ASSERT_TRUE(sup.ok()) << sup.status().ToString();
  ASSERT_EQ(sup->size(), 12u);
  for (size_t i = 0; i < 12; ++i) {
    double ci = 0.5 * (std::stod(rows[151 * 24 + 2 * i][3]) + std::stod(rows[151 * 24 + 2 * i + 1][3]));
    EXPECT_NEAR(sup->carbon_g_per_kwh[i], ci, 1e-9) << i;
  }
  // Starting at an odd hour, intervals are [01:00, 03:00), ... not shifted to the trace's even hours.
  sup = LoadSiteSupply(CisoSite(), from + 3600, from + 5 * 3600, 7200);
  ASSERT_TRUE(sup.ok()) << sup.status().ToString();
  ASSERT_EQ(sup->size(), 2u);
  EXPECT_NEAR(sup->carbon_g_per_kwh[0],
              0.5 * (std::stod(rows[151 * 24 + 1][3]) + std::stod(rows[151 * 24 + 2][3])), 1e-9);
}

TEST(LoadSiteSupply, UncoveredPeriodNamesSiteAndTrace) {
  const UnixSeconds from = *ParseIsoTime("2022-12-31T00:00:00Z");
  auto sup = LoadSiteSupply(CisoSite(), from, from + 48 * 3600, 3600);
  ASSERT_FALSE(sup.ok());
  const std::string& m = sup.status().message();
  EXPECT_NE(m.find("california"), std::string::npos) << m;
  EXPECT_NE(m.find("CISO_2022.csv"), std::string::npos) << m;
  EXPECT_NE(m.find("2023-01-01"), std::string::npos) << m;  // where the trace ends

  SiteConfig s = CisoSite();
  s.wind_mw = 0;  // no renewables: the carbon trace is the one at fault
  s.solar_mw = 0;
  s.carbon.file = kData + "no_such_file.csv";
  sup = LoadSiteSupply(s, *ParseIsoTime("2022-06-01"), *ParseIsoTime("2022-06-02"), 3600);
  ASSERT_FALSE(sup.ok());
  EXPECT_NE(sup.status().message().find("california"), std::string::npos);
  EXPECT_NE(sup.status().message().find("no_such_file.csv"), std::string::npos);

  EXPECT_FALSE(LoadSiteSupply(CisoSite(), from, from, 3600).ok());
  EXPECT_FALSE(LoadSiteSupply(CisoSite(), from, from + 3600, 0).ok());
}

TEST(LoadSiteSupply, PriceTraceOverridesFlatPrice) {
  const std::string path = testing::TempDir() + "/gt_power_test_price.csv";
  {
    std::ofstream out(path);
    out << "timestamp,price\n";
    for (int h = 0; h < 48; ++h) {
      char ts[40];
      std::snprintf(ts, sizeof ts, "2022-06-%02dT%02d:00:00Z", 1 + h / 24, h % 24);
      out << ts << "," << 10 + h << "\n";
    }
  }
  SiteConfig s = CisoSite();
  s.price = TraceRef{path, "generic", "price"};
  const UnixSeconds from = *ParseIsoTime("2022-06-01T05:00:00Z");
  auto sup = LoadSiteSupply(s, from, from + 10 * 3600, 3600);
  std::remove(path.c_str());
  ASSERT_TRUE(sup.ok()) << sup.status().ToString();
  for (size_t i = 0; i < 10; ++i) EXPECT_DOUBLE_EQ(sup->price_per_mwh[i], 15.0 + i);
}

TEST(LoadAllSupply, DefaultConfigCoversTheSimulatedPeriod) {
  auto cfg = LoadConfig(DefaultConfigPath());
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  auto all = LoadAllSupply(*cfg);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), cfg->sites.size());
  const size_t n = static_cast<size_t>((cfg->sim_end - cfg->job.start) / cfg->interval_seconds);
  for (size_t k = 0; k < all->size(); ++k) {
    const SiteSupplyTrace& t = (*all)[k];
    EXPECT_EQ(t.site, cfg->sites[k].name);
    EXPECT_EQ(t.size(), n);
    EXPECT_EQ(t.start, cfg->job.start);
    for (size_t i = 0; i < t.size(); ++i) {
      ASSERT_GE(t.renewable_mw[i], 0);
      ASSERT_LE(t.renewable_mw[i], cfg->sites[k].wind_mw + cfg->sites[k].solar_mw + 1e-12);
      ASSERT_GT(t.carbon_g_per_kwh[i], 0);
    }
  }
}

}  // namespace
}  // namespace gt

namespace gt {
namespace {

TEST(DispatchPhases, OnePhaseIsDispatchAndPartialLoadMeetsOnlyItsShareOfRenewables) {
  SiteConfig site;
  site.pue = 1.0;
  site.battery.capacity_mwh = 1;
  site.battery.charge_mw = site.battery.discharge_mw = 0.5;
  site.battery.round_trip_efficiency = 0.8;
  const SiteSupply supply{0.4, 300, 50};
  SiteLoad load;
  load.extra_it_mwh = 0.6;
  const PowerFlow whole = Dispatch(site, 0.2, supply, load, 1.0);
  const PowerFlow one = DispatchPhases(site, 0.2, supply, {{1.0, 0.6}});
  EXPECT_DOUBLE_EQ(one.grid_mwh, whole.grid_mwh);
  EXPECT_DOUBLE_EQ(one.soc_after_mwh, whole.soc_after_mwh);
  // Running 0.6 MW for half the hour, nothing after: only half the hour's 0.4 MWh of renewables
  // reaches the load; the other half charges the battery.
  const PowerFlow two = DispatchPhases(site, 0.2, supply, {{0.5, 0.6}, {0.5, 0.0}, {0.0, 9.0}});
  EXPECT_NEAR(two.demand_mwh, 0.3, 1e-12);
  EXPECT_NEAR(two.renewable_used_mwh, 0.2, 1e-12);
  EXPECT_NEAR(two.battery_charge_mwh, 0.2, 1e-12);
  EXPECT_NEAR(two.soc_before_mwh, 0.2, 1e-12);
  EXPECT_NEAR(two.soc_after_mwh, 0.2 - two.battery_discharge_mwh + 0.8 * two.battery_charge_mwh, 1e-12);
  EXPECT_NEAR(two.demand_mwh, two.renewable_used_mwh + two.battery_discharge_mwh + two.grid_mwh, 1e-12);
}

TEST(DispatchGpuPhases, LoadColumnsAddUpToTheDemandByHand) {
  SiteConfig site;
  site.gpu.busy_w = 400;
  site.gpu.idle_w = 100;
  site.gpu.host_w = 200;
  site.pue = 1.25;
  const SiteSupply supply{0.0, 400, 0};  // grid only, 400 g/kWh
  LoadBreakdown b;
  // 0.25 h checkpoint of 100 GPUs, 0.5 h training 100, 0.25 h with 40 paused GPUs held.
  const PowerFlow f = DispatchGpuPhases(site, 0, supply,
                                        {{0.25, 0, 100, true}, {0.5, 100, 0, false}, {0.25, 0, 40, false}}, &b);
  EXPECT_NEAR(b.transition_mwh, 100 * 300.0 * 0.25 / 1e6, 1e-15);  // idle + host while saving
  EXPECT_NEAR(b.gpu_busy_mwh, 100 * 400.0 * 0.5 / 1e6, 1e-15);
  EXPECT_NEAR(b.gpu_idle_mwh, 40 * 100.0 * 0.25 / 1e6, 1e-15);
  EXPECT_NEAR(b.host_mwh, (100 * 0.5 + 40 * 0.25) * 200.0 / 1e6, 1e-15);
  const double it = 0.0075 + 0.02 + 0.001 + 0.012;
  EXPECT_NEAR(b.it_mwh(), it, 1e-15);
  EXPECT_NEAR(b.pue_overhead_mwh, it * 0.25, 1e-15);
  EXPECT_NEAR(f.demand_mwh, b.facility_mwh(), 1e-15);
  EXPECT_NEAR(b.busy_gpu_hours, 50, 1e-12);
  EXPECT_NEAR(b.idle_gpu_hours, 25 + 10, 1e-12);
  // WAN: 500 GB at 0.006 kWh/GB = 3 kWh, at 400 g/kWh = 1.2 kg; outside the dispatched demand.
  BookWan(b, 500, 0.006, 400);
  EXPECT_NEAR(b.wan_mwh, 0.003, 1e-15);
  EXPECT_NEAR(b.wan_carbon_kg, 1.2, 1e-12);
  EXPECT_NEAR(f.demand_mwh, b.facility_mwh(), 1e-15);
  BookWan(b, -1, 0.006, 400);
  EXPECT_NEAR(b.wan_gb, 500, 1e-12);
}

}  // namespace
}  // namespace gt
