#include "comms/store_protocol.h"

#include <utility>

#include "common/log.h"

namespace gt {

StoreRequestHandler::StoreRequestHandler(const StoreLimits& limits, std::string name)
    : limits_(limits), name_(std::move(name)) {}

std::vector<std::string> StoreRequestHandler::Refuse(const char* status, const std::string& who,
                                                     const std::string& why, uint64_t StoreRequestStats::*counter) {
  ++(stats_.*counter);
  GT_WARN("comms.store", name_ << ": refused a request from " << who << ": " << why);
  return {status};
}

std::vector<std::string> StoreRequestHandler::Handle(const std::vector<std::string_view>& frames,
                                                     const std::string& who, uint64_t overhead_bytes) {
  uint64_t total = overhead_bytes;
  for (const auto& f : frames) total += f.size();
  if (frames.size() < 3 || frames.size() > 4 || frames[0].size() != sizeof(uint64_t)) {
    return Refuse("bad", who, "malformed (" + std::to_string(frames.size()) + " request frames)",
                  &StoreRequestStats::refused_malformed);
  }
  if (total > limits_.max_request_bytes) {
    return Refuse("bad", who,
                  std::to_string(total) + " bytes, above the " + std::to_string(limits_.max_request_bytes) + " limit",
                  &StoreRequestStats::refused_malformed);
  }
  const std::string_view op = frames[1];
  const std::string_view key = frames[2];
  if (op == "set" && frames.size() == 4) {
    const std::string_view value = frames[3];
    auto it = map_.find(std::string(key));
    const uint64_t before = it == map_.end() ? 0 : key.size() + it->second.size();
    const uint64_t after = key.size() + value.size();
    if (stats_.bytes - before + after > limits_.max_total_bytes ||
        (it == map_.end() && stats_.keys + 1 > limits_.max_keys)) {
      return Refuse("full", who,
                    "the store holds " + std::to_string(stats_.keys) + " keys, " + std::to_string(stats_.bytes) +
                        " bytes (limits " + std::to_string(limits_.max_keys) + ", " +
                        std::to_string(limits_.max_total_bytes) + ")",
                    &StoreRequestStats::refused_full);
    }
    if (it == map_.end()) {
      ++stats_.keys;
      map_.emplace(std::string(key), std::string(value));
    } else {
      it->second.assign(value.data(), value.size());
    }
    stats_.bytes = stats_.bytes - before + after;
    return {"ok"};
  }
  if (op == "get" && frames.size() == 3) {
    auto it = map_.find(std::string(key));
    if (it == map_.end()) return {"missing"};
    return {"ok", it->second};
  }
  return Refuse("bad", who, "unknown operation", &StoreRequestStats::refused_malformed);
}

}  // namespace gt
