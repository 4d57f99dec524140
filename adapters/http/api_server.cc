#include "adapters/http/api_server.h"

#include <pqxx/pqxx>
#include <regex>

#include "adapters/http/json_body.h"
#include "adapters/http/request_context.h"
#include "adapters/http/service_routes.h"
#include "adapters/postgres/pg_store.h"
#include "engine/log.h"
#include "engine/sha256.h"
#include "sagas/domain_error.h"

namespace wsflow::http {
namespace {

// Bytes that are not UTF-8 (a client's, echoed in an error) are replaced, never thrown on.
std::string json_text(const nlohmann::json& body) {
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

HttpResponse json_response(int status, const nlohmann::json& body) {
  HttpResponse res;
  res.status = status;
  res.body = json_text(body);
  return res;
}

nlohmann::json error_body(const std::string& code, const std::string& message, const std::string& field) {
  nlohmann::json error = {{"code", code}, {"message", message}};
  error["field"] = field.empty() ? nlohmann::json(nullptr) : nlohmann::json(field);
  return {{"error", error}};
}

std::string bearer_token(const HttpRequest& req) {
  const std::string header = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (header.size() <= prefix.size() || header.compare(0, prefix.size(), prefix) != 0) return "";
  return header.substr(prefix.size());
}

// A POST's Idempotency-Key and what identifies the request it names.
struct IdempotentRequest {
  std::string key;
  std::string fingerprint;  // method, path and the body's SHA-256
};

// The stored reply of an earlier request with the same key, or nullopt
// after claiming the key. The claim is made in the handler's own
// transaction: it commits with the handler's work and its stored reply, or
// not at all, so a refusal, a lost database connection or a crash leaves the
// key free for the client's retry. A concurrent request with the same key
// waits on the claimed row until this transaction ends, then replays it.
std::optional<Reply> claim_idempotency_key(pqxx::work& tx, const Principal& principal,
                                           const IdempotentRequest& request) {
  auto inserted = tx.exec_params(
      "INSERT INTO wsflow.http_idempotency (api_key_id, key, fingerprint) VALUES ($1::uuid, $2, $3) "
      "ON CONFLICT DO NOTHING RETURNING 1",
      principal.key_id, request.key, request.fingerprint);
  if (!inserted.empty()) return std::nullopt;
  auto row = tx.exec_params(
      "SELECT fingerprint, status, coalesce(body, '') FROM wsflow.http_idempotency "
      "WHERE api_key_id = $1::uuid AND key = $2",
      principal.key_id, request.key);
  if (row[0][0].as<std::string>() != request.fingerprint) {
    throw ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used for a different request",
                   "Idempotency-Key");
  }
  if (row[0][1].is_null()) {
    // A claim without a reply was committed by an older version, which
    // claimed keys in a transaction of their own: this request takes it over.
    tx.exec_params("UPDATE wsflow.http_idempotency SET created_at = now() WHERE api_key_id = $1::uuid AND key = $2",
                   principal.key_id, request.key);
    return std::nullopt;
  }
  return Reply{row[0][1].as<int>(), nlohmann::json::parse(row[0][2].as<std::string>())};
}

// Secrets (API keys, invitation tokens) are shown once and stored nowhere:
// the stored copy of a response has them replaced by null, so a replay says
// that the secret was issued without repeating it.
nlohmann::json without_secrets(const nlohmann::json& body) {
  static const std::regex kSecret("wsf_[0-9a-f]{8}_[0-9a-f]{40}|wsi_[0-9a-f]{40}");
  if (body.is_string()) {
    return std::regex_match(body.get_ref<const std::string&>(), kSecret) ? nlohmann::json(nullptr) : body;
  }
  if (!body.is_structured()) return body;
  nlohmann::json copy = body;
  for (auto& item : copy) item = without_secrets(item);
  return copy;
}

void store_idempotent_reply(pqxx::work& tx, const Principal& principal, const std::string& key, const Reply& reply) {
  tx.exec_params("UPDATE wsflow.http_idempotency SET status = $3, body = $4 WHERE api_key_id = $1::uuid AND key = $2",
                 principal.key_id, key, reply.status, json_text(without_secrets(reply.body)));
}

Reply error_reply(int status, const std::string& code, const std::string& message, const std::string& field = "") {
  return {status, error_body(code, message, field)};
}

// An unexpected failure: logged in full under a request id; the client gets
// the id and a generic message, never the exception's text.
Reply internal_error(const HttpRequest& req, const std::exception& e) {
  const std::string id = random_hex(8);
  log_error("HTTP " + req.method + " " + req.path + " failed (request " + id + "): " + e.what());
  Reply reply = error_reply(500, "internal", "internal error; quote request id " + id + " to support");
  reply.body["error"]["request_id"] = id;
  return reply;
}

// The database is unreachable or read-only: worth retrying shortly.
Reply unavailable(const HttpRequest& req, const std::exception& e) {
  log_warn("HTTP " + req.method + " " + req.path + ": the database is unavailable: " + e.what());
  return error_reply(503, "unavailable", "the database is unavailable; retry shortly");
}

// The file as the body (the server streams it and honours Range), or 304
// when the client holds this version.
HttpResponse file_response(const HttpRequest& req, const FileBody& file) {
  const std::string etag = "\"" + file.etag + "\"";
  HttpResponse res;
  res.set_header("ETag", etag);
  if (req.get_header_value("If-None-Match") == etag) {
    res.status = 304;
    res.content_type = "";
    return res;
  }
  res.file = file;
  return res;
}

// Runs the handler in its own transaction, committed when it returns, with
// the Idempotency-Key's claim and stored reply when the request has one.
// `replayed` says that the reply is an earlier request's.
Reply handle(const ApiDependencies& deps, const Handler& handler, const Principal& principal, pqxx::connection& conn,
             const HttpRequest& req, const std::optional<IdempotentRequest>& idempotent, bool& replayed) {
  pqxx::work tx(conn);
  if (idempotent) {
    if (std::optional<Reply> replay = claim_idempotency_key(tx, principal, *idempotent)) {
      replayed = true;
      return *replay;
    }
  }
  RequestContext ctx{req, principal, tx, deps};
  Reply reply = handler(ctx);
  if (idempotent && !reply.file) store_idempotent_reply(tx, principal, idempotent->key, reply);
  tx.commit();
  return reply;
}

// Authenticates (Auth::kApiKey), applies Idempotency-Key, runs the handler
// and turns every failure into the error format.
HttpResponse serve(const ApiDependencies& deps, UsageRecorder& usage, const Handler& handler, Auth auth,
                   const HttpRequest& req) {
  Reply reply;
  bool replayed = false;
  try {
    // Names and ids go to the database as text: bytes that are not UTF-8 stop here.
    bool utf8 = valid_utf8(req.path);
    for (const auto& [name, value] : req.params) utf8 = utf8 && valid_utf8(name) && valid_utf8(value);
    if (!utf8) throw ApiError(400, "invalid_path", "the path or query string is not valid UTF-8");
    pg::ConnectionPool::Lease conn = deps.db.acquire();
    if (auth == Auth::kInvitationToken) {
      reply = handle(deps, handler, Principal{}, *conn, req, std::nullopt, replayed);  // the handler checks the token
    } else {
      std::optional<Principal> principal;
      {
        // One statement, so no transaction around it: one round trip, not three.
        pqxx::nontransaction tx(*conn);
        principal = authenticate(tx, bearer_token(req));
      }
      if (!principal) {
        throw ApiError(401, "unauthorized", "a valid API key is required (Authorization: Bearer <key>)");
      }
      usage.record(principal->key_id, principal->member_id);
      std::optional<IdempotentRequest> idempotent;
      if (req.method == "POST" && req.has_header("Idempotency-Key")) {
        const std::string key = req.get_header_value("Idempotency-Key");
        if (key.empty() || key.size() > 200) {
          throw ApiError(400, "invalid_header", "Idempotency-Key must be 1 to 200 characters", "Idempotency-Key");
        }
        idempotent = IdempotentRequest{key, req.method + " " + req.path + " " + sha256_hex(req.body)};
      }
      reply = handle(deps, handler, *principal, *conn, req, idempotent, replayed);
    }
  } catch (const ApiError& e) {
    reply = error_reply(e.status, e.code, e.what(), e.field);
  } catch (const sagas::DomainError& e) {
    reply = error_reply(e.status, e.code, e.what(), e.field);
    reply.body["error"].update(e.details);
  } catch (const UnknownSchedule& e) {
    reply = error_reply(404, "schedule_not_found", e.what());
  } catch (const IllegalTransition& e) {
    reply = error_reply(409, "invalid_transition", e.what());
  } catch (const pqxx::broken_connection& e) {
    reply = unavailable(req, e);
  } catch (const pqxx::in_doubt_error& e) {
    // The connection broke during COMMIT (a failover): whether the request
    // took effect is unknown. Its Idempotency-Key commits with its work, so
    // a retry with the same key either replays it or runs it: safe both ways.
    reply = unavailable(req, e);
    reply.body["error"]["message"] =
        "the database connection was lost while committing: the request may or may not have taken effect; retry it "
        "with the same Idempotency-Key";
  } catch (const pqxx::sql_error& e) {
    // 25006: the database is read-only (a standby during a failover); 57P0x: it is shutting down;
    // class 22: a value the database refused (a check a handler missed: still the client's input).
    const std::string state = e.sqlstate();
    if (state == "25006" || state.rfind("57P0", 0) == 0) {
      reply = unavailable(req, e);
    } else if (state.rfind("22", 0) == 0) {
      log_warn("HTTP " + req.method + " " + req.path + ": the database refused a value: " + e.what());
      reply = error_reply(400, "invalid_parameter", "a parameter has a value the server cannot accept");
    } else {
      reply = internal_error(req, e);
    }
  } catch (const std::exception& e) {
    reply = internal_error(req, e);
  }
  HttpResponse res;
  if (reply.file) {
    res = file_response(req, *reply.file);
  } else if (reply.body.is_string()) {
    res.status = reply.status;
    res.content_type = "text/plain; version=0.0.4";
    res.body = reply.body.get<std::string>();
  } else {
    res = json_response(reply.status, reply.body);
  }
  if (reply.status == 503) res.set_header("Retry-After", "1");
  if (replayed) res.set_header("Idempotent-Replayed", "true");
  return res;
}

}  // namespace

std::pair<int, std::string> page_params(const HttpRequest& req) {
  int limit = 20;
  if (req.has_param("limit")) {
    const std::string text = req.get_param_value("limit");
    static const std::regex kNumber("[0-9]{1,3}");
    if (!std::regex_match(text, kNumber) || std::stoi(text) < 1 || std::stoi(text) > 100) {
      throw ApiError(400, "invalid_parameter", "limit must be an integer from 1 to 100", "limit");
    }
    limit = std::stoi(text);
  }
  return {limit, req.has_param("cursor") ? req.get_param_value("cursor") : ""};
}

nlohmann::json json_rows(pqxx::result rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows) out.push_back(nlohmann::json::parse(r[0].as<std::string>()));
  return out;
}

