// Prometheus metrics of a live run, served over HTTP (`greentrain run --metrics-port P`; GET
// /metrics, text exposition format 0.0.4) with cpp-httplib (Debian libcpp-httplib-dev, header-only)
// rather than a hand-written server. Names follow Prometheus conventions (base units, _total for
// counters, _ratio for fractions); docs/metrics.md lists them.
//
// Threads: the server answers on its own thread; Publish may be called from any thread and
// replaces the whole exposition atomically. The destructor stops the server.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace gt {

class MetricsServer {
 public:
  // Listens on host:port (port 0: any free port). Fails naming the address when it cannot bind.
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& host, int port);
  ~MetricsServer();
  int port() const;
  void Publish(std::string exposition);

  struct Impl;

 private:
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The exposition text of a live run's state: `status` is the coordinator's status snapshot
// (LiveCoordinator's status.json), `counters` {"steps", "actions": {kind: n}, "checkpoints",
// "last_checkpoint_s", "sites": {name: {"carbon_kg", "energy_mwh", "renewable_mw", "battery_mw",
// "grid_mw"}}}.
std::string PrometheusText(const nlohmann::json& status, const nlohmann::json& counters);

}  // namespace gt
