#include "common/status.h"

#include <cstdio>
#include <cstdlib>

namespace gt {

const char* CodeName(Code c) {
  switch (c) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kNotFound: return "NotFound";
    case Code::kParseError: return "ParseError";
    case Code::kInfeasible: return "Infeasible";
    case Code::kUnavailable: return "Unavailable";
    case Code::kTimeout: return "Timeout";
    case Code::kIoError: return "IoError";
    case Code::kInternal: return "Internal";
    case Code::kAborted: return "Aborted";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code_)) + ": " + message_;
}

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_);
}

void DieOnBadResultAccess(const Status& s) {
  std::fprintf(stderr, "greentrain: fatal: value() of an error Result: %s\n", s.ToString().c_str());
  std::abort();
}

}  // namespace gt
