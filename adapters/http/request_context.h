#pragma once
// Internal to the API: what a route handler gets and returns. Each handler
// runs inside one database transaction, committed when it returns normally
// and rolled back when it throws.

#include <httplib.h>

#include <functional>
#include <string>

#include <nlohmann/json.hpp>
#include <pqxx/result>
#include <pqxx/transaction>

#include "adapters/http/api_error.h"
#include "adapters/http/api_keys.h"
#include "adapters/http/api_server.h"

namespace wsflow::http {

struct Reply {
  int status = 200;
  nlohmann::json body;  // sent as JSON, except a string body, sent as text/plain
};

struct RequestContext {
  const httplib::Request& request;
  const Principal& principal;
  pqxx::work& tx;
  const ApiDependencies& deps;

  // The n-th path capture of the route pattern.
  std::string path_param(std::size_t n) const { return request.matches[n].str(); }
};

using Handler = std::function<Reply(RequestContext&)>;

// What a caller needs for a workspace operation.
enum class Need {
  kRead,    // any member (read scope) or an operator
  kManage,  // owner or admin (write scope) or an operator
  kOwner,   // the owner (write scope) only
};

// The workspace (by UUID or slug) as JSON, locked FOR UPDATE unless `need` is
// kRead. 404 when it does not exist or the caller's key belongs to another
// workspace; 403 when the caller lacks `need`.
nlohmann::json authorized_workspace(RequestContext& ctx, const std::string& id_or_slug, Need need);

// limit (1..100, default 20) and the opaque cursor from the query string;
// ApiError 400 naming the parameter when malformed.
std::pair<int, std::string> page_params(const httplib::Request& req);

// Rows of one JSON-text column as a JSON array.
nlohmann::json json_rows(pqxx::result rows);

// One page of `rows` (fetched with limit + 1): {data, next_cursor}, where the
// cursor is the last item's id.
Reply page(pqxx::result rows, int limit);

// Route registration, by area.
using RouteAdder = std::function<void(const std::string& method, const std::string& pattern, Handler handler)>;
void add_workspace_routes(const RouteAdder& add);
void add_saga_routes(const RouteAdder& add);
void add_metrics_route(const RouteAdder& add);

}  // namespace wsflow::http
