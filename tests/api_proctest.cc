// End-to-end: the wsflow binary serving the real definitions/ on the test
// cluster, spoken to over HTTP. One server per suite (and one with injected
// provisioning faults); each test creates its own workspaces.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <pqxx/pqxx>
#include <regex>
#include <sstream>
#include <thread>

#include "adapters/outbound/signing.h"
#include "adapters/postgres/pg_store.h"
#include "adapters/provisioner/environment_provisioner.h"
#include "adapters/webhook/webhook_notifier.h"
#include "engine/sha256.h"
#include "engine/text_file.h"
#include "tests/support/engine_harness.h"
#include "tests/support/live_server.h"
#include "tests/support/prometheus_text.h"
#include "tests/support/serve_fixture.h"
#include "tests/support/test_cluster.h"

namespace wsflow {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using testing::HookReceiver;
using testing::Response;
using testing::Server;

class Api : public testing::SharedServerSuite<testing::ShortWindow> {};

TEST_F(Api, CreateProvisionsThreeEnvironmentSchemasThenActivates) {
  const std::string id = api().create_workspace("Acme Corp");
  const Response ws = api().get("/v1/workspaces/" + id, ops());
  EXPECT_EQ(ws.body["status"], "active");
  EXPECT_EQ(ws.body["slug"], "acme-corp");
  EXPECT_EQ(api().get("/v1/workspaces/acme-corp", ops()).body["id"], id);  // by slug too

  const Response envs = api().get("/v1/workspaces/" + id + "/environments", ops());
  ASSERT_EQ(envs.body["data"].size(), 3u);
  std::vector<std::string> names;
  for (const auto& e : envs.body["data"]) {
    names.push_back(e["name"]);
    EXPECT_EQ(e["status"], "active");
  }
  EXPECT_EQ(names, (std::vector<std::string>{"dev", "staging", "prod"}));
  EXPECT_EQ(api().schemas_of(id), 3);  // real, isolated schemas

  const Response saga = api().get("/v1/sagas/" + ws.body["active_saga_id"].dump(), ops());
  EXPECT_EQ(saga.status, 404);  // the lock is released once the saga ends
  const Response audit = api().get("/v1/workspaces/" + id + "/audit", ops());
  std::string actions;
  for (const auto& a : audit.body["data"]) actions += a["action"].get<std::string>() + " ";
  EXPECT_NE(actions.find("workspace.create_requested"), std::string::npos) << actions;
  EXPECT_NE(actions.find("environment.provisioned"), std::string::npos) << actions;
  EXPECT_NE(actions.find("workspace.create_completed"), std::string::npos) << actions;

  // The webhook got the event, signed, with the step's idempotency key.
  const auto deliveries = hooks_->deliveries_for(id);
  ASSERT_FALSE(deliveries.empty());
  EXPECT_EQ(deliveries[0].event, "workspace.created");
  EXPECT_EQ(deliveries[0].signature,
            "sha256=" + hmac_sha256_hex("s3cret", deliveries[0].timestamp + "." + deliveries[0].body));
  EXPECT_NE(deliveries[0].idempotency_key.find("/notify/"), std::string::npos);
}

TEST_F(Api, CreateAnswersWithTheSagaWhoseStatusIsReadable) {
  const Response r =
      api().post("/v1/workspaces", ops(), R"({"name":"Saga Watch","owner":{"user_id":"o","email":"o@example.com"}})");
  ASSERT_EQ(r.status, 202);
  EXPECT_EQ(r.body["status"], "provisioning");
  api().wait_status(r.body["workspace_id"], {"active"});
  const Response saga = api().get("/v1/sagas/" + r.body["saga_id"].get<std::string>(), ops());
  ASSERT_EQ(saga.status, 200);
  EXPECT_EQ(saga.body["state"], "completed");
  EXPECT_EQ(saga.body["definition"], "workspace.create");
  EXPECT_EQ(saga.body["steps"].size(), 6u);  // reserve, owner, 3 environments, notify
}

TEST_F(Api, FreezeBlocksWritesButServesReadsAndExport) {
  const std::string id = api().create_workspace("Frosty");
  const std::string owner = api().member_key(id, "owner-1");
  ASSERT_EQ(api().post("/v1/workspaces/" + id + "/freeze", owner).status, 202);
  api().wait_status(id, {"frozen"});

  const Response write = api().post("/v1/workspaces/" + id + "/invitations", owner, R"({"email":"u9@example.com"})");
  EXPECT_EQ(write.status, 409);
  EXPECT_EQ(write.body["error"]["code"], "workspace_frozen");
  EXPECT_EQ(api().post("/v1/workspaces/" + id + "/keys", owner, R"({"name":"ci"})").body["error"]["code"],
            "workspace_frozen");
  EXPECT_EQ(api().get("/v1/workspaces/" + id, owner).status, 200);
  EXPECT_EQ(api().get("/v1/workspaces/" + id + "/members", owner).status, 200);

  const Response again = api().post("/v1/workspaces/" + id + "/freeze", owner);
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.body["error"]["code"], "invalid_transition");
  const std::string message = again.body["error"]["message"];
  EXPECT_NE(message.find("'frozen'"), std::string::npos) << message;
  EXPECT_NE(message.find("allowed: unfreeze, export, offboard, delete, change_plan"), std::string::npos) << message;

