// libFuzzer target: control-message parsing as the transport does it (comms/frame.h
// ParseControlBody, used by Transport::Receive): the payload must be a JSON object with an integer
// "v" in [1, kControlVersion] and a string "type".
#include <cstddef>
#include <cstdint>
#include <string>

#include "comms/frame.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  GtFuzzNoThrow("ParseControlBody", [&] {
    auto j = gt::ParseControlBody(data, size);
    if (!j.ok()) {
      GT_FUZZ_CHECK(j.status().code() == gt::Code::kParseError, "a bad control body is a ParseError");
      return;
    }
    GT_FUZZ_CHECK(j->is_object(), "an object");
    GT_FUZZ_CHECK(j->contains("type") && (*j)["type"].is_string(), "a string type");
    GT_FUZZ_CHECK(j->contains("v") && (*j)["v"].is_number_integer(), "an integer v");
    const int64_t v = (*j)["v"].get<int64_t>();
    GT_FUZZ_CHECK(v >= 1 && v <= gt::kControlVersion, "a supported version");
    // What receivers do with an accepted body: read the type, serialise it again (logs, replies).
    const std::string type = (*j)["type"].get<std::string>();
    const std::string text = j->dump();
    auto again = gt::ParseControlBody(text.data(), text.size());
    GT_FUZZ_CHECK(again.ok() && *again == *j, "an accepted body survives serialisation");
  });
  return 0;
}
