#include "tests/live/fake_workers.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <optional>

#include "common/log.h"
#include "comms/transport.h"
#include "coordinator/protocol.h"

namespace gt::testing {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

// A clock that reads a FakeClock shared with the ModelledTime that drives it.
class SharedClock final : public Clock {
 public:
  explicit SharedClock(std::shared_ptr<FakeClock> c) : c_(std::move(c)) {}
  UnixSeconds Now() const override { return c_->Now(); }
  void SleepUntil(UnixSeconds t) override { c_->SleepUntil(t); }

 private:
  std::shared_ptr<FakeClock> c_;
};

// One rank's side of the protocol.
struct Rank {
  int rank = 0, size = 0;
  std::string site;
  std::unique_ptr<Transport> t;
  int64_t epoch = 0;
  bool stage = false, running = false, hung = false, end_written = false;
  int stage_index = 0, replica = 0, num_stages = 1;
  int64_t next = 0, end = 0, allowed = 0;
  std::optional<int64_t> halt_at;
  std::map<int64_t, std::string> checkpoints;  // step -> dir

  bool Send(json body) {
    body["rank"] = rank;
    body["epoch"] = epoch;
    return t->SendControl("coordinator", body).ok();
  }
};

}  // namespace

FakeWorkers::FakeWorkers(Options options) : opt_(std::move(options)) {
  const int size = live::TotalRanks(opt_.config);
  for (int r = 0; r < size; ++r) threads_.emplace_back([this, r] { RunRank(r); });
}

FakeWorkers::~FakeWorkers() {
  quit_ = true;
  Join();
}

void FakeWorkers::Join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