Reply page(pqxx::result rows, int limit) {
  nlohmann::json data = json_rows(std::move(rows));
  nlohmann::json next = nullptr;
  if (static_cast<int>(data.size()) > limit) {
    data.erase(data.end() - 1);
    next = data.back()["id"];
  }
  return {200, {{"data", data}, {"next_cursor", next}}};
}

nlohmann::json authorized_workspace(RequestContext& ctx, const std::string& id_or_slug, sagas::Permission permission) {
  const bool by_id = pg::is_uuid(id_or_slug);
  const bool read_only = permission == sagas::Permission::kRead || permission == sagas::Permission::kReadAudit;
  auto rows = ctx.tx.exec_params(
      std::string("SELECT ") + kWorkspaceJson + " FROM wsflow.workspaces WHERE " +
          (by_id ? "id = $1::uuid" : "slug = $1") +
          // Writes hold the row so a concurrent lifecycle or team change cannot slip between check and write.
          (read_only ? "" : " FOR UPDATE"),
      id_or_slug);
  const Principal& p = ctx.principal;
  if (rows.empty()) throw ApiError(404, "workspace_not_found", "no workspace '" + id_or_slug + "'");
  nlohmann::json workspace = nlohmann::json::parse(rows[0][0].as<std::string>());
  // A key of another workspace learns nothing, not even that this one exists.
  if (!p.is_operator && workspace["id"] != p.workspace_id) {
    throw ApiError(404, "workspace_not_found", "no workspace '" + id_or_slug + "'");
  }
  const sagas::PermissionRule& rule = sagas::rule_of(permission);
  if (p.is_operator) {
    if (!rule.operator_allowed) throw ApiError(403, "forbidden", sagas::role_refusal(permission));
    require_scope(ctx, read_only ? "workspaces:read" : "workspaces:write");
    return workspace;
  }
  if (!sagas::role_allows(p.role, permission)) throw ApiError(403, "forbidden", sagas::role_refusal(permission));
  require_scope(ctx, rule.scope);
  return workspace;
}

