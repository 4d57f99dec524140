// A fuzzing client against a running `wsflow serve`: thousands of mutated
// requests to every route of the server's route table (random and wrongly
// typed JSON, huge numbers, deep nesting, invalid UTF-8, garbage ids and
// cursors, SQL-looking strings, out-of-range limits), and raw requests no
// HTTP library would send (bad Content-Length, odd methods, header injection,
// long paths). Every request must get an answer, never a 5xx, always the
// {"error":{…}} shape when refused, with no exception text anywhere; /healthz
// must live on; and requests that are refused write nothing.
//
// Seeded: WSFLOW_FUZZ_SEED replays a run (the seed is printed on failure);
// WSFLOW_FUZZ_REQUESTS sets how many structured requests (default 3000).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "adapters/http/api_server.h"
#include "tests/support/live_server.h"

namespace wsflow::testing {
namespace {

using Rng = std::mt19937_64;

std::uint64_t seed_from_env() {
  const char* seed = std::getenv("WSFLOW_FUZZ_SEED");
  return seed ? std::stoull(seed) : 20261125;
}

int requests_from_env() {
  const char* n = std::getenv("WSFLOW_FUZZ_REQUESTS");
  return n ? std::stoi(n) : 3000;
}

template <class T>
const T& pick(Rng& rng, const std::vector<T>& items) {
  return items[std::uniform_int_distribution<std::size_t>(0, items.size() - 1)(rng)];
}

const std::vector<std::string> kNasty = {
    "",
    "x",
    "' OR 1=1 --",
    "'; DROP TABLE wsflow.sagas; --",
    "%00",
    "..%2F..%2Fetc%2Fpasswd",
    "\xff\xfe\xfd",
    "\xc3\x28",
    std::string(300, 'a'),
    "00000000-0000-0000-0000-000000000000",
    "NaN",
    "-1",
    "99999999999999999999",
    "{}",
    "null",
    "caf\xc3\xa9",
    "a\"b\\c",
    "<script>alert(1)</script>",
};

// A random JSON text: sometimes valid and plausible, often not.
std::string random_body(Rng& rng, const std::vector<std::string>& fields) {
  std::uniform_int_distribution<int> kind(0, 11);
  switch (kind(rng)) {
    case 0:
      return std::string(std::uniform_int_distribution<int>(1, 20000)(rng), '[');  // deep nesting, unclosed
    case 1:
      return std::string(5000, '[') + std::string(5000, ']');  // deep nesting, closed
    case 2:
      return R"({"name":"caf)" + std::string("\xff") + R"("})";  // invalid UTF-8
    case 3:
      return "1e400";
    case 4:
      return "{\"" + pick(rng, fields) + "\":" +
             pick(rng, std::vector<std::string>{"1e400", "-1", "99999999999999999999999", "[]", "{}", "null", "true",
                                                "\"\"", "[[[[[[[[1]]]]]]]]", "\"\\u0000\""}) +
             "}";
    case 5:
      return "{\"" + pick(rng, kNasty) + "\":\"" + pick(rng, kNasty) + "\"}";
    case 6:
      return "not json at all";
    case 7:
      return "";
    default: {
      // Plausible fields with random values of random types.
      nlohmann::json body = nlohmann::json::object();
      const int n = std::uniform_int_distribution<int>(1, 4)(rng);
      for (int i = 0; i < n; ++i) {
        const std::string field = pick(rng, fields);
        switch (std::uniform_int_distribution<int>(0, 5)(rng)) {
          case 0:
            body[field] = pick(rng, kNasty);
            break;
          case 1:
            body[field] = std::uniform_int_distribution<long long>(-1000000, 1000000)(rng);
            break;
          case 2:
            body[field] = nlohmann::json::array({pick(rng, kNasty), 1, nullptr});
            break;
          case 3:
            body[field] = nlohmann::json::object({{"size", -3}, {"user_id", pick(rng, kNasty)}});
            break;
          case 4:
            body[field] = nullptr;
            break;
          default:
            body[field] = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
        }
      }
      return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  }
}

const std::vector<std::string> kFields = {
    "name",   "plan",       "owner",        "email",    "role",       "user_id",     "token",   "scopes",
    "reason", "step",       "branch",       "output",   "context",    "confirm",     "dry_run", "from_step",
    "input",  "definition", "workspace_id", "action",   "filter",     "limit",       "canary",  "on_behalf_of",
    "note",   "from",       "to",           "evidence", "step_input", "description", "region",  "tenancy_model"};

std::string random_query(Rng& rng) {
  const std::vector<std::string> keys = {"limit",         "cursor",      "state",          "stuck",
                                         "reason",        "order",       "definition",     "workspace_id",
                                         "created_after", "stuck_after", "completed_step", "not_completed_step",
                                         "email",         "actor"};
  const std::vector<std::string> values = {"-1",  "0",   "99999999",     "abc", "true", "desc", "2026-13-45T99:99:99Z",
                                           "%FF", "%00", "'%20OR%201=1", "1e9", ""};
  std::string q;
  const int n = std::uniform_int_distribution<int>(0, 3)(rng);
  for (int i = 0; i < n; ++i) q += (q.empty() ? "?" : "&") + pick(rng, keys) + "=" + pick(rng, values);
  return q;
}

// The route's regex with each capture group replaced by `value(segment)`,
// where `segment` is the path segment before it (e.g. "members").
std::string fill_captures(const std::string& pattern, const std::function<std::string(const std::string&)>& value) {
  std::string path;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '(') {
      path += pattern[i];
      continue;
    }
    for (int depth = 0; i < pattern.size(); ++i) {
      if (pattern[i] == '(') ++depth;
      if (pattern[i] == ')' && --depth == 0) break;
    }
    const std::string before = path.substr(0, path.size() - 1);  // without the '/' that ends `path`
    path += value(before.substr(before.rfind('/') + 1));
  }
  return path;
}

// The route's regex with each capture replaced by a real id or garbage.
std::string concrete_path(Rng& rng, const std::string& pattern, const std::vector<std::string>& ids) {
  return fill_captures(pattern, [&](const std::string&) {
    return std::uniform_int_distribution<int>(0, 1)(rng) == 0 ? pick(rng, ids)
                                                              : httplib::detail::encode_query_param(pick(rng, kNasty));
  });
}

// One raw request over a fresh TCP connection; the status code of the
// answer, or 0 when the server closed without answering.
int raw_request(int port, const std::string& bytes, std::string* answer = nullptr) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{15, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  [[maybe_unused]] const auto sent = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  shutdown(fd, SHUT_WR);
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = recv(fd, buffer, sizeof buffer, 0)) > 0;) response.append(buffer, static_cast<std::size_t>(n));
  close(fd);
  if (answer) *answer = response;
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return 0;
  return std::stoi(response.substr(9, 3));
}

