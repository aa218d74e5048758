// Ledger: duplicate rejection, totals by hand, imbalance detection, CSV and JSON export.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/csv.h"
#include "energy/ledger.h"

namespace gt {
namespace {

const UnixSeconds kT0 = 1654041600;  // 2022-06-01T00:00:00Z

LedgerRow Row(const std::string& site, UnixSeconds t, double grid, double ci, double renewable_used = 0) {
  LedgerRow r;
  r.time = t;
  r.hours = 1;
  r.site = site;
  r.busy_gpus = 10;
  r.idle_gpus = 2;
  r.work_steps = 3;
  r.load.busy_gpu_hours = 10 * 0.75;  // trained for three quarters of the hour
  r.load.idle_gpu_hours = 2;
  r.carbon_g_per_kwh = ci;
  r.flow.demand_mwh = grid + renewable_used;
  r.flow.renewable_available_mwh = renewable_used;
  r.flow.renewable_used_mwh = renewable_used;
  r.flow.grid_mwh = grid;
  r.flow.carbon_kg = grid * ci;
  r.flow.cost = grid * 50;
  return r;
}

std::string TempPath(const std::string& name) { return testing::TempDir() + "/gt_ledger_test_" + name; }

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Ledger, RejectsDuplicateSiteInterval) {
  Ledger l;
  ASSERT_TRUE(l.Add(Row("a", kT0, 1, 100)).ok());
  ASSERT_TRUE(l.Add(Row("b", kT0, 1, 100)).ok());           // other site, same interval
  ASSERT_TRUE(l.Add(Row("a", kT0 + 3600, 1, 100)).ok());    // same site, next interval
  Status s = l.Add(Row("a", kT0, 5, 100));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'a'"), std::string::npos);
  EXPECT_NE(s.message().find("2022-06-01T00:00:00Z"), std::string::npos);
  EXPECT_EQ(l.rows().size(), 3u);
  EXPECT_DOUBLE_EQ(l.Totals().grid_mwh, 3.0);  // the rejected row was not counted

  LedgerRow bad = Row("", kT0, 1, 1);
  EXPECT_FALSE(l.Add(bad).ok());
  bad = Row("c", kT0, 1, 1);
  bad.hours = 0;
  EXPECT_FALSE(l.Add(bad).ok());
}

TEST(Ledger, TotalsAndPerSiteTotalsByHand) {
  Ledger l;
  ASSERT_TRUE(l.Add(Row("a", kT0, 0.5, 200, 0.5)).ok());  // 100 kg
  ASSERT_TRUE(l.Add(Row("a", kT0 + 3600, 1.0, 300)).ok()); // 300 kg
  LedgerRow r = Row("b", kT0, 0.0, 400, 2.0);
  r.hours = 2;
  r.flow.battery_discharge_mwh = 1.0;
  r.flow.demand_mwh = 3.0;
  ASSERT_TRUE(l.Add(r).ok());

  LedgerTotals t = l.Totals();
  EXPECT_DOUBLE_EQ(t.grid_mwh, 1.5);
  EXPECT_DOUBLE_EQ(t.carbon_kg, 400.0);
  EXPECT_DOUBLE_EQ(t.cost, 75.0);
  EXPECT_DOUBLE_EQ(t.demand_mwh, 5.0);
  EXPECT_DOUBLE_EQ(t.work_steps, 9.0);
  EXPECT_DOUBLE_EQ(t.gpu_hours_busy, 3 * 7.5) << "the hours GPUs trained, not whole intervals";
  EXPECT_DOUBLE_EQ(t.gpu_hours_idle, 2 + 2 + 2);
  EXPECT_DOUBLE_EQ(t.renewable_share(), (0.5 + 2.0 + 1.0) / 5.0);

  auto by = l.TotalsBySite();
  ASSERT_EQ(by.size(), 2u);
  EXPECT_DOUBLE_EQ(by["a"].carbon_kg, 400.0);
  EXPECT_DOUBLE_EQ(by["a"].demand_mwh, 2.0);
  EXPECT_DOUBLE_EQ(by["b"].carbon_kg, 0.0);
  EXPECT_DOUBLE_EQ(by["b"].renewable_share(), 1.0);
  EXPECT_EQ(LedgerTotals{}.renewable_share(), 0.0);
}

// The books are closed on each battery: its change over the ledger (added in any row order), and a
// drawdown charged at that site's mean grid intensity; a battery left fuller earns nothing.
TEST(Ledger, BatteryBooksAreClosedPerSite) {
  auto with_battery = [](LedgerRow r, double before, double discharge) {
    r.flow.soc_before_mwh = before;
    r.flow.battery_discharge_mwh = discharge;
    r.flow.soc_after_mwh = before - discharge;
    r.flow.demand_mwh += discharge;
    return r;
  };
  Ledger l;
  // Site a: 2.0 -> 1.5 -> 1.2 MWh (drawn down 0.8) at 100 and 300 g/kWh; rows added out of order.
  ASSERT_TRUE(l.Add(with_battery(Row("a", kT0 + 3600, 1, 300), 1.5, 0.3)).ok());
  ASSERT_TRUE(l.Add(with_battery(Row("a", kT0, 1, 100), 2.0, 0.5)).ok());
  // Site b: charged from 1.0 to 1.4.
  LedgerRow b = Row("b", kT0, 1, 500);
  b.flow.soc_before_mwh = 1.0;
  b.flow.renewable_available_mwh += 0.4;
  b.flow.battery_charge_mwh = 0.4;
  b.flow.soc_after_mwh = 1.4;
  ASSERT_TRUE(l.Add(b).ok());
  const auto sites = l.TotalsBySite();
  EXPECT_NEAR(sites.at("a").battery_change_mwh, -0.8, 1e-12);
  EXPECT_NEAR(sites.at("a").battery_drawdown_kg, 0.8 * 200, 1e-9);  // MWh x mean g/kWh = kg
  EXPECT_NEAR(sites.at("b").battery_change_mwh, 0.4, 1e-12);
  EXPECT_EQ(sites.at("b").battery_drawdown_kg, 0);
  const LedgerTotals t = l.Totals();
  EXPECT_NEAR(t.battery_change_mwh, -0.4, 1e-12);
  EXPECT_NEAR(t.battery_drawdown_kg, 160, 1e-9);
  EXPECT_NEAR(t.carbon_reconciled_kg(), t.carbon_kg + 160, 1e-9);
  EXPECT_LT(l.MaxImbalanceMwh(), 1e-12);
  EXPECT_NEAR(l.ToJson()["totals"]["carbon_reconciled_kg"].get<double>(), t.carbon_kg + 160, 1e-9);
}

TEST(Ledger, MaxImbalanceFindsTheBrokenRow) {
  SiteConfig site;
  site.name = "s";
  site.gpu.busy_w = 400;
  site.battery = {1, 0.5, 0.5, 0.8, 0.5, 0.1};
  Ledger l;
  double soc = 0.5;
  for (int i = 0; i < 48; ++i) {
    LedgerRow r;
    r.time = kT0 + i * 3600;
    r.site = "s";
    r.busy_gpus = 1000;
    r.flow = Dispatch(site, soc, SiteSupply{i % 24 < 12 ? 1.0 : 0.1, 300, 50}, SiteLoad{1000, 0, 0}, 1.0);
    soc = r.flow.soc_after_mwh;
    ASSERT_TRUE(l.Add(r).ok());
  }
  EXPECT_LT(l.MaxImbalanceMwh(), 1e-12);
  EXPECT_EQ(Ledger{}.MaxImbalanceMwh(), 0.0);

  LedgerRow broken = Row("t", kT0, 1.0, 100);
  broken.flow.grid_mwh = 0.75;  // demand 1.0 but only 0.75 accounted for
  ASSERT_TRUE(l.Add(broken).ok());
  EXPECT_NEAR(l.MaxImbalanceMwh(), 0.25, 1e-12);
  LedgerRow lossy = Row("u", kT0, 0, 100);
  lossy.flow.battery_charge_mwh = 1.0;
  lossy.flow.renewable_available_mwh = 1.0;
  lossy.flow.soc_after_mwh = 1.0;  // but 0.1 was lost: soc should be 0.9
  lossy.flow.battery_loss_mwh = 0.1;
  ASSERT_TRUE(l.Add(lossy).ok());
  EXPECT_NEAR(l.MaxImbalanceMwh(), 0.25, 1e-12);
  lossy.site = "v";
  lossy.flow.battery_loss_mwh = 0.5;
  ASSERT_TRUE(l.Add(lossy).ok());
  EXPECT_NEAR(l.MaxImbalanceMwh(), 0.5, 1e-12);
}

TEST(Ledger, CsvExportInTimeOrder) {
  Ledger l;
  ASSERT_TRUE(l.Add(Row("b", kT0 + 3600, 0.25, 100)).ok());
  ASSERT_TRUE(l.Add(Row("b", kT0, 0.5, 200)).ok());
  ASSERT_TRUE(l.Add(Row("a,x", kT0, 1.0, 300)).ok());  // a name that needs quoting
  const std::string path = TempPath("rows.csv");
  ASSERT_TRUE(l.WriteCsv(path).ok());
  std::stringstream in(Slurp(path));
  std::remove(path.c_str());
  std::string line;
  std::getline(in, line);
  auto header = SplitCsvLine(line);
  ASSERT_TRUE(header.ok());
  ASSERT_EQ(header->size(), 41u);
  EXPECT_EQ(header->back(), "marginal_carbon_kg");
  EXPECT_EQ((*header)[0], "time");
  EXPECT_EQ((*header)[1], "site");
  auto col = [&](const std::string& name) {
    for (size_t i = 0; i < header->size(); ++i)
      if ((*header)[i] == name) return i;
    ADD_FAILURE() << "no column " << name;
    return size_t{0};
  };
  std::vector<std::vector<std::string>> rows;
  while (std::getline(in, line)) {
    auto cells = SplitCsvLine(line);
    ASSERT_TRUE(cells.ok());
    ASSERT_EQ(cells->size(), 41u) << line;
    rows.push_back(*cells);
  }
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][0], "2022-06-01T00:00:00Z");
  EXPECT_EQ(rows[0][1], "a,x");
  EXPECT_EQ(rows[1][1], "b");
  EXPECT_EQ(rows[2][0], "2022-06-01T01:00:00Z");
  EXPECT_DOUBLE_EQ(std::stod(rows[0][col("grid_mwh")]), 1.0);
  EXPECT_DOUBLE_EQ(std::stod(rows[0][col("carbon_kg")]), 300.0);
  EXPECT_DOUBLE_EQ(std::stod(rows[1][col("carbon_g_per_kwh")]), 200.0);
  EXPECT_EQ(rows[2][col("busy_gpus")], "10");
  EXPECT_DOUBLE_EQ(std::stod(rows[0][col("busy_gpu_hours")]), 7.5);

  Status s = l.WriteCsv("/nonexistent-dir/x.csv");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_NE(s.message().find("/nonexistent-dir/x.csv"), std::string::npos);
}

