#include "common/strict_json.h"

#include <cmath>
#include <set>
#include <vector>

namespace gt {

using json = nlohmann::json;

Result<json> ParseStrictJson(const std::string& text, const std::string& what) {
  // The parser reports keys and container boundaries in document order; one frame per open
  // container tracks its keys (objects) or the next index (arrays) to name the path.
  struct Frame {
    bool object = false;
    std::set<std::string> keys;
    std::string key;  // the key of the value being parsed (objects)
    size_t index = 0;  // the index of the next element (arrays)
  };
  std::vector<Frame> stack;
  std::string duplicate;
  auto path = [&stack]() {
    std::string p;
    for (size_t i = 0; i + 1 < stack.size(); ++i) {
      const Frame& f = stack[i];
      if (f.object)
        p += (p.empty() ? "" : ".") + f.key;
      else
        p += "[" + std::to_string(f.index) + "]";
    }
    return p;
  };
  auto callback = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        stack.push_back(Frame{event == json::parse_event_t::object_start, {}, "", 0});
        break;
      case json::parse_event_t::key: {
        Frame& f = stack.back();
        f.key = parsed.get<std::string>();
        if (!f.keys.insert(f.key).second && duplicate.empty()) {
          const std::string where = path();
          duplicate = (where.empty() ? "" : where + ": ") + "key '" + f.key + "' appears twice";
        }
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        stack.pop_back();
        if (!stack.empty() && !stack.back().object) ++stack.back().index;
        break;
      case json::parse_event_t::value:
        if (!stack.empty() && !stack.back().object) ++stack.back().index;
        break;
    }
    return true;
  };
  json root;
  try {
    root = json::parse(text, callback);
  } catch (const json::exception& e) {
    return ParseError(what + " is not valid JSON: " + e.what());
  }
  if (!duplicate.empty()) return ParseError(what + ": " + duplicate + " (remove one of them)");
  return root;
}

bool IsWholeNumber(const json& v) {
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  return std::isfinite(d) && std::floor(d) == d;
}

}  // namespace gt
