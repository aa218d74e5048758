// Strict JSON for files people write (configs) and files greentrain reads back (manifests,
// coordinator state): the JSON grammar of nlohmann::json plus no key twice in one object (a
// duplicate would otherwise silently take the last value). Never throws.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace gt {

// Parses `text`; `what` names the source in errors ("config 'x.json'"). A duplicate key is
// reported with its object's path ("sites[1].battery: key 'capacity_mwh' appears twice").
Result<nlohmann::json> ParseStrictJson(const std::string& text, const std::string& what);

// True when `v` is a number with no fractional part (1, 2.0, 1e4), for counts written as numbers.
bool IsWholeNumber(const nlohmann::json& v);

}  // namespace gt
