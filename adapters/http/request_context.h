#pragma once
// Internal to the API: what a route handler gets and returns. Each handler
// runs inside one database transaction, committed when it returns normally
// and rolled back when it throws.

#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <pqxx/result>
#include <pqxx/transaction>

#include "adapters/http/api_error.h"
#include "adapters/http/api_keys.h"
#include "adapters/http/api_server.h"
#include "adapters/http/http_message.h"
#include "sagas/team.h"
#include "sagas/team_policy.h"

namespace wsflow::http {

// A workspace row as the API shows it (one JSON text column).
inline constexpr const char* kWorkspaceJson =
    "json_build_object('id', id, 'slug', slug, 'name', name, 'description', description, 'plan', plan, "
    "'region', region, 'tenancy_model', tenancy_model, 'status', status, 'active_saga_id', active_saga_id, "
    "'hard_delete_at', hard_delete_at, 'created_at', created_at, 'updated_at', updated_at)::text";

// Routes under one workspace; the capture is its UUID or slug.
inline constexpr const char* kWorkspacePath = R"(/v1/workspaces/([^/]+))";

struct Reply {
  Reply(int status = 200, nlohmann::json body = nullptr) : status(status), body(std::move(body)) {}
  static Reply of_file(FileBody file) {
    Reply reply;
    reply.file = std::move(file);
    return reply;
  }

  int status;
  nlohmann::json body;           // sent as JSON, except a string body, sent as text/plain
  std::optional<FileBody> file;  // when set, sent instead of `body`
};

struct RequestContext {
  const HttpRequest& request;
  const Principal& principal;
  pqxx::work& tx;
  const ApiDependencies& deps;

  // The n-th path capture of the route pattern.
  std::string path_param(std::size_t n) const { return request.matches[n].str(); }
};

using Handler = std::function<Reply(RequestContext&)>;

// The workspace (by UUID or slug) as JSON, locked FOR UPDATE unless
// `permission` is a read. 404 when it does not exist or the caller's key
// belongs to another workspace; 403 when the caller's role or key scope does
// not grant `permission` (sagas/team_policy.h).
nlohmann::json authorized_workspace(RequestContext& ctx, const std::string& id_or_slug, sagas::Permission permission);

// authorized_workspace for a change to the workspace's team or keys: also
// 409 unless it is active (`workspace_frozen` when frozen).
nlohmann::json writable_workspace(RequestContext& ctx, sagas::Permission permission);

// {data: rows of `select` (one JSON text column, $1 = the workspace id)} for
// a caller who may read the workspace of path parameter 1.
Reply workspace_rows(RequestContext& ctx, const std::string& select);

// A required request field holding an email address (400 naming it otherwise).
std::string email_field(const nlohmann::json& body, const std::string& field, const std::string& prefix = "");

// The caller's key lacks `scope` (403 naming it), unless it has it.
void require_scope(const RequestContext& ctx, const std::string& scope);

// 403 unless the caller holds an operator key with `scope`.
void require_operator(const RequestContext& ctx, const std::string& what, const std::string& scope);

// The database clock offset of the server's clock (zero in production).
Millis clock_offset(const RequestContext& ctx);

// How the team rules see the caller.
sagas::Caller team_caller(const RequestContext& ctx);

// limit (1..100, default 20) and the opaque cursor from the query string;
// ApiError 400 naming the parameter when malformed.
std::pair<int, std::string> page_params(const HttpRequest& req);

// Rows of one JSON-text column as a JSON array.
nlohmann::json json_rows(pqxx::result rows);

// One page of `rows` (fetched with limit + 1): {data, next_cursor}, where the
// cursor is the last item's id.
Reply page(pqxx::result rows, int limit);

// How a route authenticates its caller.
enum class Auth {
  kApiKey,           // a bearer API key (every route but the two below)
  kInvitationToken,  // the invitation token in the body is the credential (accept, decline)
};

// Route registration, by area.
using RouteAdder =
    std::function<void(const std::string& method, const std::string& pattern, Handler handler, Auth auth)>;
void add_workspace_routes(const RouteAdder& add);
void add_member_routes(const RouteAdder& add);
void add_invitation_routes(const RouteAdder& add);
void add_key_routes(const RouteAdder& add);
void add_schedule_routes(const RouteAdder& add);
void add_saga_routes(const RouteAdder& add);
void add_repair_routes(const RouteAdder& add);
void add_metrics_route(const RouteAdder& add);
// Every route above, in registration order.
void add_all_routes(const RouteAdder& add);

}  // namespace wsflow::http
