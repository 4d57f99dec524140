#include "tests/chaos/auto_failover_cluster.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <pqxx/pqxx>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "adapters/postgres/embedded_cluster.h"
#include "engine/text_file.h"
#include "tests/support/live_server.h"

namespace wsflow::testing {
namespace {

const std::filesystem::path kAutoctl = "/usr/bin/pg_autoctl";

std::string node_dsn(int port, const std::string& dbname) {
  return "host=127.0.0.1 port=" + std::to_string(port) + " user=postgres dbname=" + dbname + " connect_timeout=2";
}

void wait_until_connectable(const std::string& dsn) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < until) {
    try {
      pqxx::connection conn(dsn);
      return;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  throw std::runtime_error("pg_auto_failover: cannot connect to " + dsn);
}

}  // namespace

bool AutoFailoverCluster::available() {
  try {
    return std::filesystem::exists(kAutoctl) &&
           std::filesystem::exists(pg::server_bin_dir().parent_path() / "lib" / "pgautofailover.so");
  } catch (const std::exception&) {
    return false;
  }
}

// pg_autoctl with its configuration and state under root_, as the postgres
// user when we are root.
std::vector<std::string> AutoFailoverCluster::autoctl(std::vector<std::string> args) const {
  std::vector<std::string> argv;
  if (geteuid() == 0) argv = {"runuser", "-u", "postgres", "--"};
  argv.insert(argv.end(), {"env", "XDG_CONFIG_HOME=" + (root_ / "config").string(),
                           "XDG_DATA_HOME=" + (root_ / "state").string(), kAutoctl.string()});
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

AutoFailoverCluster::AutoFailoverCluster(const std::filesystem::path& root, const std::string& dbname)
    : root_(root), dbname_(dbname) {
  std::filesystem::create_directories(root_);
  if (geteuid() == 0) {
    const passwd* pg = getpwnam("postgres");
    if (!pg) throw std::runtime_error("no postgres user to run pg_autoctl as");
    if (chown(root_.c_str(), pg->pw_uid, pg->pw_gid) != 0) throw std::runtime_error("cannot chown " + root_.string());
  }
  const std::string pg_ctl = (pg::server_bin_dir() / "pg_ctl").string();
  monitor_port_ = free_port();
  processes_.push_back(std::make_unique<Process>(
      autoctl({"create", "monitor", "--pgctl", pg_ctl, "--pgdata", (root_ / "monitor").string(), "--pgport",
               std::to_string(monitor_port_), "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl", "--run"}),
      (root_ / "monitor.log").string()));
  const std::string monitor =
      "postgres://autoctl_node@127.0.0.1:" + std::to_string(monitor_port_) + "/pg_auto_failover?sslmode=disable";
  // The nodes register with a running monitor (and must not create pg_autoctl's directories while it does).
  wait_until_connectable(monitor_dsn());
  for (int node = 1; node <= 2; ++node) {
    // The first node must be registered as the primary before the second joins.
    if (node == 2) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (primary_port() == 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    const int port = free_port();
    node_ports_.push_back(port);
    processes_.push_back(std::make_unique<Process>(
        autoctl({"create", "postgres", "--pgctl", pg_ctl, "--pgdata",
                 (root_ / ("node" + std::to_string(node))).string(), "--pgport", std::to_string(port), "--hostname",
                 "127.0.0.1", "--auth", "trust", "--no-ssl", "--dbname", dbname_, "--monitor", monitor, "--run"}),
        (root_ / ("node" + std::to_string(node) + ".log")).string()));
    if (node == 1) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (primary_port() == 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
  }
  wait_for_streaming();
  for (const char* node : {"monitor", "node1", "node2"})
    groups_[(root_ / node).string()] = process_groups(root_ / node);
}

AutoFailoverCluster::~AutoFailoverCluster() {
  for (const char* node : {"node2", "node1", "monitor"}) {
    run_command(autoctl({"stop", "--pgdata", (root_ / node).string(), "--fast"}));
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (auto& process : processes_) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    process->wait(std::max(left, std::chrono::milliseconds(1)));
  }
  // Whatever did not stop (a node whose keeper was killed leaves services behind) goes now.
  for (const char* node : {"node2", "node1", "monitor"}) kill_node(root_ / node);
}

// The secondary's base backup waits for a spread checkpoint on the primary
// (minutes by default): asking for one now lets it start at once.
void AutoFailoverCluster::wait_for_streaming() {
  const auto until = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  while (std::chrono::steady_clock::now() < until) {
    try {
      const int primary = primary_port();
      if (primary != 0) {
        pqxx::connection conn(node_dsn(primary, "postgres"));
        pqxx::nontransaction tx(conn);
        tx.exec("CHECKPOINT");
        // The monitor has the final word: one primary and one secondary, both settled.
        pqxx::connection monitor(monitor_dsn());
        pqxx::nontransaction mtx(monitor);
        const auto settled = mtx.exec(
            "SELECT count(*) FILTER (WHERE reportedstate = 'primary' AND goalstate = 'primary'), "
            "count(*) FILTER (WHERE reportedstate = 'secondary' AND goalstate = 'secondary') FROM pgautofailover.node");
        if (settled[0][0].as<int>() == 1 && settled[0][1].as<int>() == 1) return;
      }
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  throw std::runtime_error("pg_auto_failover: no streaming secondary after two minutes\n" + logs());
}

std::string AutoFailoverCluster::monitor_dsn() const {
  return "host=127.0.0.1 port=" + std::to_string(monitor_port_) + " user=autoctl_node dbname=pg_auto_failover " +
         "connect_timeout=2";
}

std::string AutoFailoverCluster::url() const {
  std::string hosts;
  for (int port : node_ports_) hosts += (hosts.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(port);
  return "postgresql://postgres@" + hosts + "/" + dbname_ + "?target_session_attrs=read-write&connect_timeout=2";
}

int AutoFailoverCluster::primary_port() const {
  for (int port : node_ports_) {
    try {
      pqxx::connection conn(node_dsn(port, "postgres"));
      pqxx::nontransaction tx(conn);
      if (!tx.exec("SELECT pg_is_in_recovery()")[0][0].as<bool>()) return port;
    } catch (const std::exception&) {
    }
  }
  return 0;
}

void AutoFailoverCluster::perform_failover() {
  const Output out = run_command(autoctl({"perform", "failover", "--pgdata", (root_ / "node1").string()}));
  if (out.status != 0) throw std::runtime_error("pg_autoctl perform failover failed:\n" + out.text + logs());
}

void AutoFailoverCluster::kill_primary() {
  const int port = primary_port();
  if (port == 0) throw std::runtime_error("pg_auto_failover: no primary to kill\n" + logs());
  const std::size_t index =
      static_cast<std::size_t>(std::find(node_ports_.begin(), node_ports_.end(), port) - node_ports_.begin());
  kill_node(root_ / ("node" + std::to_string(index + 1)));
}

// The process groups of the node at `pgdata`: its pg_autoctl's, which the
// services it supervises (and their postgres) belong to.
std::set<pid_t> AutoFailoverCluster::process_groups(const std::filesystem::path& pgdata) {
  std::set<pid_t> groups;
  std::istringstream pids(run_command({"pgrep", "-f", "--", "--pgdata " + pgdata.string() + " "}).text);
  for (pid_t pid = 0; pids >> pid;) {
    std::istringstream group(run_command({"ps", "-o", "pgid=", "-p", std::to_string(pid)}).text);
    if (pid_t pgid = 0; group >> pgid && pgid != getpgrp()) groups.insert(pgid);
  }
  return groups;
}

// SIGKILL to every process of the node at `pgdata`: the process groups seen
// when the formation came up and now (a keeper would restart a killed
// service, a killed keeper's services linger), and its postgres.
void AutoFailoverCluster::kill_node(const std::filesystem::path& pgdata) {
  std::set<pid_t> groups = groups_[pgdata.string()];
  for (pid_t pgid : process_groups(pgdata)) groups.insert(pgid);
  for (pid_t pgid : groups) kill(-pgid, SIGKILL);
  run_command({"pkill", "-9", "-f", "postgres -D " + pgdata.string() + " "});
}

std::string AutoFailoverCluster::logs() const {
  std::string text;
  for (const char* name : {"monitor.log", "node1.log", "node2.log"}) {
    text += std::string("--- ") + name + "\n" + read_text_file(root_ / name).value_or("") + "\n";
  }
  return text;
}

}  // namespace wsflow::testing
