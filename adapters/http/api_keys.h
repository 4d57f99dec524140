#pragma once
// Bearer API keys. A key is "wsf_<8 hex prefix>_<40 hex secret>"; only its
// SHA-256 is stored, with the prefix for people to recognise it. A key is an
// operator key (no workspace: operator endpoints, and every workspace except
// where the owner alone may act) or belongs to one member of one workspace
// and acts with that member's role, narrowed by its scopes
// (sagas/team_policy.h). Removing the member revokes the key.

#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <pqxx/transaction>

namespace wsflow::http {

struct Principal {
  std::string key_id;
  std::string key_name;  // as its creator named it (operator actions record it)
  bool is_operator = false;
  std::string workspace_id;  // empty for operator keys
  std::string member_id;
  std::string user_id;
  std::string role;              // owner, admin, member; empty for operator keys
  std::set<std::string> scopes;  // expanded: aliases resolved

  // How the audit log names this caller.
  std::string actor() const { return is_operator ? "operator:" + key_id : "user:" + user_id; }
  // Whether the key's scopes grant `scope`.
  bool allows(const std::string& scope) const;
};

struct NewKey {
  std::string id;
  std::string key;  // shown once, never stored
  std::string prefix;
};

// Who a workspace key is for, and who minted it (both in the keys list and
// the audit feed).
struct KeyOwner {
  std::string workspace_id;  // empty (with member_id and user_id) for an operator key
  std::string member_id;
  std::string user_id;
  std::string created_by;   // the minting actor
  std::string mint_reason;  // an operator's break-glass reason; empty otherwise
};

// Creates a key with `scopes` as given (aliases are kept, and expanded when
// the key is used).
NewKey create_api_key(pqxx::work& tx, const KeyOwner& owner, const std::string& name,
                      const std::vector<std::string>& scopes);

// create_api_key, recorded in the workspace's audit feed as `audit_action`
// by the minting actor (with `audit_detail` added, e.g. a reason). Returns
// the response body for the new key: {id, key (shown once), prefix, scopes,
// user_id}.
nlohmann::json mint_audited_key(pqxx::work& tx, const KeyOwner& owner, const std::string& name,
                                const std::vector<std::string>& scopes, const std::string& audit_action,
                                const nlohmann::json& audit_detail = nlohmann::json::object());

// The principal of a valid, unrevoked key whose member still belongs to the
// workspace, or nullopt. Reads only: the caller records the use
// (usage_recorder.h).
std::optional<Principal> authenticate(pqxx::transaction_base& tx, const std::string& key);

}  // namespace wsflow::http
