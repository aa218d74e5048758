// The rendezvous store's request handling (ZmqStoreServer, comms/zmq_store.h) without sockets: the
// key-value map, its limits and its counters, and the answer to one request.
//
// Protocol. A client (DEALER) sends [request id, op, key, value?]; the server (ROUTER) receives them
// after the client's routing id and answers [routing id, request id, status, value?]:
//   op "set" with a value -> "ok" (stored), or "full" when it would take the map beyond
//                            max_total_bytes (keys + values) or max_keys;
//   op "get" without one  -> "ok" + value, or "missing";
//   anything else         -> "bad": a request id that is not 8 bytes, fewer than 3 or more than 4
//                            frames, more than max_request_bytes in all, an unknown op.
// Every refusal ("bad", "full") is counted and logged with the client's name.
//
// Contract: Handle accepts any frames (they come from the network) and never throws or crashes; a
// refused request changes nothing but the counters. Not thread-safe: the caller serialises calls.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace gt {

struct StoreLimits {
  uint64_t max_request_bytes = 1ull << 20;   // one request (all of its frames); larger is "bad"
  uint64_t max_total_bytes = 256ull << 20;   // keys + values held
  uint64_t max_keys = 1ull << 20;
};

struct StoreRequestStats {
  uint64_t refused_full = 0, refused_malformed = 0;
  uint64_t keys = 0, bytes = 0;  // held now (bytes: keys + values)
};

class StoreRequestHandler {
 public:
  // `name` introduces the log lines ("store server tcp://...:29500").
  explicit StoreRequestHandler(const StoreLimits& limits, std::string name = "store server");

  void set_name(std::string name) { name_ = std::move(name); }

  // The reply to one request: the status frame and, for a successful get, the value.
  // `frames` = [request id, op, key, value?]; `who` names the client in logs; `overhead_bytes`
  // (the routing id the server received with the request) counts toward max_request_bytes.
  std::vector<std::string> Handle(const std::vector<std::string_view>& frames, const std::string& who,
                                  uint64_t overhead_bytes = 0);

  const StoreRequestStats& stats() const { return stats_; }
  const std::map<std::string, std::string>& map() const { return map_; }

 private:
  std::vector<std::string> Refuse(const char* status, const std::string& who, const std::string& why,
                                  uint64_t StoreRequestStats::*counter);

  StoreLimits limits_;
  std::string name_;
  std::map<std::string, std::string> map_;
  StoreRequestStats stats_;
};

}  // namespace gt
