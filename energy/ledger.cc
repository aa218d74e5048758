// Energy and carbon ledger (see ledger.h). CSV and JSON list rows by (time, site); both carry every
// PowerFlow field so that a reader can re-check the balance equations of power.h.
#include "energy/ledger.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "common/csv.h"

namespace gt {
namespace {

void Accumulate(LedgerTotals& t, const LedgerRow& r) {
  const PowerFlow& f = r.flow;
  t.demand_mwh += f.demand_mwh;
  t.renewable_used_mwh += f.renewable_used_mwh;
  t.battery_discharge_mwh += f.battery_discharge_mwh;
  t.battery_charge_mwh += f.battery_charge_mwh;
  t.battery_loss_mwh += f.battery_loss_mwh;
  t.grid_mwh += f.grid_mwh;
  t.unmet_mwh += f.unmet_mwh;
  t.curtailed_mwh += f.curtailed_mwh;
  t.carbon_kg += f.carbon_kg + r.load.wan_carbon_kg + r.market.onsite_carbon_kg;
  t.cost += f.cost;
  t.work_steps += r.work_steps;
  t.load.Add(r.load);
  t.market.Add(r.market);
  t.gpu_hours_busy = t.load.busy_gpu_hours;
  t.gpu_hours_idle = t.load.idle_gpu_hours;
}

// The LoadBreakdown fields of a ledger row and its totals, by their CSV/JSON names.
const std::pair<const char*, double LoadBreakdown::*> kLoadFields[] = {
    {"gpu_busy_mwh", &LoadBreakdown::gpu_busy_mwh},
    {"gpu_idle_mwh", &LoadBreakdown::gpu_idle_mwh},
    {"host_mwh", &LoadBreakdown::host_mwh},
    {"transition_mwh", &LoadBreakdown::transition_mwh},
    {"pue_overhead_mwh", &LoadBreakdown::pue_overhead_mwh},
    {"busy_gpu_hours", &LoadBreakdown::busy_gpu_hours},
    {"idle_gpu_hours", &LoadBreakdown::idle_gpu_hours},
    {"wan_gb", &LoadBreakdown::wan_gb},
    {"wan_mwh", &LoadBreakdown::wan_mwh},
    {"wan_carbon_kg", &LoadBreakdown::wan_carbon_kg}};

// The MarketBooking fields, by their CSV/JSON names. `summed_in_totals`: printed among the totals as
// the sum (not the intensities, nor the two carbon figures the totals give whole, with the WAN and
// on-site terms). `additive`: a quantity (MWh, kg) that totals add up; false for the intensities.
struct MarketField {
  const char* name;
  double MarketBooking::*field;
  bool summed_in_totals;
  bool additive;
};
const MarketField kMarketFields[] = {
    {"ppa_mwh", &MarketBooking::ppa_mwh, true, true},
    {"ppa_used_mwh", &MarketBooking::ppa_used_mwh, true, true},
    {"certificates_mwh", &MarketBooking::certificates_mwh, true, true},
    {"annual_certificates_mwh", &MarketBooking::annual_certificates_mwh, true, true},
    {"residual_mwh", &MarketBooking::residual_mwh, true, true},
    {"residual_g_per_kwh", &MarketBooking::residual_g_per_kwh, false, false},
    {"market_carbon_kg", &MarketBooking::market_carbon_kg, false, true},
    {"cfe_mwh", &MarketBooking::cfe_mwh, true, true},
    {"onsite_carbon_kg", &MarketBooking::onsite_carbon_kg, true, true},
    {"marginal_g_per_kwh", &MarketBooking::marginal_g_per_kwh, false, false},
    {"marginal_carbon_kg", &MarketBooking::marginal_carbon_kg, false, true}};

nlohmann::json TotalsJson(const LedgerTotals& t) {
  return {{"demand_mwh", t.demand_mwh},
          {"renewable_used_mwh", t.renewable_used_mwh},
          {"battery_discharge_mwh", t.battery_discharge_mwh},
          {"battery_charge_mwh", t.battery_charge_mwh},
          {"battery_loss_mwh", t.battery_loss_mwh},
          {"grid_mwh", t.grid_mwh},
          {"unmet_mwh", t.unmet_mwh},
          {"curtailed_mwh", t.curtailed_mwh},
          {"carbon_kg", t.carbon_kg},
          {"cost", t.cost},
          {"work_steps", t.work_steps},
          {"gpu_hours_busy", t.gpu_hours_busy},
          {"gpu_hours_idle", t.gpu_hours_idle},
          {"renewable_share", t.renewable_share()},
          {"battery_change_mwh", t.battery_change_mwh},
          {"battery_drawdown_kg", t.battery_drawdown_kg},
          {"carbon_reconciled_kg", t.carbon_reconciled_kg()}};
}

nlohmann::json TotalsWithLoad(const LedgerTotals& t) {
  nlohmann::json j = TotalsJson(t);
  j.update(LoadJson(t.load));
  for (const auto& [name, field, summed, additive] : kMarketFields)
    if (summed) j[name] = t.market.*field;
  j["market_carbon_kg"] = t.market_carbon_kg();
  j["marginal_carbon_kg"] = t.marginal_carbon_kg();
  j["cfe_score"] = t.cfe_score();
  return j;
}

// JSON numbers must be finite; a non-finite value (which Dispatch never produces) becomes null.
// The PowerFlow fields of a ledger row, by their JSON names (ToJson and FromJson).
const std::pair<const char*, double PowerFlow::*> kFlowFields[] = {
    {"demand_mwh", &PowerFlow::demand_mwh},
    {"renewable_available_mwh", &PowerFlow::renewable_available_mwh},
    {"renewable_used_mwh", &PowerFlow::renewable_used_mwh},
    {"battery_charge_mwh", &PowerFlow::battery_charge_mwh},
    {"battery_discharge_mwh", &PowerFlow::battery_discharge_mwh},
    {"battery_loss_mwh", &PowerFlow::battery_loss_mwh},
    {"grid_mwh", &PowerFlow::grid_mwh},
    {"unmet_mwh", &PowerFlow::unmet_mwh},
    {"curtailed_mwh", &PowerFlow::curtailed_mwh},
    {"soc_before_mwh", &PowerFlow::soc_before_mwh},
    {"soc_after_mwh", &PowerFlow::soc_after_mwh},
    {"carbon_kg", &PowerFlow::carbon_kg},
    {"cost", &PowerFlow::cost}};

nlohmann::json Num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

const char* kCsvHeader =
    "time,site,hours,busy_gpus,idle_gpus,work_steps,carbon_g_per_kwh,demand_mwh,renewable_available_mwh,"
    "renewable_used_mwh,battery_charge_mwh,battery_discharge_mwh,battery_loss_mwh,grid_mwh,unmet_mwh,"
    "curtailed_mwh,soc_before_mwh,soc_after_mwh,carbon_kg,cost,gpu_busy_mwh,gpu_idle_mwh,host_mwh,"
    "transition_mwh,pue_overhead_mwh,busy_gpu_hours,idle_gpu_hours,wan_gb,wan_mwh,wan_carbon_kg,ppa_mwh,"
    "ppa_used_mwh,certificates_mwh,annual_certificates_mwh,residual_mwh,residual_g_per_kwh,market_carbon_kg,"
    "cfe_mwh,onsite_carbon_kg,marginal_g_per_kwh,marginal_carbon_kg";

std::string Fmt(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.12g", v);
  return buf;
}

}  // namespace

void MarketBooking::Add(const MarketBooking& o) {
  for (const auto& f : kMarketFields)
    if (f.additive) this->*f.field += o.*f.field;
}

nlohmann::json MarketJson(const MarketBooking& market) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& f : kMarketFields)
    if (f.additive) j[f.name] = Num(market.*f.field);
  return j;
}

