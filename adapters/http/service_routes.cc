#include "adapters/http/service_routes.h"

#include <yaml-cpp/yaml.h>

#include <pqxx/pqxx>

#include "adapters/http/embedded_files.h"
#include "engine/yaml_checker.h"

namespace wsflow::http {
namespace {

HttpResponse json_response(int status, const nlohmann::json& body) {
  HttpResponse res;
  res.status = status;
  res.body = body.dump();
  return res;
}

// The embedded YAML contract, as JSON, converted once.
const std::string& openapi_json() {
  static const std::string json = yaml_to_json(YAML::Load(std::string(embedded_file("openapi.yaml")))).dump();
  return json;
}

// The console's files: no caching surprises across upgrades, and nothing
// from elsewhere may run on the page that holds an operator key.
HttpResponse console_file(std::string_view name, const char* content_type) {
  HttpResponse res;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
                 "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.content_type = content_type;
  res.body = std::string(embedded_file(name));
  return res;
}

}  // namespace

const std::vector<ServiceRoute>& service_routes() {
  static const std::vector<ServiceRoute> routes = {
      {"/healthz",
       [](const ApiDependencies&) {
         return json_response(200, {{"status", "ok"}});
       }},
      {"/readyz",
       [](const ApiDependencies& deps) {
         try {
           auto conn = deps.db.acquire();
           pqxx::read_transaction tx(*conn);
           tx.exec("SELECT 1");
           return json_response(200, {{"status", "ready"}});
         } catch (const std::exception&) {
           HttpResponse res = json_response(
               503,
               {{"error", {{"code", "not_ready"}, {"message", "the database is not reachable"}, {"field", nullptr}}}});
           res.set_header("Retry-After", "1");
           return res;
         }
       },
       true},
      {"/openapi.json",
       [](const ApiDependencies&) {
         HttpResponse res;
         res.body = openapi_json();
         return res;
       }},
      {"/console",
       [](const ApiDependencies&) { return console_file("console/index.html", "text/html; charset=utf-8"); }},
      {"/console/console.js",
       [](const ApiDependencies&) { return console_file("console/console.js", "text/javascript; charset=utf-8"); }},
      {"/console/console.css",
       [](const ApiDependencies&) { return console_file("console/console.css", "text/css; charset=utf-8"); }},
      {"/console/favicon.svg",
       [](const ApiDependencies&) { return console_file("console/favicon.svg", "image/svg+xml"); }},
  };
  return routes;
}

}  // namespace wsflow::http
