#pragma once
// Internal to the API: the public GET routes that need no key and no
// transaction: /healthz, /readyz, /openapi.json (the API contract, from the
// embedded openapi.yaml) and the web console's static files (/console).

#include <functional>
#include <string>
#include <vector>

#include "adapters/http/api_server.h"
#include "adapters/http/http_message.h"

namespace wsflow::http {

struct ServiceRoute {
  std::string pattern;  // a GET path, as a regex
  std::function<HttpResponse(const ApiDependencies&)> handle;
  bool blocks = false;  // waits on the database: runs on a worker thread, not the network thread
};

const std::vector<ServiceRoute>& service_routes();

}  // namespace wsflow::http
