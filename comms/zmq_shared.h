// Internal to comms (includes cppzmq): the process-wide ZeroMQ context and its ZAP handler, shared
// by every Transport and store server so that inproc:// endpoints connect between them and CURVE
// clients are checked against each receiver's own allow-list.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <unistd.h>

#include <zmq.hpp>

namespace gt::comms_internal {

bool ValidZ85Key(const std::string& k);
std::string Z85(const uint8_t* key32);

// One ZeroMQ context per process, shared by every Transport, so that inproc:// endpoints connect
// between Transports. The context has one ZAP handler (ZeroMQ allows one per context); each
// receiver (Transport, store server) registers its own ZAP domain with a callback that checks
// client keys against its allow-list. Never destroyed (threads that outlive main must not touch a destroyed context).
class SharedZmq {
 public:
  // Returns the user id (peer name) for an accepted client, or an error text for a refused one.
  using Checker = std::function<bool(const std::string& mechanism, const std::string& z85_key,
                                     const std::string& address, std::string* user_or_reason)>;

  static SharedZmq& Get();
  zmq::context_t& ctx() { return ctx_; }
  std::string NewName(const std::string& kind) { return kind + "-" + std::to_string(::getpid()) + "-" + std::to_string(next_++); }

  void Register(const std::string& domain, Checker check) {
    std::lock_guard<std::mutex> lock(mu_);
    domains_[domain] = std::move(check);
  }
  // After this returns the checker is not running and will not be called again.
  void Unregister(const std::string& domain) {
    std::lock_guard<std::mutex> lock(mu_);
    domains_.erase(domain);
  }

 private:
  SharedZmq();
  void Run(zmq::socket_t rep);

  zmq::context_t ctx_;
  std::thread zap_;
  std::mutex mu_;
  std::map<std::string, Checker> domains_;
  std::atomic<uint64_t> next_{0};
};

}  // namespace gt::comms_internal
