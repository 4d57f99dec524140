#pragma once
// Minimal structured logging to stderr: one line per record, UTC timestamp,
// level, message. Thread-safe (one write per line).

#include <string_view>

namespace wsflow {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Records below this level are dropped. Default kInfo; WSFLOW_LOG=debug|info|warn|error overrides.
void set_log_level(LogLevel level);
void log(LogLevel level, std::string_view message);

inline void log_info(std::string_view m) { log(LogLevel::kInfo, m); }
inline void log_warn(std::string_view m) { log(LogLevel::kWarn, m); }
inline void log_error(std::string_view m) { log(LogLevel::kError, m); }
inline void log_debug(std::string_view m) { log(LogLevel::kDebug, m); }

}  // namespace wsflow
