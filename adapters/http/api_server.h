#pragma once
// The HTTP API (cpp-httplib, JSON via nlohmann-json) over /v1: workspaces
// and their lifecycle, environments, members, invitations, keys, ownership,
// plans, audit feed, exports, sagas and signals, schedules, plus /healthz and
// /readyz. Every /v1 endpoint requires a bearer API key, except accepting and
// declining an invitation, where its token is the credential; errors are
// {"error":{"code","message","field"}}. POSTs may
// carry Idempotency-Key: a repeat returns the first response and starts
// nothing. Request bodies over `max_body_bytes` get 413.

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "adapters/metrics/metrics.h"
#include "adapters/postgres/connection_pool.h"
#include "adapters/postgres/saga_queries.h"
#include "engine/clock.h"
#include "engine/definition.h"
#include "engine/schedule_commands.h"
#include "engine/store.h"
#include "sagas/machine.h"

namespace httplib {
class Server;
}

namespace wsflow::http {

struct ApiDependencies {
  pg::ConnectionPool& db;
  Store& store;
  const sagas::Machine& machine;
  const std::map<std::string, SagaDefinition>& definitions;
  const ScheduleCommands& schedules;
  const Clock& clock;
  metrics::Metrics& metrics;
  std::function<void()> wake_scheduler;          // after a resume, so it looks at the new due time
  std::vector<std::string> regions = {"local"};  // a workspace's region is one of these (the first by default)
  std::size_t max_body_bytes = 64 * 1024;
  pg::StuckSettings stuck{};  // when a saga counts as stuck (serve --stuck-after, --stuck-grace)
};

// Every route the server answers: (method, path pattern as a regex).
std::vector<std::pair<std::string, std::string>> route_table();

class ApiServer {
 public:
  explicit ApiServer(ApiDependencies deps);
  ~ApiServer();  // stops and joins
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds host:port (port 0: any free port, logged) and serves on a
  // background thread pool. Throws std::runtime_error if the address cannot
  // be bound.
  void start(const std::string& host, int port);
  void stop();

 private:
  void routes();

  ApiDependencies deps_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace wsflow::http
