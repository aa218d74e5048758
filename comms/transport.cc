// Transport over cppzmq. Sockets: one PULL (bound, CURVE server) for receiving, one PUSH per peer
// (connected, CURVE client, ZMQ_IMMEDIATE so nothing queues to a connection that is not up). Threads:
// the ZAP handler (answers authentication requests for the PULL socket) and a monitor thread (reads
// socket events to track each peer's connection state and log refusals and disconnects). Every
// zmq::error_t is caught here and turned into a Status.
#include "comms/transport.h"

#include <cerrno>

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/log.h"
#include "comms/zmq_shared.h"

namespace gt {
namespace {

using comms_internal::SharedZmq;
using comms_internal::ValidZ85Key;
using comms_internal::Z85;

constexpr const char* kLog = "comms.transport";
constexpr const char* kUnauthenticated = "unauthenticated";
constexpr const char* kInProcess = "in-process";


// Bytes handed to ZeroMQ for sending and not yet released by it.
struct QueueCounter {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t bytes = 0;
};

// Shared by the payload frames of one zero-copy message; the last frame ZeroMQ frees releases it.
struct SendHold {
  std::function<void()> release;
  std::shared_ptr<QueueCounter> queue;
  uint64_t bytes = 0;
  std::atomic<int> frames{1};
};

void FreeSendHold(void* /*data*/, void* hint) {
  auto* h = static_cast<SendHold*>(hint);
  if (h->frames.fetch_sub(1) != 1) return;
  if (h->release) h->release();
  if (h->queue) {
    {
      std::lock_guard<std::mutex> lock(h->queue->mu);
      h->queue->bytes -= h->bytes;
    }
    h->queue->cv.notify_all();
  }
  delete h;
}

std::string EventName(uint16_t ev) {
  switch (ev) {
    case ZMQ_EVENT_CONNECTED: return "tcp connected";
    case ZMQ_EVENT_CONNECT_DELAYED: return "connect delayed";
    case ZMQ_EVENT_CONNECT_RETRIED: return "connect retried";
    case ZMQ_EVENT_LISTENING: return "listening";
    case ZMQ_EVENT_BIND_FAILED: return "bind failed";
    case ZMQ_EVENT_ACCEPTED: return "accepted";
    case ZMQ_EVENT_ACCEPT_FAILED: return "accept failed";
    case ZMQ_EVENT_CLOSED: return "closed";
    case ZMQ_EVENT_CLOSE_FAILED: return "close failed";
    case ZMQ_EVENT_DISCONNECTED: return "disconnected";
    case ZMQ_EVENT_MONITOR_STOPPED: return "monitor stopped";
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: return "handshake failed";
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: return "handshake succeeded";
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: return "handshake failed (protocol error)";
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: return "authentication failed";
  }
  return "event " + std::to_string(ev);
}

// Closes a socket that has a monitor attached (AttachMonitor), stopping the monitor first. A closed
// socket lingers and keeps emitting events; libzmq sends them to the monitor's PAIR socket with a
// blocking send from its I/O or reaper thread, so once the reader is gone (Shutdown drops the
// monitors) that thread would block for good and with it every socket it serves, in every
// Transport of the process. Stopping the monitor while the socket is still open ends the events.
void CloseMonitored(zmq::socket_t& sock) {
  if (!sock.handle()) return;
  (void)zmq_socket_monitor(sock.handle(), nullptr, 0);
  sock.close();
}

}  // namespace

struct Transport::Impl {
  TransportOptions opt;
  zmq::context_t& ctx = SharedZmq::Get().ctx();
  std::string zap_domain;  // registered with SharedZmq while receiving with CURVE
  std::string endpoint;
  std::atomic<bool> stop{false};
  std::shared_ptr<QueueCounter> queue = std::make_shared<QueueCounter>();

  // Receiving side.
  std::mutex recv_mu;
  std::unique_ptr<zmq::socket_t> pull;

  // Sending side.
  struct Peer {
    std::string name;
    std::string endpoint;
    uint64_t channel = 0;
    std::mutex mu;
    zmq::socket_t sock;
    ~Peer() { CloseMonitored(sock); }
  };
  mutable std::mutex peers_mu;
  mutable std::condition_variable peers_cv;  // signalled on peer state changes
  std::map<std::string, std::shared_ptr<Peer>> peers;
  std::map<std::string, std::pair<uint64_t, PeerState>> states;  // peer -> (channel, state)
  uint64_t next_channel = 1;

