// Files a live run leaves for the tools operators already use (issue: the operator's view):
//  - Timeline: a Chrome trace-event file (<run_dir>/trace.json), which Perfetto (ui.perfetto.dev)
//    and chrome://tracing open: one process per site, one thread per rank (steps, checkpoint
//    writes) and a coordinator track (plan changes, pauses, recoveries, interval decisions).
//  - WriteEmissionsCsv: a CodeCarbon-compatible emissions.csv (CodeCarbon 2.x column names and
//    units: seconds, kg CO2eq, W, kWh), one row per site, so CodeCarbon dashboards read greentrain
//    runs. The figures are the modelled job's (the ledger), not the CPU box's.
// Threads: a Timeline is used from one thread (the coordinator's).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "common/status.h"
#include "energy/ledger.h"

namespace gt {

class Timeline {
 public:
  // Track ids: pid 0 is the coordinator; site s is pid s + 1; a rank's thread id is its rank.
  static int SitePid(int site) { return site + 1; }
  void NameProcess(int pid, const std::string& name);
  void NameThread(int pid, int tid, const std::string& name);
  // A span [start_s, start_s + dur_s) in seconds since the run began.
  void Span(int pid, int tid, const std::string& name, const std::string& category, double start_s, double dur_s,
            nlohmann::json args = nlohmann::json::object());
  // A moment.
  void Instant(int pid, int tid, const std::string& name, const std::string& category, double at_s,
               nlohmann::json args = nlohmann::json::object());
  size_t size() const { return events_.size(); }
  nlohmann::json ToJson() const;  // {"traceEvents": [...], "displayTimeUnit": "ms"}
  Status Write(const std::string& path) const;

 private:
  std::vector<nlohmann::json> events_;
};

// The CodeCarbon columns, in CodeCarbon's order.
const std::vector<std::string>& CodeCarbonColumns();

struct EmissionsRunInfo {
  std::string project_name;     // the config's name
  std::string run_id;           // the run directory's name
  std::string timestamp;        // ISO-8601 wall time of the end of the run
  double duration_s = 0;        // the modelled job's span (trace seconds)
  std::vector<int> ranks;       // live ranks per site (cpu_count)
  std::vector<int> gpus;        // modelled GPUs per site (the most the plan held)
};

// One row per site with any energy in `ledger`. Fails (naming the path) when it cannot write.
Status WriteEmissionsCsv(const std::string& path, const Config& config, const Ledger& ledger,
                         const EmissionsRunInfo& info);

}  // namespace gt
