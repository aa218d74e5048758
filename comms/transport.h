// The inter-site transport: tensors and control messages over ZeroMQ, encrypted and authenticated.
//
// Model. Each site runs one Transport. It optionally binds one receiving endpoint (tcp://host:port, or
// ipc:// / inproc:// in tests) and opens one sending channel per peer with Connect(). Messages are one
// way (sender -> receiver's endpoint); a reply travels over the other site's own channel.
//
// Security. By default every connection uses CURVE: the receiver holds a key pair and an allow-list
// mapping client public keys to site names; a ZAP handler refuses (and logs) any client whose key is
// not on it. The sender must know the receiver's public key. Plain TCP is used only when
// TransportOptions::plaintext is set explicitly; then senders are reported as "unauthenticated".
//
// Limits and failures. Frames larger than max_message_bytes are refused by ZeroMQ (which closes the
// offending connection) or dropped here; malformed messages (bad header, size mismatch, bad control
// JSON) are dropped and logged with their reason; the receiver never crashes on input. Outgoing bytes
// not yet written to the network are bounded by max_queued_bytes. Heartbeats close connections to
// peers that stop answering; a send to a peer without a live, authenticated connection fails after
// send_timeout instead of queueing forever; Receive returns Timeout when nothing arrives in time.
//
// inproc:// endpoints connect Transports of the same process (all share one ZeroMQ context); they
// bypass CURVE, since nothing outside the process can reach them. Because that context is
// process-wide, a process that forks after creating a Transport must exec before using ZeroMQ.
//
// Heartbeats also fire when a receiver stops reading long enough for its queue to fill: ZeroMQ then
// stops reading the socket, pings go unanswered and the connection is closed after
// heartbeat_timeout, dropping what was queued on it (their release callbacks run). Size recv_hwm and
// heartbeat_timeout for the longest stall a healthy receiver may have; detect loss with timeouts.
//
// Ownership and threads. All methods are thread-safe. Sends to one peer are serialised; Receive may be
// called from one thread at a time (others wait). Zero-copy sends hand the caller's buffer to ZeroMQ
// until its `release` callback runs (on a ZeroMQ I/O thread, at the latest when the Transport is
// destroyed). A ReceivedMessage owns its payload. The destructor stops the Transport's thread and
// closes its sockets, waiting at most `linger` for unsent messages and until every buffer is released.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "comms/frame.h"
#include "comms/tensor.h"

namespace gt {

// Z85-encoded CURVE keys (40 characters each).
struct CurveKeyPair {
  std::string public_key;
  std::string secret_key;
};

Result<CurveKeyPair> GenerateCurveKeyPair();
// The public key belonging to a Z85 secret key; error if the key is malformed.
Result<std::string> CurvePublicKey(const std::string& secret_key);

struct TransportOptions {
  std::string name;            // this site's name, used in logs
  std::string bind_endpoint;   // where peers send to us ("tcp://0.0.0.0:7000", "tcp://127.0.0.1:*"); empty = send only
  bool plaintext = false;      // must be true to run without CURVE (tests, trusted networks)
  CurveKeyPair keys;           // this site's key pair (required unless plaintext)
  // Receiver side: client public key (Z85) -> peer site name. Only these may send to us.
  std::map<std::string, std::string> allowed_peers;
  uint64_t max_message_bytes = 1ull << 30;     // per payload; larger frames are refused
  uint64_t max_queued_bytes = 512ull << 20;    // outgoing bytes handed to ZeroMQ and not yet sent
  // Payloads are sent as frames of at most this size (receivers allocate one buffer per frame;
  // very large buffers cost page faults on every message).
  uint64_t frame_bytes = 8ull << 20;
  int send_hwm = 1000;                         // per-peer message high-water marks (>= 2)
  int recv_hwm = 1000;
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds heartbeat_timeout{5000};  // no traffic for this long: connection closed
  std::chrono::milliseconds send_timeout{30000};      // a send waits at most this long for room / a connection
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds linger{1000};
};

// A received message. Its payload arrives as one or more chunks (one per frame of at most the
// sender's frame_bytes); data() returns it contiguous, merging the chunks on first use (one copy),
// and CopyTo avoids that allocation. Not thread-safe: use one message from one thread at a time.
struct ReceivedMessage {
  FrameKind kind = FrameKind::kTensor;
  // Authenticated sender name (CURVE), "unauthenticated" (plaintext), or "in-process" (inproc://,
  // which ZeroMQ does not authenticate: only this process can reach it).
  std::string peer;
  std::string peer_address;    // remote IP when known
  TensorTag tag;
  DType dtype = DType::kUInt8;
  std::vector<int64_t> shape;
  nlohmann::json control;      // kControl: the parsed JSON object (has "v" and "type")