  // Monitors: PAIR sockets handed to the monitor thread.
  struct Monitor {
    std::string peer;  // "" = our PULL socket
    uint64_t channel = 0;
    std::unique_ptr<zmq::socket_t> pair;
  };
  std::mutex mon_mu;
  std::vector<Monitor> new_monitors;
  std::thread monitor_thread;

  // Stats.
  std::atomic<uint64_t> messages_sent{0}, bytes_sent{0}, messages_received{0}, bytes_received{0};
  std::atomic<uint64_t> dropped_malformed{0}, dropped_oversized{0}, refused_peers{0};

  bool shut_down = false;
  ~Impl() { Shutdown(); }
  // Stops the threads, closes every socket and the context. Idempotent.
  void Shutdown();
  Status AttachMonitor(zmq::socket_t& sock, const std::string& peer, uint64_t channel);
  bool CheckClient(const std::string& mechanism, const std::string& key, const std::string& address, std::string* out);
  void RunMonitor();
  void OnEvent(const Monitor& m, uint16_t ev, uint32_t value, const std::string& addr);
  Status Send(const std::string& peer, const FrameHeader& h, std::vector<zmq::message_t> payload);
  Status DescribeSendFailure(const std::string& peer, const std::string& endpoint, const char* what);
};

Status Transport::Impl::AttachMonitor(zmq::socket_t& sock, const std::string& peer, uint64_t channel) {
  const std::string addr = "inproc://" + SharedZmq::Get().NewName("gt-monitor");
  if (zmq_socket_monitor(sock.handle(), addr.c_str(), ZMQ_EVENT_ALL) != 0) {
    return Internal("zmq_socket_monitor failed: " + std::string(zmq_strerror(zmq_errno())));
  }
  Monitor m;
  m.peer = peer;
  m.channel = channel;
  m.pair = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pair);
  m.pair->set(zmq::sockopt::linger, 0);
  m.pair->connect(addr);  // before the monitored socket connects, so no event is lost
  std::lock_guard<std::mutex> lock(mon_mu);
  new_monitors.push_back(std::move(m));
  return Status::Ok();
}

bool Transport::Impl::CheckClient(const std::string& mechanism, const std::string& key, const std::string& address,
                                  std::string* out) {
  if (mechanism != "CURVE" || key.empty()) {
    refused_peers++;
    *out = "mechanism " + mechanism + " not accepted";
    GT_WARN(kLog, opt.name << ": refused connection from " << address << " using mechanism '" << mechanism
                           << "' (CURVE required)");
    return false;
  }
  auto it = opt.allowed_peers.find(key);
  if (it == opt.allowed_peers.end()) {
    refused_peers++;
    *out = "client key not on the allow-list";
    GT_WARN(kLog, opt.name << ": refused connection from " << address << ": CURVE public key " << key
                           << " is not on the allow-list (add it to the site's allowed peers)");
    return false;
  }
  *out = it->second;
  GT_DEBUG(kLog, opt.name << ": accepted peer '" << it->second << "' from " << address);
  return true;
}

void Transport::Impl::OnEvent(const Monitor& m, uint16_t ev, uint32_t value, const std::string& addr) {
  if (m.peer.empty()) {  // our receiving socket
    switch (ev) {
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        GT_WARN(kLog, opt.name << ": incoming connection failed its handshake (" << EventName(ev) << ", errno/code "
                               << value << ")");
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        GT_INFO(kLog, opt.name << ": incoming connection refused by authentication (status " << value << ")");
        break;
      case ZMQ_EVENT_DISCONNECTED:
        GT_INFO(kLog, opt.name << ": an incoming connection closed (peer gone, heartbeat timeout, or a frame above "
                                  "max_message_bytes="
                               << opt.max_message_bytes << ")");
        break;
      default:
        GT_DEBUG(kLog, opt.name << ": receive socket " << EventName(ev) << " " << addr);
    }
    return;
  }
  std::lock_guard<std::mutex> lock(peers_mu);
  auto it = states.find(m.peer);
  if (it == states.end() || it->second.first != m.channel) return;  // an older channel
  PeerState& st = it->second.second;
  switch (ev) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
      st.connected = true;
      st.auth_failed = false;
      st.last_event = EventName(ev);
      GT_INFO(kLog, opt.name << ": connected to peer '" << m.peer << "' at " << addr);
      break;
    case ZMQ_EVENT_DISCONNECTED:
      if (st.connected) GT_WARN(kLog, opt.name << ": lost connection to peer '" << m.peer << "' at " << addr);
      st.connected = false;
      st.last_event = EventName(ev);
      break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      st.connected = false;
      st.auth_failed = true;
      st.last_event = EventName(ev) + " (status " + std::to_string(value) + ")";
      GT_WARN(kLog, opt.name << ": peer '" << m.peer << "' at " << addr
                             << " refused our CURVE key; add our public key to its allow-list");
      break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      st.connected = false;
      st.last_event = EventName(ev);
      GT_WARN(kLog, opt.name << ": handshake with peer '" << m.peer << "' at " << addr << " failed (" << EventName(ev)
                             << "); check the peer's public key and security mode");
      break;
    case ZMQ_EVENT_CLOSED:
    case ZMQ_EVENT_CONNECT_RETRIED:
      st.connected = false;
      st.last_event = EventName(ev);
      break;
    default:
      st.last_event = EventName(ev);
  }
  peers_cv.notify_all();
}

