// Security properties against a running `wsflow serve`:
// - every text parameter of every endpoint in the API contract (path,
//   query and body string fields, read from openapi.yaml) gets SQL
//   injection probes: never a 5xx, never a leaked hash, no table dropped or
//   emptied, no injected pg_sleep run;
// - secrets (API keys, invitation tokens, the webhook signing secret) are
//   stored only as hashes and appear in no database row, log line or export
//   archive.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <pqxx/pqxx>

#include "engine/sha256.h"
#include "tests/support/live_server.h"

namespace wsflow::testing {
namespace {

const std::vector<std::string> kInjections = {
    "' OR '1'='1",
    "'; DROP TABLE wsflow.api_keys; --",
    "x' UNION SELECT key_hash, key_hash FROM wsflow.api_keys --",
    "'||(SELECT pg_sleep(10))||'",
};

// Everything the suite needs to fill a path: real ids for each parameter.
using PathValues = std::map<std::string, std::string>;

YAML::Node resolve(const YAML::Node& node, const YAML::Node& doc) {
  if (!node.IsMap() || !node["$ref"]) return node;
  std::string ref = node["$ref"].as<std::string>();  // #/components/<kind>/<name>
  // reset(), not operator=: assigning a yaml-cpp node would overwrite what it refers to.
  YAML::Node target;
  target.reset(doc);
  for (std::size_t at = 2; at < ref.size();) {
    const std::size_t slash = ref.find('/', at);
    const std::string part = ref.substr(at, slash == std::string::npos ? std::string::npos : slash - at);
    const YAML::Node next = target[part];
    target.reset(next);
    at = slash == std::string::npos ? ref.size() : slash + 1;
  }
  return target;
}

// A value the schema accepts, for the fields not under probe.
nlohmann::json sample_value(const YAML::Node& schema_node, const YAML::Node& doc, const PathValues& ids) {
  const YAML::Node schema = resolve(schema_node, doc);
  if (schema["allOf"]) {
    nlohmann::json merged = nlohmann::json::object();
    for (const auto& part : schema["allOf"]) merged.update(sample_value(part, doc, ids));
    return merged;
  }
  if (schema["enum"]) return schema["enum"][0].as<std::string>();
  if (schema["examples"]) return schema["examples"][0].as<std::string>();
  const std::string type = schema["type"] && schema["type"].IsScalar() ? schema["type"].as<std::string>() : "string";
  const std::string format = schema["format"] ? schema["format"].as<std::string>() : "";
  if (type == "object") {
    nlohmann::json object = nlohmann::json::object();
    for (const auto& property : schema["properties"]) {
      object[property.first.as<std::string>()] = sample_value(property.second, doc, ids);
    }
    return object;
  }
  if (type == "integer" || type == "number") return 1;
  if (type == "boolean") return false;
  if (type == "array") return nlohmann::json::array();
  if (format == "email") return "probe@example.com";
  if (format == "uuid") return ids.at("workspace");
  if (format == "date-time") return "2026-11-24T00:00:00Z";
  return "probe";
}

// JSON pointers of every string field of a body sample (nested objects included).
void string_fields(const nlohmann::json& sample, const std::string& at, std::vector<std::string>& out) {
  for (const auto& [name, value] : sample.items()) {
    if (value.is_string()) out.push_back(at + "/" + name);
    if (value.is_object()) string_fields(value, at + "/" + name, out);
  }
}

std::string fill_path(std::string path, const PathValues& values, const std::string& probed = "",
                      const std::string& payload = "") {
  static const std::regex kParam(R"(\{([a-z_]+)\})");
  std::smatch m;
  while (std::regex_search(path, m, kParam)) {
    const std::string name = m[1].str();
    const std::string value = name == probed ? payload : values.at(name);
    path.replace(m.position(0), m.length(0), httplib::detail::encode_query_param(value));
  }
  return path;
}

struct Probe {
  std::string method, path, body, what;
};

// One probe per injection for every text parameter of every operation.
std::vector<Probe> injection_probes(const YAML::Node& doc, const PathValues& ids) {
  std::vector<Probe> probes;
  for (const auto& path_entry : doc["paths"]) {
    const std::string path = path_entry.first.as<std::string>();
    for (const auto& op_entry : path_entry.second) {
      const std::string method = op_entry.first.as<std::string>();
      if (method == "parameters") continue;
      const YAML::Node op = resolve(op_entry.second, doc);
      std::string upper_method = method;
      for (char& c : upper_method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      nlohmann::json body_sample;
      if (op["requestBody"]) {
        const YAML::Node content = op["requestBody"]["content"]["application/json"];
        if (content) body_sample = sample_value(content["schema"], doc, ids);
      }
      const std::string plain_body = body_sample.is_null() ? "" : body_sample.dump();
      std::vector<YAML::Node> parameters;
      for (const auto& p : path_entry.second["parameters"]) parameters.push_back(resolve(p, doc));
      for (const auto& p : op["parameters"]) parameters.push_back(resolve(p, doc));
      for (const std::string& payload : kInjections) {
        for (const YAML::Node& parameter : parameters) {
          const std::string name = parameter["name"].as<std::string>();
          const std::string in = parameter["in"].as<std::string>();
          if (in == "path") {
            probes.push_back({upper_method, fill_path(path, ids, name, payload), plain_body, "path " + name});
          } else if (in == "query") {
            probes.push_back({upper_method,
                              fill_path(path, ids) + "?" + name + "=" + httplib::detail::encode_query_param(payload),
                              plain_body, "query " + name});
          }
        }
        std::vector<std::string> fields;
        if (body_sample.is_object()) string_fields(body_sample, "", fields);
        for (const std::string& field : fields) {
          nlohmann::json body = body_sample;
          body[nlohmann::json::json_pointer(field)] = payload;
          probes.push_back({upper_method, fill_path(path, ids), body.dump(), "body " + field});
        }
      }
    }
  }
  return probes;
}

TEST(Security, EveryTextParameterOfEveryEndpointGetsAnSqlInjectionProbe) {
  HookReceiver hooks;
  Server api("", hooks.url());
  const std::string ws = api.create_workspace("Probed", "probe-owner");
  const std::string ops = api.operator_key();
  api.add_member(ws, "probe-member", "member");
  const Response invited =
      api.post("/v1/workspaces/" + ws + "/invitations", ops, R"({"email":"guest@example.com","role":"member"})");
  const Response exported = api.post("/v1/workspaces/" + ws + "/export", ops);
  const Response keys = api.get("/v1/workspaces/" + ws + "/keys", ops);
  const Response sagas = api.get("/v1/sagas?workspace_id=" + ws, ops);
  ASSERT_EQ(sagas.status, 200);
  const PathValues ids = {{"workspace", ws},
                          {"saga", sagas.body["data"][0].value("id", "")},
                          {"export", exported.body.value("export_id", "")},
                          {"invitation", invited.body.value("id", "")},
                          {"member", "probe-member"},
                          {"key", keys.body["data"][0].value("id", "")},
                          {"schedule", "invitations.expire"},
                          {"bulk", "00000000-0000-0000-0000-000000000000"},
                          {"file", "console.js"},
                          {"signal", "probe"}};
  const long long keys_before = api.scalar("SELECT count(*) FROM wsflow.api_keys");
  const long long workspaces_before = api.scalar("SELECT count(*) FROM wsflow.workspaces");

  const YAML::Node doc = YAML::LoadFile(std::string(WSFLOW_SOURCE_DIR) + "/adapters/http/openapi.yaml");
  const std::vector<Probe> probes = injection_probes(doc, ids);
  ASSERT_GT(probes.size(), 200u);
  std::set<std::string> probed;
  std::vector<std::string> answers;
  for (const Probe& probe : probes) {
    const auto start = std::chrono::steady_clock::now();
    httplib::Client client = api.raw_client();
    client.set_read_timeout(30, 0);
    const httplib::Headers headers = {{"Authorization", "Bearer " + ops}};
    const httplib::Result r =
        probe.method == "GET"     ? client.Get(probe.path.c_str(), headers)
        : probe.method == "POST"  ? client.Post(probe.path.c_str(), headers, probe.body, "application/json")
        : probe.method == "PATCH" ? client.Patch(probe.path.c_str(), headers, probe.body, "application/json")
                                  : client.Delete(probe.path.c_str(), headers, probe.body, "application/json");
    const auto elapsed = std::chrono::steady_clock::now() - start;
    const std::string where = probe.method + " " + probe.path + " (" + probe.what + ")";
    ASSERT_TRUE(r) << where << ": no answer";
    EXPECT_LT(r->status, 500) << where << " -> " << r->body;
    EXPECT_FALSE(carries_internal_text(r->body)) << where << " -> " << r->body;
    // An injected pg_sleep(10) that ran would hold the request for 10 s.
    EXPECT_LT(elapsed, 8s) << where << ": the injected pg_sleep ran";
    probed.insert(probe.what);
    answers.push_back(r->body);
  }
  std::cout << probes.size() << " injection probes over " << probed.size() << " distinct parameters\n";
  EXPECT_GE(api.scalar("SELECT count(*) FROM wsflow.api_keys"), keys_before) << "keys were deleted";
  EXPECT_GE(api.scalar("SELECT count(*) FROM wsflow.workspaces"), workspaces_before) << "workspaces were deleted";
  pqxx::connection conn(api.dsn());
  {
    pqxx::read_transaction tx(conn);
    for (const auto& row : tx.exec("SELECT key_hash FROM wsflow.api_keys")) {
      const std::string hash = row[0].as<std::string>();
      for (const std::string& answer : answers) ASSERT_EQ(answer.find(hash), std::string::npos) << "a key hash leaked";
    }
  }
  // The probes reached the database as data: the injected text is stored verbatim where a field takes text.
  pqxx::work check(conn);
  EXPECT_GT(check.exec_params("SELECT count(*) FROM wsflow.workspaces WHERE name = $1", kInjections[1])[0][0].as<int>(),
            0);
}

// Every row of every table in the database, as text.
std::string all_rows(const std::string& dsn) {
  pqxx::connection conn(dsn);
  pqxx::read_transaction tx(conn);
  std::string rows;
  for (const auto& table :
       tx.exec("SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables "
               "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')")) {
    const auto text =
        tx.exec("SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM " + table[0].as<std::string>() + " t");
    rows += text[0][0].as<std::string>() + "\n";
  }
  return rows;
}

std::string all_files(const std::filesystem::path& dir) {
  std::string bytes;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) bytes += read_text_file(entry.path()).value_or("");
  }
  return bytes;
}

TEST(Security, SecretsAreStoredOnlyAsHashesAndAppearInNoRowLogOrExport) {
  HookReceiver hooks;
  Server api("", hooks.url());  // its webhook secret is "s3cret"
  const std::string ws = api.create_workspace("Secretive", "secret-owner");
  const std::string owner = api.owner_key(ws);
  const Response minted = api.post("/v1/workspaces/" + ws + "/keys", owner, R"({"name":"ci"})");
  ASSERT_EQ(minted.status, 201) << minted.body.dump();
  const Response invited =
      api.post("/v1/workspaces/" + ws + "/invitations", owner, R"({"email":"joiner@example.com","role":"member"})");
  ASSERT_EQ(invited.status, 201) << invited.body.dump();
  const Response accepted =
      api.post("/v1/invitations/accept", "", json{{"token", invited.body["token"]}, {"user_id", "joiner"}}.dump());
  ASSERT_EQ(accepted.status, 201) << accepted.body.dump();
  const Response pending =
      api.post("/v1/workspaces/" + ws + "/invitations", owner, R"({"email":"later@example.com","role":"admin"})");
  ASSERT_EQ(pending.status, 201) << pending.body.dump();
  TempDir exported;
  api.take_export(ws, owner, exported.path());

  const std::vector<std::string> keys = {api.operator_key(), owner, minted.body.value("key", ""),
                                         accepted.body["key"].value("key", "")};
  const std::vector<std::string> tokens = {invited.body.value("token", ""), pending.body.value("token", "")};
  const std::string rows = all_rows(api.dsn());
  const std::string log = api.log();
  const std::string archive = all_files(exported.path());
  ASSERT_NE(archive.find("secret-owner"), std::string::npos) << "the export holds the team";
  std::vector<std::string> secrets = {"s3cret"};
  for (const std::string& key : keys) {
    ASSERT_EQ(key.size(), 53u) << key;
    secrets.push_back(key);
    secrets.push_back(key.substr(13));  // the secret part after wsf_<prefix>_
    // Stored as its SHA-256 only.
    EXPECT_EQ(api.scalar("SELECT count(*) FROM wsflow.api_keys WHERE key_hash = '" + sha256_hex(key) + "'"), 1);
  }
  for (const std::string& token : tokens) {
    ASSERT_FALSE(token.empty());
    secrets.push_back(token);
    secrets.push_back(token.substr(4));  // after wsi_
  }
  for (const std::string& secret : secrets) {
    EXPECT_EQ(rows.find(secret), std::string::npos) << "a secret is stored in the database: " << secret.substr(0, 8);
    EXPECT_EQ(log.find(secret), std::string::npos) << "a secret reached the log: " << secret.substr(0, 8);
    EXPECT_EQ(archive.find(secret), std::string::npos) << "a secret is in the export: " << secret.substr(0, 8);
  }
}

}  // namespace
}  // namespace wsflow::testing
