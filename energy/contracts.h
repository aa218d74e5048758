// Market-based carbon (GHG Protocol Scope 2), the hourly carbon-free-energy score and the run's
// emission-factor basis, booked per ledger row by both drivers (docs/accounting.md, section 3).
//
// Contract: BookMarket is a pure function of the row's dispatched flow, the interval's supply (PPA
// power, the solar share of on-site generation) and the site's contracts; it never changes the
// location-based figures. Instruments are applied in this order to the row's grid energy: the PPA's
// energy of the same interval, hourly-matched certificates, then the annual pool (in the order the
// rows are booked); what is left is charged at the residual mix (else the grid average).
// Thread-safety: free functions.
#pragma once

#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "energy/ledger.h"
#include "energy/power.h"

namespace gt {

// Fills row.market from row.flow, row.hours and row.carbon_g_per_kwh. `annual_left_mwh` is the part
// of the site's annual certificates not yet applied; it is reduced by what this row uses.
// `life_cycle`: charge on-site generation and battery discharge their life-cycle factors.
void BookMarket(const SiteConfig& site, const AccountingConfig& accounting, bool life_cycle,
                const SiteSupply& supply, LedgerRow& row, double* annual_left_mwh);

// The annual certificates of `site` left after the rows `ledger` holds for it.
double AnnualCertificatesLeft(const SiteConfig& site, const Ledger& ledger);

// True for a grid intensity column of life-cycle factors (Electricity Maps' "... (LCA)").
bool IsLifeCycleColumn(const std::string& column);

// The run's emission-factor basis, "direct" or "life-cycle": accounting.basis, or with "auto" the
// grid traces' (every site's must agree; the error names the sites and what to do).
Result<std::string> ResolveBasis(const Config& config, const std::vector<SiteSupplyTrace>& supply);

}  // namespace gt