void Transport::Impl::RunMonitor() {
  std::vector<Monitor> mons;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mon_mu);
      for (auto& m : new_monitors) mons.push_back(std::move(m));
      new_monitors.clear();
    }
    if (stop.load() && mons.empty()) break;
    std::vector<zmq::pollitem_t> items;
    for (auto& m : mons) items.push_back({m.pair->handle(), 0, ZMQ_POLLIN, 0});
    try {
      if (items.empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(stop.load() ? 0 : 50));
    } catch (const zmq::error_t& e) {
      break;  // ETERM
    }
    std::vector<size_t> finished;
    for (size_t i = 0; i < mons.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      try {
        std::vector<zmq::message_t> parts;
        while (zmq::recv_multipart(*mons[i].pair, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
          if (parts.size() >= 1 && parts[0].size() >= 6) {
            uint16_t ev;
            uint32_t value;
            std::memcpy(&ev, parts[0].data(), 2);
            std::memcpy(&value, static_cast<const uint8_t*>(parts[0].data()) + 2, 4);
            std::string addr = parts.size() > 1 ? parts[1].to_string() : "";
            if (ev == ZMQ_EVENT_MONITOR_STOPPED) {
              finished.push_back(i);
              break;
            }
            OnEvent(mons[i], ev, value, addr);
          }
          parts.clear();
        }
      } catch (const zmq::error_t&) {
        finished.push_back(i);
      }
    }
    if (stop.load() && finished.empty()) {
      // Shutting down: sockets are closed; drop the remaining monitors.
      mons.clear();
      continue;
    }
    for (auto it = finished.rbegin(); it != finished.rend(); ++it) mons.erase(mons.begin() + static_cast<long>(*it));
  }
  mons.clear();
}

Status Transport::Impl::DescribeSendFailure(const std::string& peer, const std::string& ep, const char* what) {
  PeerState st;
  {
    std::lock_guard<std::mutex> lock(peers_mu);
    auto it = states.find(peer);
    if (it != states.end()) st = it->second.second;
  }
  if (st.auth_failed) {
    return Unavailable(std::string(what) + " to peer '" + peer + "' at " + ep +
                       " failed: the peer refused our CURVE key (not on its allow-list)");
  }
  if (!st.connected) {
    return Unavailable(std::string(what) + " to peer '" + peer + "' at " + ep + " failed: no live connection within " +
                       std::to_string(opt.send_timeout.count()) + " ms (last event: " +
                       (st.last_event.empty() ? "none" : st.last_event) + "); the peer is down or unreachable");
  }
  return Unavailable(std::string(what) + " to peer '" + peer + "' at " + ep + " failed: the peer did not drain its queue within " +
                     std::to_string(opt.send_timeout.count()) + " ms (high-water mark reached)");
}

