#pragma once
// A pg_auto_failover formation on this machine for the failover chaos test:
// a monitor, a primary and a secondary, each a Postgres on its own
// 127.0.0.1 port under `root`, run by Debian's pg_autoctl (as the
// `postgres` user when the test runs as root, as Postgres refuses root).
// The destructor stops all three.

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace wsflow::testing {

class AutoFailoverCluster {
 public:
  // Whether pg_autoctl and the monitor's extension are installed.
  static bool available();

  // Creates and starts the formation with database `dbname`; returns once
  // the secondary streams from the primary. Throws std::runtime_error (with
  // the logs) when that does not happen within two minutes.
  AutoFailoverCluster(const std::filesystem::path& root, const std::string& dbname);
  ~AutoFailoverCluster();
  AutoFailoverCluster(const AutoFailoverCluster&) = delete;
  AutoFailoverCluster& operator=(const AutoFailoverCluster&) = delete;

  // The multi-host URL a client uses: it connects to whichever node is the
  // writable primary (target_session_attrs=read-write).
  std::string url() const;
  // The port of the node that is the primary now (0 when none is).
  int primary_port() const;
  // A planned failover (pg_autoctl perform failover): the secondary is
  // promoted and the old primary rejoins as the new secondary. Returns when
  // pg_autoctl reports it done.
  void perform_failover();
  // The primary dies outright: its pg_autoctl keeper and its postgres are
  // killed with SIGKILL. The monitor notices after its health checks fail
  // (tens of seconds) and promotes the secondary.
  void kill_primary();
  std::string logs() const;

 private:
  std::vector<std::string> autoctl(std::vector<std::string> args) const;
  void wait_for_streaming();
  static std::set<pid_t> process_groups(const std::filesystem::path& pgdata);
  void kill_node(const std::filesystem::path& pgdata);
  std::string monitor_dsn() const;

  std::filesystem::path root_;
  std::string dbname_;
  int monitor_port_ = 0;
  std::vector<int> node_ports_;
  std::vector<std::unique_ptr<Process>> processes_;
  std::map<std::string, std::set<pid_t>> groups_;  // by pgdata, once the formation is up
};

}  // namespace wsflow::testing
