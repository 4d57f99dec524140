// HTTP steps end to end: `wsflow serve` running a saga whose steps call a
// fake billing service that fails on demand. Retries and Retry-After,
// non-retryable statuses, hangs and dropped connections, compensation calls
// in reverse order with the mapped outputs, for_each with ${branch}, one
// effect per idempotency key across kill -9, signatures, and the secret kept
// out of everything wsflow writes.

#include <signal.h>

#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <thread>

#include "adapters/outbound/signing.h"
#include "adapters/postgres/pg_store.h"
#include "bench/fake_service.h"
#include "engine/text_file.h"
#include "tests/support/engine_harness.h"
#include "tests/support/live_server.h"
#include "tests/support/serve_fixture.h"
#include "tests/support/test_cluster.h"

namespace wsflow {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::eventually;
using testing::FakeReply;
using testing::FakeRequest;

constexpr const char* kToken = "tok-9f3a1c77e2b84d0c";
constexpr const char* kSigningKey = "sign-5be0c1d2a3";

const char* kBilling = R"(saga: test.billing
version: 1
input: { required: [workspace_id, name] }
defaults:
  retry: { max_attempts: 4, backoff: fixed, initial: 100ms, max: 3s, jitter: none }
  compensate_retry: { max_attempts: 4, backoff: fixed, initial: 100ms, max: 1s, jitter: none }
steps:
  - name: create_customer
    http:
      request:
        method: POST
        url: "${var.billing_url}/customers"
        headers: { Authorization: "Bearer ${secret.billing_token}", X-Customer: "${input.name}" }
        json: { workspace: "${input.workspace_id}", name: "${input.name}" }
      success: [200, 201, 409]
      output: { customer_id: /id }
      timeout: 5s
    compensate_http:
      request: { method: DELETE, url: "${var.billing_url}/customers/${context.customer_id}" }
      success: [200, 204, 404]
  - name: namespaces
    for_each: [dev, prod]
    http:
      request:
        method: PUT
        url: "${var.billing_url}/namespaces/${input.workspace_id}-${branch}"
        json: { customer: "${context.customer_id}", env: "${branch}" }
      output: { ns: /name }
    compensate_http:
      request: { method: DELETE, url: "${var.billing_url}/namespaces/${output.ns}" }
  - name: charge
    http:
      request: { method: POST, url: "${var.billing_url}/charges", json: { customer: "${context.customer_id}" } }
      timeout: 1s
)";

// The billing service: creates are idempotent by key (a repeat returns the
// first answer) and each key's first request is its one effect.
class Billing {
 public:
  explicit Billing(testing::FakeService& service) : service_(service) {
    service.on("POST", "/customers", [this](const FakeRequest& r) {
      record(r);
      // Echoes the bearer token, as careless services do: it must be redacted.
      return FakeReply::json(
          201, {{"id", "cus_" + r.json().value("workspace", "")}, {"seen_auth", r.header("authorization")}});
    });
    service.on("PUT", "/namespaces/", [this](const FakeRequest& r) {
      record(r);
      return FakeReply::json(200, {{"name", r.target.substr(std::string("/namespaces/").size())}});
    });
    service.on("POST", "/charges", [this](const FakeRequest& r) {
      record(r);
      return FakeReply::json(201, {{"charged", true}});
    });
    for (const char* prefix : {"/customers/", "/namespaces/"}) {
      service.on("DELETE", prefix, [](const FakeRequest&) { return FakeReply{204, "", {}, {}, false}; });
    }
  }
  // Idempotency keys that took effect, each with how many requests carried it.
  std::map<std::string, int> effects() const {
    std::lock_guard lock(mutex_);
    return effects_;
  }

 private:
  void record(const FakeRequest& r) {
    std::lock_guard lock(mutex_);
    ++effects_[r.header("idempotency-key")];
  }
  testing::FakeService& service_;
  mutable std::mutex mutex_;
  std::map<std::string, int> effects_;
};

class HttpSteps : public ::testing::Test {
 protected:
  HttpSteps() {
    dir_.write("billing.yaml", kBilling);
    def_ = testing::definition(kBilling);
  }
  ~HttpSteps() override { stop(); }