void FakeWorkers::RunRank(int r) {
  Rank k;
  k.rank = r;
  k.size = live::TotalRanks(opt_.config);
  auto site = live::SiteForRank(opt_.config, r, "fakehost");
  if (!site.ok()) return;
  k.site = opt_.config.sites[*site].name;
  TransportOptions to;
  to.name = "fake" + std::to_string(r);
  to.bind_endpoint = "tcp://127.0.0.1:*";
  to.plaintext = true;
  to.linger = milliseconds(500);
  auto t = Transport::Create(to);
  if (!t.ok()) {
    GT_WARN("fake", "rank " << r << ": " << t.status().ToString());
    return;
  }
  k.t = std::move(*t);
  Status st = k.t->Connect("coordinator", opt_.coordinator_endpoint, "");
  if (st.ok()) st = k.t->WaitConnected("coordinator", milliseconds(20000));
  if (!st.ok()) {
    GT_WARN("fake", "rank " << r << " cannot reach the coordinator: " << st.ToString());
    return;
  }
  k.Send({{"type", live::kRegister}, {"size", k.size}, {"site", k.site}, {"host", "fakehost"},
          {"control_endpoint", k.t->endpoint()}, {"data_key", ""}});
  const std::string data_endpoint = "tcp://127.0.0.1:9";  // never used: fakes exchange no tensors
  auto last_heartbeat = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> dead_since;
  while (!quit_) {
    const auto now = std::chrono::steady_clock::now();
    if (dead_since) {
      if (opt_.revive_after_s < 0) return;  // killed: its connections close
      const bool revive = opt_.revive_after_s >= 0 &&
                          now - *dead_since > std::chrono::duration<double>(opt_.revive_after_s);
      if (!revive) {
        std::this_thread::sleep_for(milliseconds(5));
        continue;  // nothing is read or sent: its queue waits, as a stopped process's would
      }
      dead_since.reset();
      k.hung = false;
    }
    if (!k.hung && now - last_heartbeat > milliseconds(1000)) {
      k.Send({{"type", live::kHeartbeat}});
      last_heartbeat = now;
    }
    // Commands first (all that are queued), then at most one step.
    auto m = k.t->Receive(milliseconds(k.running ? 0 : 5));
    if (m.ok()) {
      const json& c = m->control;
      const std::string type = c.value("type", "");
      if (type == live::kStop) return;
      if (k.hung) continue;
      if (type == live::kAssign) {
        k.epoch = c.value("epoch", int64_t{0});
        if (k.rank == opt_.hang_rank && k.epoch >= opt_.hang_from_epoch && opt_.hang_from_epoch >= 0) {
          k.hung = true;
          continue;
        }
        k.stage = c.value("role", "") == "stage";
        k.running = false;
        k.halt_at.reset();
        k.checkpoints.clear();
        k.end_written = false;
        if (!k.stage) continue;
        k.stage_index = c.value("stage", 0);
        k.replica = c.value("replica", 0);
        k.num_stages = c.value("num_stages", 1);
        k.next = c.value("start_step", int64_t{0});
        k.end = c.value("end_step", int64_t{0});
        const json from = c.value("state_from", json::array());
        if (!from.empty()) k.Send({{"type", live::kReceiving}, {"data_endpoint", data_endpoint}});
        const bool fresh = c.value("resume_dir", std::string()).empty() && k.next == 0;
        k.Send({{"type", live::kReady}, {"data_endpoint", data_endpoint}, {"next_step", k.next},
                {"state_via", !from.empty() ? "peers" : fresh ? "fresh" : "memory"}, {"state_bytes", 0},
                {"state_s", 0.0}});
        continue;
      }
      if (c.value("epoch", int64_t{-1}) != k.epoch) continue;  // stale
      if (type == live::kStart) {
        k.running = true;
        k.next = c.value("start_step", k.next);
        k.allowed = c.value("allowed", k.end);
      } else if (type == live::kAllow) {
        k.allowed = std::max(k.allowed, c.value("until", int64_t{0}));
      } else if (type == live::kHalt) {
        k.halt_at = c.value("step", int64_t{0});
      } else if (type == live::kCheckpoint) {
        k.checkpoints[c.value("step", int64_t{0})] = c.value("dir", std::string());
      } else if (type == live::kAbort) {
        if (k.running) k.Send({{"type", live::kLeft}, {"held_step", k.next}});
        k.running = false;
        k.stage = false;
      }
      continue;
    }
    if (!k.running || k.hung) continue;
    if (k.rank == opt_.die_rank && k.next == opt_.die_at_step && !dead_since && opt_.die_at_step >= 0) {
      dead_since = std::chrono::steady_clock::now();
      opt_.die_at_step = -1;  // once
      k.hung = true;
      continue;
    }
    // At the boundary before step k.next.
    for (auto it = k.checkpoints.begin(); it != k.checkpoints.end() && it->first < k.next;) {
      k.Send({{"type", live::kCheckpointFailed}, {"step", it->first}, {"message", "boundary passed"}});
      it = k.checkpoints.erase(it);
    }
    auto due = k.checkpoints.find(k.next);
    if (due != k.checkpoints.end()) {
      k.Send({{"type", live::kCheckpointWritten}, {"step", k.next}, {"dir", due->second}, {"files", json::array()},
              {"bytes", 0}, {"snapshot_s", 0.0}, {"write_s", 0.0}});
      k.end_written |= k.next == k.end;
      k.checkpoints.erase(due);
    }
    if (k.halt_at && k.next >= *k.halt_at) {
      k.Send({{"type", live::kHalted}, {"step", k.next}});
      k.running = false;
      continue;
    }
    if (k.next >= k.end) {
      if (k.end_written) {  // the final state is saved before done (as a worker does)
        k.Send({{"type", live::kDone}, {"next_step", k.end}});
        k.running = false;
      }
      continue;
    }
    if (k.next >= k.allowed) {
      std::this_thread::sleep_for(milliseconds(1));
      continue;
    }
    const double compute = opt_.compute_seconds ? opt_.compute_seconds() : 0.01;
    k.Send({{"type", live::kStep}, {"stage", k.stage_index}, {"replica", k.replica}, {"step", k.next},
            {"loss", 5.0 / (1.0 + 0.01 * static_cast<double>(k.next))}, {"compute_s", compute},
            {"wall_s", compute}, {"allreduce_s", 0.0}});
    ++steps_;
    ++k.next;
  }
}