  const Response exported = api().post("/v1/workspaces/" + id + "/export", owner);
  EXPECT_EQ(exported.status, 202) << exported.body.dump();

  ASSERT_EQ(api().post("/v1/workspaces/" + id + "/unfreeze", owner).status, 202);
  api().wait_status(id, {"active"});
  EXPECT_EQ(api().post("/v1/workspaces/" + id + "/invitations", owner, R"({"email":"u9@example.com"})").status, 201);
}

TEST_F(Api, OneLifecycleOperationAtATime) {
  const std::string id = api().create_workspace("Busy");
  const Response first = api().post("/v1/workspaces/" + id + "/offboard", ops());
  ASSERT_EQ(first.status, 202);
  const Response second = api().post("/v1/workspaces/" + id + "/freeze", ops());
  EXPECT_EQ(second.status, 409);
  const std::string code = second.body["error"]["code"];
  EXPECT_TRUE(code == "operation_in_progress" || code == "invalid_transition") << code;
}

TEST_F(Api, ExportIsATarGzToDownloadWithChecksumsAndEachEnvironmentsDump) {
  const std::string id = api().create_workspace("Exported");
  const std::string owner = api().owner_key(id);
  const EnvironmentNames dev = environment_names(id, "dev");
  ASSERT_EQ(testing::as_role(api().dsn(), dev.role,
                             "CREATE TABLE " + dev.schema +
                                 ".orders (id int PRIMARY KEY, total numeric); "
                                 "INSERT INTO " +
                                 dev.schema + ".orders SELECT g, g * 1.5 FROM generate_series(1, 250) g"),
            "ok");
  testing::TempDir dir;
  const json record = api().take_export(id, owner, dir.path());
  EXPECT_FALSE(record.contains("path"));  // no server path for the client
  const std::string archive = read_text_file(dir.path() / "export.tar.gz").value();
  EXPECT_EQ(record["sha256"], sha256_hex(archive));
  EXPECT_EQ(record["bytes"], archive.size());
  EXPECT_FALSE(record["expires_at"].is_null());  // deleted after its retention

  const json manifest = json::parse(read_text_file(dir.path() / "manifest.json").value());
  EXPECT_EQ(manifest, record["manifest"]);
  for (const char* file :
       {"workspace.json", "members.json", "environments.json", "audit.json", "api_keys.json", "invitations.json",
        "environments/dev.sql", "environments/staging.sql", "environments/prod.sql"}) {
    ASSERT_TRUE(manifest["files"].contains(file)) << file;
    EXPECT_EQ(manifest["files"][file]["sha256"], sha256_hex(read_text_file(dir.path() / file).value())) << file;
  }
  const std::string keys = read_text_file(dir.path() / "api_keys.json").value();
  EXPECT_NE(keys.find("wsf_"), std::string::npos);      // the prefix is there
  EXPECT_EQ(keys.find("key_hash"), std::string::npos);  // secrets and hashes are not
  EXPECT_EQ(keys.find(owner), std::string::npos);

  // The dump restores into a scratch database with the same data.
  const std::string scratch = testing::fresh_unmigrated_database();
  std::string psql_output;
  ASSERT_EQ(testing::run_sql_file(scratch, (dir.path() / "environments" / "dev.sql").string(), psql_output), 0)
      << psql_output;
  EXPECT_EQ(testing::scalar(scratch, "SELECT count(*) FROM " + dev.schema + ".orders"), 250);
  EXPECT_EQ(testing::scalar(scratch, "SELECT (sum(total) * 10)::bigint FROM " + dev.schema + ".orders"),
            api().scalar("SELECT (sum(total) * 10)::bigint FROM " + dev.schema + ".orders"));

  // Download: Content-Length, ETag (the SHA-256), If-None-Match, Range.
  const std::string download = "/v1/workspaces/" + id + "/exports/" + record["id"].get<std::string>() + "/download";
  httplib::Client client = api().raw_client();
  const httplib::Headers auth = {{"Authorization", "Bearer " + owner}};
  const auto whole = client.Get(download.c_str(), auth);
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->get_header_value("ETag"), "\"" + record["sha256"].get<std::string>() + "\"");
  EXPECT_EQ(whole->get_header_value("Content-Length"), std::to_string(archive.size()));
  EXPECT_EQ(whole->get_header_value("Content-Type"), "application/gzip");
  httplib::Headers ranged = auth;
  ranged.emplace("Range", "bytes=100-199");
  const auto part = client.Get(download.c_str(), ranged);
  ASSERT_TRUE(part);
  EXPECT_EQ(part->status, 206);
  EXPECT_EQ(part->body, archive.substr(100, 100));
  httplib::Headers cached = auth;
  cached.emplace("If-None-Match", whole->get_header_value("ETag"));
  EXPECT_EQ(client.Get(download.c_str(), cached)->status, 304);
  EXPECT_EQ(client.Get(download.c_str())->status, 401);
  const std::string other = api().create_workspace("Not Yours", "stranger");
  EXPECT_EQ(client.Get(download.c_str(), {{"Authorization", "Bearer " + api().owner_key(other)}})->status, 404);
}

