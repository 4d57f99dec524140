#pragma once
// An open-loop load of POST requests at a fixed rate over kept-alive
// connections (wsflow_http_bench --post-rate). Each request's latency runs
// from the time it was due to be sent, not from when a connection was free
// to send it, so a slow server cannot hide its queueing (no coordinated
// omission).

#include <functional>
#include <string>

#include "bench/hostile_clients.h"

namespace wsflow::bench {

struct PacedLoad {
  std::string path;
  std::string key;                        // Authorization: Bearer key
  std::function<std::string(long)> body;  // the JSON body of request n
  double per_second = 200;
  int seconds = 10;
  int connections = 8;  // each kept alive, sending its share in turn
  int expected_status = 202;
};

struct PacedResult {
  Latencies latencies;  // failures: no answer in 10 s, or another status
  long sent = 0;
  long reconnects = 0;  // connections the server closed (none expected)
};

PacedResult paced_posts(const std::string& host, int port, const PacedLoad& load);

}  // namespace wsflow::bench
