#pragma once
// Who may do what in a workspace: the role matrix (Creor's, exactly), the API
// key scopes that narrow a key below its member's role, and the plans'
// member limits. Pure rules; the routes and team operations apply them.
//
// Roles:        use and read: owner, admin, member. Invite, remove members,
//               change roles, create keys, freeze/export/offboard: owner and
//               admin (an admin can neither change nor remove the owner, nor
//               make anyone owner). Billing/plan, delete, transfer ownership:
//               the owner only.
// Scopes:       "resource:verb"; `*` holds all, `read` and `write` are
//               aliases for every :read and every :write scope, and
//               `lifecycle:write` includes `exports:write`.
// A request is allowed when the key's member has the role AND the key the scope.

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace wsflow::sagas {

enum class Permission {
  kRead,               // the workspace, environments, members, invitations, sagas
  kReadAudit,          // the audit feed
  kInvite,             // invitations: create, resend, cancel
  kManageMembers,      // change roles, remove members
  kCreateKeys,         // mint keys (for oneself)
  kLifecycle,          // freeze, unfreeze, offboard
  kExport,             // export
  kBilling,            // change the plan
  kDelete,             // delete the workspace
  kTransferOwnership,  // make another member the owner
  kLeave,              // remove oneself from the workspace
  kRevokeKeys,         // revoke keys: one's own, or (owner, admin) others' (the routes say whose)
  kRestore,            // end an offboarding within its window
  kSettings,           // rename, describe
};

struct PermissionRule {
  Permission permission;
  const char* description;  // for error messages: "only an owner or admin may <description>"
  const char* scope;        // the scope a key needs
  bool owner, admin, member;
  bool operator_allowed;  // operators act on any workspace, except where the owner alone may
};

const PermissionRule& rule_of(Permission permission);
bool role_allows(const std::string& role, Permission permission);
// "only the owner may …" / "only an owner or admin may …"
std::string role_refusal(Permission permission);

// Every scope a key may be given, aliases included.
const std::vector<std::string>& known_scopes();
// The scopes with aliases resolved (`*` stays `*`).
std::set<std::string> expand_scopes(const std::vector<std::string>& scopes);
// Whether expanded `held` scopes grant `scope`.
bool scopes_allow(const std::set<std::string>& held, const std::string& scope);
// Whether every expanded `requested` scope is granted by `held` (no key may
// be minted wider than the key that mints it).
bool scopes_within(const std::set<std::string>& requested, const std::set<std::string>& held);

// Operator keys' scopes, so that a support console can run on a read-only
// key: `*` (also the `ops` of keys made before scopes), `sagas:read`,
// `sagas:repair`, `workspaces:read`, `workspaces:write`, `workspaces:create`,
// `schedules:write`.
const std::vector<std::string>& operator_scopes();

// Plans and their member limits (nullopt: unlimited). Pending invitations
// count toward the limit.
const std::vector<std::string>& plans();
bool is_plan(const std::string& plan);
std::optional<int> member_limit(const std::string& plan);

}  // namespace wsflow::sagas
