// Invitations: owners and admins invite by email (a token valid 7 days, shown
// once), resend and cancel; the invitee accepts or declines with the token
// alone and, on accepting, gets their first API key (shown once). Operators
// find a user's pending invitations across workspaces.

#include <pqxx/pqxx>
#include <regex>

#include "adapters/http/json_body.h"
#include "adapters/http/request_context.h"
#include "adapters/postgres/pg_store.h"
#include "sagas/audit.h"

namespace wsflow::http {
namespace {

using sagas::Permission;

std::string token_field(const nlohmann::json& body) {
  const std::string token = *string_field(body, "token", 100, true);
  static const std::regex kShape("wsi_[0-9a-f]{40}");
  if (!std::regex_match(token, kShape))
    throw ApiError(400, "invalid_field", "'token' is not an invitation token", "token");
  return token;
}

// The invitation with its token, which only this response ever shows.
Reply issued(int status, const sagas::IssuedInvitation& issued) {
  nlohmann::json body = issued.invitation;
  body["token"] = issued.token;
  return {status, body};
}

Reply create_invitation(RequestContext& ctx) {
  const nlohmann::json body = parse_object(ctx.request.body, {"email", "role"});
  const std::string email = email_field(body, "email");
  const std::string role = string_field(body, "role", 20, false).value_or("member");
  require_one_of(role, {"admin", "member"}, "role");
  const nlohmann::json workspace = writable_workspace(ctx, Permission::kInvite);
  return issued(
      201, sagas::invite(ctx.tx, workspace["id"], workspace["plan"], email, role, team_caller(ctx), clock_offset(ctx)));
}

Reply list_invitations(RequestContext& ctx) {
  const auto [limit, cursor] = page_params(ctx.request);
  if (!cursor.empty() && !pg::is_uuid(cursor)) throw ApiError(400, "invalid_parameter", "unknown cursor", "cursor");
  const std::string state = ctx.request.has_param("state") ? ctx.request.get_param_value("state") : "";
  if (!state.empty()) require_one_of(state, {"pending", "accepted", "declined", "expired", "cancelled"}, "state");
  const nlohmann::json workspace = authorized_workspace(ctx, ctx.path_param(1), Permission::kRead);
  return page(ctx.tx.exec_params(std::string("SELECT ") + sagas::kInvitationJson +
                                     " FROM wsflow.invitations i WHERE i.workspace_id = $1::uuid "
                                     "AND ($2 = '' OR i.state = $2) AND ($3 = '' OR (i.created_at, i.id) > "
                                     "(SELECT created_at, id FROM wsflow.invitations WHERE id = NULLIF($3, '')::uuid)) "
                                     "ORDER BY i.created_at, i.id LIMIT $4",
                                 workspace["id"].get<std::string>(), state, cursor, limit + 1),
              limit);
}

std::string invitation_id(const RequestContext& ctx) {
  const std::string id = ctx.path_param(2);
  if (!pg::is_uuid(id)) throw ApiError(404, "invitation_not_found", "no invitation '" + id + "'");
  return id;
}

Reply resend_invitation(RequestContext& ctx) {
  parse_object(ctx.request.body, {});
  const nlohmann::json workspace = writable_workspace(ctx, Permission::kInvite);
  return issued(200, sagas::resend_invitation(ctx.tx, workspace["id"], workspace["plan"], invitation_id(ctx),
                                              team_caller(ctx), clock_offset(ctx)));
}

Reply cancel_invitation(RequestContext& ctx) {
  parse_object(ctx.request.body, {});
  const nlohmann::json workspace = authorized_workspace(ctx, ctx.path_param(1), Permission::kInvite);
  return {200, sagas::cancel_invitation(ctx.tx, workspace["id"], invitation_id(ctx), team_caller(ctx))};
}

// The token is the credential: the new member gets their first key (every
// scope; their role limits it), shown once.
Reply accept_invitation(RequestContext& ctx) {
  const nlohmann::json body = parse_object(ctx.request.body, {"token", "user_id"});
  const std::string token = token_field(body);
  const std::string user_id = *string_field(body, "user_id", 200, true);
  const sagas::AcceptedInvitation accepted = sagas::accept_invitation(ctx.tx, token, user_id, clock_offset(ctx));
  const nlohmann::json key =
      mint_audited_key(ctx.tx, {accepted.workspace_id, accepted.member_id, user_id, "user:" + user_id, ""}, "first key",
                       {"*"}, "api_key.created");
  return {201, {{"workspace_id", accepted.workspace_id}, {"member", accepted.member}, {"key", key}}};
}

Reply decline_invitation(RequestContext& ctx) {
  const nlohmann::json body = parse_object(ctx.request.body, {"token"});
  return {200, sagas::decline_invitation(ctx.tx, token_field(body), clock_offset(ctx))};
}

// GET /v1/invitations?email=: a user's pending invitations across workspaces.
Reply pending_for_email(RequestContext& ctx) {
  require_operator(ctx, "looking up invitations across workspaces", "workspaces:read");
  if (!ctx.request.has_param("email")) throw ApiError(400, "missing_parameter", "'email' is required", "email");
  const std::string email = ctx.request.get_param_value("email");
  if (email.empty() || email.size() > 320) throw ApiError(400, "invalid_parameter", "'email' is not valid", "email");
  return {200,
          {{"data", json_rows(ctx.tx.exec_params(
                        "SELECT (jsonb_build_object('workspace_name', w.name, 'workspace_slug', w.slug) || " +
                            std::string(sagas::kInvitationJson) +
                            "::jsonb)::text FROM wsflow.invitations i JOIN wsflow.workspaces w ON w.id = "
                            "i.workspace_id WHERE lower(i.email) = lower($1) AND i.state = 'pending' "
                            "ORDER BY i.created_at LIMIT 100",
                        email))}}};
}

}  // namespace

void add_invitation_routes(const RouteAdder& add) {
  const std::string ws = kWorkspacePath;
  add("POST", ws + "/invitations", create_invitation, Auth::kApiKey);
  add("GET", ws + "/invitations", list_invitations, Auth::kApiKey);
  add("POST", ws + "/invitations/([^/]+)/resend", resend_invitation, Auth::kApiKey);
  add("POST", ws + "/invitations/([^/]+)/cancel", cancel_invitation, Auth::kApiKey);
  add("GET", "/v1/invitations", pending_for_email, Auth::kApiKey);
  add("POST", "/v1/invitations/accept", accept_invitation, Auth::kInvitationToken);
  add("POST", "/v1/invitations/decline", decline_invitation, Auth::kInvitationToken);
}

}  // namespace wsflow::http