long long rows_everywhere(Server& api) {
  return api.scalar(
      "SELECT (SELECT count(*) FROM wsflow.workspaces) + (SELECT count(*) FROM wsflow.sagas) + "
      "(SELECT count(*) FROM wsflow.members) + (SELECT count(*) FROM wsflow.invitations) + "
      "(SELECT count(*) FROM wsflow.api_keys) + (SELECT count(*) FROM wsflow.audit_log) + "
      "(SELECT count(*) FROM wsflow.saga_events) + (SELECT count(*) FROM wsflow.signals) + "
      "(SELECT count(*) FROM wsflow.bulk_actions) + (SELECT count(*) FROM wsflow.exports)");
}

class Fuzz : public SharedServerSuite<ShortWindow> {
 protected:
  void SetUp() override {
    seed_ = seed_from_env();
    rng_.seed(seed_);
    RecordProperty("seed", std::to_string(seed_));
  }
  std::uint64_t seed_ = 0;
  Rng rng_;
};

TEST_F(Fuzz, StructuredRequestsToEveryRouteNeverGetA5xxOrInternalText) {
  const std::string ws = api().create_workspace("Fuzz Target");
  const std::string saga = api().get("/v1/sagas?workspace_id=" + ws, ops()).body["data"][0]["id"];
  const std::vector<std::string> ids = {ws, saga, "owner-1", "invitations.expire", "console.js"};
  const auto routes = http::route_table();
  httplib::Client client = api().raw_client();
  client.set_read_timeout(30, 0);
  std::map<int, int> statuses;
  const int n = requests_from_env();
  for (int i = 0; i < n; ++i) {
    const auto& [method, pattern] = pick(rng_, routes);
    const std::string path = concrete_path(rng_, pattern, ids) + random_query(rng_);
    const std::string body = random_body(rng_, kFields);
    httplib::Headers headers = {{"Authorization", "Bearer " + ops()}};
    if (std::uniform_int_distribution<int>(0, 9)(rng_) == 0) headers.emplace("Idempotency-Key", pick(rng_, kNasty));
    httplib::Result r = method == "GET"     ? client.Get(path.c_str(), headers)
                        : method == "POST"  ? client.Post(path.c_str(), headers, body, "application/json")
                        : method == "PATCH" ? client.Patch(path.c_str(), headers, body, "application/json")
                                            : client.Delete(path.c_str(), headers, body, "application/json");
    const std::string what = method + " " + path + " body " + body.substr(0, 120) + " (seed " + std::to_string(seed_) +
                             ", request " + std::to_string(i) + ")";
    ASSERT_TRUE(r) << "no answer: " << what;
    ++statuses[r->status];
    ASSERT_LT(r->status, 500) << what << "\n" << r->body << "\n" << api().log();
    ASSERT_FALSE(r->has_header("EXCEPTION_WHAT")) << what;
    ASSERT_FALSE(carries_internal_text(r->body)) << what << "\n" << r->body;
    if (r->status >= 400) {
      const nlohmann::json error = nlohmann::json::parse(r->body, nullptr, false);
      ASSERT_TRUE(error.is_object() && error.contains("error") && error["error"].contains("code") &&
                  error["error"].contains("message"))
          << what << "\n"
          << r->body;
    }
  }
  std::string summary;
  for (const auto& [status, count] : statuses) summary += std::to_string(status) + ":" + std::to_string(count) + " ";
  std::cout << n << " fuzzed requests (seed " << seed_ << "): " << summary << "\n";
  EXPECT_EQ(api().get("/healthz", "").status, 200);
}