  void start_serve() {
    setenv("WSFLOW_SECRET_billing_token", kToken, 1);
    setenv("WSFLOW_SECRET_signing_key", kSigningKey, 1);
    port_ = testing::free_port();
    process_ = testing::start_serve(dsn_, dir_.path(), "http-steps", dir_.path() / "serve.log",
                                    {"--poll", "100ms", "--var", "billing_url=" + service_.url(), "--listen",
                                     "127.0.0.1:" + std::to_string(port_)});
    unsetenv("WSFLOW_SECRET_billing_token");
    unsetenv("WSFLOW_SECRET_signing_key");
  }
  void stop() {
    if (!process_) return;
    process_->signal(SIGTERM);
    process_->wait(20s);
    process_.reset();
  }
  std::string start(const std::string& workspace, const std::string& name = "") {
    return client_
        .start_saga(def_, {{"workspace_id", workspace}, {"name", name.empty() ? "Acme " + workspace : name}}, {})
        .saga_id;
  }
  std::string state(const std::string& saga) { return to_string(client_.find_saga(saga).value().state); }
  bool ends(const std::string& saga, const std::string& expected, std::chrono::milliseconds timeout = 30s) {
    const bool ok = eventually([&] { return state(saga) == expected; }, timeout);
    if (!ok) ADD_FAILURE() << "saga " << saga << " is " << state(saga) << "\n" << (process_ ? process_->log() : "");
    return ok;
  }
  // The events of one saga, oldest first: kind, step, branch, detail.
  std::vector<json> events(const std::string& saga) {
    pqxx::connection conn(dsn_);
    pqxx::read_transaction tx(conn);
    std::vector<json> out;
    for (const auto& r : tx.exec_params("SELECT kind, step, branch, detail::text FROM wsflow.saga_events "
                                        "WHERE saga_id = $1::uuid ORDER BY id",
                                        saga)) {
      out.push_back({{"kind", r[0].as<std::string>()},
                     {"step", r[1].is_null() ? "" : r[1].as<std::string>()},
                     {"branch", r[2].is_null() ? "" : r[2].as<std::string>()},
                     {"detail", json::parse(r[3].as<std::string>())}});
    }
    return out;
  }
  std::vector<FakeRequest> requests_of(const std::string& workspace, const std::string& method,
                                       const std::string& prefix) {
    std::vector<FakeRequest> out;
    for (const FakeRequest& r : service_.requests(method, prefix)) {
      if (r.body.find(workspace) != std::string::npos || r.target.find(workspace) != std::string::npos) {
        out.push_back(r);
      }
    }
    return out;
  }

  std::string dsn_ = testing::fresh_database();
  pg::PgStore client_{dsn_, 2};
  testing::TempDir dir_;
  SagaDefinition def_;
  testing::FakeService service_;
  Billing billing_{service_};
  std::unique_ptr<testing::Process> process_;
  int port_ = 0;
};

TEST_F(HttpSteps, CallsTheServiceWithKeysSignaturesAndTemplatesAndMapsOutputs) {
  start_serve();
  const std::string saga = start("ws-happy");
  ASSERT_TRUE(ends(saga, "completed"));

  const auto customers = requests_of("ws-happy", "POST", "/customers");
  ASSERT_EQ(customers.size(), 1u);
  const FakeRequest& create = customers[0];
  EXPECT_EQ(create.header("idempotency-key"), saga + "/create_customer/");
  EXPECT_EQ(create.header("authorization"), std::string("Bearer ") + kToken);
  EXPECT_EQ(create.json(), (json{{"workspace", "ws-happy"}, {"name", "Acme ws-happy"}}));
  EXPECT_EQ(create.header("content-type"), "application/json");
  EXPECT_EQ(create.header("x-wsflow-signature"),
            "sha256=" + hmac_sha256_hex(kSigningKey, create.header("x-wsflow-timestamp") + "." + create.body));

  // for_each: one request per branch, each with its own key and ${branch}.
  const auto namespaces = requests_of("ws-happy", "PUT", "/namespaces/");
  ASSERT_EQ(namespaces.size(), 2u);
  std::set<std::string> targets, keys;
  for (const FakeRequest& r : namespaces) {
    targets.insert(r.target);
    keys.insert(r.header("idempotency-key"));
    EXPECT_EQ(r.json()["customer"], "cus_ws-happy");  // ${context.customer_id}, mapped from the first answer
  }
  EXPECT_EQ(targets, (std::set<std::string>{"/namespaces/ws-happy-dev", "/namespaces/ws-happy-prod"}));
  EXPECT_EQ(keys, (std::set<std::string>{saga + "/namespaces/dev", saga + "/namespaces/prod"}));

  const json context = client_.find_saga(saga)->context;
  EXPECT_EQ(context["customer_id"], "cus_ws-happy");
  // The attempt's event keeps the answer for operators, with the secret redacted.
  for (const json& e : events(saga)) {
    if (e["kind"] == "step_completed" && e["step"] == "create_customer") {
      EXPECT_EQ(e["detail"]["response"]["status"], 201);
      EXPECT_EQ(json::parse(e["detail"]["response"]["body"].get<std::string>())["seen_auth"],
                "Bearer [secret:billing_token]");
      EXPECT_EQ(e["detail"]["request"], "POST " + service_.url() + "/customers");
    }
  }
}

