#pragma once
// Bearer API keys. A key is "wsf_<8 hex prefix>_<40 hex secret>"; only its
// SHA-256 is stored, with the prefix for people to recognise it. A key is an
// operator key (no workspace: may do everything, including ops endpoints) or
// belongs to one member of one workspace and acts with that member's role,
// limited by its scopes (read, write).

#include <optional>
#include <set>
#include <string>
#include <vector>

#include <pqxx/transaction>

namespace wsflow::http {

inline const std::vector<std::string> kWorkspaceScopes = {"read", "write"};

struct Principal {
  std::string key_id;
  bool is_operator = false;
  std::string workspace_id;  // empty for operator keys
  std::string member_id;
  std::string user_id;
  std::string role;  // owner, admin, member; empty for operator keys
  std::set<std::string> scopes;

  // How the audit log names this caller.
  std::string actor() const { return is_operator ? "operator:" + key_id : "user:" + user_id; }
};

struct NewKey {
  std::string id;
  std::string key;  // shown once, never stored
  std::string prefix;
};

// Creates a key. `workspace_id` and `member_id` both empty for an operator key.
NewKey create_api_key(pqxx::work& tx, const std::string& workspace_id, const std::string& member_id,
                      const std::string& name, const std::vector<std::string>& scopes);

// The principal of a valid, unrevoked key (recording its use), or nullopt.
std::optional<Principal> authenticate(pqxx::work& tx, const std::string& key);

}  // namespace wsflow::http
