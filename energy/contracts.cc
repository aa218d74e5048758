#include "energy/contracts.h"

#include <algorithm>
#include <cctype>

namespace gt {

void BookMarket(const SiteConfig& site, const AccountingConfig& accounting, bool life_cycle,
                const SiteSupply& supply, LedgerRow& row, double* annual_left_mwh) {
  const ContractConfig& c = site.contracts;
  const PowerFlow& f = row.flow;
  MarketBooking m;
  double rest = std::max(0.0, f.grid_mwh);
  m.ppa_mwh = std::max(0.0, supply.ppa_mw) * row.hours;
  m.ppa_used_mwh = std::min(rest, m.ppa_mwh);
  rest -= m.ppa_used_mwh;
  m.certificates_mwh = std::min(rest, std::max(0.0, c.certificates_mw) * row.hours);
  rest -= m.certificates_mwh;
  if (annual_left_mwh) {
    m.annual_certificates_mwh = std::min(rest, std::max(0.0, *annual_left_mwh));
    *annual_left_mwh -= m.annual_certificates_mwh;
    rest -= m.annual_certificates_mwh;
  }
  m.residual_mwh = rest;
  m.residual_g_per_kwh = c.residual_mix_g_per_kwh >= 0 ? c.residual_mix_g_per_kwh : row.carbon_g_per_kwh;
  m.market_carbon_kg = m.residual_mwh * m.residual_g_per_kwh;  // MWh x g/kWh = kg
  // 24/7: only supply present in the same interval counts (certificates do not).
  m.cfe_mwh = std::min(f.demand_mwh, f.renewable_used_mwh + f.battery_discharge_mwh + m.ppa_mwh);
  m.marginal_g_per_kwh = supply.marginal_g_per_kwh >= 0 ? supply.marginal_g_per_kwh : row.carbon_g_per_kwh;
  m.marginal_carbon_kg = std::max(0.0, f.grid_mwh) * m.marginal_g_per_kwh;
  if (life_cycle) {
    const double solar_share =
        supply.renewable_mw > 0 ? std::clamp(supply.solar_mw / supply.renewable_mw, 0.0, 1.0) : 0.0;
    const double generated = f.renewable_used_mwh + f.battery_charge_mwh;  // taken from on-site generation
    m.onsite_carbon_kg = generated * (solar_share * accounting.solar_lifecycle_g_per_kwh +
                                      (1 - solar_share) * accounting.wind_lifecycle_g_per_kwh) +
                         f.battery_discharge_mwh * accounting.battery_lifecycle_g_per_kwh;
  }
  row.market = m;
}

double AnnualCertificatesLeft(const SiteConfig& site, const Ledger& ledger) {
  if (!(site.contracts.certificates_mwh > 0)) return 0;  // no pool: no scan of the ledger
  double used = 0;
  for (const LedgerRow& r : ledger.rows())
    if (r.site == site.name) used += r.market.annual_certificates_mwh;
  return std::max(0.0, site.contracts.certificates_mwh - used);
}

bool IsLifeCycleColumn(const std::string& column) {
  std::string lower;
  for (char ch : column) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return lower.find("(lca)") != std::string::npos || lower.find("lifecycle") != std::string::npos ||
         lower.find("life-cycle") != std::string::npos;
}

Result<std::string> ResolveBasis(const Config& config, const std::vector<SiteSupplyTrace>& supply) {
  if (config.accounting.basis != "auto") return config.accounting.basis;
  std::string basis, first_site;
  for (size_t s = 0; s < supply.size() && s < config.sites.size(); ++s) {
    const std::string b = IsLifeCycleColumn(supply[s].carbon_column) ? "life-cycle" : "direct";
    if (basis.empty()) {
      basis = b;
      first_site = config.sites[s].name;
    } else if (b != basis) {
      return InvalidArgument("accounting: site '" + first_site + "' has a " + basis + " grid intensity and site '" +
                             config.sites[s].name + "' a " + b + " one (column '" + supply[s].carbon_column +
                             "'); one emission-factor basis per run: name the same kind of column for every site "
                             "(Electricity Maps: 'Carbon Intensity gCO₂eq/kWh (direct)') or set accounting.basis");
    }
  }
  return basis.empty() ? std::string("direct") : basis;
}

}  // namespace gt