Status Transport::Impl::Send(const std::string& peer, const FrameHeader& h, std::vector<zmq::message_t> payload) {
  std::shared_ptr<Peer> p;
  {
    std::lock_guard<std::mutex> lock(peers_mu);
    auto it = peers.find(peer);
    if (it == peers.end()) return NotFound("no channel to peer '" + peer + "'; call Connect first");
    p = it->second;
  }
  // The monitor's view comes first. ZeroMQ reports a lost connection (a heartbeat timeout) before its
  // I/O thread has torn down the old pipe; a send in between would be queued into the dead pipe and
  // reported Ok. So a peer the monitor holds disconnected must reconnect within send_timeout.
  {
    std::unique_lock<std::mutex> lock(peers_mu);
    const bool up = peers_cv.wait_for(lock, opt.send_timeout, [&] {
      auto i = states.find(peer);
      return i == states.end() || i->second.second.connected || i->second.second.auth_failed;
    });
    auto i = states.find(peer);
    const bool usable = up && (i == states.end() || i->second.second.connected);
    lock.unlock();
    if (!usable) return DescribeSendFailure(peer, p->endpoint, "send");
  }
  uint8_t hdr[kFrameHeaderBytes];
  EncodeHeader(h, hdr);
  std::lock_guard<std::mutex> lock(p->mu);
  try {
    zmq::message_t head(hdr, sizeof(hdr));
    if (!p->sock.send(head, zmq::send_flags::sndmore)) return DescribeSendFailure(peer, p->endpoint, "send");
    // Multipart messages are atomic: once the first part is accepted, the rest is.
    for (size_t i = 0; i < payload.size(); ++i) {
      auto flags = i + 1 < payload.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      if (!p->sock.send(payload[i], flags)) return Internal("payload frame to peer '" + peer + "' refused");
    }
  } catch (const zmq::error_t& e) {
    return IoError("send to peer '" + peer + "' at " + p->endpoint + " failed: " + e.what());
  }
  messages_sent++;
  bytes_sent += h.payload_bytes;
  return Status::Ok();
}

Transport::Transport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Transport::~Transport() = default;

void Transport::Impl::Shutdown() {
  if (shut_down) return;
  shut_down = true;
  // Sockets (and their monitors) are closed while the monitor thread still reads: stopping a
  // monitor sends it a last event, which would block with no reader.
  {
    std::lock_guard<std::mutex> lock(peers_mu);
    for (auto& kv : peers) {
      std::lock_guard<std::mutex> plock(kv.second->mu);
      CloseMonitored(kv.second->sock);
    }
    peers.clear();
  }
  {
    std::lock_guard<std::mutex> lock(recv_mu);
    if (pull) CloseMonitored(*pull);
  }
  stop = true;
  if (!zap_domain.empty()) SharedZmq::Get().Unregister(zap_domain);
  if (monitor_thread.joinable()) monitor_thread.join();
  {
    std::lock_guard<std::mutex> lock(mon_mu);
    new_monitors.clear();
  }
  // Closed sockets send what they can for `linger`, then ZeroMQ frees the rest; either way every
  // zero-copy buffer is released. Wait for that so callers may free their memory afterwards.
  std::unique_lock<std::mutex> lock(queue->mu);
  if (!queue->cv.wait_for(lock, opt.linger + std::chrono::seconds(2), [&] { return queue->bytes == 0; })) {
    GT_WARN(kLog, opt.name << ": " << queue->bytes << " queued bytes not released at shutdown");
  }
}

Result<CurveKeyPair> GenerateCurveKeyPair() {
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Unavailable(std::string("zmq_curve_keypair failed: ") + zmq_strerror(zmq_errno()) +
                       " (libzmq built without CURVE support?)");
  }
  return CurveKeyPair{std::string(pub, 40), std::string(sec, 40)};
}

Result<std::string> CurvePublicKey(const std::string& secret_key) {
  if (!ValidZ85Key(secret_key)) return InvalidArgument("CURVE secret key must be 40 Z85 characters");
  char pub[41];
  if (zmq_curve_public(pub, secret_key.c_str()) != 0) {
    return InvalidArgument(std::string("zmq_curve_public failed: ") + zmq_strerror(zmq_errno()));
  }
  return std::string(pub, 40);
}