nlohmann::json writable_workspace(RequestContext& ctx, sagas::Permission permission) {
  nlohmann::json workspace = authorized_workspace(ctx, ctx.path_param(1), permission);
  if (workspace["status"] == "frozen") {
    throw ApiError(409, "workspace_frozen", "the workspace is frozen: it accepts no writes until it is unfrozen");
  }
  if (workspace["status"] != "active") throw ApiError(409, "workspace_not_active", "the workspace is not active");
  return workspace;
}

Reply workspace_rows(RequestContext& ctx, const std::string& select) {
  const nlohmann::json workspace = authorized_workspace(ctx, ctx.path_param(1), sagas::Permission::kRead);
  return {200, {{"data", json_rows(ctx.tx.exec_params(select, workspace["id"].get<std::string>()))}}};
}

std::string email_field(const nlohmann::json& body, const std::string& field, const std::string& prefix) {
  const std::string email = *string_field(body, field, 320, true, prefix);
  static const std::regex kEmail(R"([^@\s]+@[^@\s]+\.[^@\s]+)");
  if (!std::regex_match(email, kEmail)) {
    throw ApiError(400, "invalid_field", "'" + prefix + field + "' is not an email address", prefix + field);
  }
  return email;
}

void require_scope(const RequestContext& ctx, const std::string& scope) {
  if (!ctx.principal.allows(scope)) {
    throw ApiError(403, "forbidden", "this key lacks the '" + scope + "' scope");
  }
}

