#pragma once
// The process's Prometheus metrics, on prometheus-cpp's core (registry,
// families, text serializer); served by our own HTTP server at /metrics.
//
// Counters and histograms are this process's (fed by the engine through
// EngineEvents); gauges are read from the database at scrape time, so every
// process reports the same totals for them. Thread-safe.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/transaction>

#include "adapters/postgres/connection_pool.h"
#include "adapters/postgres/saga_queries.h"
#include "engine/engine_events.h"

namespace prometheus {
class Registry;
}

namespace wsflow::metrics {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Hooks that feed this registry; the Metrics must outlive the engine.
  EngineEvents engine_events();

  // A named connection pool whose use is reported (wsflow_db_connections_in_use).
  void watch_pool(const std::string& name, pg::ConnectionPool& pool);
  // A gauge read at each scrape (e.g. open HTTP connections); `read` must
  // stay callable for the Metrics' lifetime.
  void watch_gauge(const std::string& name, const std::string& help, std::function<double()> read);

  // The text exposition (format 0.0.4): the process's metrics, and gauges
  // read now with `tx`: sagas by definition and state, stuck sagas by
  // reason, workspaces by status, pools in use.
  std::string scrape(pqxx::work& tx, const pg::StuckSettings& stuck);

 private:
  struct Families;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> families_;
  std::vector<std::pair<std::string, pg::ConnectionPool*>> pools_;
  struct WatchedGauge {
    std::string name, help;
    std::function<double()> read;
  };
  std::vector<WatchedGauge> gauges_;
};

}  // namespace wsflow::metrics