Result<std::unique_ptr<Transport>> Transport::Create(const TransportOptions& options) {
  const std::string who = "transport '" + options.name + "'";
  if (!options.plaintext) {
    if (!ValidZ85Key(options.keys.public_key) || !ValidZ85Key(options.keys.secret_key)) {
      return InvalidArgument(who + ": CURVE needs keys.public_key and keys.secret_key (40 Z85 chars each; "
                                   "see GenerateCurveKeyPair), or set plaintext=true explicitly");
    }
    auto derived = CurvePublicKey(options.keys.secret_key);
    if (!derived.ok() || *derived != options.keys.public_key) {
      return InvalidArgument(who + ": keys.public_key does not belong to keys.secret_key");
    }
    for (const auto& kv : options.allowed_peers) {
      if (!ValidZ85Key(kv.first)) {
        return InvalidArgument(who + ": allowed_peers key for '" + kv.second + "' is not a 40-character Z85 key");
      }
    }
  }
  if (options.max_message_bytes == 0 || options.max_message_bytes > (1ull << 62)) {
    return InvalidArgument(who + ": max_message_bytes must be in [1, 2^62]");
  }
  if (options.max_queued_bytes == 0) return InvalidArgument(who + ": max_queued_bytes must be positive");
  if (options.frame_bytes < 4096) return InvalidArgument(who + ": frame_bytes must be at least 4096");
  if (options.send_hwm < 2 || options.recv_hwm < 2) {
    // With a high-water mark of 1, a throttled CURVE receiver in ZeroMQ 4.3 never resumes reading.
    return InvalidArgument(who + ": send_hwm and recv_hwm must be at least 2");
  }
  if (options.heartbeat_interval.count() < 0 || options.heartbeat_timeout.count() < 0) {
    return InvalidArgument(who + ": heartbeat times must not be negative");
  }

  auto d = std::make_unique<Impl>();
  d->opt = options;
  try {
    if (!options.bind_endpoint.empty()) {
      if (!options.plaintext) {
        Impl* raw = d.get();
        d->zap_domain = SharedZmq::Get().NewName("gt-zap");
        SharedZmq::Get().Register(d->zap_domain, [raw](const std::string& mech, const std::string& key,
                                                       const std::string& addr, std::string* out) {
          return raw->CheckClient(mech, key, addr, out);
        });
      }
      d->pull = std::make_unique<zmq::socket_t>(d->ctx, zmq::socket_type::pull);
      zmq::socket_t& s = *d->pull;
      s.set(zmq::sockopt::linger, 0);
      s.set(zmq::sockopt::rcvhwm, options.recv_hwm);
      s.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options.max_message_bytes));
      s.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(options.heartbeat_interval.count()));
      s.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(options.heartbeat_timeout.count()));
      s.set(zmq::sockopt::heartbeat_ttl, static_cast<int>(options.heartbeat_timeout.count()));
      s.set(zmq::sockopt::handshake_ivl, static_cast<int>(options.handshake_timeout.count()));
      if (!options.plaintext) {
        s.set(zmq::sockopt::curve_server, true);
        s.set(zmq::sockopt::curve_secretkey, options.keys.secret_key);
        s.set(zmq::sockopt::zap_domain, d->zap_domain);
      }
      RETURN_IF_ERROR(d->AttachMonitor(s, "", 0));
      try {
        s.bind(options.bind_endpoint);
      } catch (const zmq::error_t& e) {
        return Status(Code::kIoError, who + ": cannot bind " + options.bind_endpoint + ": " + e.what() +
                                          " (address in use or not local?)");
      }
      d->endpoint = s.get(zmq::sockopt::last_endpoint);
    }
    Impl* raw = d.get();
    d->monitor_thread = std::thread([raw] { raw->RunMonitor(); });
  } catch (const zmq::error_t& e) {
    return IoError(who + ": ZeroMQ set-up failed: " + e.what());  // ~Impl shuts everything down
  }
  GT_INFO(kLog, "transport '" << options.name << "' up" << (d->endpoint.empty() ? "" : " at " + d->endpoint)
                              << (options.plaintext ? " (PLAINTEXT)" : " (CURVE)"));
  return std::unique_ptr<Transport>(new Transport(std::move(d)));
}

std::string Transport::endpoint() const { return impl_->endpoint; }
const std::string& Transport::name() const { return impl_->opt.name; }