nlohmann::json LoadJson(const LoadBreakdown& load) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, field] : kLoadFields) j[name] = Num(load.*field);
  return j;
}

Status Ledger::Add(LedgerRow&& row) {
  if (row.site.empty()) return InvalidArgument("ledger row at " + FormatIsoTime(row.time) + " has no site name");
  if (!(row.hours > 0) || !std::isfinite(row.hours))
    return InvalidArgument("ledger row for site '" + row.site + "' at " + FormatIsoTime(row.time) +
                           ": hours must be > 0, got " + Fmt(row.hours));
  auto site = times_.find(row.site);
  if (site == times_.end()) site = times_.emplace(row.site, std::vector<UnixSeconds>{}).first;
  std::vector<UnixSeconds>& times = site->second;
  auto at = times.empty() || times.back() < row.time ? times.end()
                                                      : std::lower_bound(times.begin(), times.end(), row.time);
  if (at != times.end() && *at == row.time)
    return InvalidArgument("ledger already has a row for site '" + row.site + "' at " + FormatIsoTime(row.time) +
                           "; each (site, interval) may be recorded once");
  times.insert(at, row.time);
  rows_.push_back(std::move(row));
  return Status::Ok();
}

std::map<std::string, LedgerTotals> Ledger::TotalsBySite() const {
  std::map<std::string, LedgerTotals> m;
  // The battery's books per site, in one pass: a site has one row per time (Add refuses a
  // duplicate), so its earliest row holds the starting charge and its latest the final one.
  struct Books {
    const LedgerRow* first = nullptr;
    const LedgerRow* last = nullptr;
    double ci_sum = 0;
    size_t n = 0;
  };
  std::map<std::string, Books> books;
  for (const LedgerRow& r : rows_) {
    Accumulate(m[r.site], r);
    Books& b = books[r.site];
    if (!b.first || r.time < b.first->time) b.first = &r;
    if (!b.last || r.time > b.last->time) b.last = &r;
    b.ci_sum += r.carbon_g_per_kwh;
    ++b.n;
  }
  for (auto& [site, t] : m) {
    const Books& b = books[site];
    t.battery_change_mwh = b.last->flow.soc_after_mwh - b.first->flow.soc_before_mwh;
    // MWh x g/kWh = kg.
    if (t.battery_change_mwh < 0) t.battery_drawdown_kg = -t.battery_change_mwh * b.ci_sum / static_cast<double>(b.n);
  }
  return m;
}

