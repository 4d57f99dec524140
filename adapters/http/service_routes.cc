#include "adapters/http/service_routes.h"

#include <yaml-cpp/yaml.h>

#include <pqxx/pqxx>

#include "adapters/http/embedded_files.h"
#include "engine/yaml_checker.h"

namespace wsflow::http {
namespace {

void send(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

// The embedded YAML contract, as JSON, converted once.
const std::string& openapi_json() {
  static const std::string json =
      yaml_to_json(YAML::Load(std::string(embedded_file("openapi.yaml")))).dump();
  return json;
}

// The console's files: no caching surprises across upgrades, and nothing
// from elsewhere may run on the page that holds an operator key.
void send_console_file(httplib::Response& res, std::string_view name, const char* content_type) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
                 "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_content(std::string(embedded_file(name)), content_type);
}

}  // namespace

const std::vector<ServiceRoute>& service_routes() {
  static const std::vector<ServiceRoute> routes = {
      {"/healthz", [](const ApiDependencies&, const httplib::Request&,
                      httplib::Response& res) { send(res, 200, {{"status", "ok"}}); }},
      {"/readyz",
       [](const ApiDependencies& deps, const httplib::Request&, httplib::Response& res) {
         try {
           auto conn = deps.db.acquire();
           pqxx::read_transaction tx(*conn);
           tx.exec("SELECT 1");
           send(res, 200, {{"status", "ready"}});
         } catch (const std::exception&) {
           send(res, 503,
                {{"error", {{"code", "not_ready"}, {"message", "the database is not reachable"}, {"field", ""}}}});
         }
       }},
      {"/openapi.json",
       [](const ApiDependencies&, const httplib::Request&, httplib::Response& res) {
         res.set_content(openapi_json(), "application/json");
       }},
      {"/console", [](const ApiDependencies&, const httplib::Request&,
                      httplib::Response& res) { send_console_file(res, "console/index.html", "text/html; charset=utf-8"); }},
      {"/console/console.js",
       [](const ApiDependencies&, const httplib::Request&, httplib::Response& res) {
         send_console_file(res, "console/console.js", "text/javascript; charset=utf-8");
       }},
      {"/console/console.css",
       [](const ApiDependencies&, const httplib::Request&, httplib::Response& res) {
         send_console_file(res, "console/console.css", "text/css; charset=utf-8");
       }},
      {"/console/favicon.svg",
       [](const ApiDependencies&, const httplib::Request&, httplib::Response& res) {
         send_console_file(res, "console/favicon.svg", "image/svg+xml");
       }},
  };
  return routes;
}

}  // namespace wsflow::http