Status Transport::Connect(const std::string& peer, const std::string& endpoint, const std::string& server_public_key) {
  Impl& d = *impl_;
  if (peer.empty()) return InvalidArgument("Connect: peer name is empty");
  if (!d.opt.plaintext && !ValidZ85Key(server_public_key)) {
    return InvalidArgument("Connect to peer '" + peer + "': server public key must be 40 Z85 characters");
  }
  (void)Disconnect(peer);  // replacing an existing channel; NotFound is fine
  auto p = std::make_shared<Impl::Peer>();
  p->name = peer;
  p->endpoint = endpoint;
  try {
    p->sock = zmq::socket_t(d.ctx, zmq::socket_type::push);
    zmq::socket_t& s = p->sock;
    s.set(zmq::sockopt::linger, static_cast<int>(d.opt.linger.count()));
    s.set(zmq::sockopt::sndhwm, d.opt.send_hwm);
    s.set(zmq::sockopt::immediate, true);
    s.set(zmq::sockopt::sndtimeo, static_cast<int>(d.opt.send_timeout.count()));
    s.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(d.opt.heartbeat_interval.count()));
    s.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(d.opt.heartbeat_timeout.count()));
    s.set(zmq::sockopt::heartbeat_ttl, static_cast<int>(d.opt.heartbeat_timeout.count()));
    s.set(zmq::sockopt::handshake_ivl, static_cast<int>(d.opt.handshake_timeout.count()));
    s.set(zmq::sockopt::reconnect_ivl, 100);
    s.set(zmq::sockopt::reconnect_ivl_max, 2000);
    if (!d.opt.plaintext) {
      s.set(zmq::sockopt::curve_serverkey, server_public_key);
      s.set(zmq::sockopt::curve_publickey, d.opt.keys.public_key);
      s.set(zmq::sockopt::curve_secretkey, d.opt.keys.secret_key);
    }
    {
      // inproc:// has no handshake (and no CURVE: the peer is this process): it is up at once.
      const bool inproc = endpoint.rfind("inproc://", 0) == 0;
      std::lock_guard<std::mutex> lock(d.peers_mu);
      p->channel = d.next_channel++;
      d.states[peer] = {p->channel, inproc ? PeerState{true, false, "in-process"} : PeerState{}};
    }
    RETURN_IF_ERROR(d.AttachMonitor(s, peer, p->channel));
    s.connect(endpoint);
  } catch (const zmq::error_t& e) {
    return InvalidArgument("Connect to peer '" + peer + "' at '" + endpoint + "' failed: " + e.what() +
                           " (expected tcp://host:port, ipc://path or inproc://name)");
  }
  std::lock_guard<std::mutex> lock(d.peers_mu);
  d.peers[peer] = std::move(p);
  return Status::Ok();
}

Status Transport::Disconnect(const std::string& peer) {
  Impl& d = *impl_;
  std::shared_ptr<Impl::Peer> p;
  {
    std::lock_guard<std::mutex> lock(d.peers_mu);
    auto it = d.peers.find(peer);
    if (it == d.peers.end()) return NotFound("no channel to peer '" + peer + "'");
    p = it->second;
    d.peers.erase(it);
    d.states.erase(peer);
  }
  std::lock_guard<std::mutex> plock(p->mu);
  CloseMonitored(p->sock);
  return Status::Ok();
}

Status Transport::SendTensor(const std::string& peer, const TensorTag& tag, DType dtype,
                             const std::vector<int64_t>& shape, const void* data, size_t bytes,
                             std::function<void()> release) {
  Impl& d = *impl_;
  FrameHeader h;
  h.kind = FrameKind::kTensor;
  h.dtype = dtype;
  h.shape = shape;
  h.tag = tag;
  h.payload_bytes = bytes;
  Status valid = ValidateHeader(h, d.opt.max_message_bytes);
  if (valid.ok() && bytes > 0 && data == nullptr) valid = InvalidArgument("null data with a non-empty payload");
  if (!valid.ok()) {
    if (release) release();
    return Status(Code::kInvalidArgument, "SendTensor to peer '" + peer + "': " + valid.message());
  }
  // Bound the bytes queued inside ZeroMQ; a single message larger than the bound may go alone.
  const auto deadline = std::chrono::steady_clock::now() + d.opt.send_timeout;
  {
    std::unique_lock<std::mutex> lock(d.queue->mu);
    bool room = d.queue->cv.wait_until(lock, deadline, [&] {
      return d.queue->bytes == 0 || d.queue->bytes + bytes <= d.opt.max_queued_bytes;
    });
    if (!room) {
      uint64_t q = d.queue->bytes;
      lock.unlock();
      if (release) release();
      return Unavailable("SendTensor to peer '" + peer + "': " + std::to_string(q) +
                         " bytes are still queued (max_queued_bytes=" + std::to_string(d.opt.max_queued_bytes) +
                         ") after " + std::to_string(d.opt.send_timeout.count()) +
                         " ms; receivers are slower than this sender or unreachable");
    }
    d.queue->bytes += bytes;
  }
  // Large payloads go as several frames of at most frame_bytes, all pointing into the caller's buffer.
  const uint64_t chunk = d.opt.frame_bytes;
  const size_t nframes = bytes == 0 ? 1 : static_cast<size_t>((bytes + chunk - 1) / chunk);
  auto* hold = new SendHold{std::move(release), d.queue, bytes};
  hold->frames = static_cast<int>(nframes);
  std::vector<zmq::message_t> payload;
  payload.reserve(nframes);
  size_t made = 0;
  try {
    char* base = static_cast<char*>(const_cast<void*>(data));
    for (; made < nframes; ++made) {
      uint64_t off = made * chunk;
      uint64_t len = std::min<uint64_t>(chunk, bytes - off);
      payload.emplace_back(base == nullptr ? nullptr : base + off, len, &FreeSendHold, hold);
    }
  } catch (const zmq::error_t& e) {
    for (size_t i = made; i < nframes; ++i) FreeSendHold(nullptr, hold);  // frames never created
    return IoError(std::string("SendTensor: cannot wrap payload: ") + e.what());
  }
  // On failure the frames are destroyed here, which runs FreeSendHold (release + unqueue).
  return d.Send(peer, h, std::move(payload));
}

