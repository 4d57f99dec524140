#include "sagas/team_policy.h"

#include <algorithm>
#include <map>
#include <stdexcept>

namespace wsflow::sagas {
namespace {

const PermissionRule kRules[] = {
    {Permission::kRead, "read the workspace", "workspace:read", true, true, true, true},
    {Permission::kReadAudit, "read the audit feed", "audit:read", true, true, true, true},
    {Permission::kInvite, "manage invitations", "invitations:write", true, true, false, true},
    {Permission::kManageMembers, "manage members", "members:write", true, true, false, true},
    {Permission::kCreateKeys, "create API keys", "keys:write", true, true, false, false},
    {Permission::kLifecycle, "freeze, unfreeze or offboard the workspace", "lifecycle:write", true, true, false, true},
    {Permission::kExport, "export the workspace", "exports:write", true, true, false, true},
    {Permission::kBilling, "change the plan", "billing:write", true, false, false, false},
    {Permission::kDelete, "delete the workspace", "lifecycle:write", true, false, false, false},
    {Permission::kTransferOwnership, "transfer ownership", "members:write", true, false, false, false},
    {Permission::kLeave, "leave the workspace", "members:write", true, true, true, false},
    {Permission::kRevokeKeys, "revoke API keys", "keys:write", true, true, true, true},
    {Permission::kRestore, "restore an offboarded workspace", "lifecycle:write", true, false, false, true},
    {Permission::kSettings, "change the workspace's name or description", "workspace:write", true, true, false, true},
};

const std::vector<std::string> kReadScopes = {"workspace:read", "audit:read"};
const std::vector<std::string> kWriteScopes = {"workspace:write", "members:write", "invitations:write", "keys:write",
                                               "lifecycle:write", "exports:write", "billing:write"};

}  // namespace

const PermissionRule& rule_of(Permission permission) {
  for (const PermissionRule& rule : kRules) {
    if (rule.permission == permission) return rule;
  }
  throw std::logic_error("permission without a rule");
}

bool role_allows(const std::string& role, Permission permission) {
  const PermissionRule& rule = rule_of(permission);
  return (role == "owner" && rule.owner) || (role == "admin" && rule.admin) || (role == "member" && rule.member);
}

std::string role_refusal(Permission permission) {
  const PermissionRule& rule = rule_of(permission);
  return std::string(rule.admin ? "only an owner or admin may " : "only the workspace owner may ") + rule.description;
}

const std::vector<std::string>& known_scopes() {
  static const std::vector<std::string> all = [] {
    std::vector<std::string> scopes = {"*", "read", "write"};
    scopes.insert(scopes.end(), kReadScopes.begin(), kReadScopes.end());
    scopes.insert(scopes.end(), kWriteScopes.begin(), kWriteScopes.end());
    return scopes;
  }();
  return all;
}

const std::vector<std::string>& operator_scopes() {
  static const std::vector<std::string> all = {
      "*", "sagas:read", "sagas:repair", "workspaces:read", "workspaces:write", "workspaces:create", "schedules:write"};
  return all;
}

std::set<std::string> expand_scopes(const std::vector<std::string>& scopes) {
  std::set<std::string> expanded;
  for (const std::string& scope : scopes) {
    if (scope == "ops") {
      expanded.insert("*");  // operator keys made before operator scopes existed
    } else if (scope == "read") {
      expanded.insert(kReadScopes.begin(), kReadScopes.end());
    } else if (scope == "write") {
      expanded.insert(kWriteScopes.begin(), kWriteScopes.end());
    } else {
      expanded.insert(scope);
      if (scope == "lifecycle:write") expanded.insert("exports:write");
    }
  }
  return expanded;
}

bool scopes_allow(const std::set<std::string>& held, const std::string& scope) {
  return held.count("*") > 0 || held.count(scope) > 0;
}

bool scopes_within(const std::set<std::string>& requested, const std::set<std::string>& held) {
  if (held.count("*")) return true;
  return std::all_of(requested.begin(), requested.end(), [&](const std::string& s) { return held.count(s) > 0; });
}

const std::vector<std::string>& plans() {
  static const std::vector<std::string> all = {"free", "starter", "pro", "byok", "enterprise"};
  return all;
}

bool is_plan(const std::string& plan) { return std::find(plans().begin(), plans().end(), plan) != plans().end(); }

std::optional<int> member_limit(const std::string& plan) {
  static const std::map<std::string, std::optional<int>> limits = {
      {"free", 1}, {"starter", 5}, {"pro", std::nullopt}, {"byok", 5}, {"enterprise", std::nullopt}};
  auto it = limits.find(plan);
  if (it == limits.end()) throw std::invalid_argument("unknown plan '" + plan + "'");
  return it->second;
}

}  // namespace wsflow::sagas