TEST_F(Api, OffboardRevokesKeysThenHardDeletesAfterTheWindow) {
  const std::string id = api().create_workspace("Leaving");
  const std::string owner = api().member_key(id, "owner-1");
  ASSERT_EQ(api().post("/v1/workspaces/" + id + "/offboard", owner).status, 202);
  api().wait_status(id, {"offboarded", "<gone>"});
  EXPECT_EQ(api().get("/v1/workspaces/" + id, owner).status, 401);  // the owner's key was revoked
  // Still exportable during the window (when it has not already passed).
  const Response exported = api().post("/v1/workspaces/" + id + "/export", ops());
  EXPECT_TRUE(exported.status == 202 || exported.status == 404) << exported.body.dump();

  EXPECT_EQ(api().wait_status(id, {"<gone>"}), "<gone>");
  EXPECT_EQ(api().schemas_of(id), 0);
  EXPECT_EQ(api().scalar("SELECT count(*) FROM wsflow.audit_log WHERE workspace_id = '" + id + "'"), 0);
  EXPECT_EQ(api().scalar("SELECT count(*) FROM wsflow.members WHERE workspace_id = '" + id + "'"), 0);
}

TEST_F(Api, DeleteIsForTheOwnerOnly) {
  const std::string id = api().create_workspace("Doomed");
  api().add_member(id, "admin-1", "admin");
  const std::string admin = api().member_key(id, "admin-1");
  const std::string owner = api().member_key(id, "owner-1");
  EXPECT_EQ(api().request("DELETE", "/v1/workspaces/" + id, ops()).status, 403);
  EXPECT_EQ(api().request("DELETE", "/v1/workspaces/" + id, admin).status, 403);
  ASSERT_EQ(api().request("DELETE", "/v1/workspaces/" + id, owner).status, 202);
  EXPECT_EQ(api().wait_status(id, {"deleted"}), "deleted");
  EXPECT_EQ(api().schemas_of(id), 0);
  EXPECT_EQ(api().scalar("SELECT count(*) FROM wsflow.members WHERE workspace_id = '" + id + "'"), 0);
}

TEST_F(Api, IdempotencyKeyReturnsTheFirstResponseAndStartsNothing) {
  const std::string body = R"({"name":"Once Only","owner":{"user_id":"o","email":"o@example.com"}})";
  const Response first = api().post("/v1/workspaces", ops(), body, "create-once-only");
  const Response again = api().post("/v1/workspaces", ops(), body, "create-once-only");
  ASSERT_EQ(first.status, 202);
  EXPECT_EQ(again.status, 202);
  json expected = first.body;
  expected["owner_key"]["key"] = nullptr;  // the owner's key is shown once, never replayed
  EXPECT_EQ(again.body, expected);
  EXPECT_EQ(again.headers.count("Idempotent-Replayed"), 1u);
  EXPECT_EQ(api().scalar("SELECT count(*) FROM wsflow.workspaces WHERE name = 'Once Only'"), 1);
  const Response different =
      api().post("/v1/workspaces", ops(), R"({"name":"Other","owner":{"user_id":"o","email":"o@example.com"}})",
                 "create-once-only");
  EXPECT_EQ(different.status, 422);
  EXPECT_EQ(different.body["error"]["field"], "Idempotency-Key");
}

// The key is claimed in the request's own transaction: a refused request
// leaves it unused, so the client's corrected retry with the same key runs.
TEST_F(Api, ARefusedRequestLeavesItsIdempotencyKeyUnused) {
  const Response refused = api().post("/v1/workspaces", ops(), R"({"name":"Retried"})", "create-retried");
  ASSERT_EQ(refused.status, 400) << refused.body.dump();
  const Response retried =
      api().post("/v1/workspaces", ops(), R"({"name":"Retried","owner":{"user_id":"r","email":"r@example.com"}})",
                 "create-retried");
  EXPECT_EQ(retried.status, 202) << retried.body.dump();
  EXPECT_EQ(retried.headers.count("Idempotent-Replayed"), 0u);
  // Its saga's webhook deliveries end before the next test counts its own.
  EXPECT_EQ(api().wait_status(retried.body.value("workspace_id", ""), {"active", "failed"}), "active");
  EXPECT_EQ(api().scalar("SELECT count(*) FROM wsflow.http_idempotency WHERE key = 'create-retried' AND status = 202"),
            1);
}