TEST_F(Fuzz, MalformedBodiesAreRefusedAndWriteNothing) {
  const std::string ws = api().create_workspace("Untouched");
  const long long before = rows_everywhere(api());
  httplib::Client client = api().raw_client();
  const auto routes = http::route_table();
  const std::vector<std::string> malformed = {
      "{",    "not json", "[1,2]", "\"text\"", "{\"name\":\"\xff\"}", std::string(3000, '['), "{\"unknown_field\":1}",
      "1e400"};
  int sent = 0;
  for (const auto& [method, pattern] : routes) {
    if (method != "POST" && method != "PATCH") continue;
    // Signals take any object as their payload: only the non-objects are malformed there.
    const bool any_object = pattern.find("/signals/") != std::string::npos;
    for (const std::string& body : malformed) {
      if (any_object && body == "{\"unknown_field\":1}") continue;
      const std::string path = concrete_path(rng_, pattern, {ws, ws, ws});
      auto r = method == "POST"
                   ? client.Post(path.c_str(), {{"Authorization", "Bearer " + ops()}}, body, "application/json")
                   : client.Patch(path.c_str(), {{"Authorization", "Bearer " + ops()}}, body, "application/json");
      ASSERT_TRUE(r) << method << " " << path;
      EXPECT_GE(r->status, 400) << method << " " << path << " " << body.substr(0, 40) << " -> " << r->body;
      EXPECT_LT(r->status, 500) << method << " " << path << " -> " << r->body;
      ++sent;
    }
  }
  EXPECT_GT(sent, 100);
  EXPECT_EQ(rows_everywhere(api()), before) << "a refused request wrote something";
  if (HasFailure()) std::cout << api().log();
}

