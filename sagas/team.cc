#include "sagas/team.h"

#include <pqxx/pqxx>

#include "engine/sha256.h"
#include "sagas/audit.h"
#include "sagas/team_policy.h"

namespace wsflow::sagas {
namespace {

// The database's now moved by the clock offset ($N, milliseconds).
std::string now_plus(const char* param) { return std::string("(now() + ") + param + "::bigint * interval '1 ms')"; }

long long ms(Millis d) { return static_cast<long long>(d.count()); }

const char* kMemberJson =
    "json_build_object('id', m.id, 'user_id', m.user_id, 'email', m.email, 'role', m.role, "
    "'last_active_at', m.last_active_at, 'request_count', m.request_count, 'created_at', m.created_at)::text";

nlohmann::json parse(const pqxx::field& f) { return nlohmann::json::parse(f.as<std::string>()); }

std::string new_token() { return "wsi_" + random_hex(20); }

nlohmann::json member_of(pqxx::work& tx, const std::string& workspace_id, const std::string& user_id,
                         bool lock = false) {
  auto row = tx.exec_params(std::string("SELECT ") + kMemberJson +
                                " FROM wsflow.members m WHERE m.workspace_id = $1::uuid AND m.user_id = $2" +
                                (lock ? " FOR UPDATE" : ""),
                            workspace_id, user_id);
  if (row.empty()) throw DomainError(404, "member_not_found", "'" + user_id + "' is not a member", "user_id");
  return parse(row[0][0]);
}

// The pending invitation of a token, locked, after locking its workspace
// (workspace first, as every team write does, so the two never deadlock).
struct TokenInvitation {
  nlohmann::json invitation;
  std::string workspace_status;
};

TokenInvitation pending_by_token(pqxx::work& tx, const std::string& token, Millis clock_offset) {
  const std::string hash = sha256_hex(token);
  auto found = tx.exec_params("SELECT workspace_id::text FROM wsflow.invitations WHERE token_hash = $1", hash);
  if (found.empty()) {
    throw DomainError(404, "invitation_not_found", "no invitation has this token (it may have been resent)", "token");
  }
  auto workspace = tx.exec_params("SELECT status FROM wsflow.workspaces WHERE id = $1::uuid FOR UPDATE",
                                  found[0][0].as<std::string>());
  auto row = tx.exec_params(std::string("SELECT ") + kInvitationJson + ", i.expires_at <= " + now_plus("$2") +
                                " FROM wsflow.invitations i WHERE i.token_hash = $1 FOR UPDATE",
                            hash, ms(clock_offset));
  if (row.empty() || workspace.empty()) {
    throw DomainError(404, "invitation_not_found", "no invitation has this token (it may have been resent)", "token");
  }
  nlohmann::json invitation = parse(row[0][0]);
  const std::string state = invitation["state"];
  if (state == "expired" || (state == "pending" && row[0][1].as<bool>())) {
    throw DomainError(410, "invitation_expired",
                      "this invitation expired; ask the workspace's owner or an admin to resend it", "token");
  }
  if (state != "pending") {
    throw DomainError(409, "invitation_not_pending", "this invitation was already " + state, "token");
  }
  return {std::move(invitation), workspace[0][0].as<std::string>()};
}

long long seats_taken(pqxx::work& tx, const std::string& workspace_id, Millis clock_offset) {
  return tx
      .exec_params(
          "SELECT (SELECT count(*) FROM wsflow.members WHERE workspace_id = $1::uuid) + "
          "(SELECT count(*) FROM wsflow.invitations WHERE workspace_id = $1::uuid AND state = 'pending' "
          "AND expires_at > " +
              now_plus("$2") + ")",
          workspace_id, ms(clock_offset))[0][0]
      .as<long long>();
}

DomainError plan_limit(const std::string& plan, int limit, long long count, const std::string& what) {
  return DomainError(409, "plan_limit",
                     "the " + plan + " plan allows " + std::to_string(limit) + " member(s) and the workspace has " +
                         std::to_string(count) + " (members and pending invitations): " + what,
                     "plan", {{"plan", plan}, {"limit", limit}, {"count", count}});
}

}  // namespace

void check_member_capacity(pqxx::work& tx, const std::string& workspace_id, const std::string& plan, int adding,
                           Millis clock_offset) {
  const std::optional<int> limit = member_limit(plan);
  if (!limit) return;
  const long long taken = seats_taken(tx, workspace_id, clock_offset);
  if (taken + adding > *limit) throw plan_limit(plan, *limit, taken, "upgrade the plan or remove someone first");
}

void check_plan_change(pqxx::work& tx, const std::string& workspace_id, const std::string& plan, Millis clock_offset) {
  if (!is_plan(plan)) throw DomainError(400, "invalid_field", "unknown plan '" + plan + "'", "plan");
  const std::optional<int> limit = member_limit(plan);
  if (!limit) return;
  const long long taken = seats_taken(tx, workspace_id, clock_offset);
  if (taken > *limit) throw plan_limit(plan, *limit, taken, "remove members or cancel invitations before downgrading");
}

IssuedInvitation invite(pqxx::work& tx, const std::string& workspace_id, const std::string& plan,
                        const std::string& email, const std::string& role, const Caller& caller, Millis clock_offset) {
  if (role != "admin" && role != "member") {
    throw DomainError(400, "invalid_field", "role must be admin or member (ownership moves only by transfer)", "role");
  }
  if (!tx.exec_params("SELECT 1 FROM wsflow.members WHERE workspace_id = $1::uuid AND lower(email) = lower($2)",
                      workspace_id, email)
           .empty()) {
    throw DomainError(409, "member_exists", "'" + email + "' is already a member", "email");
  }
  auto pending = tx.exec_params(
      "SELECT id::text FROM wsflow.invitations WHERE workspace_id = $1::uuid AND lower(email) = lower($2) "
      "AND state = 'pending'",
      workspace_id, email);
  if (!pending.empty()) {
    throw DomainError(409, "invitation_exists",
                      "'" + email + "' already has a pending invitation (" + pending[0][0].as<std::string>() +
                          "): resend or cancel it",
                      "email", {{"invitation_id", pending[0][0].as<std::string>()}});
  }
  check_member_capacity(tx, workspace_id, plan, 1, clock_offset);
  const std::string token = new_token();
  auto row = tx.exec_params(
      "INSERT INTO wsflow.invitations AS i (workspace_id, email, role, state, token_hash, "
      "invited_by, expires_at) VALUES ($1::uuid, $2, $3, 'pending', $4, $5, " +
          now_plus("$6") + " + $7::bigint * interval '1 ms') RETURNING i.id::text, " + kInvitationJson,
      workspace_id, email, role, sha256_hex(token), caller.actor, ms(clock_offset), ms(kInvitationValidity));
  const std::string id = row[0][0].as<std::string>();
  audit(tx, workspace_id, caller.actor, "invitation.created",
        {{"invitation_id", id}, {"email", email}, {"role", role}});
  return {id, token, parse(row[0][1])};
}

IssuedInvitation resend_invitation(pqxx::work& tx, const std::string& workspace_id, const std::string& plan,
                                   const std::string& invitation_id, const Caller& caller, Millis clock_offset) {
  auto row = tx.exec_params(
      "SELECT state, email FROM wsflow.invitations WHERE id = $1::uuid AND workspace_id = $2::uuid FOR UPDATE",
      invitation_id, workspace_id);
  if (row.empty()) throw DomainError(404, "invitation_not_found", "no invitation '" + invitation_id + "'");
  const std::string state = row[0][0].as<std::string>();
  if (state != "pending" && state != "expired") {
    throw DomainError(409, "invitation_not_resendable",
                      "only a pending or expired invitation can be resent; this one was " + state);
  }
  if (state == "expired") {
    // It takes a seat again.
    check_member_capacity(tx, workspace_id, plan, 1, clock_offset);
    if (!tx.exec_params("SELECT 1 FROM wsflow.invitations WHERE workspace_id = $1::uuid AND lower(email) = "
                        "lower($2) AND state = 'pending'",
                        workspace_id, row[0][1].as<std::string>())
             .empty()) {
      throw DomainError(409, "invitation_exists", "a newer invitation for this email is pending", "email");
    }
  }
  const std::string token = new_token();
  auto updated = tx.exec_params(std::string("UPDATE wsflow.invitations i SET state = 'pending', token_hash = $2, "
                                            "expires_at = ") +
                                    now_plus("$3") + " + $4::bigint * interval '1 ms', updated_at = now() " +
                                    "WHERE i.id = $1::uuid RETURNING " + kInvitationJson,
                                invitation_id, sha256_hex(token), ms(clock_offset), ms(kInvitationValidity));
  audit(tx, workspace_id, caller.actor, "invitation.resent", {{"invitation_id", invitation_id}});
  return {invitation_id, token, parse(updated[0][0])};
}

nlohmann::json cancel_invitation(pqxx::work& tx, const std::string& workspace_id, const std::string& invitation_id,
                                 const Caller& caller) {
  auto row =
      tx.exec_params("SELECT state FROM wsflow.invitations WHERE id = $1::uuid AND workspace_id = $2::uuid FOR UPDATE",
                     invitation_id, workspace_id);
  if (row.empty()) throw DomainError(404, "invitation_not_found", "no invitation '" + invitation_id + "'");
  if (row[0][0].as<std::string>() != "pending") {
    throw DomainError(409, "invitation_not_pending", "this invitation was already " + row[0][0].as<std::string>());
  }
  auto updated = tx.exec_params(std::string("UPDATE wsflow.invitations i SET state = 'cancelled', updated_at = now() "
                                            "WHERE i.id = $1::uuid RETURNING ") +
                                    kInvitationJson,
                                invitation_id);
  audit(tx, workspace_id, caller.actor, "invitation.cancelled", {{"invitation_id", invitation_id}});
  return parse(updated[0][0]);
}

AcceptedInvitation accept_invitation(pqxx::work& tx, const std::string& token, const std::string& user_id,
                                     Millis clock_offset) {
  const TokenInvitation found = pending_by_token(tx, token, clock_offset);
  const nlohmann::json& invitation = found.invitation;
  const std::string workspace_id = invitation["workspace_id"];
  if (found.workspace_status == "frozen") {
    throw DomainError(409, "workspace_frozen", "the workspace is frozen: it accepts no new members until unfrozen");
  }
  if (found.workspace_status != "active") {
    throw DomainError(409, "workspace_not_active", "the workspace is not active");
  }
  auto inserted = tx.exec_params(std::string("INSERT INTO wsflow.members AS m (workspace_id, user_id, email, role) "
                                             "VALUES ($1::uuid, $2, $3, $4) ON CONFLICT (workspace_id, user_id) DO "
                                             "NOTHING RETURNING m.id::text, ") +
                                     kMemberJson,
                                 workspace_id, user_id, invitation["email"].get<std::string>(),
                                 invitation["role"].get<std::string>());
  if (inserted.empty()) {
    throw DomainError(409, "member_exists", "'" + user_id + "' is already a member of this workspace", "user_id");
  }
  tx.exec_params(
      "UPDATE wsflow.invitations SET state = 'accepted', accepted_by = $2, updated_at = now() WHERE id = $1::uuid",
      invitation["id"].get<std::string>(), user_id);
  audit(tx, workspace_id, "user:" + user_id, "invitation.accepted",
        {{"invitation_id", invitation["id"]}, {"user_id", user_id}, {"role", invitation["role"]}});
  return {workspace_id, inserted[0][0].as<std::string>(), parse(inserted[0][1])};
}

nlohmann::json decline_invitation(pqxx::work& tx, const std::string& token, Millis clock_offset) {
  const TokenInvitation found = pending_by_token(tx, token, clock_offset);
  const std::string id = found.invitation["id"];
  auto updated = tx.exec_params(std::string("UPDATE wsflow.invitations i SET state = 'declined', updated_at = now() "
                                            "WHERE i.id = $1::uuid RETURNING ") +
                                    kInvitationJson,
                                id);
  audit(tx, found.invitation["workspace_id"], "invitee:" + found.invitation["email"].get<std::string>(),
        "invitation.declined", {{"invitation_id", id}});
  return parse(updated[0][0]);
}

std::vector<ExpiredInvitation> expire_due_invitations(pqxx::work& tx, int batch, Millis clock_offset) {
  std::vector<ExpiredInvitation> expired;
  for (;;) {
    const auto rows = tx.exec_params(
        "WITH due AS (SELECT id FROM wsflow.invitations WHERE state = 'pending' AND expires_at <= " + now_plus("$1") +
            " ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED), "
            "done AS (UPDATE wsflow.invitations i SET state = 'expired', updated_at = now() FROM due "
            "WHERE i.id = due.id RETURNING i.id, i.workspace_id, i.email, i.expires_at), "
            "audited AS (INSERT INTO wsflow.audit_log (workspace_id, actor, action, detail) "
            "SELECT workspace_id, 'wsflow', 'invitation.expired', json_build_object('invitation_id', id, "
            "'email', email, 'expires_at', expires_at) FROM done) "
            "SELECT id::text, workspace_id::text, email FROM done",
        ms(clock_offset), batch);
    for (const auto& r : rows) {
      expired.push_back({r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>()});
    }
    if (static_cast<int>(rows.size()) < batch) return expired;
  }
}

nlohmann::json change_role(pqxx::work& tx, const std::string& workspace_id, const std::string& user_id,
                           const std::string& role, const Caller& caller) {
  if (role == "owner") {
    throw DomainError(403, "forbidden", "nobody is made owner by a role change: the owner transfers ownership", "role");
  }
  if (role != "admin" && role != "member")
    throw DomainError(400, "invalid_field", "role must be admin or member", "role");
  const nlohmann::json member = member_of(tx, workspace_id, user_id, true);
  if (member["role"] == "owner") {
    if (caller.role != "owner") throw DomainError(403, "forbidden", "an admin cannot change the owner's role");
    throw DomainError(409, "owner_role", "the owner's role changes only by transferring ownership", "user_id");
  }
  auto updated = tx.exec_params(std::string("UPDATE wsflow.members m SET role = $3 WHERE m.workspace_id = $1::uuid "
                                            "AND m.user_id = $2 RETURNING ") +
                                    kMemberJson,
                                workspace_id, user_id, role);
  audit(tx, workspace_id, caller.actor, "member.role_changed",
        {{"user_id", user_id}, {"from", member["role"]}, {"to", role}});
  return parse(updated[0][0]);
}

long long remove_member(pqxx::work& tx, const std::string& workspace_id, const std::string& user_id,
                        const Caller& caller) {
  const nlohmann::json member = member_of(tx, workspace_id, user_id, true);
  const bool leaving = caller.user_id == user_id;
  if (member["role"] == "owner") {
    if (leaving) {
      throw DomainError(409, "owner_cannot_leave", "the owner cannot leave: transfer ownership first", "user_id");
    }
    throw DomainError(403, "forbidden", "nobody removes the workspace's owner", "user_id");
  }
  const auto revoked = tx.exec_params(
                             "UPDATE wsflow.api_keys SET revoked_at = now() WHERE member_id = $1::uuid "
                             "AND revoked_at IS NULL",
                             member["id"].get<std::string>())
                           .affected_rows();
  tx.exec_params("DELETE FROM wsflow.members WHERE id = $1::uuid", member["id"].get<std::string>());
  audit(tx, workspace_id, caller.actor, leaving ? "member.left" : "member.removed",
        {{"user_id", user_id}, {"role", member["role"]}, {"keys_revoked", revoked}});
  return static_cast<long long>(revoked);
}

nlohmann::json transfer_ownership(pqxx::work& tx, const std::string& workspace_id, const std::string& to_user_id,
                                  const Caller& caller) {
  const nlohmann::json target = member_of(tx, workspace_id, to_user_id, true);
  if (target["role"] == "owner") throw DomainError(409, "already_owner", "'" + to_user_id + "' is the owner already");
  // Demote first: the unique index allows one owner per workspace at every statement.
  tx.exec_params("UPDATE wsflow.members SET role = 'admin' WHERE workspace_id = $1::uuid AND role = 'owner'",
                 workspace_id);
  auto updated = tx.exec_params(std::string("UPDATE wsflow.members m SET role = 'owner' WHERE m.workspace_id = "
                                            "$1::uuid AND m.user_id = $2 RETURNING ") +
                                    kMemberJson,
                                workspace_id, to_user_id);
  audit(tx, workspace_id, caller.actor, "ownership.transferred", {{"from", caller.user_id}, {"to", to_user_id}});
  return parse(updated[0][0]);
}

}  // namespace wsflow::sagas