LedgerTotals Ledger::Totals() const {
  LedgerTotals t;
  for (const LedgerRow& r : rows_) Accumulate(t, r);
  for (const auto& [site, s] : TotalsBySite()) {
    t.battery_change_mwh += s.battery_change_mwh;
    t.battery_drawdown_kg += s.battery_drawdown_kg;
  }
  return t;
}

double Ledger::MaxImbalanceMwh() const {
  double worst = 0;
  for (const LedgerRow& r : rows_) {
    const PowerFlow& f = r.flow;
    double supply = f.renewable_available_mwh - f.renewable_used_mwh - f.battery_charge_mwh - f.curtailed_mwh;
    double demand = f.demand_mwh - f.renewable_used_mwh - f.battery_discharge_mwh - f.grid_mwh - f.unmet_mwh;
    double soc = f.soc_after_mwh -
                 (f.soc_before_mwh + f.battery_charge_mwh - f.battery_loss_mwh - f.battery_discharge_mwh);
    for (double d : {supply, demand, soc}) {
      if (!std::isfinite(d)) return INFINITY;
      worst = std::max(worst, std::fabs(d));
    }
  }
  return worst;
}

namespace {

std::vector<size_t> TimeOrder(const std::vector<LedgerRow>& rows) {
  std::vector<size_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (rows[a].time != rows[b].time) return rows[a].time < rows[b].time;
    return rows[a].site < rows[b].site;
  });
  return order;
}

Status WriteFile(const std::string& path, const std::string& text, const char* what) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return IoError(std::string("cannot open ") + what + " output '" + path + "' for writing");
  out << text;
  out.close();
  if (!out) return IoError(std::string("writing ") + what + " output '" + path + "' failed (disk full?)");
  return Status::Ok();
}

}  // namespace