Status Transport::SendTensorCopy(const std::string& peer, const TensorTag& tag, DType dtype,
                                 const std::vector<int64_t>& shape, const void* data, size_t bytes) {
  if (bytes == 0) return SendTensor(peer, tag, dtype, shape, nullptr, 0, nullptr);
  void* copy = std::malloc(bytes);
  if (copy == nullptr) return Unavailable("SendTensorCopy: cannot allocate " + std::to_string(bytes) + " bytes");
  std::memcpy(copy, data, bytes);
  return SendTensor(peer, tag, dtype, shape, copy, bytes, [copy] { std::free(copy); });
}

Status Transport::SendControl(const std::string& peer, const nlohmann::json& body, const TensorTag& tag) {
  if (!body.is_object() || !body.contains("type") || !body["type"].is_string()) {
    return InvalidArgument("SendControl to peer '" + peer + "': body must be a JSON object with a string \"type\"");
  }
  nlohmann::json j = body;
  if (!j.contains("v")) j["v"] = kControlVersion;
  std::string text;
  try {
    text = j.dump();
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument("SendControl to peer '" + peer + "': cannot serialise JSON: " + e.what());
  }
  FrameHeader h;
  h.kind = FrameKind::kControl;
  h.dtype = DType::kUInt8;
  h.shape = {static_cast<int64_t>(text.size())};
  h.tag = tag;
  h.payload_bytes = text.size();
  Status valid = ValidateHeader(h, impl_->opt.max_message_bytes);
  if (!valid.ok()) return Status(Code::kInvalidArgument, "SendControl to peer '" + peer + "': " + valid.message());
  std::vector<zmq::message_t> payload;
  payload.emplace_back(text.data(), text.size());
  return impl_->Send(peer, h, std::move(payload));
}

