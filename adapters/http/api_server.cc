#include "adapters/http/api_server.h"

#include <httplib.h>

#include <filesystem>
#include <fstream>
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

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(json_text(body), "application/json");
}

nlohmann::json error_body(const std::string& code, const std::string& message, const std::string& field) {
  nlohmann::json error = {{"code", code}, {"message", message}};
  error["field"] = field.empty() ? nlohmann::json(nullptr) : nlohmann::json(field);
  return {{"error", error}};
}

std::string bearer_token(const httplib::Request& req) {
  const std::string header = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (header.size() <= prefix.size() || header.compare(0, prefix.size(), prefix) != 0) return "";
  return header.substr(prefix.size());
}

// The stored outcome of an earlier request with the same Idempotency-Key, or
// nullopt after claiming the key for this request.
std::optional<Reply> claim_idempotency_key(pqxx::connection& conn, const Principal& principal, const std::string& key,
                                           const std::string& fingerprint) {
  pqxx::work tx(conn);
  auto inserted = tx.exec_params(
      "INSERT INTO wsflow.http_idempotency (api_key_id, key, fingerprint) VALUES ($1::uuid, $2, $3) "
      "ON CONFLICT DO NOTHING RETURNING 1",
      principal.key_id, key, fingerprint);
  if (!inserted.empty()) {
    tx.commit();
    return std::nullopt;
  }
  auto row = tx.exec_params(
      "SELECT fingerprint, status, coalesce(body, '') FROM wsflow.http_idempotency "
      "WHERE api_key_id = $1::uuid AND key = $2",
      principal.key_id, key);
  if (row[0][0].as<std::string>() != fingerprint) {
    throw ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used for a different request",
                   "Idempotency-Key");
  }
  if (row[0][1].is_null()) {
    // A first request whose process died leaves its claim behind: after a
    // minute the key may be used again.
    auto taken = tx.exec_params(
        "UPDATE wsflow.http_idempotency SET created_at = now() WHERE api_key_id = $1::uuid "
        "AND key = $2 AND status IS NULL AND created_at < now() - interval '1 minute' "
        "RETURNING 1",
        principal.key_id, key);
    if (!taken.empty()) {
      tx.commit();
      return std::nullopt;
    }
    throw ApiError(409, "request_in_progress", "a request with this Idempotency-Key is still in progress",
                   "Idempotency-Key");
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

void finish_idempotency_key(pqxx::connection& conn, const Principal& principal, const std::string& key,
                            const Reply& reply) {
  pqxx::work tx(conn);
  if (reply.status >= 500) {
    // Nothing was done: let a retry with the same key run again.
    tx.exec_params("DELETE FROM wsflow.http_idempotency WHERE api_key_id = $1::uuid AND key = $2", principal.key_id,
                   key);
  } else {
    tx.exec_params("UPDATE wsflow.http_idempotency SET status = $3, body = $4 WHERE api_key_id = $1::uuid AND key = $2",
                   principal.key_id, key, reply.status, json_text(without_secrets(reply.body)));
  }
  tx.commit();
}

Reply error_reply(int status, const std::string& code, const std::string& message, const std::string& field = "") {
  return {status, error_body(code, message, field)};
}

// An unexpected failure: logged in full under a request id; the client gets
// the id and a generic message, never the exception's text.
Reply internal_error(const httplib::Request& req, const std::exception& e) {
  const std::string id = random_hex(8);
  log_error("HTTP " + req.method + " " + req.path + " failed (request " + id + "): " + e.what());
  Reply reply = error_reply(500, "internal", "internal error; quote request id " + id + " to support");
  reply.body["error"]["request_id"] = id;
  return reply;
}

// The database is unreachable or read-only: worth retrying shortly.
Reply unavailable(const httplib::Request& req, const std::exception& e) {
  log_warn("HTTP " + req.method + " " + req.path + ": the database is unavailable: " + e.what());
  return error_reply(503, "unavailable", "the database is unavailable; retry shortly");
}

// Streams `file` in chunks; cpp-httplib answers a Range request with 206 and
// just that range. A vanished file is a 410.
void send_file(const httplib::Request& req, httplib::Response& res, const FileBody& file) {
  const std::string etag = "\"" + file.etag + "\"";
  res.set_header("ETag", etag);
  if (req.get_header_value("If-None-Match") == etag) {
    res.status = 304;
    return;
  }
  auto in = std::make_shared<std::ifstream>(file.path, std::ios::binary);
  std::error_code ec;
  const auto size = std::filesystem::file_size(file.path, ec);
  if (!*in || ec) {
    send_json(res, 410, error_body("file_gone", "the file is no longer available", ""));
    return;
  }
  // The status stays unset: cpp-httplib makes it 206 for a Range request, 200 otherwise.
  res.set_header("Content-Disposition", "attachment; filename=\"" + file.filename + "\"");
  res.set_content_provider(static_cast<std::size_t>(size), file.content_type,
                           [in](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                             std::string buffer(std::min<std::size_t>(length, 64 * 1024), '\0');
                             in->seekg(static_cast<std::streamoff>(offset));
                             in->read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
                             if (in->gcount() <= 0) return false;
                             sink.write(buffer.data(), static_cast<std::size_t>(in->gcount()));
                             return true;
                           });
}

// Runs the handler in its own transaction, committed when it returns.
Reply handle(const ApiDependencies& deps, const Handler& handler, const Principal& principal, pqxx::connection& conn,
             const httplib::Request& req) {
  pqxx::work tx(conn);
  RequestContext ctx{req, principal, tx, deps};
  Reply reply = handler(ctx);
  tx.commit();
  return reply;
}

// Authenticates (Auth::kApiKey), applies Idempotency-Key, runs the handler
// and turns every failure into the error format.
void serve(const ApiDependencies& deps, const Handler& handler, Auth auth, const httplib::Request& req,
           httplib::Response& res) {
  Reply reply;
  std::optional<Principal> principal;
  std::string idempotency_key;
  std::optional<pg::ConnectionPool::Lease> conn;
  try {
    // Names and ids go to the database as text: bytes that are not UTF-8 stop here.
    bool utf8 = valid_utf8(req.path);
    for (const auto& [name, value] : req.params) utf8 = utf8 && valid_utf8(name) && valid_utf8(value);
    if (!utf8) throw ApiError(400, "invalid_path", "the path or query string is not valid UTF-8");
    conn.emplace(deps.db.acquire());
    if (auth == Auth::kInvitationToken) {
      reply = handle(deps, handler, Principal{}, **conn, req);  // the handler checks the token
    } else {
      {
        pqxx::work tx(**conn);
        principal = authenticate(tx, bearer_token(req));
        tx.commit();
      }
      if (!principal) {
        throw ApiError(401, "unauthorized", "a valid API key is required (Authorization: Bearer <key>)");
      }
      if (req.method == "POST" && req.has_header("Idempotency-Key")) {
        idempotency_key = req.get_header_value("Idempotency-Key");
        if (idempotency_key.empty() || idempotency_key.size() > 200) {
          throw ApiError(400, "invalid_header", "Idempotency-Key must be 1 to 200 characters", "Idempotency-Key");
        }
        const std::string fingerprint = req.method + " " + req.path + " " + sha256_hex(req.body);
        if (auto replay = claim_idempotency_key(**conn, *principal, idempotency_key, fingerprint)) {
          res.set_header("Idempotent-Replayed", "true");
          send_json(res, replay->status, replay->body);
          return;
        }
      }
      reply = handle(deps, handler, *principal, **conn, req);
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
  if (reply.status == 503) res.set_header("Retry-After", "1");
  if (!idempotency_key.empty() && principal && conn) {
    try {
      finish_idempotency_key(**conn, *principal, idempotency_key, reply);
    } catch (const std::exception& e) {
      log_error(std::string("recording an idempotent response failed: ") + e.what());
    }
  }
  if (reply.file) {
    send_file(req, res, *reply.file);
    return;
  }
  if (reply.body.is_string()) {
    res.status = reply.status;
    res.set_content(reply.body.get<std::string>(), "text/plain; version=0.0.4");
    return;
  }
  send_json(res, reply.status, reply.body);
}

}  // namespace

std::pair<int, std::string> page_params(const httplib::Request& req) {
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

std::string new_uuid(pqxx::work& tx) { return tx.exec("SELECT gen_random_uuid()::text")[0][0].as<std::string>(); }

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

ApiServer::ApiServer(ApiDependencies deps) : deps_(deps), server_(std::make_unique<httplib::Server>()) {
  server_->set_payload_max_length(deps_.max_body_bytes);
  server_->set_read_timeout(10, 0);
  server_->set_write_timeout(10, 0);
  routes();
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

void ApiServer::routes() {
  httplib::Server& s = *server_;
  for (const ServiceRoute& route : service_routes()) {
    s.Get(route.pattern, [this, handle = route.handle](const httplib::Request& req, httplib::Response& res) {
      handle(deps_, req, res);
    });
  }
  const RouteAdder add = [this, &s](const std::string& method, const std::string& pattern, Handler handler, Auth auth) {
    auto run = [this, handler, auth](const httplib::Request& req, httplib::Response& res) {
      serve(deps_, handler, auth, req, res);
    };
    if (method == "GET")
      s.Get(pattern, run);
    else if (method == "POST")
      s.Post(pattern, run);
    else if (method == "PATCH")
      s.Patch(pattern, run);
    else if (method == "DELETE")
      s.Delete(pattern, run);
    else
      throw std::logic_error("unsupported method " + method);
  };
  add_all_routes(add);
  // Errors cpp-httplib answers by itself (no route, body too large,
  // malformed request) get the same JSON shape as ours.
  // Anything that escapes a handler: our generic 500, never cpp-httplib's
  // own (which puts the exception's text in an EXCEPTION_WHAT header).
  s.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      const Reply reply = internal_error(req, e);
      send_json(res, reply.status, reply.body);
    } catch (...) {
      const Reply reply = internal_error(req, std::runtime_error("a non-standard exception"));
      send_json(res, reply.status, reply.body);
    }
  });
  s.set_error_handler([max = deps_.max_body_bytes](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413) {
      send_json(res, 413,
                error_body("payload_too_large", "request body larger than " + std::to_string(max) + " bytes", ""));
    } else if (res.status == 404) {
      send_json(res, 404, error_body("not_found", "no such endpoint", ""));
    } else if (res.status == 400 || res.status == 411) {
      send_json(res, res.status,
                error_body("bad_request", "malformed HTTP request (a POST needs a body or Content-Length: 0)", ""));
    } else {
      send_json(res, res.status,
                error_body("http_" + std::to_string(res.status),
                           "request refused (HTTP " + std::to_string(res.status) + ")", ""));
    }
  });
}

void ApiServer::start(const std::string& host, int port) {
  if (port == 0) {
    port = server_->bind_to_any_port(host.c_str());
    if (port < 0) throw std::runtime_error("cannot listen on " + host);
  } else if (!server_->bind_to_port(host.c_str(), port)) {
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  log_info("HTTP API listening on " + host + ":" + std::to_string(port));
}

void ApiServer::stop() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace wsflow::http
