#pragma once
// Hostile and busy HTTP clients against a running server, for the HTTP load
// bench (wsflow_http_bench) and the tests of the server's limits: raw
// sockets that connect and send nothing, sockets that trickle one header
// line at a time and never finish (slowloris), and kept-alive connections
// that send a request every tick. Then `probe`, an ordinary client on fresh
// connections, measures how long the server takes to answer it meanwhile.

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace wsflow::bench {

struct HostileLoad {
  int idle = 0;        // connect and send nothing
  int trickling = 0;   // a request line, then one header line per tick
  int keep_alive = 0;  // one GET per tick on the same connection
  std::string keep_alive_path = "/healthz";
  std::chrono::milliseconds tick{1000};
};

class HostileClients {
 public:
  // Opens every connection (throws std::runtime_error when one cannot be
  // opened) and starts ticking on a background thread.
  HostileClients(const std::string& host, int port, const HostileLoad& load);
  ~HostileClients();  // stops ticking, closes every connection
  HostileClients(const HostileClients&) = delete;
  HostileClients& operator=(const HostileClients&) = delete;

  // Idle and trickling connections the server closed (or answered with an
  // error) so far; each is replaced by a new one at the next tick, as an
  // attacker would.
  long idle_or_trickling_closed() const { return reopened_.load(); }
  // Ticks at which a kept-alive connection had its answer waiting (one per
  // request while the server keeps up), and how many of those connections
  // the server closed.
  long keep_alive_responses() const { return keep_alive_responses_.load(); }
  int keep_alive_closed() const { return keep_alive_closed_count_.load(); }

 private:
  void tick();

  void reopen_closed(std::vector<int>& fds, bool trickle);

  std::string host_;
  int port_;
  HostileLoad load_;
  std::vector<int> idle_, trickling_, keep_alive_;
  std::vector<bool> keep_alive_closed_;  // owned by the ticker thread
  std::atomic<long> keep_alive_responses_{0};
  std::atomic<int> keep_alive_closed_count_{0};
  std::atomic<long> reopened_{0};
  std::atomic<bool> stop_{false};
  std::thread ticker_;
};

struct Latencies {
  std::vector<double> millis;       // answered requests, sorted
  int failures = 0;                 // no answer within the timeout, or a status other than expected
  double quantile(double q) const;  // 0 when nothing was answered
};

// `count` requests, round-robin over `paths`, each on a new connection
// with `Authorization: Bearer key` (when key is not empty); a request
// counts as answered when it gets `expected_status` within `timeout`.
Latencies probe(const std::string& host, int port, const std::vector<std::string>& paths, const std::string& key,
                int count, int expected_status, std::chrono::seconds timeout);

}  // namespace wsflow::bench
