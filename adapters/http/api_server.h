#pragma once
// The HTTP API (on http_server.h, JSON via nlohmann-json) over /v1: workspaces
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

#include "adapters/http/http_server.h"
#include "adapters/http/usage_recorder.h"
#include "adapters/metrics/metrics.h"
#include "adapters/postgres/connection_pool.h"
#include "adapters/postgres/saga_queries.h"
#include "engine/clock.h"
#include "engine/definition.h"
#include "engine/schedule_commands.h"
#include "engine/store.h"
#include "sagas/machine.h"

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
  HttpLimits http_limits{};   // connections, deadlines and sizes (max_body_bytes above wins)
};

// Every route the server answers: (method, path pattern as a regex).
std::vector<std::pair<std::string, std::string>> route_table();

class ApiServer {
 public:
  explicit ApiServer(ApiDependencies deps);
  ~ApiServer();  // stops and joins
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds host:port (port 0: any free port) and serves on background
  // threads (http_server.h). Returns the bound port, which it logs; throws
  // std::runtime_error if the address cannot be bound.
  int start(const std::string& host, int port);
  void stop();
  std::size_t connections() const;  // open HTTP connections now

 private:
  struct Route;
  void routes();
  const Route* route_of(HttpRequest& req, HttpResponse& refusal) const;
  Routed dispatch(HttpRequest& req) const;

  ApiDependencies deps_;
  UsageRecorder usage_;
  std::vector<Route> routes_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace wsflow::http