Status Ledger::WriteCsv(const std::string& path) const {
  std::string text = std::string(kCsvHeader) + "\n";
  for (size_t i : TimeOrder(rows_)) {
    const LedgerRow& r = rows_[i];
    const PowerFlow& f = r.flow;
    text += FormatIsoTime(r.time) + "," + CsvEscape(r.site) + "," + Fmt(r.hours) + "," +
            std::to_string(r.busy_gpus) + "," + std::to_string(r.idle_gpus) + "," + Fmt(r.work_steps) + "," +
            Fmt(r.carbon_g_per_kwh);
    for (double v : {f.demand_mwh, f.renewable_available_mwh, f.renewable_used_mwh, f.battery_charge_mwh,
                     f.battery_discharge_mwh, f.battery_loss_mwh, f.grid_mwh, f.unmet_mwh, f.curtailed_mwh,
                     f.soc_before_mwh, f.soc_after_mwh, f.carbon_kg, f.cost})
      text += "," + Fmt(v);
    for (const auto& [name, field] : kLoadFields) text += "," + Fmt(r.load.*field);
    for (const auto& [name, field, summed, additive] : kMarketFields) text += "," + Fmt(r.market.*field);
    text += "\n";
  }
  return WriteFile(path, text, "ledger CSV");
}

nlohmann::json Ledger::ToJson() const {
  nlohmann::json rows = nlohmann::json::array();
  for (size_t i : TimeOrder(rows_)) {
    const LedgerRow& r = rows_[i];
    const PowerFlow& f = r.flow;
    rows.push_back({{"time", FormatIsoTime(r.time)},
                    {"site", r.site},
                    {"hours", Num(r.hours)},
                    {"busy_gpus", r.busy_gpus},
                    {"idle_gpus", r.idle_gpus},
                    {"work_steps", Num(r.work_steps)},
                    {"carbon_g_per_kwh", Num(r.carbon_g_per_kwh)}});
    for (const auto& [name, field] : kFlowFields) rows.back()[name] = Num(f.*field);
    for (const auto& [name, field] : kLoadFields) rows.back()[name] = Num(r.load.*field);
    for (const auto& [name, field, summed, additive] : kMarketFields) rows.back()[name] = Num(r.market.*field);
  }
  nlohmann::json sites = nlohmann::json::object();
  for (const auto& [name, t] : TotalsBySite()) sites[name] = TotalsWithLoad(t);
  return {{"rows", std::move(rows)}, {"totals", TotalsWithLoad(Totals())}, {"sites", std::move(sites)}};
}

Result<Ledger> Ledger::FromJson(const nlohmann::json& j) {
  Ledger l;
  if (!j.is_object() || !j.contains("rows") || !j["rows"].is_array())
    return ParseError("ledger JSON: no \"rows\" array");
  size_t n = 0;
  for (const auto& r : j["rows"]) {
    LedgerRow row;
    try {
      ASSIGN_OR_RETURN(row.time, ParseIsoTime(r.at("time").get<std::string>()));
      row.site = r.at("site").get<std::string>();
      auto num = [&r](const char* k) { return r.at(k).is_null() ? std::nan("") : r.at(k).get<double>(); };
      row.hours = num("hours");
      row.busy_gpus = r.at("busy_gpus").get<int>();
      row.idle_gpus = r.at("idle_gpus").get<int>();
      row.work_steps = num("work_steps");
      row.carbon_g_per_kwh = num("carbon_g_per_kwh");
      for (const auto& [name, field] : kFlowFields) row.flow.*field = num(name);
      // Ledgers saved before the load columns existed have none: they read as 0.
      for (const auto& [name, field] : kLoadFields) row.load.*field = r.contains(name) ? num(name) : 0.0;
      for (const auto& [name, field, summed, additive] : kMarketFields) row.market.*field = r.contains(name) ? num(name) : 0.0;
    } catch (const nlohmann::json::exception& e) {
      return ParseError("ledger JSON row " + std::to_string(n) + ": " + e.what());
    }
    RETURN_IF_ERROR(l.Add(row).WithContext("ledger JSON row " + std::to_string(n)));
    ++n;
  }
  return l;
}

Status Ledger::WriteJson(const std::string& path) const {
  std::string text;
  try {
    text = ToJson().dump(2) + "\n";
  } catch (const nlohmann::json::exception& e) {
    return Internal(std::string("ledger JSON serialisation failed: ") + e.what());
  }
  return WriteFile(path, text, "ledger JSON");
}

}  // namespace gt
