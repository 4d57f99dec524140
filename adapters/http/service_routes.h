#pragma once
// Internal to the API: the public GET routes that need no key and no
// transaction: /healthz, /readyz, /openapi.json (the API contract, from the
// embedded openapi.yaml) and the web console's static files (/console).

#include <httplib.h>

#include <functional>
#include <string>
#include <vector>

#include "adapters/http/api_server.h"

namespace wsflow::http {

struct ServiceRoute {
  std::string pattern;  // a GET path, as a regex
  std::function<void(const ApiDependencies&, const httplib::Request&, httplib::Response&)> handle;
};

const std::vector<ServiceRoute>& service_routes();

}  // namespace wsflow::http
