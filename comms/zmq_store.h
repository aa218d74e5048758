// A rendezvous Store over the network (ZeroMQ), for groups whose members do not share a file system.
//
// ZmqStoreServer holds the key-value map in memory and answers on a bound endpoint (run it in the
// coordinator or in one agreed process of the site). ZmqStore is the client-side Store; Get polls the
// server until the key exists or the timeout passes, so a server restart or a lost reply costs at most
// one poll interval. Plain TCP: meant for the trusted network inside a site, not for the WAN.
// Both classes are thread-safe; the server's destructor stops its thread.
#pragma once

#include <memory>
#include <string>

#include "comms/store.h"

namespace gt {

class ZmqStoreServer {
 public:
  // `endpoint` e.g. "tcp://0.0.0.0:29500", "tcp://127.0.0.1:*" or "ipc:///tmp/x".
  static Result<std::unique_ptr<ZmqStoreServer>> Start(const std::string& endpoint);
  ~ZmqStoreServer();
  // The bound endpoint with its real port.
  std::string endpoint() const;

  struct Impl;

 private:
  explicit ZmqStoreServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class ZmqStore : public Store {
 public:
  static Result<std::shared_ptr<ZmqStore>> Connect(const std::string& endpoint);
  ~ZmqStore() override;
  Status Set(const std::string& key, const std::string& value) override;
  Result<std::string> Get(const std::string& key, std::chrono::milliseconds timeout) override;

  struct Impl;

 private:
  explicit ZmqStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gt
