// `serve --provisioner http`: a workspace's whole life (create, freeze,
// export, offboard, hard delete) with its environments on a fake service of
// the user's own, through the documented PUT/POST/DELETE contract, with the
// steps' idempotency keys, retries and the service's details on each row.

#include <gtest/gtest.h>

#include "bench/fake_service.h"
#include "engine/text_file.h"
#include "tests/support/live_server.h"

namespace wsflow {
namespace {

using testing::FakeReply;
using testing::FakeRequest;
using testing::HookReceiver;
using testing::Response;
using testing::Server;
using json = nlohmann::json;
using namespace std::chrono_literals;

// Requests to one workspace's environments, as "METHOD /suffix-after-the-id".
std::vector<std::string> calls_for(const testing::FakeService& service, const std::string& ws) {
  std::vector<std::string> out;
  const std::string prefix = "/workspaces/" + ws + "/environments/";
  for (const FakeRequest& r : service.requests()) {
    if (r.target.rfind(prefix, 0) == 0) out.push_back(r.method + " " + r.target.substr(prefix.size()));
  }
  return out;
}

std::size_t count(const std::vector<std::string>& calls, const std::string& call) {
  return static_cast<std::size_t>(std::count(calls.begin(), calls.end(), call));
}

TEST(HttpProvisioner, RunsAWorkspacesWholeLifeOnTheUsersService) {
  testing::FakeService service;
  service.on("PUT", "/workspaces/", [](const FakeRequest& r) {
    const json body = r.json();
    return FakeReply::json(201, {{"namespace", "ns-" + body.value("environment", "")}, {"cluster", "eu-1"}});
  });
  service.on("POST", "/workspaces/", [](const FakeRequest&) { return FakeReply{204, "", {}, {}, false}; });
  service.on("DELETE", "/workspaces/", [](const FakeRequest&) { return FakeReply{204, "", {}, {}, false}; });
  // prod's first PUT meets an outage: the step's retry policy takes it from there.
  service.fail_next("PUT", "/workspaces/", 1, {503, "{}", {{"Retry-After", "0"}}, {}, false});

  HookReceiver hooks;
  Server api("", hooks.url(), "2s", "7d", {"--provisioner", "http", "--var", "provisioner_url=" + service.url()});
  const std::string ws = api.create_workspace("Own Service");
  ASSERT_EQ(api.wait_status(ws, {"active"}), "active");

  // Each environment shows what the service answered; none is a Postgres schema.
  const Response environments = api.get("/v1/workspaces/" + ws + "/environments", api.operator_key());
  ASSERT_EQ(environments.body["data"].size(), 3u);
  for (const json& e : environments.body["data"]) {
    EXPECT_EQ(e["status"], "active");
    EXPECT_EQ(e["provisioner"], "http");
    EXPECT_EQ(e["details"], (json{{"namespace", "ns-" + e["name"].get<std::string>()}, {"cluster", "eu-1"}}));
    EXPECT_TRUE(e["schema"].is_null());
  }
  EXPECT_EQ(api.schemas_of(ws), 0);
  std::vector<std::string> calls = calls_for(service, ws);
  EXPECT_EQ(count(calls, "PUT dev") + count(calls, "PUT staging") + count(calls, "PUT prod"), 4u) << calls.size();
  // Every PUT of an environment carries its step's key, the same on the retry.
  std::set<std::string> keys;
  for (const FakeRequest& r : service.requests("PUT", "/workspaces/" + ws)) {
    keys.insert(r.header("idempotency-key"));
    EXPECT_EQ(r.json()["workspace_id"], ws);
  }
  EXPECT_EQ(keys.size(), 3u);
  for (const std::string& key : keys) EXPECT_NE(key.find("/provision_environments/"), std::string::npos) << key;

  // Freeze and unfreeze: one call per environment each.
  ASSERT_EQ(api.post("/v1/workspaces/" + ws + "/freeze", api.owner_key(ws)).status, 202);
  ASSERT_EQ(api.wait_status(ws, {"frozen"}), "frozen");
  calls = calls_for(service, ws);
  for (const char* env : {"dev", "staging", "prod"})
    EXPECT_EQ(count(calls, "POST " + std::string(env) + "/freeze"), 1u);
  ASSERT_EQ(api.post("/v1/workspaces/" + ws + "/unfreeze", api.owner_key(ws)).status, 202);
  ASSERT_EQ(api.wait_status(ws, {"active"}), "active");
  EXPECT_EQ(count(calls_for(service, ws), "POST prod/unfreeze"), 1u);

  // An export lists the environments with their details (their data lives in the service).
  testing::TempDir dir;
  const json record = api.take_export(ws, api.owner_key(ws), dir.path());
  EXPECT_EQ(record["status"], "completed");
  const json listed = json::parse(read_text_file(dir.path() / "environments.json").value_or("[]"));
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0]["details"]["cluster"], "eu-1");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "environments"));

  // Offboarding, then the hard delete after the (2 s) window, tears them down.
  ASSERT_EQ(api.post("/v1/workspaces/" + ws + "/offboard", api.owner_key(ws)).status, 202);
  api.wait_status(ws, {"offboarded"});
  api.wait_status(ws, {"<gone>", "deleted"}, 60s);
  calls = calls_for(service, ws);
  for (const char* env : {"dev", "staging", "prod"}) EXPECT_EQ(count(calls, "DELETE " + std::string(env)), 1u);
  for (const FakeRequest& r : service.requests("DELETE", "/workspaces/" + ws)) {
    EXPECT_NE(r.header("idempotency-key").find("/teardown_environments/"), std::string::npos)
        << r.header("idempotency-key");
  }
}

TEST(HttpProvisioner, AServiceRefusingAnEnvironmentFailsTheCreateAndUndoesTheOthers) {
  testing::FakeService service;
  service.on("PUT", "/workspaces/", [](const FakeRequest& r) {
    if (r.json().value("environment", "") == "prod") return FakeReply::json(422, {{"error", "quota exceeded"}});
    return FakeReply::json(201, {{"ok", true}});
  });
  service.on("DELETE", "/workspaces/", [](const FakeRequest&) { return FakeReply{404, "", {}, {}, false}; });
  HookReceiver hooks;
  Server api("", hooks.url(), "2s", "7d", {"--provisioner", "http", "--var", "provisioner_url=" + service.url()});
  const std::string ws = api.create_workspace("Over Quota");
  EXPECT_EQ(api.wait_status(ws, {"failed", "deleted", "<gone>"}), "deleted");  // a create undone
  const std::vector<std::string> calls = calls_for(service, ws);
  EXPECT_EQ(count(calls, "PUT prod"), 1u);  // a 422 is not retried
  // dev and staging were provisioned and are deprovisioned; 404 counts as done.
  EXPECT_EQ(count(calls, "DELETE dev"), 1u);
  EXPECT_EQ(count(calls, "DELETE staging"), 1u);
  for (const FakeRequest& r : service.requests("DELETE", "/workspaces/" + ws)) {
    const std::string key = r.header("idempotency-key");
    EXPECT_EQ(key.substr(key.size() - 11), "/compensate") << key;
  }
}

}  // namespace
}  // namespace wsflow