TEST_F(Fuzz, RawRequestsNoLibraryWouldSendGetAnAnswer) {
  const int port = std::stoi(api().url().substr(api().url().rfind(':') + 1));
  const std::string auth = "Authorization: Bearer " + ops() + "\r\n";
  const std::vector<std::string> requests = {
      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "POST /v1/workspaces HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: -5\r\nConnection: close\r\n\r\n{}",
      "POST /v1/workspaces HTTP/1.1\r\nHost: x\r\n" + auth +
          "Content-Length: 99999999999\r\nConnection: close\r\n\r\n{}",
      "POST /v1/workspaces HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 10\r\nConnection: close\r\n\r\n{}",
      "POST /v1/workspaces HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: abc\r\nConnection: close\r\n\r\n{}",
      "FROB /v1/workspaces HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /v1/workspaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\nX-Injected: a\rSet-Cookie: b\r\n"
      "Connection: close\r\n\r\n",
      "GET /v1/workspaces HTTP/1.1\r\nHost: x\r\n" + std::string(200, 'X') + ": " + std::string(9000, 'y') +
          "\r\nConnection: close\r\n\r\n",
      "GET /v1/workspaces?limit=%ZZ HTTP/1.1\r\nHost: x\r\n" + auth + "Connection: close\r\n\r\n",
      "GARBAGE\r\n\r\n",
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  // a TLS ClientHello on the plain port
      "POST /v1/sagas HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n",
  };
  for (const std::string& request : requests) {
    std::string answer;
    const int status = raw_request(port, request, &answer);
    // A garbled request line may simply be closed on, but never a 5xx, never internal text.
    EXPECT_TRUE(status == 0 || (status >= 200 && status < 500)) << request.substr(0, 80) << " -> " << answer;
    EXPECT_FALSE(carries_internal_text(answer)) << answer;
    EXPECT_EQ(answer.find("EXCEPTION_WHAT"), std::string::npos) << answer;
  }
  EXPECT_EQ(api().get("/healthz", "").status, 200);
}

