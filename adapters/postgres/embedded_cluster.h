#pragma once
// A private PostgreSQL cluster run with Debian's initdb and pg_ctl, reachable
// only through a unix socket in a private temporary directory. Used by
// `wsflow serve` when no database URL is given (kept under ./.wsflow/pg across
// restarts) and by the test harness (a throwaway cluster per test run).
//
// As root (initdb and postgres refuse to run as root) the cluster runs as the
// unprivileged `postgres` system user that Debian's postgresql package
// creates; the data directory is handed to that user.
//
// start() throws std::runtime_error with the command's log when the cluster
// cannot be created or started. The destructor stops the cluster (fast
// shutdown) and, for an ephemeral cluster, deletes its files.

#include <filesystem>
#include <memory>
#include <string>

namespace wsflow::pg {

// The newest installed server version's bin directory, e.g.
// /usr/lib/postgresql/15/bin. Throws std::runtime_error when there is none.
std::filesystem::path server_bin_dir();

struct ClusterOptions {
  std::filesystem::path root;  // holds data/ and server.log; created when missing
  bool ephemeral = false;      // files deleted on stop
  bool unsafe_fast = false;    // fsync and synchronous commit off: for tests only, never for data you keep
  int max_connections = 200;
};

class EmbeddedCluster {
 public:
  static std::unique_ptr<EmbeddedCluster> start(const ClusterOptions& options);
  ~EmbeddedCluster();
  EmbeddedCluster(const EmbeddedCluster&) = delete;
  EmbeddedCluster& operator=(const EmbeddedCluster&) = delete;

  // Stops the server; idempotent.
  void stop();
  // Stops the server (fast: open connections are cut) and starts it again on
  // the same data and socket. Throws like start().
  void restart();
  // Stops the server as a crash would (immediate mode: connections cut, no
  // shutdown checkpoint; the next start recovers from the WAL). restart()
  // starts it again. For fault tests.
  void crash();
  // Stops (immediate mode) and deletes a cluster left under `root` by a
  // process that died without stopping it. Never throws.
  static void remove_abandoned(const std::filesystem::path& root);
  // A libpq connection string for `database` on this cluster.
  std::string dsn(const std::string& database) const;
  // Creates `database` if it does not exist.
  void ensure_database(const std::string& database);

 private:
  EmbeddedCluster(ClusterOptions options, std::filesystem::path bin_dir, std::filesystem::path socket_dir);
  void launch();  // pg_ctl start with our settings

  ClusterOptions options_;
  std::filesystem::path bin_dir_;
  std::filesystem::path socket_dir_;
  bool running_ = false;
};

}  // namespace wsflow::pg