ModelledTime::ModelledTime(const Config& config, int64_t live_steps)
    : config_(config), live_steps_(live_steps), clock_(std::make_shared<FakeClock>(0)) {}

std::unique_ptr<Clock> ModelledTime::MakeClock(UnixSeconds trace_start) {
  std::lock_guard<std::mutex> lock(mu_);
  origin_ = trace_start;
  now_ = static_cast<double>(trace_start);
  clock_ = std::make_shared<FakeClock>(trace_start);
  return std::make_unique<SharedClock>(clock_);
}

void ModelledTime::Set(double t) {
  now_ = std::max(now_, t);
  clock_->SleepUntil(static_cast<UnixSeconds>(std::floor(now_ + 1e-6)));
}

double ModelledTime::StepWallSeconds() const {
  const double sph = steps_per_hour_.load();
  if (!(sph > 0)) return 0.01;
  const double hours = config_.job.steps / (static_cast<double>(live_steps_) * sph);
  return hours * config_.runtime.wall_seconds_per_trace_hour;
}

void ModelledTime::Observe(const json& e) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string kind = e.value("event", "");
  const double interval = config_.interval_seconds;
  if (kind == "interval") {
    paused_ = e.value("paused", false);
    if (!paused_) steps_per_hour_ = e.value("steps_per_hour", 0.0);
    decisions_.emplace_back(e.value("time", UnixSeconds{0}), e.value("plan", std::string()));
  } else if (kind == "reconfigure") {
    Set(now_ + 3600.0 * e.value("overhead_hours", 0.0));
  } else if (kind == "step") {
    const double sph = steps_per_hour_.load();
    if (sph > 0) Set(now_ + 3600.0 * config_.job.steps / (static_cast<double>(live_steps_) * sph));
  } else if (kind == "waiting" && paused_) {
    const double k = std::floor((now_ - static_cast<double>(origin_)) / interval + 1e-9) + 1;
    Set(static_cast<double>(origin_) + k * interval);
  }
}

std::vector<std::pair<UnixSeconds, std::string>> ModelledTime::decisions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return decisions_;
}

json LiveTestConfig(const std::string& source_dir, const std::vector<int>& ranks, const std::string& dir) {
  namespace fs = std::filesystem;
  std::ifstream in(source_dir + "/launch/configs/default.json");
  std::stringstream ss;
  ss << in.rdbuf();
  json cfg = json::parse(ss.str());
  json sites = json::array();
  for (size_t s = 0; s < ranks.size(); ++s) {
    json site = cfg["sites"][s];
    for (const char* k : {"wind", "solar", "carbon"})
      if (site.contains(k))
        site[k]["file"] =
            (fs::path(source_dir) / "launch/configs" / site[k]["file"].get<std::string>()).lexically_normal().string();
    site["ranks"] = ranks[s];
    sites.push_back(site);
  }
  json links = json::array();
  for (const auto& l : cfg["links"]) {
    bool from = false, to = false;
    for (const auto& site : sites) from |= site["name"] == l["from"], to |= site["name"] == l["to"];
    if (from && to) links.push_back(l);
  }
  cfg["name"] = "live-test";
  cfg["sites"] = sites;
  cfg["links"] = links;
  cfg["runtime"]["wall_seconds_per_trace_hour"] = 1;
  cfg["runtime"]["checkpoint_dir"] = dir + "/ckpt";
  cfg["runtime"]["live_model"] = {{"name", "test-gpt"}, {"layers", 2}, {"hidden", 32}, {"heads", 2},
                                  {"seq_len", 32}, {"vocab", 256}, {"micro_batch", 4}, {"global_batch", 16},
                                  {"bytes_per_param", 4}};
  cfg["runtime"]["live_steps"] = 40;
  return cfg;
}

}  // namespace gt::testing
