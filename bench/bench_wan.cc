// bench_wan: the CURVE transport's throughput over an emulated WAN link (comms/wan_emulation.h, as
// `run --emulate-wan` builds it) against the link's configured rate, and over the same namespaces'
// unshaped path as the baseline measured in the same run.
//
// The sender runs in site 0's namespace and the receiver in site 1's (link at each configured rate)
// or in the coordinator's (unshaped: the baseline), each a copy of this program started with
// `ip netns exec`. Prints one JSON line per case: measured MB/s, the configured rate in MB/s and
// their ratio. Needs root (network namespaces); prints {"skipped": reason} otherwise.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "comms/transport.h"
#include "comms/wan_emulation.h"

namespace {

constexpr size_t kMessageBytes = 1 << 20;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// Receiver: binds, prints "PORT p", receives `count` messages, prints "RESULT seconds bytes" (from
// the first message to the last).
int Receive(int count) {
  gt::TransportOptions o;
  o.name = "bench-receiver";
  o.bind_endpoint = "tcp://0.0.0.0:*";
  o.keys.secret_key = Env("BENCH_RECEIVER_SECRET");
  o.keys.public_key = Env("BENCH_RECEIVER_PUBLIC");
  o.allowed_peers[Env("BENCH_SENDER_PUBLIC")] = "sender";
  auto t = gt::Transport::Create(o);
  if (!t.ok()) return std::fprintf(stderr, "%s\n", t.status().ToString().c_str()), 1;
  const std::string ep = (*t)->endpoint();
  std::printf("PORT %s\n", ep.substr(ep.rfind(':') + 1).c_str());
  std::fflush(stdout);
  std::chrono::steady_clock::time_point first;
  double bytes = 0;
  for (int i = 0; i < count; ++i) {
    auto m = (*t)->Receive(std::chrono::milliseconds(60000));
    if (!m.ok()) return std::fprintf(stderr, "receive: %s\n", m.status().ToString().c_str()), 1;
    if (i == 0) first = std::chrono::steady_clock::now();
    else bytes += static_cast<double>(m->size());
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - first).count();
  std::printf("RESULT %.6f %.0f\n", s, bytes);
  return 0;
}

int Send(const std::string& endpoint, int count) {
  gt::TransportOptions o;
  o.name = "bench-sender";
  o.keys.secret_key = Env("BENCH_SENDER_SECRET");
  o.keys.public_key = Env("BENCH_SENDER_PUBLIC");
  o.linger = std::chrono::milliseconds(120000);
  auto t = gt::Transport::Create(o);
  if (!t.ok()) return std::fprintf(stderr, "%s\n", t.status().ToString().c_str()), 1;
  if (!(*t)->Connect("r", endpoint, Env("BENCH_RECEIVER_PUBLIC")).ok()) return 1;
  if (!(*t)->WaitConnected("r", std::chrono::milliseconds(20000)).ok()) return std::fprintf(stderr, "no connection\n"), 1;
  std::vector<uint8_t> buf(kMessageBytes, 7);
  for (int i = 0; i < count; ++i) {
    gt::TensorTag tag;
    gt::Status s = (*t)->SendTensorCopy("r", tag, gt::DType::kUInt8, {static_cast<int64_t>(buf.size())}, buf.data(),
                                       buf.size());
    if (!s.ok()) return std::fprintf(stderr, "send: %s\n", s.ToString().c_str()), 1;
  }
  // ZeroMQ holds what the shaped link has not taken yet; the shared context is never terminated,
  // so wait until it handed everything to the kernel (which still delivers it after exit).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while ((*t)->stats().queued_bytes > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  return 0;
}

// One case: receiver in `rx_ns`, sender in `tx_ns`; returns MB/s (0 on failure).
double Measure(const std::string& self, const std::string& rx_ns, const std::string& rx_addr, const std::string& tx_ns,
               int count) {
  const std::string rx = "ip netns exec " + rx_ns + " " + self + " --receive " + std::to_string(count);
  FILE* r = popen(rx.c_str(), "r");
  if (!r) return 0;
  char line[256] = {0};
  double mbps = 0;
  if (std::fgets(line, sizeof line, r) && std::strncmp(line, "PORT ", 5) == 0) {
    std::string port(line + 5);
    while (!port.empty() && (port.back() == '\n' || port.back() == '\r')) port.pop_back();
    const std::string tx = "ip netns exec " + tx_ns + " " + self + " --send tcp://" + rx_addr + ":" + port + " " +
                           std::to_string(count);
    const int rc = std::system(tx.c_str());
    double s = 0, bytes = 0;
    if (rc == 0 && std::fgets(line, sizeof line, r) && std::sscanf(line, "RESULT %lf %lf", &s, &bytes) == 2 && s > 0)
      mbps = bytes / s / 1e6;
  }
  pclose(r);
  return mbps;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "--receive") return Receive(std::atoi(argv[2]));
  if (argc >= 4 && std::string(argv[1]) == "--send") return Send(argv[2], std::atoi(argv[3]));
  char self[4096] = {0};
  if (readlink("/proc/self/exe", self, sizeof self - 1) <= 0) return 1;
  const bool quick = argc >= 2 && std::string(argv[1]) == "--quick";
  auto rx = gt::GenerateCurveKeyPair(), tx = gt::GenerateCurveKeyPair();
  if (!rx.ok() || !tx.ok()) return 1;
  setenv("BENCH_RECEIVER_SECRET", rx->secret_key.c_str(), 1);
  setenv("BENCH_RECEIVER_PUBLIC", rx->public_key.c_str(), 1);
  setenv("BENCH_SENDER_SECRET", tx->secret_key.c_str(), 1);
  setenv("BENCH_SENDER_PUBLIC", tx->public_key.c_str(), 1);
  for (double gbps : {0.2, 1.0}) {
    auto wan = gt::WanEmulation::Create(2, {{0, 1, gbps, 0, 0}}, "gtb");
    if (!wan.ok()) {
      std::printf("{\"bench\": \"transport_over_emulated_link\", \"skipped\": \"%s\"}\n",
                  wan.status().message().c_str());
      return 0;
    }
    // Enough data for a few seconds at the link's rate.
    const int count = std::max(8, static_cast<int>(gbps * 125 * (quick ? 1 : 3)));
    const double shaped = Measure(self, (*wan)->SiteNamespace(1), (*wan)->SiteAddress(1), (*wan)->SiteNamespace(0), count);
    const double unshaped = Measure(self, (*wan)->CoordinatorNamespace(), (*wan)->CoordinatorAddress(),
                                    (*wan)->SiteNamespace(0), count);
    const double configured = gbps * 1e3 / 8;
    std::printf(
        "{\"bench\": \"transport_over_emulated_link\", \"link_gbps\": %.1f, \"configured_mb_s\": %.1f, "
        "\"measured_mb_s\": %.1f, \"measured_over_configured\": %.3f, \"unshaped_baseline_mb_s\": %.1f, "
        "\"message_bytes\": %zu, \"messages\": %d, \"delay_emulated\": %s}\n",
        gbps, configured, shaped, configured > 0 ? shaped / configured : 0.0, unshaped, kMessageBytes, count,
        (*wan)->delay_emulated() ? "true" : "false");
    std::fflush(stdout);
  }
  return 0;
}