TEST_F(HttpSteps, RetriesHonourRetryAfterThenFailForGoodAndCompensateInReverseWithTheOutputs) {
  start_serve();
  // One 429 asking for 1 s, then 503s until the retry budget (4 attempts) is spent.
  service_.fail_next("POST", "/charges", 1, {429, "{}", {{"Retry-After", "1"}}, {}, false});
  service_.fail_next("POST", "/charges", 3, FakeReply::json(503, {{"error", "down"}}));
  const std::string saga = start("ws-retry");
  ASSERT_TRUE(ends(saga, "compensated"));

  const auto charges = requests_of("ws-retry", "POST", "/charges");
  ASSERT_EQ(charges.size(), 4u);  // max_attempts
  // Retry-After (1 s) replaced the 100 ms backoff; the later retries kept it.
  EXPECT_GE(charges[1].at - charges[0].at, 900ms);
  EXPECT_LT(charges[2].at - charges[1].at, 900ms);
  for (const FakeRequest& r : charges) EXPECT_EQ(r.header("idempotency-key"), saga + "/charge/");
  std::set<std::string> attempts;
  for (const FakeRequest& r : charges) attempts.insert(r.header("x-wsflow-attempt"));
  EXPECT_EQ(attempts, (std::set<std::string>{"1", "2", "3", "4"}));

  // Compensations: the namespaces (later step) first, then the customer, by the
  // outputs the forward calls mapped, each under its own key.
  std::vector<std::string> undone;
  for (const FakeRequest& r : service_.requests()) {
    if (r.method == "DELETE" && r.target.find("ws-retry") != std::string::npos) {
      undone.push_back(r.target);
      EXPECT_EQ(r.header("idempotency-key").substr(r.header("idempotency-key").size() - 11), "/compensate");
    }
  }
  ASSERT_EQ(undone.size(), 3u);
  EXPECT_EQ(std::set<std::string>(undone.begin(), undone.begin() + 2),
            (std::set<std::string>{"/namespaces/ws-retry-dev", "/namespaces/ws-retry-prod"}));
  EXPECT_EQ(undone[2], "/customers/cus_ws-retry");

  // The failure is explained: code, retry_after, and the answer.
  bool saw_retry_after = false;
  for (const json& e : events(saga)) {
    if (e["kind"] == "attempt_failed" && e["detail"]["code"] == "http_429") {
      saw_retry_after = e["detail"]["retry_after_ms"] == 1000;
    }
    if (e["kind"] == "step_failed") {
      EXPECT_EQ(e["detail"]["code"], "http_503");
      EXPECT_EQ(e["detail"]["response"]["body"], R"({"error":"down"})");
    }
  }
  EXPECT_TRUE(saw_retry_after);
}