TEST(Ledger, JsonExport) {
  Ledger l;
  ASSERT_TRUE(l.Add(Row("a", kT0, 0.5, 200, 0.5)).ok());
  ASSERT_TRUE(l.Add(Row("b", kT0, 1.0, 300)).ok());
  nlohmann::json j = l.ToJson();
  ASSERT_EQ(j["rows"].size(), 2u);
  EXPECT_EQ(j["rows"][0]["site"], "a");
  EXPECT_EQ(j["rows"][0]["time"], "2022-06-01T00:00:00Z");
  EXPECT_DOUBLE_EQ(j["rows"][1]["carbon_kg"].get<double>(), 300.0);
  EXPECT_DOUBLE_EQ(j["totals"]["carbon_kg"].get<double>(), 400.0);
  EXPECT_DOUBLE_EQ(j["totals"]["renewable_share"].get<double>(), 0.5 / 2.0);
  EXPECT_DOUBLE_EQ(j["sites"]["a"]["grid_mwh"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["sites"]["b"]["gpu_hours_busy"].get<double>(), 7.5);

  const std::string path = TempPath("ledger.json");
  ASSERT_TRUE(l.WriteJson(path).ok());
  nlohmann::json back = nlohmann::json::parse(Slurp(path));
  std::remove(path.c_str());
  EXPECT_EQ(back, j);
  EXPECT_FALSE(l.WriteJson("/nonexistent-dir/x.json").ok());
}

TEST(Ledger, FromJsonRestoresEveryRowExactly) {
  Ledger l;
  LedgerRow odd = Row("a", kT0, 0.1 / 3, 187.123456789, 2.0 / 7);
  odd.hours = 0.3141592653589793;
  ASSERT_TRUE(l.Add(odd).ok());
  ASSERT_TRUE(l.Add(Row("b", kT0 + 3600, 1.0, 300)).ok());
  auto back = Ledger::FromJson(nlohmann::json::parse(l.ToJson().dump()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ToJson(), l.ToJson());
  ASSERT_EQ(back->rows().size(), 2u);
  EXPECT_EQ(back->rows()[0].flow.grid_mwh, odd.flow.grid_mwh);
  EXPECT_EQ(back->rows()[0].hours, odd.hours);
  // Malformed input is an error naming the row, never an exception; duplicates stay refused.
  nlohmann::json bad = l.ToJson();
  bad["rows"][1]["grid_mwh"] = "lots";
  auto r = Ledger::FromJson(bad);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("row 1"), std::string::npos) << r.status().message();
  nlohmann::json dup = l.ToJson();
  dup["rows"][1] = dup["rows"][0];
  EXPECT_FALSE(Ledger::FromJson(dup).ok());
  EXPECT_FALSE(Ledger::FromJson(nlohmann::json::array()).ok());
}

}  // namespace
}  // namespace gt
