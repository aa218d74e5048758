// libFuzzer target: the strict JSON configuration parser (common/config.h ParseConfig, and
// common/strict_json.h ParseStrictJson under it) on arbitrary text. Relative trace paths resolve
// against launch/configs/, so the bundled default (a seed) parses completely.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config.h"
#include "common/log.h"
#include "common/strict_json.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  gt::SetLogLevel(gt::LogLevel::kError);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  GtFuzzNoThrow("ParseStrictJson", [&] {
    auto j = gt::ParseStrictJson(text, "fuzz input");
    if (!j.ok()) GT_FUZZ_CHECK(!j.status().message().empty(), "an error names its cause");
  });
  GtFuzzNoThrow("ParseConfig", [&] {
    static const std::string base = std::string(GREENTRAIN_SOURCE_DIR) + "/launch/configs";
    auto c = gt::ParseConfig(text, base);
    if (!c.ok()) {
      GT_FUZZ_CHECK(!c.status().message().empty(), "an error names its cause");
      return;
    }
    // A config that parses is fully validated (config.h's contract).
    GT_FUZZ_CHECK(!c->sites.empty(), "at least one site");
    GT_FUZZ_CHECK(c->sim_end > c->job.start, "simulate_until after job.start");
    GT_FUZZ_CHECK(c->interval_seconds > 0 && c->interval_seconds % 60 == 0 && c->interval_seconds <= 86400,
                  "interval in whole minutes, at most 1d");
    for (const auto& l : c->links) {
      GT_FUZZ_CHECK(c->SiteIndex(l.from) >= 0 && c->SiteIndex(l.to) >= 0 && l.from != l.to,
                    "links join two defined sites");
    }
    GT_FUZZ_CHECK(c->model.hidden % c->model.heads == 0, "hidden divisible by heads");
  });
  return 0;
}
