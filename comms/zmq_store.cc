#include "comms/zmq_store.h"

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/log.h"
#include "comms/store_protocol.h"
#include "comms/zmq_shared.h"

namespace gt {

// Protocol (comms/store_protocol.h). Client (DEALER) sends [request id, op, key, value?]; server
// (ROUTER) answers [routing id, request id, status, value?]. op: "set" -> "ok"; "get" -> "ok" + value |
// "missing". The socket-free StoreRequestHandler holds the map and applies each request.

struct ZmqStoreServer::Impl {
  ZmqStoreServerOptions opt;
  zmq::context_t& ctx = comms_internal::SharedZmq::Get().ctx();
  zmq::socket_t sock{ctx, zmq::socket_type::router};
  std::string zap_domain;
  std::string endpoint;
  std::atomic<bool> stop{false};
  std::thread thread;
  mutable std::mutex mu;  // guards handler (its map and counters), requests and refused_clients
  std::unique_ptr<StoreRequestHandler> handler;
  uint64_t requests = 0, refused_clients = 0;

  bool CheckClient(const std::string& mechanism, const std::string& key, const std::string& address,
                   std::string* out) {
    auto it = mechanism == "CURVE" ? opt.allowed_clients.find(key) : opt.allowed_clients.end();
    if (it != opt.allowed_clients.end()) {
      *out = it->second;
      return true;
    }
    *out = "client key not allowed";
    {
      std::lock_guard<std::mutex> lock(mu);
      ++refused_clients;
    }
    GT_WARN("comms.store", "store server " << endpoint << ": refused a " << mechanism << " client from " << address
                                           << " whose key is not on the allow-list");
    return false;
  }

  // The reply to one request (req = [routing id, request id, op, key, value?]): status [, value].
  std::vector<zmq::message_t> Handle(const std::vector<zmq::message_t>& req, const std::string& who) {
    std::vector<std::string_view> frames;
    frames.reserve(req.size());
    for (size_t i = 1; i < req.size(); ++i)
      frames.emplace_back(static_cast<const char*>(req[i].data()), req[i].size());
    std::vector<std::string> reply;
    {
      std::lock_guard<std::mutex> lock(mu);
      reply = handler->Handle(frames, who, req.empty() ? 0 : req[0].size());
    }
    std::vector<zmq::message_t> out;
    for (const std::string& f : reply) out.emplace_back(f.data(), f.size());
    return out;
  }

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
      if (req.empty()) continue;
      {
        std::lock_guard<std::mutex> lock(mu);
        ++requests;
      }
      std::string who = "unauthenticated client";
      if (!opt.plaintext && req.size() > 1) {
        const char* uid = zmq_msg_gets(req[1].handle(), "User-Id");
        if (uid != nullptr) who = uid;
      }
      std::vector<zmq::message_t> out;
      out.emplace_back(req[0].data(), req[0].size());
      if (req.size() > 1) out.emplace_back(req[1].data(), req[1].size());
      for (auto& m : Handle(req, who)) out.push_back(std::move(m));
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
  if (!impl_->zap_domain.empty()) comms_internal::SharedZmq::Get().Unregister(impl_->zap_domain);
}

std::string ZmqStoreServer::endpoint() const { return impl_->endpoint; }

ZmqStoreServerStats ZmqStoreServer::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const StoreRequestStats& h = impl_->handler->stats();
  ZmqStoreServerStats st;
  st.requests = impl_->requests;
  st.refused_clients = impl_->refused_clients;
  st.refused_full = h.refused_full;
  st.refused_malformed = h.refused_malformed;
  st.keys = h.keys;
  st.bytes = h.bytes;
  return st;
}

Result<std::unique_ptr<ZmqStoreServer>> ZmqStoreServer::Start(const ZmqStoreServerOptions& options) {
  if (!options.plaintext && !comms_internal::ValidZ85Key(options.keys.secret_key))
    return InvalidArgument("store server " + options.endpoint +
                           ": CURVE needs the server's secret key (or set plaintext explicitly)");
  if (options.max_request_bytes < 64) return InvalidArgument("store server: max_request_bytes must be at least 64");
  auto d = std::make_unique<Impl>();
  d->opt = options;
  StoreLimits limits;
  limits.max_request_bytes = options.max_request_bytes;
  limits.max_total_bytes = options.max_total_bytes;
  limits.max_keys = options.max_keys;
  d->handler = std::make_unique<StoreRequestHandler>(limits, "store server " + options.endpoint);
  try {
    d->sock.set(zmq::sockopt::linger, 0);
    d->sock.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options.max_request_bytes));
    if (!options.plaintext) {
      Impl* raw = d.get();
      d->zap_domain = comms_internal::SharedZmq::Get().NewName("gt-store");
      comms_internal::SharedZmq::Get().Register(
          d->zap_domain, [raw](const std::string& mech, const std::string& key, const std::string& addr,
                               std::string* out) { return raw->CheckClient(mech, key, addr, out); });
      d->sock.set(zmq::sockopt::curve_server, true);
      d->sock.set(zmq::sockopt::curve_secretkey, options.keys.secret_key);
      d->sock.set(zmq::sockopt::zap_domain, d->zap_domain);
    }
    d->sock.bind(options.endpoint);
    d->endpoint = d->sock.get(zmq::sockopt::last_endpoint);
    d->handler->set_name("store server " + d->endpoint);
  } catch (const zmq::error_t& e) {
    if (!d->zap_domain.empty()) comms_internal::SharedZmq::Get().Unregister(d->zap_domain);
    return IoError("store server cannot bind '" + options.endpoint + "': " + e.what());
  }
  Impl* raw = d.get();
  d->thread = std::thread([raw] { raw->Run(); });
  return std::unique_ptr<ZmqStoreServer>(new ZmqStoreServer(std::move(d)));
}

struct ZmqStore::Impl {
  zmq::context_t& ctx = comms_internal::SharedZmq::Get().ctx();
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

ZmqStore::~ZmqStore() { impl_->sock.close(); }

Result<std::shared_ptr<ZmqStore>> ZmqStore::Connect(const std::string& endpoint, const ZmqStoreCredentials& cred) {
  if (!cred.plaintext && (!comms_internal::ValidZ85Key(cred.keys.secret_key) ||
                          !comms_internal::ValidZ85Key(cred.keys.public_key) ||
                          !comms_internal::ValidZ85Key(cred.server_public_key)))
    return InvalidArgument("store client for " + endpoint +
                           ": CURVE needs this client's key pair and the server's public key (or plaintext)");
  auto d = std::make_unique<Impl>();
  d->endpoint = endpoint;
  try {
    d->sock.set(zmq::sockopt::linger, 0);
    d->sock.set(zmq::sockopt::reconnect_ivl, 50);
    if (!cred.plaintext) {
      d->sock.set(zmq::sockopt::curve_serverkey, cred.server_public_key);
      d->sock.set(zmq::sockopt::curve_publickey, cred.keys.public_key);
      d->sock.set(zmq::sockopt::curve_secretkey, cred.keys.secret_key);
    }
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
    if (!rep->empty() && (*rep)[0].to_string() == "full")
      return Unavailable("store server " + impl_->endpoint + " is full: set of '" + key + "' refused");
    if (rep->empty() || (*rep)[0].to_string() != "ok")
      return Internal("store server refused set of '" + key + "' (" + std::to_string(key.size() + value.size()) +
                      " bytes; malformed or above its request limit)");
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
