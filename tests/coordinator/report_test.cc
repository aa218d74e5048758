#include "coordinator/report.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "fixtures.h"

namespace gt {
namespace {

std::vector<PolicyReport> SmallRun() {
  Config c = testing::SmallConfig();
  auto menu = OptionMenu::Build(c).value();
  c.job.steps = menu.option(menu.fastest()).steps_per_hour * 12;
  auto sim = Simulator::Create(c, testing::SyntheticSupply(c, 24, 0.02), 24).value();
  std::vector<PolicyReport> reports;
  for (const std::string name : {"carbon-agnostic", "greentrain", "oracle"})
    reports.push_back({sim.Run(**MakePolicy(name), "blend").value()});
  ComputeRatios(reports);
  return reports;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Report, JsonHasTheDocumentedFieldsAndRatios) {
  auto reports = SmallRun();
  nlohmann::json j = ReportJson("test", reports, 1.5);
  ASSERT_EQ(j["policies"].size(), 3u);
  for (const auto& p : j["policies"]) {
    for (const char* key : {"policy", "grid_carbon_kg", "energy_mwh", "renewable_share", "completion_hours",
                            "deadline_met", "pauses", "resizes", "migrations", "checkpoints"})
      EXPECT_TRUE(p.contains(key)) << key;
    for (const char* key : {"renewable", "battery", "grid"}) EXPECT_TRUE(p["energy_mwh"].contains(key)) << key;
  }
  EXPECT_EQ(j["policies"][0]["policy"], "carbon-agnostic");
  EXPECT_DOUBLE_EQ(j["policies"][0]["carbon_vs_agnostic"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["policies"][2]["carbon_vs_oracle"].get<double>(), 1.0);
  const double g = reports[1].result.totals.carbon_kg, a = reports[0].result.totals.carbon_kg;
  EXPECT_NEAR(j["policies"][1]["carbon_vs_agnostic"].get<double>(), g / a, 1e-12);
  EXPECT_DOUBLE_EQ(j["lower_bound_kg"].get<double>(), 1.5);
}

TEST(Report, TableCsvAndSvg) {
  auto reports = SmallRun();
  std::string table = FormatTable(reports, 2.0);
  EXPECT_NE(table.find("greentrain"), std::string::npos);
  EXPECT_NE(table.find("lower bound"), std::string::npos);
  EXPECT_NE(table.find("oracle = " + reports[2].result.note + ": "), std::string::npos) << table;
  const std::string dir = ::testing::TempDir();
  ASSERT_TRUE(WriteReportCsv(dir + "/r.csv", reports).ok());
  std::string csv = Slurp(dir + "/r.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4);
  EXPECT_EQ(csv.rfind("policy,", 0), 0u);
  ASSERT_TRUE(WriteSvg(dir + "/r.svg", reports, "greentrain").ok());
  std::string svg = Slurp(dir + "/r.svg");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find(">a<"), std::string::npos);  // site names label the panels
  // One tick per interval that began with a checkpoint, on every policy's placement strip.
  int ticks = 0, checkpoints = 0;
  for (size_t k = 0; (k = svg.find("class='checkpoint'", k)) != std::string::npos; ++k) ++ticks;
  for (const auto& r : reports)
    for (const auto& p : r.result.timeline) checkpoints += p.checkpoint;
  EXPECT_GT(checkpoints, 0);
  EXPECT_EQ(ticks, checkpoints);
  std::remove((dir + "/r.csv").c_str());
  std::remove((dir + "/r.svg").c_str());
  EXPECT_FALSE(WriteSvg("/nonexistent-dir/x.svg", reports, "greentrain").ok());
  EXPECT_FALSE(WriteSvg(dir + "/none.svg", {}, "greentrain").ok());
}

// The line under the table names the oracle's schedule and the span of those meeting the deadline,
// and says so when none does.
TEST(Report, TheOracleLineNamesItsScheduleAndTheSpan) {
  PolicyReport r;
  r.result.policy = "oracle";
  r.result.note = "x (forecaster oracle)";
  r.result.totals.carbon_kg = 5;
  r.result.candidates = {{"x (forecaster oracle)", 5, true}, {"y", 9, true}, {"z", 2, false}};
  EXPECT_NE(FormatTable({r}, 0).find("oracle = x (forecaster oracle): 5.0 kg, the least of the 2 of 3 schedules that "
                                     "meet the deadline (5.0-9.0 kg)\n"),
            std::string::npos)
      << FormatTable({r}, 0);
  for (auto& c : r.result.candidates) c.deadline_met = false;
  EXPECT_NE(FormatTable({r}, 0).find("oracle = x (forecaster oracle): 5.0 kg; none of the 3 schedules it chose among "
                                     "meets the deadline\n"),
            std::string::npos)
      << FormatTable({r}, 0);
  r.result.candidates.clear();  // any other policy: no line
  EXPECT_EQ(FormatTable({r}, 0).find("oracle ="), std::string::npos);
}

}  // namespace
}  // namespace gt