Result<ReceivedMessage> Transport::Receive(std::chrono::milliseconds timeout) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.recv_mu);
  if (!d.pull) return InvalidArgument("transport '" + d.opt.name + "' has no bind_endpoint; it cannot receive");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    std::vector<zmq::message_t> parts;
    try {
      zmq::pollitem_t item{d.pull->handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, left) <= 0) {
        if (std::chrono::steady_clock::now() >= deadline) {
          return Timeout("transport '" + d.opt.name + "': no message within " + std::to_string(timeout.count()) + " ms");
        }
        continue;
      }
      if (!zmq::recv_multipart(*d.pull, std::back_inserter(parts), zmq::recv_flags::dontwait)) continue;
    } catch (const zmq::error_t& e) {
      // A signal interrupted the wait: keep waiting until the deadline (callers see Timeout, never
      // a spurious I/O error).
      if (e.num() == EINTR) continue;
      return IoError("transport '" + d.opt.name + "': receive failed: " + e.what());
    }
    ReceivedMessage m;
    m.peer = d.opt.plaintext ? kUnauthenticated : "";
    if (!parts.empty()) {
      const char* uid = zmq_msg_gets(parts[0].handle(), "User-Id");
      if (!d.opt.plaintext) m.peer = uid != nullptr ? uid : kInProcess;  // no ZAP user id: inproc
      const char* pa = zmq_msg_gets(parts[0].handle(), "Peer-Address");
      if (pa != nullptr) m.peer_address = pa;
    }
    auto drop = [&](const std::string& reason, bool oversized) {
      (oversized ? d.dropped_oversized : d.dropped_malformed)++;
      GT_WARN(kLog, d.opt.name << ": dropped message from '" << (m.peer.empty() ? "?" : m.peer) << "' ("
                               << (m.peer_address.empty() ? "unknown address" : m.peer_address) << "): " << reason);
    };
    if (parts.size() < 2) {
      drop("expected a header frame and payload frames, got " + std::to_string(parts.size()) + " frame(s)", false);
      continue;
    }
    auto h = DecodeHeader(parts[0].data(), parts[0].size(), d.opt.max_message_bytes);
    if (!h.ok()) {
      bool oversized = h.status().message().find("exceeds the maximum") != std::string::npos;
      drop("bad header: " + h.status().message(), oversized);
      continue;
    }
    uint64_t got_bytes = 0;
    for (size_t i = 1; i < parts.size(); ++i) got_bytes += parts[i].size();
    if (got_bytes != h->payload_bytes) {
      drop("header announces " + std::to_string(h->payload_bytes) + " payload bytes but " +
               std::to_string(parts.size() - 1) + " payload frame(s) carry " + std::to_string(got_bytes),
           false);
      continue;
    }
    if (h->kind == FrameKind::kControl && parts.size() != 2) {
      drop("a control message must have exactly one payload frame", false);
      continue;
    }
    m.kind = h->kind;
    m.tag = h->tag;
    m.dtype = h->dtype;
    m.shape = h->shape;
    if (h->kind == FrameKind::kControl) {
      auto j = ParseControlBody(parts[1].data(), parts[1].size());
      if (!j.ok()) {
        drop(j.status().message(), false);
        continue;
      }
      m.control = std::move(j).value();
    }
    auto* owned = new std::vector<zmq::message_t>();
    owned->reserve(parts.size() - 1);
    for (size_t i = 1; i < parts.size(); ++i) owned->push_back(std::move(parts[i]));
    for (auto& f : *owned) m.chunks_.push_back({f.data(), f.size()});
    m.size_ = got_bytes;
    m.holder_ = std::shared_ptr<void>(owned, [](void* p) { delete static_cast<std::vector<zmq::message_t>*>(p); });
    d.messages_received++;
    d.bytes_received += m.size_;
    return m;
  }
}

const void* ReceivedMessage::data() {
  if (chunks_.empty()) return nullptr;
  if (chunks_.size() == 1) return chunks_[0].data;
  if (!merged_) {
    merged_ = std::make_shared<std::vector<uint8_t>>(size_);
    CopyTo(merged_->data());
  }
  return merged_->data();
}

void ReceivedMessage::CopyTo(void* dst) const {
  uint8_t* out = static_cast<uint8_t*>(dst);
  for (const Chunk& c : chunks_) {
    if (c.size > 0) std::memcpy(out, c.data, c.size);
    out += c.size;
  }
}

PeerState Transport::GetPeerState(const std::string& peer) const {
  std::lock_guard<std::mutex> lock(impl_->peers_mu);
  auto it = impl_->states.find(peer);
  if (it == impl_->states.end()) return PeerState{false, false, "no channel"};
  return it->second.second;
}

Status Transport::WaitConnected(const std::string& peer, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(impl_->peers_mu);
  auto it = impl_->states.find(peer);
  if (it == impl_->states.end()) return NotFound("no channel to peer '" + peer + "'; call Connect first");
  bool done = impl_->peers_cv.wait_for(lock, timeout, [&] {
    auto i = impl_->states.find(peer);
    return i == impl_->states.end() || i->second.second.connected || i->second.second.auth_failed;
  });
  it = impl_->states.find(peer);
  if (it == impl_->states.end()) return Aborted("channel to peer '" + peer + "' was closed while waiting");
  if (it->second.second.auth_failed) {
    return Unavailable("peer '" + peer + "' refused our CURVE key (not on its allow-list)");
  }
  if (!done || !it->second.second.connected) {
    return Timeout("no connection to peer '" + peer + "' within " + std::to_string(timeout.count()) +
                   " ms (last event: " + it->second.second.last_event + ")");
  }
  return Status::Ok();
}

TransportStats Transport::stats() const {
  const Impl& d = *impl_;
  TransportStats s;
  s.messages_sent = d.messages_sent;
  s.bytes_sent = d.bytes_sent;
  s.messages_received = d.messages_received;
  s.bytes_received = d.bytes_received;
  s.dropped_malformed = d.dropped_malformed;
  s.dropped_oversized = d.dropped_oversized;
  s.refused_peers = d.refused_peers;
  {
    std::lock_guard<std::mutex> lock(d.queue->mu);
    s.queued_bytes = d.queue->bytes;
  }
  return s;
}

}  // namespace gt
