#include "adapters/export/schema_dump.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "adapters/os/child_process.h"
#include "adapters/postgres/embedded_cluster.h"

namespace wsflow {

void dump_environment(const std::string& dsn, const std::string& schema, const std::filesystem::path& out) {
  const std::string log = out.string() + ".log";
  std::vector<std::string> argv = {(pg::server_bin_dir() / "pg_dump").string(), "--dbname=" + dsn, "--no-owner",
                                   "--no-privileges", "--file=" + out.string()};
  if (!schema.empty()) argv.push_back("--schema=" + schema);
  const pid_t pid = os::spawn_logged(argv, log, false);
  const std::optional<int> status = os::wait_child(pid);
  std::ostringstream messages;
  messages << std::ifstream(log).rdbuf();
  std::error_code ec;
  std::filesystem::remove(log, ec);
  if (status != 0) {
    throw std::runtime_error("pg_dump of " + (schema.empty() ? std::string("the database") : schema) +
                             " failed (exit " + std::to_string(status.value_or(-1)) + "): " + messages.str());
  }
}

}  // namespace wsflow
