#include "coordinator/metrics.h"

#include <mutex>
#include <sstream>
#include <thread>

#include <httplib.h>

namespace gt {

struct MetricsServer::Impl {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex mu;
  std::string text = "# no metrics yet\n";
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& host, int port) {
  auto impl = std::make_unique<Impl>();
  Impl* raw = impl.get();
  raw->server.Get("/metrics", [raw](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(raw->mu);
    res.set_content(raw->text, "text/plain; version=0.0.4; charset=utf-8");
  });
  raw->port = port == 0 ? raw->server.bind_to_any_port(host) : (raw->server.bind_to_port(host, port) ? port : -1);
  if (raw->port <= 0)
    return Unavailable("metrics: cannot listen on " + host + ":" + std::to_string(port) +
                       " (port in use, or not a local address?)");
  raw->thread = std::thread([raw] { raw->server.listen_after_bind(); });
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int MetricsServer::port() const { return impl_->port; }

void MetricsServer::Publish(std::string exposition) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->text = std::move(exposition);
}

namespace {

// A label value escaped for the exposition format.
std::string Label(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

class Writer {
 public:
  void Family(const std::string& name, const std::string& type, const std::string& help) {
    os_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  }
  void Sample(const std::string& name, double v, const std::string& labels = "") {
    os_ << name << (labels.empty() ? "" : "{" + labels + "}") << " " << v << "\n";
  }
  std::string str() const { return os_.str(); }

 private:
  std::ostringstream os_;
};

}  // namespace

std::string PrometheusText(const nlohmann::json& st, const nlohmann::json& c) {
  Writer w;
  const nlohmann::json none = nlohmann::json::object();
  const nlohmann::json& sites = c.contains("sites") ? c["sites"] : none;
  const nlohmann::json& socs = st.contains("battery_soc") ? st["battery_soc"] : none;
  const nlohmann::json& actions = c.contains("actions") ? c["actions"] : none;
  w.Family("greentrain_steps_total", "counter", "Optimizer steps completed.");
  w.Sample("greentrain_steps_total", c.value("steps", 0.0));
  w.Family("greentrain_steps_target", "gauge", "The step the run trains until.");
  w.Sample("greentrain_steps_target", st.value("end_step", 0.0));
  if (st.contains("loss")) {
    w.Family("greentrain_loss", "gauge", "Training loss of the last completed step.");
    w.Sample("greentrain_loss", st.value("loss", 0.0));
  }
  w.Family("greentrain_tokens_per_second", "gauge", "Training throughput (0 while paused).");
  w.Sample("greentrain_tokens_per_second", st.value("tokens_per_s", 0.0));
  w.Family("greentrain_running", "gauge", "1 while the plan trains, 0 while it pauses.");
  w.Sample("greentrain_running", st.value("pipeline", std::string("paused")) == "paused" ? 0 : 1);
  w.Family("greentrain_green_share_ratio", "gauge", "Share of the energy so far met by renewables or battery.");
  w.Sample("greentrain_green_share_ratio", st.value("green_share", 0.0));
  w.Family("greentrain_energy_megawatt_hours_total", "counter", "Modelled facility energy so far, per site.");
  for (const auto& [site, v] : sites.items())
    w.Sample("greentrain_energy_megawatt_hours_total", v.value("energy_mwh", 0.0), "site=\"" + Label(site) + "\"");
  w.Family("greentrain_carbon_kilograms_total", "counter", "Modelled grid carbon so far, per site (location-based).");
  for (const auto& [site, v] : sites.items())
    w.Sample("greentrain_carbon_kilograms_total", v.value("carbon_kg", 0.0), "site=\"" + Label(site) + "\"");
  w.Family("greentrain_site_power_megawatts", "gauge", "Power drawn in the last booked interval, per site and source.");
  for (const auto& [site, v] : sites.items())
    for (const char* src : {"renewable", "battery", "grid"})
      w.Sample("greentrain_site_power_megawatts", v.value(std::string(src) + "_mw", 0.0),
               "site=\"" + Label(site) + "\",source=\"" + src + "\"");
  w.Family("greentrain_battery_state_of_charge_ratio", "gauge", "Battery state of charge over its capacity, per site.");
  for (const auto& [site, v] : socs.items())
    w.Sample("greentrain_battery_state_of_charge_ratio", v.get<double>(), "site=\"" + Label(site) + "\"");
  w.Family("greentrain_actions_total", "counter", "Plan changes carried out live, by kind.");
  for (const auto& [kind, n] : actions.items())
    w.Sample("greentrain_actions_total", n.get<double>(), "kind=\"" + Label(kind) + "\"");
  w.Family("greentrain_checkpoints_total", "counter", "Checkpoints committed.");
  w.Sample("greentrain_checkpoints_total", c.value("checkpoints", 0.0));
  w.Family("greentrain_checkpoint_seconds", "gauge", "Wall time of the last committed checkpoint.");
  w.Sample("greentrain_checkpoint_seconds", c.value("last_checkpoint_s", 0.0));
  if (st.contains("hours_to_spare")) {
    w.Family("greentrain_deadline_slack_seconds", "gauge", "Trace time between the estimated end and the deadline.");
    w.Sample("greentrain_deadline_slack_seconds", 3600 * st.value("hours_to_spare", 0.0));
  }
  return w.str();
}

}  // namespace gt