// A service may answer bytes that are not UTF-8, or a long body whose kept
// first 64 KiB would end inside a character. The attempt's event is JSON,
// whose strings must be UTF-8: the outcome still commits, once.
TEST_F(HttpSteps, AnAnswerThatIsNotUtf8IsKeptReadablyAndItsStepCommitsOnce) {
  start_serve();
  // 0xFF starts no character; the 2-byte é straddles the 64 KiB cut.
  const std::string body = "\xff" + std::string(64 * 1024 - 2, 'a') + "\xC3\xA9 and more";
  service_.fail_next("POST", "/charges", 5, {201, body, {}, {}, false});
  const std::string saga = start("ws-bytes");
  ASSERT_TRUE(ends(saga, "completed"));
  EXPECT_EQ(requests_of("ws-bytes", "POST", "/charges").size(), 1u);
  bool seen = false;
  for (const json& e : events(saga)) {
    if (e["kind"] != "step_completed" || e["step"] != "charge") continue;
    seen = true;
    // U+FFFD for the 0xFF, then every byte before the cut é, and not its first half.
    const std::string kept = e["detail"]["response"]["body"];
    EXPECT_EQ(kept.substr(0, 3), "\xEF\xBF\xBD");
    EXPECT_EQ(kept.size(), 3 + (64 * 1024 - 2));
    EXPECT_EQ(kept.find_first_not_of('a', 3), std::string::npos);
    EXPECT_EQ(e["detail"]["response"]["truncated"], true);
  }
  EXPECT_TRUE(seen);
}

TEST_F(HttpSteps, AClientErrorFailsAtOnceAndHangsAndDroppedConnectionsAreRetried) {
  start_serve();
  service_.fail_next("POST", "/charges", 1, FakeReply::json(400, {{"error", "card declined"}}));
  const std::string declined = start("ws-declined");
  ASSERT_TRUE(ends(declined, "compensated"));
  EXPECT_EQ(requests_of("ws-declined", "POST", "/charges").size(), 1u);  // a 4xx is not retried
  EXPECT_NE(client_.find_saga(declined)->error.find("http_400"), std::string::npos)
      << client_.find_saga(declined)->error;

  // A hang past the 1 s timeout, then a dropped connection, then an answer.
  service_.fail_next("POST", "/charges", 1, {201, "{}", {}, 1h, false});
  service_.fail_next("POST", "/charges", 1, {201, "{}", {}, {}, true});
  const std::string flaky = start("ws-flaky");
  ASSERT_TRUE(ends(flaky, "completed"));
  std::vector<std::string> codes;
  for (const json& e : events(flaky)) {
    if (e["kind"] == "attempt_failed") codes.push_back(e["detail"]["code"]);
  }
  EXPECT_EQ(codes, (std::vector<std::string>{"timeout", "connection_failed"}));

  // A Retry-After of an hour waits no longer than the retry policy's max (3 s).
  service_.fail_next("POST", "/charges", 1, {503, "{}", {{"Retry-After", "3600"}}, {}, false});
  const std::string capped = start("ws-capped");
  ASSERT_TRUE(ends(capped, "completed", 20s));
  const auto capped_charges = requests_of("ws-capped", "POST", "/charges");
  ASSERT_EQ(capped_charges.size(), 2u);
  EXPECT_GE(capped_charges[1].at - capped_charges[0].at, 2900ms);
  EXPECT_LT(capped_charges[1].at - capped_charges[0].at, 10s);

  // A value from the input cannot smuggle a header in: nothing is sent.
  const std::string smuggler = start("ws-smuggle", "Acme\r\nX-Admin: true");
  ASSERT_TRUE(ends(smuggler, "compensated"));
  EXPECT_TRUE(requests_of("ws-smuggle", "POST", "/customers").empty());
  EXPECT_NE(client_.find_saga(smuggler)->error.find("invalid_request"), std::string::npos);

  // 409 is in create_customer's success list: the customer already exists.
  service_.fail_next("POST", "/customers", 1, FakeReply::json(409, {{"id", "cus_existing"}}));
  const std::string existing = start("ws-exists");
  ASSERT_TRUE(ends(existing, "completed"));
  EXPECT_EQ(client_.find_saga(existing)->context["customer_id"], "cus_existing");
}