void require_operator(const RequestContext& ctx, const std::string& what, const std::string& scope) {
  if (!ctx.principal.is_operator) throw ApiError(403, "forbidden", what + " needs an operator key");
  require_scope(ctx, scope);
}

Millis clock_offset(const RequestContext& ctx) { return offset_from_system(ctx.deps.clock); }

sagas::Caller team_caller(const RequestContext& ctx) {
  return {ctx.principal.actor(), ctx.principal.user_id, ctx.principal.role};
}

ApiServer::ApiServer(ApiDependencies deps) : deps_(deps), usage_(deps_.db) {
  routes();
  HttpLimits limits = deps_.http_limits;
  limits.max_body_bytes = deps_.max_body_bytes;
  server_ = std::make_unique<HttpServer>(
      limits, HttpHandlers{[this](HttpRequest& req) { return dispatch(req); },
                           [](int status, const std::string& code, const std::string& message) {
                             return json_response(status, error_body(code, message, ""));
                           }});
}

ApiServer::~ApiServer() { stop(); }

void add_all_routes(const RouteAdder& add) {
  add_workspace_routes(add);
  add_member_routes(add);
  add_invitation_routes(add);
  add_key_routes(add);
  add_schedule_routes(add);
  add_saga_routes(add);
  add_repair_routes(add);
  add_metrics_route(add);
}

std::vector<std::pair<std::string, std::string>> route_table() {
  std::vector<std::pair<std::string, std::string>> table;
  for (const ServiceRoute& route : service_routes()) table.emplace_back("GET", route.pattern);
  add_all_routes([&](const std::string& method, const std::string& pattern, Handler, Auth) {
    table.emplace_back(method, pattern);
  });
  return table;
}

struct ApiServer::Route {
  std::string method;
  std::regex pattern;
  std::function<HttpResponse(const HttpRequest&)> answer;
  bool quick;  // answered on the network thread: no database, no disk
};

void ApiServer::routes() {
  for (const ServiceRoute& route : service_routes()) {
    routes_.push_back({"GET", std::regex(route.pattern),
                       [this, handle = route.handle](const HttpRequest&) { return handle(deps_); }, !route.blocks});
  }
  add_all_routes([this](const std::string& method, const std::string& pattern, Handler handler, Auth auth) {
    routes_.push_back(
        {method, std::regex(pattern),
         [this, handler, auth](const HttpRequest& req) { return serve(deps_, usage_, handler, auth, req); }, false});
  });
}

// The route for `req`, its captures in req.matches; nullptr with `res` set
// to 404 (no such path) or 405 (the path exists, the method does not).
const ApiServer::Route* ApiServer::route_of(HttpRequest& req, HttpResponse& res) const {
  std::string allowed;
  for (const Route& route : routes_) {
    std::smatch matches;
    if (!std::regex_match(req.path, matches, route.pattern)) continue;
    if (route.method == req.method) {
      req.matches = std::move(matches);
      return &route;
    }
    allowed += (allowed.empty() ? "" : ", ") + route.method;
  }
  if (allowed.empty()) {
    res = json_response(404, error_body("not_found", "no such endpoint", ""));
  } else {
    res = json_response(405, error_body("method_not_allowed", "this endpoint accepts " + allowed, ""));
    res.set_header("Allow", allowed);
  }
  return nullptr;
}

// Matched once, on the network thread; a route that needs the database
// runs on a worker with the captures already in `req`.
Routed ApiServer::dispatch(HttpRequest& req) const {
  HttpResponse refusal;
  const Route* route = route_of(req, refusal);
  if (!route) return {std::move(refusal), nullptr};
  if (route->quick) return {route->answer(req), nullptr};
  return {std::nullopt, [route, &req] { return route->answer(req); }};
}

int ApiServer::start(const std::string& host, int port) {
  const int bound = server_->start(host, port);
  log_info("HTTP API listening on " + host + ":" + std::to_string(bound));
  return bound;
}

void ApiServer::stop() {
  server_->stop();
  usage_.stop();
}

std::size_t ApiServer::connections() const { return server_->connections(); }

}  // namespace wsflow::http
