// Structured log lines on stderr: "<iso-time> <LEVEL> <component>: message key=value ...".
// Thread-safe (one line is written with a single fwrite). The level is set once at start-up from
// GREENTRAIN_LOG (debug|info|warn|error, default info).
#pragma once

#include <sstream>
#include <string>

namespace gt {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

LogLevel CurrentLogLevel();
void SetLogLevel(LogLevel level);
void LogLine(LogLevel level, const std::string& component, const std::string& message);

}  // namespace gt

#define GT_LOG(level, component, stream_expr)                                   \
  do {                                                                          \
    if (static_cast<int>(level) >= static_cast<int>(::gt::CurrentLogLevel())) { \
      std::ostringstream gt_log_os_;                                            \
      gt_log_os_ << stream_expr;                                                \
      ::gt::LogLine(level, component, gt_log_os_.str());                        \
    }                                                                           \
  } while (0)
#define GT_DEBUG(c, s) GT_LOG(::gt::LogLevel::kDebug, c, s)
#define GT_INFO(c, s) GT_LOG(::gt::LogLevel::kInfo, c, s)
#define GT_WARN(c, s) GT_LOG(::gt::LogLevel::kWarn, c, s)
#define GT_ERROR(c, s) GT_LOG(::gt::LogLevel::kError, c, s)