// Every keyed route × every kind of caller that must get nothing: no key, an
// unknown key, a revoked key (401 each), another workspace's owner, and a
// read-only member of the workspace itself (never a 2xx for a change). Real
// ids of workspace A fill the paths, so a refusal is about the caller, not a
// missing object; and nothing any of them sends writes a row.
TEST_F(Fuzz, NoCallerGetsMoreThanItHolds) {
  const std::string a = api().create_workspace("Victim", "victim-owner");
  const std::string b = api().create_workspace("Other", "other-owner");
  const std::string saga = api().get("/v1/sagas?workspace_id=" + a, ops()).body["data"][0]["id"];
  const Response invited =
      api().post("/v1/workspaces/" + a + "/invitations", ops(), R"({"email":"guest@example.com","role":"member"})");
  ASSERT_EQ(invited.status, 201) << invited.body.dump();
  const std::string invitation = invited.body.value("id", "");
  api().add_member(a, "reader", "member");
  const std::string read_only = api().member_key(a, "reader", nlohmann::json::array({"read"}));
  const std::string revoked = api().member_key(a, "victim-owner", nlohmann::json::array({"*"}));
  const Response keys = api().get("/v1/workspaces/" + a + "/keys", ops());
  std::string revoked_id, any_key_id;
  for (const auto& k : keys.body["data"]) {
    any_key_id = k["id"];
    if (revoked.rfind(k["prefix"].get<std::string>(), 0) == 0) revoked_id = k["id"];
  }
  ASSERT_EQ(api().request("DELETE", "/v1/workspaces/" + a + "/keys/" + revoked_id, ops()).status, 200);
  const std::map<std::string, std::string> id_after = {{"workspaces", a},
                                                       {"members", "victim-owner"},
                                                       {"invitations", invitation},
                                                       {"keys", any_key_id},
                                                       {"exports", "6b0c8d0e-1f6a-4b8e-9d1a-2c3e4f5a6b7c"},
                                                       {"sagas", saga},
                                                       {"schedules", "invitations.expire"},
                                                       {"signals", "go"},
                                                       {"bulk-actions", "6b0c8d0e-1f6a-4b8e-9d1a-2c3e4f5a6b7c"}};
  // Each capture gets the id of what the segment before it names.
  auto concrete = [&](const std::string& pattern) {
    return fill_captures(pattern, [&](const std::string& segment) { return id_after.at(segment); });
  };
  const std::map<std::string, std::string> callers = {{"none", ""},
                                                      {"unknown", "wsf_0123abcd_" + std::string(40, 'e')},
                                                      {"revoked", revoked},
                                                      {"other workspace", api().owner_key(b)},
                                                      {"read-only member", read_only}};
  // A body that would succeed for a caller allowed to do it, so only authorisation can refuse it
  // (and the dangerous ones ask for more than the caller holds: admin roles, every scope, ownership).
  auto body_for = [&](const std::string& method, const std::string& pattern) -> std::string {
    auto ends = [&](const std::string& suffix) {
      return pattern.size() >= suffix.size() &&
             pattern.compare(pattern.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (method == "GET" || method == "DELETE") return "";
    if (pattern == "/v1/workspaces") {
      return R"({"name":"Intruder","owner":{"user_id":"intruder","email":"i@example.com"}})";
    }
    if (method == "PATCH" && ends("/members/([^/]+)")) return R"({"role":"admin"})";
    if (method == "PATCH") return R"({"name":"Pwned"})";
    if (ends("/plan")) return R"({"plan":"enterprise"})";
    if (ends("/transfer-ownership")) return R"({"user_id":"reader"})";
    if (ends("/members")) return R"({"user_id":"intruder","email":"i@example.com","role":"admin"})";
    if (ends("/invitations")) return R"({"email":"i@example.com","role":"admin"})";
    if (ends("/keys")) return R"({"name":"mine","scopes":["*"]})";
    if (ends("/bulk")) return R"({"action":"cancel","filter":{"workspace_id":")" + a + R"("}})";
    if (pattern == "/v1/sagas") return R"({"definition":"invitations.expire"})";
    if (ends("/skip") || ends("/rerun")) return R"({"step":"notify"})";
    if (ends("/resolve")) return R"({"reason":"because"})";
    if (ends("/backfill")) return R"({"from":"2026-11-24T00:00:00Z","to":"2026-11-24T00:05:00Z"})";
    return "{}";
  };
  const long long before = rows_everywhere(api());
  int checked = 0;
  for (const auto& [method, pattern] : http::route_table()) {
    if (pattern.rfind("/v1/", 0) != 0 || pattern.find("/v1/invitations/") == 0) continue;  // public ones
    const std::string path = concrete(pattern);
    for (const auto& [who, key] : callers) {
      const Response r = api().request(method, path, key, body_for(method, pattern));
      const std::string what =
          who + ": " + method + " " + path + " -> " + std::to_string(r.status) + " " + r.body.dump().substr(0, 200);
      ++checked;
      ASSERT_GT(r.status, 0) << what;
      EXPECT_LT(r.status, 500) << what;
      if (who == "none" || who == "unknown" || who == "revoked") {
        EXPECT_EQ(r.status, 401) << what;
      } else if (who == "other workspace" && method == "GET" && path == "/v1/workspaces") {
        for (const auto& w : r.body["data"]) EXPECT_NE(w["id"], a) << what;
      } else if (who == "other workspace" || method != "GET") {
        EXPECT_TRUE(r.status == 403 || r.status == 404) << what;
      }
    }
  }
  EXPECT_GT(checked, 200);
  EXPECT_EQ(rows_everywhere(api()), before) << "a refused caller wrote something";
}

}  // namespace
}  // namespace wsflow::testing
