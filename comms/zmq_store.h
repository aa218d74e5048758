// A rendezvous Store over the network (ZeroMQ), for groups whose members do not share a file system.
//
// ZmqStoreServer holds the key-value map in memory and answers on a bound endpoint (run it in the
// coordinator or in one agreed process of the site). ZmqStore is the client-side Store; Get polls the
// server until the key exists or the timeout passes, so a server restart or a lost reply costs at most
// one poll interval.
//
// Security and limits. By default the server is a CURVE server that accepts only the client keys on
// its allow-list (the ZAP handler refuses and logs any other), so nobody who merely reaches the port
// can read the group's address records or write into them; plaintext must be asked for explicitly.
// A request whose frames exceed max_request_bytes is refused: ZeroMQ drops a frame above the limit
// (and the connection that sent it) before it is buffered whole, and the server checks the total.
// A set that would take the map beyond max_total_bytes or max_keys is answered "full". Malformed
// requests are answered "bad" and logged with the client's name. The server never holds more than
// its limits plus one request in flight per connection.
// Both classes are thread-safe; the server's destructor stops its thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "comms/store.h"
#include "comms/transport.h"

namespace gt {

struct ZmqStoreServerOptions {
  std::string endpoint;        // e.g. "tcp://0.0.0.0:29500", "tcp://127.0.0.1:*" or "ipc:///tmp/x"
  bool plaintext = false;      // must be true to serve without CURVE (tests, a trusted site network)
  CurveKeyPair keys;           // the server's pair (required unless plaintext)
  std::map<std::string, std::string> allowed_clients;  // client public key (Z85) -> name for logs
  uint64_t max_request_bytes = 1ull << 20;   // one request (key + value); larger is refused
  uint64_t max_total_bytes = 256ull << 20;   // keys + values held
  uint64_t max_keys = 1ull << 20;
};

struct ZmqStoreServerStats {
  uint64_t requests = 0, refused_full = 0, refused_malformed = 0, refused_clients = 0;
  uint64_t keys = 0, bytes = 0;
};

class ZmqStoreServer {
 public:
  static Result<std::unique_ptr<ZmqStoreServer>> Start(const ZmqStoreServerOptions& options);
  ~ZmqStoreServer();
  // The bound endpoint with its real port.
  std::string endpoint() const;
  ZmqStoreServerStats stats() const;

  struct Impl;

 private:
  explicit ZmqStoreServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// How a client reaches a server: its own key pair and the server's public key (CURVE), or plaintext.
struct ZmqStoreCredentials {
  bool plaintext = false;
  CurveKeyPair keys;
  std::string server_public_key;
};

class ZmqStore : public Store {
 public:
  static Result<std::shared_ptr<ZmqStore>> Connect(const std::string& endpoint, const ZmqStoreCredentials& credentials);
  ~ZmqStore() override;
  Status Set(const std::string& key, const std::string& value) override;
  Result<std::string> Get(const std::string& key, std::chrono::milliseconds timeout) override;

  struct Impl;

 private:
  explicit ZmqStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gt