  struct Chunk {
    const void* data;
    size_t size;
  };
  size_t size() const { return size_; }
  const std::vector<Chunk>& chunks() const { return chunks_; }
  const void* data();
  void CopyTo(void* dst) const;

  // Internal: set by the Transport.
  std::shared_ptr<void> holder_;
  std::vector<Chunk> chunks_;
  size_t size_ = 0;
  std::shared_ptr<std::vector<uint8_t>> merged_;
};

struct PeerState {
  bool connected = false;      // an authenticated connection is up
  bool auth_failed = false;    // the peer refused our key (or we refused theirs) at the last attempt
  std::string last_event;      // e.g. "handshake succeeded", "disconnected", "authentication failed"
};

struct TransportStats {
  uint64_t messages_sent = 0, bytes_sent = 0;
  uint64_t messages_received = 0, bytes_received = 0;
  uint64_t dropped_malformed = 0;   // bad header, part count, size mismatch, bad JSON
  uint64_t dropped_oversized = 0;   // declared payload above max_message_bytes
  uint64_t refused_peers = 0;       // ZAP refusals
  uint64_t queued_bytes = 0;        // current
};

class Transport {
 public:
  static Result<std::unique_ptr<Transport>> Create(const TransportOptions& options);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // The bound endpoint with the real port ("tcp://127.0.0.1:41234"); empty when send-only.
  std::string endpoint() const;
  const std::string& name() const;

  // Opens the channel to `peer`, whose receiving endpoint is `endpoint`. `server_public_key` is the
  // peer's Z85 public key (ignored in plaintext mode). Returns at once; the connection is made (and
  // re-made after failures) in the background. Connecting an existing peer name replaces its channel.
  Status Connect(const std::string& peer, const std::string& endpoint, const std::string& server_public_key);
  Status Disconnect(const std::string& peer);

  // Zero-copy: `data` must stay valid and unchanged until `release` is called (exactly once, also when
  // the send fails): after ZeroMQ wrote the frames to the socket, or for inproc:// after the receiver
  // dropped the message, at the latest when this Transport is destroyed. shape * dtype must match `bytes`.
  Status SendTensor(const std::string& peer, const TensorTag& tag, DType dtype, const std::vector<int64_t>& shape,
                    const void* data, size_t bytes, std::function<void()> release);
  // Copies the payload first; the caller's buffer is free on return.
  Status SendTensorCopy(const std::string& peer, const TensorTag& tag, DType dtype, const std::vector<int64_t>& shape,
                        const void* data, size_t bytes);
  // `body` must be a JSON object with a string "type"; "v" is set to kControlVersion if absent.
  Status SendControl(const std::string& peer, const nlohmann::json& body, const TensorTag& tag = {});

  // Next valid message, skipping (and logging) malformed ones; Timeout if none arrives in `timeout`.
  Result<ReceivedMessage> Receive(std::chrono::milliseconds timeout);

  PeerState GetPeerState(const std::string& peer) const;
  // Waits until the channel to `peer` is connected and authenticated; Unavailable on refusal, Timeout.
  Status WaitConnected(const std::string& peer, std::chrono::milliseconds timeout) const;
  TransportStats stats() const;

  struct Impl;

 private:
  explicit Transport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gt
