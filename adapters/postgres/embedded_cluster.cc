#include "adapters/postgres/embedded_cluster.h"

#include "adapters/os/child_process.h"
#include "engine/text_file.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace wsflow::pg {
namespace fs = std::filesystem;
namespace {

constexpr int kPort = 5432;  // only names the socket file; nothing listens on TCP
constexpr const char* kClusterUser = "postgres";

}  // namespace

fs::path server_bin_dir() {
  std::vector<std::pair<int, fs::path>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const fs::path bin = entry.path() / "bin";
    if (!fs::exists(bin / "initdb") || !fs::exists(bin / "pg_ctl")) continue;
    try {
      found.emplace_back(std::stoi(entry.path().filename().string()), bin);
    } catch (const std::exception&) {
    }
  }
  if (found.empty()) {
    throw std::runtime_error("no PostgreSQL server found under /usr/lib/postgresql (install the postgresql package)");
  }
  return std::max_element(found.begin(), found.end())->second;
}

namespace {

bool running_as_root() { return geteuid() == 0; }

struct passwd* cluster_user() {
  struct passwd* pw = getpwnam(kClusterUser);
  if (!pw) throw std::runtime_error("running as root needs the 'postgres' system user (install postgresql)");
  return pw;
}

void hand_to_cluster_user(const fs::path& path) {
  if (!running_as_root()) return;
  struct passwd* pw = cluster_user();
  if (chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    throw std::runtime_error("cannot hand " + path.string() + " to the postgres user");
  }
}

std::string tail_of(const fs::path& file) {
  const std::string s = read_text_file(file).value_or("");
  return s.size() > 4000 ? s.substr(s.size() - 4000) : s;
}

// Runs argv (as the cluster user when root), output appended to `log`.
// Returns the exit status.
int run(std::vector<std::string> argv, const fs::path& log) {
  if (running_as_root()) {
    argv.insert(argv.begin(), {"runuser", "-u", kClusterUser, "--"});
  }
  return os::wait_child(os::spawn_logged(std::move(argv), log.string(), /*append=*/true)).value_or(128);
}

}  // namespace

EmbeddedCluster::EmbeddedCluster(ClusterOptions options, fs::path bin_dir, fs::path socket_dir)
    : options_(std::move(options)), bin_dir_(std::move(bin_dir)), socket_dir_(std::move(socket_dir)) {}

std::unique_ptr<EmbeddedCluster> EmbeddedCluster::start(const ClusterOptions& options) {
  const fs::path bin = server_bin_dir();
  fs::create_directories(options.root);
  const fs::path root = fs::absolute(options.root);
  const fs::path data = root / "data";
  const fs::path log = root / "server.log";
  hand_to_cluster_user(root);
  { std::ofstream touch(log, std::ios::app); }
  hand_to_cluster_user(log);
  if (running_as_root() && run({"test", "-w", root.string()}, log) != 0) {
    throw std::runtime_error("the postgres user cannot write to " + root.string() +
                             " (a parent directory is not traversable by it); run from another directory "
                             "or give --database-url");
  }

  // A private socket directory, short enough for the unix socket path limit.
  std::string socket_template = (fs::temp_directory_path() / "wsflow-pg-XXXXXX").string();
  if (!mkdtemp(socket_template.data())) throw std::runtime_error("cannot create a socket directory in /tmp");
  const fs::path socket_dir = socket_template;
  hand_to_cluster_user(socket_dir);
  std::unique_ptr<EmbeddedCluster> cluster(new EmbeddedCluster(options, bin, socket_dir));
  cluster->options_.root = root;

  if (!fs::exists(data / "PG_VERSION")) {
    if (run({(bin / "initdb").string(), "-D", data.string(), "-U", "postgres", "-A", "trust", "-E", "UTF8",
             "--locale=C", "--no-instructions"},
            log) != 0) {
      throw std::runtime_error("initdb failed for " + data.string() + ":\n" + tail_of(log));
    }
  } else if (run({(bin / "pg_ctl").string(), "-D", data.string(), "status"}, log) == 0) {
    // A server left over from a process that did not shut down: its socket
    // directory is gone with it, so stop it and start afresh.
    run({(bin / "pg_ctl").string(), "-D", data.string(), "-m", "fast", "-w", "stop"}, log);
  }

  cluster->launch();
  return cluster;
}

void EmbeddedCluster::launch() {
  const fs::path data = options_.root / "data";
  const fs::path log = options_.root / "server.log";
  std::string settings = "-c listen_addresses='' -k " + socket_dir_.string() + " -p " + std::to_string(kPort) +
                         " -c max_connections=" + std::to_string(options_.max_connections);
  if (options_.unsafe_fast) settings += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off";
  if (run({(bin_dir_ / "pg_ctl").string(), "-D", data.string(), "-l", log.string(), "-o", settings, "-w", "-t", "60",
           "start"},
          log) != 0) {
    throw std::runtime_error("pg_ctl start failed for " + data.string() + ":\n" + tail_of(log));
  }
  running_ = true;
}

void EmbeddedCluster::restart() {
  if (running_) {
    running_ = false;
    run({(bin_dir_ / "pg_ctl").string(), "-D", (options_.root / "data").string(), "-m", "fast", "-w", "stop"},
        options_.root / "server.log");
  }
  launch();
}

EmbeddedCluster::~EmbeddedCluster() {
  try {
    stop();
  } catch (...) {
  }
}

void EmbeddedCluster::crash() {
  if (!running_) return;
  running_ = false;
  run({(bin_dir_ / "pg_ctl").string(), "-D", (options_.root / "data").string(), "-m", "immediate", "-w", "stop"},
      options_.root / "server.log");
}

void EmbeddedCluster::stop() {
  if (running_) {
    running_ = false;
    run({(bin_dir_ / "pg_ctl").string(), "-D", (options_.root / "data").string(), "-m", "fast", "-w", "stop"},
        options_.root / "server.log");
  }
  std::error_code ec;
  fs::remove_all(socket_dir_, ec);
  if (options_.ephemeral) fs::remove_all(options_.root, ec);
}

void EmbeddedCluster::remove_abandoned(const fs::path& root) {
  try {
    const fs::path data = root / "data";
    if (fs::exists(data / "postmaster.pid")) {
      run({(server_bin_dir() / "pg_ctl").string(), "-D", data.string(), "-m", "immediate", "-w", "stop"},
          root / "server.log");
    }
    std::error_code ec;
    fs::remove_all(root, ec);
  } catch (const std::exception&) {
  }
}

std::string EmbeddedCluster::dsn(const std::string& database) const {
  return "host=" + socket_dir_.string() + " port=" + std::to_string(kPort) + " user=postgres dbname=" + database;
}

void EmbeddedCluster::ensure_database(const std::string& database) {
  pqxx::connection conn(dsn("postgres"));
  pqxx::nontransaction tx(conn);
  if (tx.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", database).empty()) {
    tx.exec("CREATE DATABASE " + tx.quote_name(database));
  }
}

}  // namespace wsflow::pg
