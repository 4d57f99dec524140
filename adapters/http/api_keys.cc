#include "adapters/http/api_keys.h"

#include <openssl/rand.h>

#include <pqxx/pqxx>
#include <regex>
#include <stdexcept>

#include "engine/sha256.h"

namespace wsflow::http {
namespace {

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> buffer(bytes);
  if (RAND_bytes(buffer.data(), static_cast<int>(bytes)) != 1) throw std::runtime_error("RAND_bytes failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : buffer) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 0xf]);
  }
  return hex;
}

std::string to_pg_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
  return out + "}";
}

}  // namespace

NewKey create_api_key(pqxx::work& tx, const std::string& workspace_id, const std::string& member_id,
                      const std::string& name, const std::vector<std::string>& scopes) {
  NewKey key;
  key.prefix = "wsf_" + random_hex(4);
  key.key = key.prefix + "_" + random_hex(20);
  key.id = tx.exec_params(
                 "INSERT INTO wsflow.api_keys (workspace_id, member_id, name, prefix, key_hash, scopes) "
                 "VALUES (NULLIF($1, '')::uuid, NULLIF($2, '')::uuid, $3, $4, $5, $6::text[]) RETURNING id::text",
                 workspace_id, member_id, name, key.prefix, sha256_hex(key.key), to_pg_array(scopes))[0][0]
               .as<std::string>();
  return key;
}

std::optional<Principal> authenticate(pqxx::work& tx, const std::string& key) {
  static const std::regex kShape("wsf_[0-9a-f]{8}_[0-9a-f]{40}");
  if (!std::regex_match(key, kShape)) return std::nullopt;
  auto rows = tx.exec_params(
      "SELECT k.id::text, coalesce(k.workspace_id::text, ''), coalesce(k.member_id::text, ''), "
      "coalesce(m.user_id, ''), coalesce(m.role, ''), array_to_string(k.scopes, ',') "
      "FROM wsflow.api_keys k LEFT JOIN wsflow.members m ON m.id = k.member_id "
      "WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
      sha256_hex(key));
  if (rows.empty()) return std::nullopt;
  const auto& r = rows[0];
  Principal p;
  p.key_id = r[0].as<std::string>();
  p.workspace_id = r[1].as<std::string>();
  p.member_id = r[2].as<std::string>();
  p.user_id = r[3].as<std::string>();
  p.role = r[4].as<std::string>();
  p.is_operator = p.workspace_id.empty();
  const std::string scopes = r[5].as<std::string>();
  for (std::size_t start = 0; start <= scopes.size();) {
    const std::size_t comma = scopes.find(',', start);
    const std::string scope = scopes.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!scope.empty()) p.scopes.insert(scope);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (!p.is_operator && p.member_id.empty()) return std::nullopt;  // its member was removed
  tx.exec_params("UPDATE wsflow.api_keys SET last_used_at = now() WHERE id = $1::uuid", p.key_id);
  if (!p.member_id.empty()) {
    tx.exec_params(
        "UPDATE wsflow.members SET last_active_at = now(), request_count = request_count + 1 "
        "WHERE id = $1::uuid",
        p.member_id);
  }
  return p;
}

}  // namespace wsflow::http
