// libFuzzer target: the rendezvous store's request handling (comms/store_protocol.h
// StoreRequestHandler, what ZmqStoreServer applies to each request it receives) on arbitrary
// sequences of arbitrary frames, checking the map's accounting and limits after every request.
//
// Input: byte 0 picks the limits (small ones, to reach "full"); then frames, each a length byte
// (0..254) and that many bytes; a length byte 255 ends a request.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "comms/store_protocol.h"
#include "fuzz_util.h"

namespace {

void Apply(gt::StoreRequestHandler& h, const gt::StoreLimits& limits, const std::vector<std::string_view>& frames,
           uint64_t overhead) {
  const auto before = h.stats();
  const std::vector<std::string> reply = h.Handle(frames, "fuzz client", overhead);
  GT_FUZZ_CHECK(!reply.empty() && reply.size() <= 2, "a status and at most a value");
  const std::string& status = reply[0];
  GT_FUZZ_CHECK(status == "ok" || status == "missing" || status == "bad" || status == "full", "a known status");
  GT_FUZZ_CHECK(reply.size() == 1 || status == "ok", "only ok carries a value");
  const auto& st = h.stats();
  if (status == "bad") GT_FUZZ_CHECK(st.refused_malformed == before.refused_malformed + 1, "bad is counted");
  if (status == "full") GT_FUZZ_CHECK(st.refused_full == before.refused_full + 1, "full is counted");
  if (status == "bad" || status == "full")
    GT_FUZZ_CHECK(st.keys == before.keys && st.bytes == before.bytes, "a refused request changes nothing");
  if (reply.size() == 2) {
    GT_FUZZ_CHECK(frames.size() == 3 && frames[1] == "get", "a value answers a get");
    auto it = h.map().find(std::string(frames[2]));
    GT_FUZZ_CHECK(it != h.map().end() && it->second == reply[1], "get returns the stored value");
  }
  if (status == "ok" && frames.size() == 4) {
    auto it = h.map().find(std::string(frames[2]));
    GT_FUZZ_CHECK(it != h.map().end() && it->second == frames[3], "set stores the value");
  }
  uint64_t bytes = 0;
  for (const auto& [k, v] : h.map()) bytes += k.size() + v.size();
  GT_FUZZ_CHECK(st.keys == h.map().size(), "keys counts the map");
  GT_FUZZ_CHECK(st.bytes == bytes, "bytes counts keys and values");
  GT_FUZZ_CHECK(st.bytes <= limits.max_total_bytes && st.keys <= limits.max_keys, "within the limits");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  gt::SetLogLevel(gt::LogLevel::kError);  // every refusal logs a warning
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const uint64_t kRequest[] = {64, 300, 4096, 1u << 20};
  static const uint64_t kTotal[] = {0, 40, 600, 256u << 20};
  static const uint64_t kKeys[] = {0, 1, 3, 1u << 20};
  gt::StoreLimits limits;
  limits.max_request_bytes = kRequest[data[0] & 3];
  limits.max_total_bytes = kTotal[(data[0] >> 2) & 3];
  limits.max_keys = kKeys[(data[0] >> 4) & 3];
  const uint64_t overhead = (data[0] & 0x40) ? 5 : 0;  // a ROUTER routing id
  GtFuzzNoThrow("StoreRequestHandler::Handle", [&] {
    gt::StoreRequestHandler h(limits, "fuzz store");
    std::vector<std::string_view> frames;
    size_t i = 1;
    while (i < size) {
      const uint8_t len = data[i++];
      if (len == 255) {
        Apply(h, limits, frames, overhead);
        frames.clear();
        continue;
      }
      const size_t n = std::min<size_t>(len, size - i);
      frames.emplace_back(reinterpret_cast<const char*>(data + i), n);
      i += n;
    }
    if (!frames.empty()) Apply(h, limits, frames, overhead);
  });
  return 0;
}
