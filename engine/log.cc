#include "engine/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <string>

#include <nlohmann/json.hpp>

namespace wsflow {
namespace {

LogLevel initial_level() {
  const char* env = std::getenv("WSFLOW_LOG");
  const std::string v = env ? env : "";
  if (v == "debug") return LogLevel::kDebug;
  if (v == "warn") return LogLevel::kWarn;
  if (v == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<LogLevel> g_level{initial_level()};
std::atomic<LogFormat> g_format{LogFormat::kText};

const char* name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarn:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}

}  // namespace

void set_log_level(LogLevel level) { g_level = level; }
void set_log_format(LogFormat format) { g_format = format; }

void log(LogLevel level, std::string_view message, const LogFields& fields) {
  if (level < g_level.load()) return;
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  const std::string ts = std::string(stamp) + "." + (ms < 100 ? (ms < 10 ? "00" : "0") : "") + std::to_string(ms) + "Z";
  const std::pair<const char*, const std::string*> named[] = {{"saga_id", &fields.saga_id},
                                                              {"workspace_id", &fields.workspace_id},
                                                              {"step", &fields.step},
                                                              {"branch", &fields.branch}};
  std::string line;
  if (g_format.load() == LogFormat::kJson) {
    nlohmann::json record = {{"ts", ts}, {"level", name(level)}, {"msg", std::string(message)}};
    for (const auto& [key, value] : named) {
      if (!value->empty()) record[key] = *value;
    }
    if (fields.attempt > 0) record["attempt"] = fields.attempt;
    // Invalid UTF-8 (from an external error message) is replaced, never thrown.
    line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  } else {
    line = ts + " " + name(level) + " " + std::string(message);
    for (const auto& [key, value] : named) {
      if (!value->empty()) line += std::string(" ") + key + "=" + *value;
    }
    if (fields.attempt > 0) line += " attempt=" + std::to_string(fields.attempt);
    line += "\n";
  }
  // One write() per line keeps lines from different threads whole.
  [[maybe_unused]] auto written = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace wsflow