TEST_F(HttpSteps, KillDashNineMidRequestTakesEffectOncePerKey) {
  start_serve();
  // The first create is answered only after 3 s: serve is killed while it waits.
  service_.fail_next("POST", "/customers", 1, {201, R"({"id":"cus_slow"})", {}, 3s, false});
  const std::string saga = start("ws-crash");
  ASSERT_TRUE(eventually([&] { return !requests_of("ws-crash", "POST", "/customers").empty(); }, 20s));
  process_->signal(SIGKILL);
  process_->wait(10s);
  process_.reset();
  start_serve();
  ASSERT_TRUE(ends(saga, "completed", 60s));

  // The restarted process asked again, with the same key: the service saw one effect.
  const auto creates = requests_of("ws-crash", "POST", "/customers");
  ASSERT_GE(creates.size(), 2u);
  for (const FakeRequest& r : creates) EXPECT_EQ(r.header("idempotency-key"), saga + "/create_customer/");
  for (const auto& [key, requests] : billing_.effects()) {
    if (key.rfind(saga, 0) != 0) continue;
    EXPECT_TRUE(key == saga + "/create_customer/" || requests == 1) << key << " took " << requests << " requests";
  }
  EXPECT_EQ(testing::scalar(dsn_, "SELECT count(*) FROM wsflow.saga_events WHERE saga_id = '" + saga +
                                      "' AND kind = 'step_completed' AND step = 'create_customer'"),
            1);
}

TEST_F(HttpSteps, TheSecretNeverReachesTheDatabaseLogsStatusOrMetrics) {
  start_serve();
  service_.fail_next("POST", "/charges", 4, FakeReply::json(500, {{"echo", std::string("Bearer ") + kToken}}));
  const std::string failed = start("ws-secret");
  ASSERT_TRUE(ends(failed, "compensated"));
  const std::string completed = start("ws-secret-ok");
  ASSERT_TRUE(ends(completed, "completed"));

  // Every text column of every wsflow table.
  pqxx::connection conn(dsn_);
  pqxx::read_transaction tx(conn);
  std::string everything;
  for (const auto& table : tx.exec("SELECT table_name FROM information_schema.tables WHERE table_schema = 'wsflow'")) {
    const std::string name = table[0].as<std::string>();
    for (const auto& row : tx.exec("SELECT t::text FROM wsflow." + tx.quote_name(name) + " t")) {
      everything += row[0].as<std::string>() + "\n";
    }
  }
  EXPECT_NE(everything.find("[secret:billing_token]"), std::string::npos);  // the echo was kept, redacted
  EXPECT_EQ(everything.find(kToken), std::string::npos);
  EXPECT_EQ(everything.find(kSigningKey), std::string::npos);
  const auto status = testing::run_command({WSFLOW_BINARY, "--database-url", dsn_, "status", failed});
  EXPECT_EQ(status.text.find(kToken), std::string::npos);
  EXPECT_NE(status.text.find("http_500"), std::string::npos) << status.text;
  const std::string created =
      testing::run_command({WSFLOW_BINARY, "--database-url", dsn_, "keys", "create", "--name", "ops"}).text;
  const std::string key = created.substr(0, created.find('\n'));
  httplib::Client api("127.0.0.1", port_);
  for (const std::string& path :
       std::vector<std::string>{"/metrics", "/v1/sagas/" + failed + "/events", "/v1/sagas/" + failed}) {
    const auto answer = api.Get(path.c_str(), {{"Authorization", "Bearer " + key}});
    ASSERT_TRUE(answer && answer->status == 200) << path;
    EXPECT_EQ(answer->body.find(kToken), std::string::npos) << path;
  }
  stop();
  const std::string log = read_text_file(dir_.path() / "serve.log").value_or("");
  EXPECT_NE(log.find("http_500"), std::string::npos);
  EXPECT_EQ(log.find(kToken), std::string::npos);
  EXPECT_EQ(log.find(kSigningKey), std::string::npos);
}

TEST_F(HttpSteps, ServeRefusesToStartWithoutTheSecretsItsDefinitionsName) {
  const auto out =
      testing::run_command({WSFLOW_BINARY, "--database-url", dsn_, "--definitions", dir_.path().string(), "validate",
                            dir_.path().string(), "--check-config", "--var", "billing_url=http://x"});
  EXPECT_EQ(out.status, 1);
  EXPECT_NE(out.text.find("billing.yaml:13:43: steps[0].http.request.headers.Authorization: secret 'billing_token' "
                          "is not configured"),
            std::string::npos)
      << out.text;
  auto serve = testing::start_serve(dsn_, dir_.path(), "no-secrets", dir_.path() / "refused.log", {});
  EXPECT_EQ(serve->wait(20s), 2);
  EXPECT_NE(serve->log().find("var 'billing_url' is not configured"), std::string::npos) << serve->log();
}

}  // namespace
}  // namespace wsflow
