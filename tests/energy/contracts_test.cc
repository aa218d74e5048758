// Market-based carbon, the hourly carbon-free-energy score and the emission-factor basis on cases
// computed by hand (energy/contracts.h, docs/accounting.md section 3).
#include "energy/contracts.h"

#include <gtest/gtest.h>

namespace gt {
namespace {

// A grid-only row: `demand` MWh in one hour, `onsite` of it from renewables, the rest from the grid.
LedgerRow Row(double demand, double onsite, double ci) {
  LedgerRow r;
  r.site = "a";
  r.hours = 1;
  r.carbon_g_per_kwh = ci;
  r.flow.demand_mwh = demand;
  r.flow.renewable_used_mwh = onsite;
  r.flow.grid_mwh = demand - onsite;
  r.flow.carbon_kg = r.flow.grid_mwh * ci;
  return r;
}

TEST(Contracts, PpaThenHourlyThenAnnualCertificatesThenResidualMix) {
  SiteConfig site;
  site.name = "a";
  site.contracts.certificates_mw = 1;       // 1 MWh of certificates every hour
  site.contracts.certificates_mwh = 2.5;    // and an annual pool of 2.5 MWh
  site.contracts.residual_mix_g_per_kwh = 500;
  AccountingConfig acc;
  double pool = 2.5;
  SiteSupply sup;
  sup.carbon_g_per_kwh = 300;
  sup.ppa_mw = 3;
  // Hour 1: 10 MWh demand, 2 on site, 8 from the grid: PPA 3, hourly certificates 1, pool 2.5,
  // residual 1.5 MWh x 500 g/kWh = 750 kg. CFE: min(10, 2 + 3) = 5 MWh.
  LedgerRow r = Row(10, 2, 300);
  BookMarket(site, acc, false, sup, r, &pool);
  EXPECT_DOUBLE_EQ(r.market.ppa_mwh, 3);
  EXPECT_DOUBLE_EQ(r.market.ppa_used_mwh, 3);
  EXPECT_DOUBLE_EQ(r.market.certificates_mwh, 1);
  EXPECT_DOUBLE_EQ(r.market.annual_certificates_mwh, 2.5);
  EXPECT_DOUBLE_EQ(r.market.residual_mwh, 1.5);
  EXPECT_DOUBLE_EQ(r.market.market_carbon_kg, 750);
  EXPECT_DOUBLE_EQ(r.market.cfe_mwh, 5);
  EXPECT_DOUBLE_EQ(pool, 0);
  EXPECT_DOUBLE_EQ(r.flow.carbon_kg, 8 * 300) << "location-based untouched";
  // Hour 2: the pool is spent; 6 MWh from the grid: PPA 3, certificates 1, residual 2 -> 1000 kg.
  LedgerRow r2 = Row(6, 0, 300);
  BookMarket(site, acc, false, sup, r2, &pool);
  EXPECT_DOUBLE_EQ(r2.market.annual_certificates_mwh, 0);
  EXPECT_DOUBLE_EQ(r2.market.market_carbon_kg, 1000);
  // Hour 3: more PPA than grid energy: nothing left to charge; CFE is capped at the demand.
  LedgerRow r3 = Row(2, 1, 300);
  BookMarket(site, acc, false, sup, r3, &pool);
  EXPECT_DOUBLE_EQ(r3.market.ppa_used_mwh, 1);
  EXPECT_DOUBLE_EQ(r3.market.market_carbon_kg, 0);
  EXPECT_DOUBLE_EQ(r3.market.cfe_mwh, 2);
  // Totals: both methods side by side, the CFE score over the whole demand.
  Ledger l;
  r2.time = 3600;
  r3.time = 7200;
  ASSERT_TRUE(l.Add(r).ok());
  ASSERT_TRUE(l.Add(r2).ok());
  ASSERT_TRUE(l.Add(r3).ok());
  const LedgerTotals t = l.Totals();
  EXPECT_DOUBLE_EQ(t.carbon_kg, (8 + 6 + 1) * 300.0);
  EXPECT_DOUBLE_EQ(t.market_carbon_kg(), 1750);
  EXPECT_DOUBLE_EQ(t.cfe_score(), (5 + 3 + 2) / 18.0);
  EXPECT_DOUBLE_EQ(AnnualCertificatesLeft(site, l), 0);
}

TEST(Contracts, WithoutContractsMarketEqualsLocationAndGridAverageIsTheResidual) {
  SiteConfig site;
  AccountingConfig acc;
  LedgerRow r = Row(4, 1, 250);
  BookMarket(site, acc, false, SiteSupply{}, r, nullptr);
  EXPECT_DOUBLE_EQ(r.market.residual_g_per_kwh, 250);
  EXPECT_DOUBLE_EQ(r.market.market_carbon_kg, r.flow.carbon_kg);
  EXPECT_DOUBLE_EQ(r.market.marginal_carbon_kg, r.flow.carbon_kg) << "no marginal trace: the average";
  // With a marginal trace: 3 MWh from the grid at 700 g/kWh.
  SiteSupply sup;
  sup.marginal_g_per_kwh = 700;
  BookMarket(site, acc, false, sup, r, nullptr);
  EXPECT_DOUBLE_EQ(r.market.marginal_carbon_kg, 2100);
  EXPECT_DOUBLE_EQ(r.flow.carbon_kg, 750) << "the average-based figure stays";
  EXPECT_DOUBLE_EQ(r.market.cfe_mwh, 1);
  EXPECT_DOUBLE_EQ(r.market.onsite_carbon_kg, 0) << "direct basis: on-site generation counts 0";
}

TEST(Contracts, LifeCycleBasisChargesOnsiteGenerationAndTheBattery) {
  SiteConfig site;
  AccountingConfig acc;  // wind 11, solar 48, battery 25 g/kWh
  LedgerRow r = Row(10, 4, 300);
  r.flow.battery_charge_mwh = 2;     // from on-site surplus
  r.flow.battery_discharge_mwh = 1;
  r.flow.grid_mwh = 5;
  SiteSupply sup;
  sup.renewable_mw = 8;
  sup.solar_mw = 2;  // a quarter solar
  BookMarket(site, acc, true, sup, r, nullptr);
  // (4 + 2) MWh generated x (0.25 x 48 + 0.75 x 11) + 1 MWh x 25 = 6 x 20.25 + 25 = 146.5 kg.
  EXPECT_DOUBLE_EQ(r.market.onsite_carbon_kg, 146.5);
  Ledger l;
  ASSERT_TRUE(l.Add(r).ok());
  EXPECT_DOUBLE_EQ(l.Totals().carbon_kg, r.flow.carbon_kg + 146.5);
  EXPECT_DOUBLE_EQ(l.Totals().market_carbon_kg(), r.market.market_carbon_kg + 146.5);
}

TEST(Contracts, OneEmissionFactorBasisPerRun) {
  Config c;
  c.sites.resize(2);
  c.sites[0].name = "x";
  c.sites[1].name = "y";
  std::vector<SiteSupplyTrace> sup(2);
  sup[0].carbon_column = "avg_CI";
  sup[1].carbon_column = "Carbon Intensity gCO₂eq/kWh (LCA)";
  auto mixed = ResolveBasis(c, sup);
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.status().message().find("one emission-factor basis"), std::string::npos);
  EXPECT_NE(mixed.status().message().find("'y'"), std::string::npos);
  sup[0].carbon_column = "Carbon Intensity gCO₂eq/kWh (LCA)";
  EXPECT_EQ(ResolveBasis(c, sup).value(), "life-cycle");
  sup[0].carbon_column = sup[1].carbon_column = "carbon_intensity";
  EXPECT_EQ(ResolveBasis(c, sup).value(), "direct");
  c.accounting.basis = "life-cycle";  // stated by the user: taken as given
  EXPECT_EQ(ResolveBasis(c, sup).value(), "life-cycle");
}

}  // namespace
}  // namespace gt
