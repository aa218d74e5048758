// UTC timestamps as int64 seconds since the Unix epoch, and ISO-8601 parsing/formatting.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace gt {

using UnixSeconds = int64_t;
constexpr int64_t kSecondsPerHour = 3600;

// Accepts "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS]" or with 'T' between date and time, optionally
// followed by "Z" or a "+HH:MM"/"-HH:MM" offset (converted to UTC). Fractional seconds are rejected.
Result<UnixSeconds> ParseIsoTime(std::string_view text);
// "YYYY-MM-DDTHH:MM:SSZ".
std::string FormatIsoTime(UnixSeconds t);
// Days since 1970-01-01 of a civil date (proleptic Gregorian).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d);

// Parses a duration like "90s", "15m", "1h", "2d" or a bare number of seconds.
Result<int64_t> ParseDurationSeconds(std::string_view text);

}  // namespace gt
