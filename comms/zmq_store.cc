#include "comms/zmq_store.h"

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/log.h"

namespace gt {

// Protocol. Client (DEALER) sends [request id, op, key, value?]; server (ROUTER) answers
// [routing id, request id, status, value?]. op: "set" -> "ok"; "get" -> "ok" + value | "missing".

struct ZmqStoreServer::Impl {
  zmq::context_t ctx{1};
  zmq::socket_t sock{ctx, zmq::socket_type::router};
  std::string endpoint;
  std::atomic<bool> stop{false};
  std::thread thread;
  std::map<std::string, std::string> map;

  void Run() {
    while (!stop.load()) {
      std::vector<zmq::message_t> req;
      try {
        zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, std::chrono::milliseconds(50)) <= 0) continue;
        if (!zmq::recv_multipart(sock, std::back_inserter(req), zmq::recv_flags::dontwait)) continue;
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) return;
        continue;
      }
      if (req.size() < 4) {
        GT_WARN("comms.store", "store server " << endpoint << ": dropped malformed request (" << req.size() << " frames)");
        continue;
      }
      std::vector<zmq::message_t> out;
      out.emplace_back(req[0].data(), req[0].size());
      out.emplace_back(req[1].data(), req[1].size());
      std::string op = req[2].to_string();
      std::string key = req[3].to_string();
      if (op == "set" && req.size() == 5) {
        map[key] = req[4].to_string();
        out.emplace_back("ok", 2);
      } else if (op == "get" && req.size() == 4) {
        auto it = map.find(key);
        if (it == map.end()) {
          out.emplace_back("missing", 7);
        } else {
          out.emplace_back("ok", 2);
          out.emplace_back(it->second.data(), it->second.size());
        }
      } else {
        out.emplace_back("bad", 3);
      }
      try {
        zmq::send_multipart(sock, out, zmq::send_flags::dontwait);
      } catch (const zmq::error_t&) {
      }
    }
  }
};

ZmqStoreServer::ZmqStoreServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ZmqStoreServer::~ZmqStoreServer() {
  impl_->stop = true;
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->sock.close();
  impl_->ctx.close();
}

std::string ZmqStoreServer::endpoint() const { return impl_->endpoint; }

Result<std::unique_ptr<ZmqStoreServer>> ZmqStoreServer::Start(const std::string& endpoint) {
  auto d = std::make_unique<Impl>();
  try {
    d->sock.set(zmq::sockopt::linger, 0);
    d->sock.bind(endpoint);
    d->endpoint = d->sock.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return IoError("store server cannot bind '" + endpoint + "': " + e.what());
  }
  Impl* raw = d.get();
  d->thread = std::thread([raw] { raw->Run(); });
  return std::unique_ptr<ZmqStoreServer>(new ZmqStoreServer(std::move(d)));
}

struct ZmqStore::Impl {
  zmq::context_t ctx{1};
  std::string endpoint;
  std::mutex mu;
  zmq::socket_t sock{ctx, zmq::socket_type::dealer};
  uint64_t next_id = 1;

  // One request/reply exchange; Unavailable if no reply within `wait`.
  Result<std::vector<zmq::message_t>> Call(std::vector<zmq::message_t> req, std::chrono::milliseconds wait) {
    std::lock_guard<std::mutex> lock(mu);
    const uint64_t id = next_id++;
    req.insert(req.begin(), zmq::message_t(&id, sizeof(id)));
    try {
      if (!zmq::send_multipart(sock, req, zmq::send_flags::dontwait)) {
        return Unavailable("store server " + endpoint + " is not reachable (send queue full)");
      }
      const auto deadline = std::chrono::steady_clock::now() + wait;
      while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return Unavailable("store server " + endpoint + " did not answer within " +
                                                  std::to_string(wait.count()) + " ms");
        zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, left) <= 0) continue;
        std::vector<zmq::message_t> rep;
        if (!zmq::recv_multipart(sock, std::back_inserter(rep), zmq::recv_flags::dontwait)) continue;
        if (rep.size() < 2 || rep[0].size() != sizeof(id)) continue;
        uint64_t got;
        std::memcpy(&got, rep[0].data(), sizeof(got));
        if (got != id) continue;  // a late reply to an earlier, abandoned request
        rep.erase(rep.begin());
        return rep;
      }
    } catch (const zmq::error_t& e) {
      return IoError("store request to " + endpoint + " failed: " + e.what());
    }
  }
};

ZmqStore::ZmqStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ZmqStore::~ZmqStore() {
  impl_->sock.close();
  impl_->ctx.close();
}

Result<std::shared_ptr<ZmqStore>> ZmqStore::Connect(const std::string& endpoint) {
  auto d = std::make_unique<Impl>();
  d->endpoint = endpoint;
  try {
    d->sock.set(zmq::sockopt::linger, 0);
    d->sock.set(zmq::sockopt::reconnect_ivl, 50);
    d->sock.connect(endpoint);
  } catch (const zmq::error_t& e) {
    return InvalidArgument("store endpoint '" + endpoint + "' is not usable: " + e.what());
  }
  return std::shared_ptr<ZmqStore>(new ZmqStore(std::move(d)));
}

Status ZmqStore::Set(const std::string& key, const std::string& value) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::vector<zmq::message_t> req;
    req.emplace_back("set", 3);
    req.emplace_back(key.data(), key.size());
    req.emplace_back(value.data(), value.size());
    auto rep = impl_->Call(std::move(req), std::chrono::milliseconds(2000));
    if (!rep.ok()) {
      if (rep.status().code() == Code::kUnavailable) continue;
      return rep.status();
    }
    if (rep->empty() || (*rep)[0].to_string() != "ok") return Internal("store server refused set of '" + key + "'");
    return Status::Ok();
  }
  return Unavailable("store server " + impl_->endpoint + " did not acknowledge set of '" + key +
                     "' after 5 attempts; is the coordinator's store running?");
}

Result<std::string> ZmqStore::Get(const std::string& key, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  Status last = Status::Ok();
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    std::vector<zmq::message_t> req;
    req.emplace_back("get", 3);
    req.emplace_back(key.data(), key.size());
    auto rep = impl_->Call(std::move(req), std::min(left, std::chrono::milliseconds(1000)));
    if (rep.ok()) {
      if (!rep->empty() && (*rep)[0].to_string() == "ok" && rep->size() == 2) return (*rep)[1].to_string();
    } else {
      last = rep.status();
    }
    std::this_thread::sleep_for(std::min(pause, left));
    if (pause < std::chrono::milliseconds(20)) pause *= 2;
  }
  return Timeout("store key '" + key + "' was not set within " + std::to_string(timeout.count()) + " ms" +
                 (last.ok() ? std::string("; a group member did not arrive") : "; last error: " + last.message()));
}

}  // namespace gt