TEST_F(Api, EveryAuthFailureMode) {
  const std::string a = api().create_workspace("Tenant A", "alice");
  const std::string b = api().create_workspace("Tenant B", "bob");
  api().add_member(a, "mallory", "member");
  const std::string alice = api().member_key(a, "alice");
  const std::string reader = api().member_key(a, "alice", json::array({"read"}));
  const std::string member = api().member_key(a, "mallory");

  EXPECT_EQ(api().get("/v1/workspaces", "").status, 401);
  EXPECT_EQ(api().get("/v1/workspaces", "not-a-key").body["error"]["code"], "unauthorized");
  EXPECT_EQ(api().get("/v1/workspaces", "wsf_00000000_0000000000000000000000000000000000000000").status, 401);

  // A key of workspace A never sees workspace B.
  EXPECT_EQ(api().get("/v1/workspaces/" + b, alice).status, 404);
  EXPECT_EQ(api().get("/v1/workspaces/tenant-b", alice).status, 404);
  EXPECT_EQ(api().post("/v1/workspaces/" + b + "/freeze", alice).status, 404);
  const Response listed = api().get("/v1/workspaces", alice);
  ASSERT_EQ(listed.body["data"].size(), 1u);
  EXPECT_EQ(listed.body["data"][0]["id"], a);

  EXPECT_EQ(api().post("/v1/workspaces/" + a + "/freeze", member).status, 403);  // role
  EXPECT_EQ(api().post("/v1/workspaces/" + a + "/freeze", reader).status, 403);  // scope
  EXPECT_EQ(api().get("/v1/workspaces/" + a, reader).status, 200);
  EXPECT_EQ(api().post("/v1/workspaces", alice, R"({"name":"x","owner":{"user_id":"a","email":"a@b.co"}})").status,
            403);  // operators create workspaces
  EXPECT_EQ(api().post("/v1/workspaces/" + a + "/keys", member, R"({"user_id":"mallory"})").status, 403);

  const std::string saga_of_b = api().post("/v1/workspaces/" + b + "/export", ops()).body["saga_id"];
  EXPECT_EQ(api().get("/v1/sagas/" + saga_of_b, alice).status, 404);
  EXPECT_EQ(api().get("/v1/sagas/" + saga_of_b, ops()).status, 200);
  EXPECT_EQ(api().post("/v1/sagas/" + saga_of_b + "/signals/go", alice).status, 404);
  const std::string saga_of_a = api().post("/v1/workspaces/" + a + "/export", ops()).body["saga_id"];
  EXPECT_EQ(api().get("/v1/sagas/" + saga_of_a, alice).status, 200);
  EXPECT_EQ(api().post("/v1/sagas/" + saga_of_a + "/signals/go", alice).status, 403);  // operators only
}

TEST_F(Api, MalformedInputIsRefusedNamingTheFieldAndWritesNothing) {
  const long long before = api().scalar("SELECT count(*) FROM wsflow.workspaces");
  auto error_of = [&](const std::string& body) { return api().post("/v1/workspaces", ops(), body); };

  Response r = error_of("{not json");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["code"], "invalid_json");
  r = error_of("[1,2]");
  EXPECT_EQ(r.body["error"]["code"], "invalid_json");
  r = error_of(R"({"name":"x","owner":{"user_id":"a","email":"a@b.co"},"color":"red"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["field"], "color");
  r = error_of(R"({"name":42,"owner":{"user_id":"a","email":"a@b.co"}})");
  EXPECT_EQ(r.body["error"]["field"], "name");
  r = error_of(R"({"name":"x","owner":{"user_id":"a"}})");
  EXPECT_EQ(r.body["error"]["field"], "owner.email");
  r = error_of(R"({"name":"x","owner":{"user_id":"a","email":"nope"}})");
  EXPECT_EQ(r.body["error"]["field"], "owner.email");
  r = error_of(R"({"name":"x","plan":"platinum","owner":{"user_id":"a","email":"a@b.co"}})");
  EXPECT_EQ(r.body["error"]["field"], "plan");
  r = error_of(R"({"owner":{"user_id":"a","email":"a@b.co"}})");
  EXPECT_EQ(r.body["error"]["code"], "missing_field");
  r = error_of(std::string(70 * 1024, 'x'));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.body["error"]["code"], "payload_too_large");
  EXPECT_EQ(api().get("/v1/workspaces?limit=0", ops()).body["error"]["field"], "limit");
  EXPECT_EQ(api().get("/v1/workspaces?cursor=zzz", ops()).body["error"]["field"], "cursor");
  EXPECT_EQ(api().get("/v1/nothing", ops()).status, 404);
  EXPECT_EQ(api().scalar("SELECT count(*) FROM wsflow.workspaces"), before);
}

