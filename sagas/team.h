#pragma once
// The team model's operations: invitations (pending → accepted | declined |
// expired | cancelled, 7 days, single-use tokens stored as hashes), member
// roles, removal, ownership transfer and the plans' member limits.
//
// Every operation runs in the caller's transaction and writes its audit
// entries there, so a change and its record commit together. Callers that
// change a workspace's team must hold its row lock (SELECT … FOR UPDATE) so
// limits and the single owner hold under concurrent requests; the
// token-based calls (accept, decline) take it themselves.
//
// Time: `clock_offset` moves the database's now (zero in production; tests
// move it to reach the 7th day without waiting).
//
// Errors: refusals throw DomainError (403/404/409/410 with a code); database
// failures throw the driver's exceptions.

#include <string>
#include <vector>

#include <pqxx/transaction>

#include "engine/duration.h"
#include "sagas/domain_error.h"

namespace wsflow::sagas {

inline constexpr Millis kInvitationValidity = std::chrono::hours(24 * 7);

// An invitation row (alias i) as the API shows it: one JSON text column.
inline constexpr const char* kInvitationJson =
    "json_build_object('id', i.id, 'workspace_id', i.workspace_id, 'email', i.email, 'role', i.role, "
    "'state', i.state, 'invited_by', i.invited_by, 'expires_at', i.expires_at, 'accepted_by', i.accepted_by, "
    "'created_at', i.created_at, 'updated_at', i.updated_at)::text";

struct Caller {
  std::string actor;    // how the audit feed names the caller ("user:u-1", "operator:…")
  std::string user_id;  // empty for operators
  std::string role;     // empty for operators
};

struct IssuedInvitation {
  std::string id;
  std::string token;  // shown once; only its SHA-256 is stored
  nlohmann::json invitation;
};

// The workspace's members plus its live pending invitations, against the
// plan's limit; throws 409 plan_limit naming plan, limit and count when
// `adding` more would pass it.
void check_member_capacity(pqxx::work& tx, const std::string& workspace_id, const std::string& plan, int adding,
                           Millis clock_offset);

// Invites `email` with role admin or member. 409 member_exists,
// invitation_exists (a pending one: resend it), plan_limit.
IssuedInvitation invite(pqxx::work& tx, const std::string& workspace_id, const std::string& plan,
                        const std::string& email, const std::string& role, const Caller& caller, Millis clock_offset);

// A new token for a pending or expired invitation, valid 7 days from now;
// the old token stops working at once. 404, 409 invitation_not_resendable, plan_limit.
IssuedInvitation resend_invitation(pqxx::work& tx, const std::string& workspace_id, const std::string& plan,
                                   const std::string& invitation_id, const Caller& caller, Millis clock_offset);

// 404, 409 invitation_not_pending.
nlohmann::json cancel_invitation(pqxx::work& tx, const std::string& workspace_id, const std::string& invitation_id,
                                 const Caller& caller);

struct AcceptedInvitation {
  std::string workspace_id;
  std::string member_id;
  nlohmann::json member;
};

// Adds `user_id` as a member with the invited role, atomically with the
// invitation's change to accepted. 404 invitation_not_found (unknown or
// replaced token), 410 invitation_expired, 409 invitation_not_pending
// (accepted, declined, cancelled), member_exists, workspace_frozen or
// workspace_not_active.
AcceptedInvitation accept_invitation(pqxx::work& tx, const std::string& token, const std::string& user_id,
                                     Millis clock_offset);

// Same refusals as accept (but member_exists).
nlohmann::json decline_invitation(pqxx::work& tx, const std::string& token, Millis clock_offset);

struct ExpiredInvitation {
  std::string id;
  std::string workspace_id;
  std::string email;
};

// Expires every pending invitation whose 7 days are over, `batch` rows per
// statement, each with its audit entry. Rows another transaction holds are
// left for the next run. Returns what it expired.
std::vector<ExpiredInvitation> expire_due_invitations(pqxx::work& tx, int batch, Millis clock_offset);

// Sets a member's role to admin or member. 404 member_not_found; 403 when an
// admin touches the owner; 409 owner_role (the owner's role changes only by
// transfer). Returns the member.
nlohmann::json change_role(pqxx::work& tx, const std::string& workspace_id, const std::string& user_id,
                           const std::string& role, const Caller& caller);

// Removes a member and revokes their keys at once (their next request gets
// 401). Anyone may remove themselves (leave) except the owner (409
// owner_cannot_leave: transfer first); removing others needs the
// kManageMembers permission, checked by the caller; an admin cannot remove
// the owner (403). Returns how many keys were revoked.
long long remove_member(pqxx::work& tx, const std::string& workspace_id, const std::string& user_id,
                        const Caller& caller);

// Makes member `to_user_id` the owner and the current owner an admin, in one
// transaction. 404 member_not_found, 409 already_owner.
nlohmann::json transfer_ownership(pqxx::work& tx, const std::string& workspace_id, const std::string& to_user_id,
                                  const Caller& caller);

// Refuses (409 plan_limit with the figures) a plan whose limit is below the
// members and pending invitations the workspace has; 400 unknown plan.
void check_plan_change(pqxx::work& tx, const std::string& workspace_id, const std::string& plan, Millis clock_offset);

}  // namespace wsflow::sagas
