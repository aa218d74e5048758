// Rendezvous key-value stores: how the members of a collective group find each other.
//
// Contract: a key is written once per group generation (keys carry the generation in their prefix, so
// a new generation never sees an old generation's values). Set overwrites atomically: a reader sees
// either nothing or the whole value. Get blocks until the key exists or the timeout passes and then
// returns Timeout naming the key. Every Store here is thread-safe.
//
//   MemoryStore  one process (ranks as threads, tests).
//   FileStore    a directory: processes on one machine, or machines sharing a file system.
//   PrefixStore  a view of another store with "<prefix>/" prepended to every key.
//   ZmqStoreServer / ZmqStore (comms/zmq_store.h): over the network, served by the coordinator.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"

namespace gt {

class Store {
 public:
  virtual ~Store() = default;
  virtual Status Set(const std::string& key, const std::string& value) = 0;
  // Blocks until `key` exists or `timeout` passes.
  virtual Result<std::string> Get(const std::string& key, std::chrono::milliseconds timeout) = 0;
};

class MemoryStore : public Store {
 public:
  Status Set(const std::string& key, const std::string& value) override;
  Result<std::string> Get(const std::string& key, std::chrono::milliseconds timeout) override;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::string> map_;
};

class FileStore : public Store {
 public:
  // Creates `dir` (and parents) if needed. Error names the directory.
  static Result<std::shared_ptr<FileStore>> Open(const std::string& dir);

  Status Set(const std::string& key, const std::string& value) override;
  Result<std::string> Get(const std::string& key, std::chrono::milliseconds timeout) override;
  const std::string& dir() const { return dir_; }

 private:
  explicit FileStore(std::string dir) : dir_(std::move(dir)) {}
  std::string PathFor(const std::string& key) const;
  std::string dir_;
};

class PrefixStore : public Store {
 public:
  PrefixStore(std::shared_ptr<Store> base, std::string prefix)
      : base_(std::move(base)), prefix_(std::move(prefix)) {}
  Status Set(const std::string& key, const std::string& value) override {
    return base_->Set(prefix_ + "/" + key, value);
  }
  Result<std::string> Get(const std::string& key, std::chrono::milliseconds timeout) override {
    return base_->Get(prefix_ + "/" + key, timeout);
  }

 private:
  std::shared_ptr<Store> base_;
  std::string prefix_;
};

}  // namespace gt