TEST_F(Api, ListIsCursorPaginated) {
  for (const char* name : {"Page One", "Page Two", "Page Three"}) api().create_workspace(name);
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    const Response page = api().get("/v1/workspaces?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor), ops());
    ASSERT_EQ(page.status, 200);
    EXPECT_LE(page.body["data"].size(), 2u);
    for (const auto& w : page.body["data"]) EXPECT_TRUE(seen.insert(w["id"]).second) << "listed twice";
    cursor = page.body["next_cursor"].is_null() ? "" : page.body["next_cursor"].get<std::string>();
    ++pages;
  } while (!cursor.empty() && pages < 100);
  EXPECT_EQ(static_cast<long long>(seen.size()), api().scalar("SELECT count(*) FROM wsflow.workspaces"));
  EXPECT_GE(pages, 2);
}

TEST_F(Api, WebhookDeliveryIsRetriedWithTheSameIdempotencyKey) {
  hooks_->fail_next(2, "workspace.created");
  const std::string id = api().create_workspace("Flaky Hook");
  EXPECT_EQ(api().get("/v1/workspaces/" + id, ops()).body["status"], "active");
  const auto deliveries = hooks_->deliveries_for(id);
  ASSERT_GE(deliveries.size(), 3u);
  EXPECT_EQ(deliveries[0].idempotency_key, deliveries[2].idempotency_key);
}

TEST_F(Api, AuditLogIsAppendOnly) {
  const std::string id = api().create_workspace("Audited");
  EXPECT_GT(api().scalar("SELECT count(*) FROM wsflow.audit_log WHERE workspace_id = '" + id + "'"), 0);
  for (const std::string& sql :
       {"UPDATE wsflow.audit_log SET action = 'forged' WHERE workspace_id = '" + id + "' RETURNING 1",
        "DELETE FROM wsflow.audit_log WHERE workspace_id = '" + id + "' RETURNING 1"}) {
    try {
      api().scalar(sql);
      ADD_FAILURE() << "audit rows changed: " << sql;
    } catch (const pqxx::sql_error& e) {
      EXPECT_NE(std::string(e.what()).find("append-only"), std::string::npos) << e.what();
    }
  }
}

TEST_F(Api, OperatorsFindStuckSagasAndRepairThem) {
  // A saga whose compensation needs an outside fix, run by the same server.
  const SagaDefinition def = testing::definition(R"(saga: t.ops
version: 1
steps:
  - name: first
    action: testing.succeed
    compensate: testing.fail_until
    input: { flag: ops-fixed }
    compensate_retry: { max_attempts: 2, initial: 10ms }
  - name: second
    action: testing.fail
    input: { retryable: false }
)");
  pg::PgStore store(api().dsn(), 1);
  const std::string id = store.start_saga(def, json::object(), {}).saga_id;
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (store.find_saga(id)->state != SagaState::kFailed && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(50ms);
  }
  const Response stuck = api().get("/v1/sagas?stuck=true&definition=t.ops", ops());
  ASSERT_EQ(stuck.status, 200) << stuck.body.dump();
  ASSERT_EQ(stuck.body["data"].size(), 1u);
  EXPECT_EQ(stuck.body["data"][0]["id"], id);
  EXPECT_EQ(stuck.body["data"][0]["state"], "failed");
  const Response events = api().get("/v1/sagas/" + id + "/events?limit=100", ops());
  std::string kinds;
  for (const auto& e : events.body["data"]) kinds += e["kind"].get<std::string>() + " ";
  EXPECT_NE(kinds.find("compensation_failed"), std::string::npos) << kinds;

  EXPECT_EQ(api().post("/v1/sagas/" + id + "/cancel", ops()).body["error"]["code"], "invalid_transition");
  api().scalar(
      "INSERT INTO wsflow.test_effects (idempotency_key, saga_id, step, branch, compensating) "
      "VALUES ('ops-fixed', gen_random_uuid(), 'ops', '', false) RETURNING 1");
  ASSERT_EQ(api().post("/v1/sagas/" + id + "/retry", ops()).status, 202);
  while (store.find_saga(id)->state != SagaState::kCompensated && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(store.find_saga(id)->state, SagaState::kCompensated);
  EXPECT_TRUE(api().get("/v1/sagas?stuck=true&definition=t.ops", ops()).body["data"].empty());
  const Response retried_again = api().post("/v1/sagas/" + id + "/retry", ops());
  EXPECT_EQ(retried_again.status, 409);
  EXPECT_NE(retried_again.body["error"]["message"].get<std::string>().find("a compensated saga"), std::string::npos);
  EXPECT_EQ(retried_again.body["error"]["allowed_actions"], json::array({"rerun-from"}));

  EXPECT_EQ(api().get("/v1/sagas?state=exploded", ops()).body["error"]["field"], "state");
  EXPECT_EQ(api().get("/v1/sagas?stuck=maybe", ops()).body["error"]["field"], "stuck");
  const std::string ws = api().create_workspace("Ops Tenant", "olga");
  const std::string member = api().member_key(ws, "olga");
  EXPECT_EQ(api().get("/v1/sagas", member).status, 403);
  EXPECT_EQ(api().post("/v1/sagas/" + id + "/retry", member).status, 404);  // not its workspace's saga
}

TEST_F(Api, OperatorsStartAnyLoadedDefinition) {
  const Response started =
      api().post("/v1/sagas", ops(), R"({"definition":"invitations.expire"})", "start-expiry-once");
  ASSERT_EQ(started.status, 202) << started.body.dump();
  const std::string id = started.body["saga_id"];
  const Response again = api().post("/v1/sagas", ops(), R"({"definition":"invitations.expire"})", "start-expiry-once");
  EXPECT_EQ(again.body["saga_id"], id);
  EXPECT_EQ(again.headers.count("Idempotent-Replayed"), 1u);
  std::string state;
  for (int i = 0; i < 200 && state != "completed"; ++i) {
    std::this_thread::sleep_for(50ms);
    state = api().get("/v1/sagas/" + id, ops()).body.value("state", "");
  }
  EXPECT_EQ(state, "completed");

  const Response missing = api().post("/v1/sagas", ops(), R"({"definition":"workspace.freeze","input":{}})");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.body["error"]["field"], "input.workspace_id");
  EXPECT_EQ(api().post("/v1/sagas", ops(), R"({"definition":"no.such"})").body["error"]["code"],
            "definition_not_found");
  EXPECT_EQ(api().post("/v1/sagas", ops(), R"({"definition":"invitations.expire","input":[1]})").body["error"]["field"],
            "input");
  const std::string ws = api().create_workspace("Starter Of Nothing", "sn");
  EXPECT_EQ(api().post("/v1/sagas", api().owner_key(ws), R"({"definition":"invitations.expire"})").status, 403);
}

