// Strict JSON for files people write (configs) and files greentrain reads back (manifests,
// coordinator state): the JSON grammar of nlohmann::json plus no key twice in one object (a
// duplicate would otherwise silently take the last value). Never throws.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace gt {

// Parses `text`; `what` names the source in errors ("config 'x.json'"). A duplicate key is
// reported with its object's path ("sites[1].battery: key 'capacity_mwh' appears twice").
Result<nlohmann::json> ParseStrictJson(const std::string& text, const std::string& what);

// True when `v` is a number with no fractional part (1, 2.0, 1e4), for counts written as numbers.
bool IsWholeNumber(const nlohmann::json& v);

// A JSON number as the integer type T, or nullopt when it is not a whole number T holds:
// nlohmann's get<T>() of a float outside T's range (1e300, -1.5 for an unsigned) is undefined
// behaviour, so it is checked here first. Anything but a number goes to get<T>(), which throws
// json's type_error (callers catch it at their parser's edge).
template <typename T>
std::optional<T> WholeNumberAs(const nlohmann::json& v) {
  if (!v.is_number()) return v.get<T>();
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) return std::nullopt;
    return static_cast<T>(u);
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i < 0 ? (!std::is_signed_v<T> || i < static_cast<int64_t>(std::numeric_limits<T>::min()))
              : static_cast<uint64_t>(i) > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      return std::nullopt;
    return static_cast<T>(i);
  }
  const double d = v.get<double>();
  if (!(std::floor(d) == d) || d < static_cast<double>(std::numeric_limits<T>::min()) ||
      d >= std::ldexp(1.0, std::numeric_limits<T>::digits))
    return std::nullopt;
  return static_cast<T>(d);
}

}  // namespace gt
