#include "coordinator/run_outputs.h"

#include <sys/utsname.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace gt {

using json = nlohmann::json;

void Timeline::NameProcess(int pid, const std::string& name) {
  events_.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", pid}, {"tid", 0}, {"args", {{"name", name}}}});
}

void Timeline::NameThread(int pid, int tid, const std::string& name) {
  events_.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", pid}, {"tid", tid}, {"args", {{"name", name}}}});
}

void Timeline::Span(int pid, int tid, const std::string& name, const std::string& category, double start_s,
                    double dur_s, json args) {
  events_.push_back({{"ph", "X"}, {"name", name}, {"cat", category}, {"pid", pid}, {"tid", tid},
                     {"ts", std::llround(std::max(0.0, start_s) * 1e6)},
                     {"dur", std::llround(std::max(0.0, dur_s) * 1e6)}, {"args", std::move(args)}});
}

void Timeline::Instant(int pid, int tid, const std::string& name, const std::string& category, double at_s,
                       json args) {
  events_.push_back({{"ph", "i"}, {"s", "t"}, {"name", name}, {"cat", category}, {"pid", pid}, {"tid", tid},
                     {"ts", std::llround(std::max(0.0, at_s) * 1e6)}, {"args", std::move(args)}});
}

json Timeline::ToJson() const { return {{"traceEvents", events_}, {"displayTimeUnit", "ms"}}; }

Status Timeline::Write(const std::string& path) const {
  std::ofstream out(path);
  out << ToJson().dump() << "\n";
  out.close();
  if (!out) return IoError("cannot write the timeline '" + path + "'");
  return Status::Ok();
}

const std::vector<std::string>& CodeCarbonColumns() {
  static const std::vector<std::string> cols = {
      "timestamp",   "project_name",     "run_id",         "duration",    "emissions",  "emissions_rate",
      "cpu_power",   "gpu_power",        "ram_power",      "cpu_energy",  "gpu_energy", "ram_energy",
      "energy_consumed", "country_name", "country_iso_code", "region",    "cloud_provider", "cloud_region",
      "os",          "python_version",   "codecarbon_version", "cpu_count", "cpu_model", "gpu_count",
      "gpu_model",   "longitude",        "latitude",       "ram_total_size", "tracking_mode", "on_cloud",
      "pue"};
  return cols;
}

namespace {

// A CSV field: quoted when it holds a comma, quote or line break.
std::string Field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string Num(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

std::string OsName() {
  struct utsname u {};
  if (uname(&u) != 0) return "";
  return std::string(u.sysname) + "-" + u.release + "-" + u.machine;
}

}  // namespace

Status WriteEmissionsCsv(const std::string& path, const Config& config, const Ledger& ledger,
                         const EmissionsRunInfo& info) {
  std::ofstream out(path);
  const auto& cols = CodeCarbonColumns();
  for (size_t i = 0; i < cols.size(); ++i) out << (i ? "," : "") << cols[i];
  out << "\n";
  const auto by_site = ledger.TotalsBySite();
  const std::string os = OsName();
  for (size_t s = 0; s < config.sites.size(); ++s) {
    const SiteConfig& site = config.sites[s];
    auto it = by_site.find(site.name);
    if (it == by_site.end() || !(it->second.demand_mwh > 0)) continue;
    const LedgerTotals& t = it->second;
    const double dur = std::max(1e-9, info.duration_s);
    const double facility_kwh = t.demand_mwh * 1000.0;
    const double gpu_kwh = facility_kwh / site.pue;  // the ledger books GPU power x PUE
    const std::vector<std::string> row = {
        info.timestamp, info.project_name, info.run_id + "/" + site.name, Num(info.duration_s), Num(t.carbon_kg),
        Num(t.carbon_kg / dur),
        "0",                                   // cpu_power: host power is not modelled yet
        Num(gpu_kwh * 1000.0 * 3600.0 / dur),  // W
        "0", "0", Num(gpu_kwh), "0", Num(facility_kwh), "", "", site.name, "", "", os, "", "",
        Num(s < info.ranks.size() ? info.ranks[s] : 0), "", Num(s < info.gpus.size() ? info.gpus[s] : 0), site.gpu.type,
        "", "", "0", "machine", "N", Num(site.pue)};
    for (size_t i = 0; i < row.size(); ++i) out << (i ? "," : "") << Field(row[i]);
    out << "\n";
  }
  out.close();
  if (!out) return IoError("cannot write '" + path + "'");
  return Status::Ok();
}

}  // namespace gt