TEST_F(Api, OperatorsStartABatchInOneTransaction) {
  const std::string body =
      R"({"definition":"invitations.expire","sagas":[{"idempotency_key":"night-1"},{},{"idempotency_key":"night-1"}]})";
  const Response started = api().post("/v1/sagas", ops(), body);
  ASSERT_EQ(started.status, 202) << started.body.dump();
  ASSERT_EQ(started.body["sagas"].size(), 3u);
  EXPECT_EQ(started.body["created"], 2);
  EXPECT_EQ(started.body["sagas"][2]["saga_id"], started.body["sagas"][0]["saga_id"]);
  EXPECT_EQ(started.body["sagas"][2]["created"], false);
  for (const auto& saga : started.body["sagas"]) {
    EXPECT_EQ(api().get("/v1/sagas/" + saga["saga_id"].get<std::string>(), ops()).status, 200);
  }
  // The same batch again starts only the saga without a key.
  const Response again = api().post("/v1/sagas", ops(), body);
  EXPECT_EQ(again.body["created"], 1);
  EXPECT_EQ(again.body["sagas"][0]["saga_id"], started.body["sagas"][0]["saga_id"]);

  auto freezes = [&] {
    return api().get("/v1/sagas?definition=workspace.freeze&limit=100", ops()).body["data"].size();
  };
  const std::size_t freezes_before = freezes();
  auto field_of = [&](const std::string& request) {
    const Response r = api().post("/v1/sagas", ops(), request);
    EXPECT_EQ(r.status, 400) << request;
    return r.body["error"].value("field", "");
  };
  const std::string ws = api().create_workspace("Batch Of Nothing", "bn");
  EXPECT_EQ(field_of(R"({"definition":"workspace.freeze","sagas":[{"input":{"workspace_id":")" + ws +
                     R"("}},{"input":{}}]})"),
            "sagas[1].input.workspace_id");
  EXPECT_EQ(field_of(R"({"definition":"invitations.expire","sagas":[{},{"inputs":{}}]})"), "sagas[1].inputs");
  EXPECT_EQ(field_of(R"({"definition":"invitations.expire","sagas":[{"workspace_id":"nope"}]})"),
            "sagas[0].workspace_id");
  EXPECT_EQ(field_of(R"({"definition":"invitations.expire","sagas":[]})"), "sagas");
  EXPECT_EQ(field_of(R"({"definition":"invitations.expire","sagas":[{}],"input":{}})"), "sagas");
  std::string too_many = R"({"definition":"invitations.expire","sagas":[)";
  for (int i = 0; i < 1001; ++i) too_many += i ? ",{}" : "{}";
  EXPECT_EQ(field_of(too_many + "]}"), "sagas");
  const Response keyed = api().post("/v1/sagas", ops(), R"({"definition":"invitations.expire","sagas":[{}]})", "k");
  EXPECT_EQ(keyed.status, 400);
  EXPECT_EQ(freezes(), freezes_before);  // the refused batch's valid first saga did not start either
  EXPECT_EQ(api().post("/v1/sagas", api().owner_key(ws), body).status, 403);
}

