// Status and Result<T>: the error currency across greentrain's module boundaries.
//
// Contract: a function that can fail returns Status (no value) or Result<T> (a value or an error).
// Exceptions from third-party libraries (ZeroMQ, MPI, NCCL, torch, nlohmann_json) are caught at the
// adapter that calls them and translated into a Status whose message names the file, field or peer
// at fault and, where possible, what the user should do. Status objects are cheap values; they are
// safe to copy between threads.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace gt {

enum class Code {
  kOk = 0,
  kInvalidArgument,   // the caller (or the user's input) is wrong; retrying will not help
  kNotFound,          // a named file, key, site or peer does not exist
  kParseError,        // malformed input data (CSV, JSON, frame)
  kInfeasible,        // a well-formed request that cannot be satisfied (model does not fit, ...)
  kUnavailable,       // a peer or backend is unreachable or not compiled in; may succeed later
  kTimeout,           // an operation did not finish within its deadline
  kIoError,           // file system or socket failure
  kInternal,          // a bug in greentrain
  kAborted,           // cancelled because a peer failed or the group was torn down
};

const char* CodeName(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "<CodeName>: <message>", or "OK".
  std::string ToString() const;
  // Returns a copy whose message is "<context>: <message>"; OK stays OK.
  Status WithContext(const std::string& context) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
inline Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
inline Status ParseError(std::string m) { return Status(Code::kParseError, std::move(m)); }
inline Status Infeasible(std::string m) { return Status(Code::kInfeasible, std::move(m)); }
inline Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
inline Status Timeout(std::string m) { return Status(Code::kTimeout, std::move(m)); }
inline Status IoError(std::string m) { return Status(Code::kIoError, std::move(m)); }
inline Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }
inline Status Aborted(std::string m) { return Status(Code::kAborted, std::move(m)); }

// Either a T or a non-OK Status. Accessing value() of an error aborts the process (a bug).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {            // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) v_ = Status(Code::kInternal, "Result constructed from OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { Check(); return std::get<T>(v_); }
  const T& value() const& { Check(); return std::get<T>(v_); }
  T&& value() && { Check(); return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void Check() const;
  std::variant<T, Status> v_;
};

[[noreturn]] void DieOnBadResultAccess(const Status& s);

template <typename T>
void Result<T>::Check() const {
  if (!ok()) DieOnBadResultAccess(std::get<Status>(v_));
}

}  // namespace gt

#define GT_CONCAT_INNER(a, b) a##b
#define GT_CONCAT(a, b) GT_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` (a Status) is not OK.
#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::gt::Status gt_status_ = (expr);          \
    if (!gt_status_.ok()) return gt_status_;   \
  } while (0)

// Declares `lhs` from a Result<T> expression, or returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(GT_CONCAT(gt_result_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
