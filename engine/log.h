#pragma once
// Structured logging to stderr, one record per line (one write, so lines
// from different threads stay whole): as text (UTC timestamp, level,
// message, then key=value fields) or, with set_log_format(kJson), as one
// JSON object per line {ts, level, msg, saga_id, workspace_id, step, branch,
// attempt} for log shippers. Thread-safe. Never pass secrets: messages and
// fields are written as given.

#include <string>
#include <string_view>

namespace wsflow {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

// What a record is about; empty fields are left out.
struct LogFields {
  std::string saga_id;
  std::string workspace_id;
  std::string step;
  std::string branch;
  int attempt = 0;
};

// Records below this level are dropped. Default kInfo; WSFLOW_LOG=debug|info|warn|error overrides.
void set_log_level(LogLevel level);
void set_log_format(LogFormat format);
void log(LogLevel level, std::string_view message, const LogFields& fields = {});

inline void log_info(std::string_view m, const LogFields& f = {}) { log(LogLevel::kInfo, m, f); }
inline void log_warn(std::string_view m, const LogFields& f = {}) { log(LogLevel::kWarn, m, f); }
inline void log_error(std::string_view m, const LogFields& f = {}) { log(LogLevel::kError, m, f); }
inline void log_debug(std::string_view m, const LogFields& f = {}) { log(LogLevel::kDebug, m, f); }

}  // namespace wsflow