TEST_F(Api, MetricsForOperatorsParseAsPrometheusText) {
  const std::string ws = api().create_workspace("Measured");
  httplib::Client client = api().raw_client();
  const auto anonymous = client.Get("/metrics");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
  const auto scraped = client.Get("/metrics", {{"Authorization", "Bearer " + ops()}});
  ASSERT_TRUE(scraped);
  EXPECT_EQ(scraped->status, 200);
  EXPECT_NE(scraped->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  testing::Exposition m;
  ASSERT_NO_THROW(m = testing::parse_exposition(scraped->body)) << scraped->body;
  // Gauges from the database.
  EXPECT_GE(m.value(R"(wsflow_sagas{definition="workspace.create",state="completed"})"), 1) << scraped->body;
  EXPECT_GE(m.value(R"(wsflow_workspaces{status="active"})"), 1);
  EXPECT_EQ(m.types["wsflow_sagas_stuck"], "gauge");
  EXPECT_GE(m.value(R"(wsflow_sagas_stuck{reason="failed"})"), 0);
  EXPECT_GE(m.sum("wsflow_db_connections_in_use", R"(pool="api")"), 1);  // this scrape holds one
  EXPECT_GE(m.sum("wsflow_http_connections", ""), 1);                    // this scrape's own connection
  // The process's counters and histograms, fed by its engine.
  EXPECT_EQ(m.types["wsflow_sagas_finished_total"], "counter");
  EXPECT_GE(m.value(R"(wsflow_sagas_finished_total{definition="workspace.create",state="completed"})"), 1);
  EXPECT_GE(m.sum("wsflow_sagas_started_total", R"(definition="workspace.create")"), 1);
  EXPECT_GE(m.sum("wsflow_step_attempts_total", R"(action="environment.provision")"), 3);  // dev, staging, prod
  EXPECT_EQ(m.types["wsflow_step_duration_seconds"], "histogram");
  EXPECT_GE(m.sum("wsflow_step_duration_seconds_count", R"(action="environment.provision")"), 3);
  EXPECT_GE(m.sum("wsflow_claim_latency_seconds_count"), 1);
  EXPECT_EQ(m.types["wsflow_claim_sagas"], "histogram");
  EXPECT_GE(m.sum("wsflow_claim_sagas_sum"), 1);  // sagas leased, over every claim
  EXPECT_EQ(m.types["wsflow_lease_takeovers_total"], "counter");
  // Read and parsed once, however many of its sagas the engine claimed at once.
  EXPECT_EQ(m.value(R"(wsflow_definition_loads_total{definition="workspace.create"})"), 1);
  EXPECT_EQ(m.value("wsflow_engine_errors_total"), 0);
}

TEST_F(Api, BadBytesAreA400WithoutInternalText) {
  const std::string ws = api().create_workspace("Bytes Inc");
  httplib::Client client = api().raw_client();
  const httplib::Headers auth = {{"Authorization", "Bearer " + ops()}};
  const std::string invalid_utf8 = std::string(R"({"name":"caf)") + "\xff\xfe" + R"("})";
  const std::string invalid_key = std::string(R"({")") + "\xc3\x28" + R"(":1})";
  for (const std::string& path :
       {std::string("/v1/workspaces"), "/v1/workspaces/" + ws + "/members", "/v1/workspaces/" + ws + "/invitations",
        std::string("/v1/sagas"), std::string("/v1/sagas/bulk")}) {
    for (const std::string& body : {invalid_utf8, invalid_key, std::string("{\"a\":"), std::string("[1,2]")}) {
      const auto r = client.Post(path.c_str(), auth, body, "application/json");
      ASSERT_TRUE(r) << path;
      EXPECT_EQ(r->status, 400) << path << " " << r->body;
      EXPECT_FALSE(r->has_header("EXCEPTION_WHAT")) << path;
      EXPECT_EQ(r->body.find("json.exception"), std::string::npos) << r->body;
      const json parsed = json::parse(r->body, nullptr, false);
      ASSERT_TRUE(parsed.is_object()) << r->body;
      EXPECT_EQ(parsed["error"]["code"], "invalid_json") << r->body;
    }
  }
  const auto bad_path = client.Get(("/v1/workspaces/%C3%28/members"), auth);
  ASSERT_TRUE(bad_path);
  EXPECT_EQ(bad_path->status, 400) << bad_path->body;
  EXPECT_EQ(json::parse(bad_path->body)["error"]["code"], "invalid_path");
  EXPECT_EQ(api().get("/healthz", "").status, 200);
}

// The database going read-only (a standby during a failover) or dropping
// connections: every request gets 503 with Retry-After, never a 500.
TEST(ApiUnavailable, AReadOnlyOrLostDatabaseIsA503WithRetryAfter) {
  HookReceiver hooks;
  Server api("", hooks.url());
  const std::string ws = api.create_workspace("Before");
  auto run = [&](const std::string& sql) {
    pqxx::connection conn(api.dsn());
    pqxx::nontransaction tx(conn);
    tx.exec("SET default_transaction_read_only = off");  // this session, even once the database is read-only
    tx.exec("ALTER DATABASE " + std::string(conn.dbname()) + sql);
    tx.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()");
  };
  run(" SET default_transaction_read_only = on");
  const std::string body = R"({"name":"During","owner":{"user_id":"d1","email":"d1@example.com"}})";
  std::set<int> statuses;
  for (int i = 0; i < 12; ++i) {
    const Response r = api.post("/v1/workspaces", api.operator_key(), body);
    statuses.insert(r.status);
    if (r.status == 503) {
      EXPECT_EQ(r.headers.count("Retry-After"), 1u);
      EXPECT_EQ(r.body["error"]["code"], "unavailable");
    }
  }
  EXPECT_EQ(statuses, std::set<int>{503}) << api.log();
  run(" RESET default_transaction_read_only");
  Response after;
  for (int i = 0; i < 20 && after.status != 202; ++i) after = api.post("/v1/workspaces", api.operator_key(), body);
  EXPECT_EQ(after.status, 202) << after.body.dump();
}

TEST_F(Api, HealthReadinessTheContractAndTheConsoleNeedNoKey) {
  EXPECT_EQ(api().get("/healthz", "").status, 200);
  EXPECT_EQ(api().get("/readyz", "").body["status"], "ready");
  const Response contract = api().get("/openapi.json", "");
  EXPECT_EQ(contract.status, 200);
  EXPECT_EQ(contract.body["openapi"], "3.1.0");
  EXPECT_TRUE(contract.body["paths"].contains("/v1/sagas/{saga}/rerun"));
  httplib::Client client = api().raw_client();
  const auto page = client.Get("/console");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  // The page that holds an operator key runs nothing but its own script.
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  EXPECT_NE(page->body.find("/console/console.js"), std::string::npos);
  const auto script = client.Get("/console/console.js");
  ASSERT_TRUE(script);
  EXPECT_NE(script->get_header_value("Content-Type").find("javascript"), std::string::npos);
}

TEST(ApiRetention, AnExportIsDeletedAfterItsRetentionAndItsRecordSaysSo) {
  HookReceiver hooks;
  Server api("", hooks.url(), "2s", "1s");
  const std::string id = api.create_workspace("Short Lived");
  testing::TempDir dir;
  const json record = api.take_export(id, api.owner_key(id), dir.path());
  const std::string path = "/v1/workspaces/" + id + "/exports/" + record["id"].get<std::string>();
  Response expired = api.get(path, api.operator_key());
  for (int i = 0; i < 200 && expired.body.value("status", "") != "expired"; ++i) {
    std::this_thread::sleep_for(50ms);
    expired = api.get(path, api.operator_key());
  }
  EXPECT_EQ(expired.body["status"], "expired");
  EXPECT_TRUE(expired.body["download_url"].is_null());
  const Response gone = api.get(path + "/download", api.operator_key());
  EXPECT_EQ(gone.status, 410);
  EXPECT_EQ(gone.body["error"]["code"], "export_expired");
  EXPECT_EQ(api.scalar("SELECT count(*) FROM wsflow.audit_log WHERE action = 'export.expired'"), 1);
}

// A second server whose provisioner fails at prod.
TEST(ApiFaults, ProdProvisioningFailureRollsEverythingBack) {
  HookReceiver hooks;
  Server api("provision:prod:fail", hooks.url());
  const Response r = api.post("/v1/workspaces", api.operator_key(),
                              R"({"name":"Beta","owner":{"user_id":"o","email":"o@example.com"}})");
  ASSERT_EQ(r.status, 202);
  const std::string id = r.body["workspace_id"];
  EXPECT_EQ(api.wait_status(id, {"deleted", "failed"}), "deleted") << api.log();
  EXPECT_EQ(api.schemas_of(id), 0);  // dev and staging were dropped again
  EXPECT_EQ(api.scalar("SELECT count(*) FROM wsflow.workspaces WHERE slug = 'beta'"), 0);  // slug free again
  EXPECT_EQ(api.scalar("SELECT count(*) FROM wsflow.members WHERE workspace_id = '" + id + "'"), 0);
  const Response audit = api.get("/v1/workspaces/" + id + "/audit?limit=100", api.operator_key());
  std::string story;
  for (const auto& a : audit.body["data"]) story += a["action"].get<std::string>() + " ";
  for (const char* chapter : {"workspace.slug_reserved", "environment.provisioned", "environment.deleted",
                              "workspace.slug_released", "workspace.create_rolled_back"}) {
    EXPECT_NE(story.find(chapter), std::string::npos) << chapter << " missing from: " << story;
  }
  const Response saga = api.get("/v1/sagas/" + r.body["saga_id"].get<std::string>(), api.operator_key());
  EXPECT_EQ(saga.body["state"], "compensated");
}

}  // namespace
}  // namespace wsflow
