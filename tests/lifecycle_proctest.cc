// The lifecycle's promises kept in the data, end to end over HTTP: freeze
// makes the environments read-only for their roles, offboarding keeps
// everything through its window and can be undone, environments show their
// state while they provision.

#include <gtest/gtest.h>

#include "adapters/postgres/dsn.h"
#include "adapters/provisioner/environment_provisioner.h"
#include "tests/support/live_server.h"

namespace wsflow {
namespace {

using testing::as_role;
using testing::eventually;
using testing::HookReceiver;
using testing::Response;
using testing::Server;
using json = nlohmann::json;
using namespace std::chrono_literals;

// name -> status of the workspace's environments.
std::map<std::string, std::string> environment_statuses(Server& api, const std::string& ws) {
  std::map<std::string, std::string> out;
  const Response r = api.get("/v1/workspaces/" + ws + "/environments", api.operator_key());
  for (const auto& e : r.body["data"]) out[e["name"]] = e["status"];
  return out;
}

const std::map<std::string, std::string> kAll(const std::string& status) {
  return {{"dev", status}, {"staging", status}, {"prod", status}};
}

// A table with two rows in the workspace's dev environment, written as its role.
std::string seed_dev_data(Server& api, const std::string& ws) {
  const EnvironmentNames dev = environment_names(ws, "dev");
  const std::string table = dev.schema + ".notes";
  EXPECT_EQ(as_role(api.dsn(), dev.role, "CREATE TABLE " + table + " (id serial PRIMARY KEY, body text)"), "ok");
  EXPECT_EQ(as_role(api.dsn(), dev.role, "INSERT INTO " + table + " (body) VALUES ('one'), ('two')"), "ok");
  return table;
}

std::string write_as_dev(Server& api, const std::string& ws, const std::string& table) {
  return as_role(api.dsn(), environment_names(ws, "dev").role, "INSERT INTO " + table + " (body) VALUES ('more')");
}

// A window long enough to act within.
struct LongWindow {
  static constexpr const char* kWindow = "1h";
};

class Lifecycle : public testing::SharedServerSuite<LongWindow> {
 protected:
  std::string saga_state(const std::string& saga_id) {
    return api().get("/v1/sagas/" + saga_id, ops()).body.value("state", "");
  }
};

TEST_F(Lifecycle, FreezeStopsWritesToTheDataAndUnfreezeRestoresThem) {
  const std::string ws = api().create_workspace("Cold Storage");
  const std::string owner = api().owner_key(ws);
  const std::string table = seed_dev_data(api(), ws);
  ASSERT_EQ(api().post("/v1/workspaces/" + ws + "/freeze", owner).status, 202);
  api().wait_status(ws, {"frozen"});
  EXPECT_EQ(write_as_dev(api(), ws, table), "denied");
  EXPECT_EQ(as_role(api().dsn(), environment_names(ws, "dev").role, "SELECT * FROM " + table), "ok");
  EXPECT_EQ(environment_statuses(api(), ws), kAll("frozen"));
  const Response detail = api().get("/v1/workspaces/" + ws, owner);
  ASSERT_EQ(detail.body["environments"].size(), 3u);  // the detail page shows them
  EXPECT_EQ(detail.body["environments"][0]["status"], "frozen");

  ASSERT_EQ(api().post("/v1/workspaces/" + ws + "/unfreeze", owner).status, 202);
  api().wait_status(ws, {"active"});
  EXPECT_EQ(write_as_dev(api(), ws, table), "ok");
  EXPECT_EQ(environment_statuses(api(), ws), kAll("active"));
  EXPECT_EQ(api().scalar("SELECT count(*) FROM " + table), 3);
}

TEST_F(Lifecycle, OffboardKeepsEverythingThroughTheWindowAndRestoreBringsItBack) {
  const std::string ws = api().create_workspace("Second Thoughts");
  const std::string owner = api().owner_key(ws);
  const Response invited =
      api().post("/v1/workspaces/" + ws + "/invitations", owner, R"({"email":"mo@example.com","role":"member"})");
  const std::string member =
      api()
          .post("/v1/invitations/accept", "", json{{"token", invited.body["token"]}, {"user_id", "mo"}}.dump())
          .body["key"]["key"];
  const std::string table = seed_dev_data(api(), ws);

  const Response offboard = api().post("/v1/workspaces/" + ws + "/offboard", owner);
  ASSERT_EQ(offboard.status, 202);
  api().wait_status(ws, {"offboarded"});
  EXPECT_EQ(api().get("/v1/workspaces/" + ws, owner).status, 401);  // every key revoked
  EXPECT_EQ(api().get("/v1/workspaces/" + ws, member).status, 401);
  EXPECT_EQ(write_as_dev(api(), ws, table), "denied");  // the data frozen, and kept
  EXPECT_FALSE(api().get("/v1/workspaces/" + ws, ops()).body["hard_delete_at"].is_null());

  // An export during the window holds everything.
  testing::TempDir dir;
  api().take_export(ws, ops(), dir.path());
  EXPECT_EQ(json::parse(read_text_file(dir.path() / "members.json").value()).size(), 2u);
  const json keys = json::parse(read_text_file(dir.path() / "api_keys.json").value());
  EXPECT_EQ(keys.size(), 2u);
  for (const auto& k : keys) EXPECT_FALSE(k["revoked_at"].is_null());
  // Its dump of dev restores into a scratch database with the same rows.
  const std::string scratch = testing::fresh_unmigrated_database();
  std::string psql_output;
  ASSERT_EQ(testing::run_sql_file(scratch, (dir.path() / "environments" / "dev.sql").string(), psql_output), 0)
      << psql_output;
  EXPECT_EQ(testing::scalar(scratch, "SELECT count(*) FROM " + table + " WHERE body IN ('one', 'two')"), 2);

  EXPECT_EQ(api().post("/v1/workspaces/" + ws + "/restore", member).status, 401);
  const Response restored = api().post("/v1/workspaces/" + ws + "/restore", ops());
  ASSERT_EQ(restored.status, 202) << restored.body.dump();
  EXPECT_EQ(api().wait_status(ws, {"active"}), "active");
  EXPECT_TRUE(eventually([&] { return saga_state(offboard.body["saga_id"]) == "cancelled"; }));
  const Response after = api().get("/v1/workspaces/" + ws, ops());
  EXPECT_TRUE(after.body["hard_delete_at"].is_null());
  EXPECT_EQ(api().get("/v1/workspaces/" + ws + "/members", ops()).body["data"].size(), 2u);
  EXPECT_EQ(write_as_dev(api(), ws, table), "ok");  // data intact and writable again
  EXPECT_EQ(api().scalar("SELECT count(*) FROM " + table), 3);
  EXPECT_EQ(environment_statuses(api(), ws), kAll("active"));
  EXPECT_EQ(api().get("/v1/workspaces/" + ws, owner).status, 401);  // revoked keys stay revoked
}

TEST_F(Lifecycle, CancellingAnOffboardOfAFrozenWorkspaceReturnsItFrozen) {
  const std::string ws = api().create_workspace("Held");
  const std::string owner = api().owner_key(ws);
  const std::string table = seed_dev_data(api(), ws);
  ASSERT_EQ(api().post("/v1/workspaces/" + ws + "/freeze", owner).status, 202);
  api().wait_status(ws, {"frozen"});
  const Response offboard = api().post("/v1/workspaces/" + ws + "/offboard", owner);
  ASSERT_EQ(offboard.status, 202);
  api().wait_status(ws, {"offboarded"});
  ASSERT_EQ(api().post("/v1/sagas/" + offboard.body["saga_id"].get<std::string>() + "/cancel", ops()).status, 202);
  EXPECT_EQ(api().wait_status(ws, {"frozen", "active"}), "frozen");
  EXPECT_EQ(write_as_dev(api(), ws, table), "denied");  // still under the freeze it had
  EXPECT_EQ(environment_statuses(api(), ws), kAll("frozen"));
}

TEST_F(Lifecycle, RestoreOnlyEndsAnOffboarding) {
  const std::string ws = api().create_workspace("Never Left");
  const Response r = api().post("/v1/workspaces/" + ws + "/restore", ops());
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body["error"]["code"], "invalid_transition");
  const std::string admin_ws = api().create_workspace("Admins Cannot Restore");
  const Response invited = api().post("/v1/workspaces/" + admin_ws + "/invitations", api().owner_key(admin_ws),
                                      R"({"email":"ad@example.com","role":"admin"})");
  const std::string admin =
      api()
          .post("/v1/invitations/accept", "", json{{"token", invited.body["token"]}, {"user_id", "ad"}}.dump())
          .body["key"]["key"];
  EXPECT_EQ(api().post("/v1/workspaces/" + admin_ws + "/restore", admin).status, 403);
}

TEST_F(Lifecycle, TheWorkspaceRecordThePortalShows) {
  const Response created =
      api().post("/v1/workspaces", ops(),
                 R"({"name":"Portal Co","description":"Our tenant","region":"local","tenancy_model":"schema",)"
                 R"("owner":{"user_id":"pat","email":"pat@example.com"}})");
  ASSERT_EQ(created.status, 202) << created.body.dump();
  const std::string ws = created.body["workspace_id"];
  const std::string owner = created.body["owner_key"]["key"];
  api().wait_status(ws, {"active"});
  const Response detail = api().get("/v1/workspaces/" + ws, owner);
  EXPECT_EQ(detail.body["description"], "Our tenant");
  EXPECT_EQ(detail.body["region"], "local");
  EXPECT_EQ(detail.body["tenancy_model"], "schema");
  const std::string slug = detail.body["slug"];
  EXPECT_EQ(
      api()
          .post("/v1/workspaces", ops(), R"({"name":"x","region":"mars-1","owner":{"user_id":"a","email":"a@b.co"}})")
          .body["error"]["field"],
      "region");
  EXPECT_EQ(api()
                .post("/v1/workspaces", ops(),
                      R"({"name":"x","tenancy_model":"cluster","owner":{"user_id":"a","email":"a@b.co"}})")
                .body["error"]["field"],
            "tenancy_model");

  // Rename: the slug stays, so links keep working.
  const Response renamed =
      api().request("PATCH", "/v1/workspaces/" + ws, owner, R"({"name":"Portal Company","description":"Renamed"})");
  ASSERT_EQ(renamed.status, 200) << renamed.body.dump();
  EXPECT_EQ(renamed.body["name"], "Portal Company");
  EXPECT_EQ(renamed.body["slug"], slug);
  EXPECT_EQ(api().get("/v1/workspaces/" + slug, owner).body["name"], "Portal Company");
  EXPECT_EQ(api().request("PATCH", "/v1/workspaces/" + ws, owner, R"({"slug":"new"})").body["error"]["field"], "slug");
  EXPECT_EQ(api().request("PATCH", "/v1/workspaces/" + ws, owner, "{}").status, 400);
  bool listed = false;
  const Response workspaces = api().get("/v1/workspaces?limit=100", owner);
  for (const auto& w : workspaces.body["data"]) {
    if (w["id"] == ws) listed = w["description"] == "Renamed" && w["region"] == "local";
  }
  EXPECT_TRUE(listed);

  // The audit feed newest first, filtered, paginated.
  const Response recent = api().get("/v1/workspaces/" + ws + "/audit?order=desc&limit=1", owner);
  ASSERT_EQ(recent.body["data"].size(), 1u);
  EXPECT_EQ(recent.body["data"][0]["action"], "workspace.updated");
  const Response older = api().get(
      "/v1/workspaces/" + ws + "/audit?order=desc&limit=1&cursor=" + recent.body["next_cursor"].get<std::string>(),
      owner);
  EXPECT_LT(std::stoll(older.body["data"][0]["id"].get<std::string>()),
            std::stoll(recent.body["data"][0]["id"].get<std::string>()));
  const Response by_owner = api().get("/v1/workspaces/" + ws + "/audit?actor=user:pat&limit=100", owner);
  ASSERT_FALSE(by_owner.body["data"].empty());
  for (const auto& a : by_owner.body["data"]) EXPECT_EQ(a["actor"], "user:pat");
  const Response provisioned = api().get("/v1/workspaces/" + ws + "/audit?action=environment.provisioned", owner);
  EXPECT_EQ(provisioned.body["data"].size(), 3u);
  EXPECT_EQ(api().get("/v1/workspaces/" + ws + "/audit?order=sideways", owner).body["error"]["field"], "order");
}

TEST_F(Lifecycle, ADatabaseTenancyWorkspaceThroughItsWholeLife) {
  const Response created = api().post(
      "/v1/workspaces", ops(),
      R"({"name":"Own Databases","tenancy_model":"database","owner":{"user_id":"dee","email":"dee@example.com"}})");
  ASSERT_EQ(created.status, 202);
  const std::string ws = created.body["workspace_id"];
  const std::string owner = created.body["owner_key"]["key"];
  ASSERT_EQ(api().wait_status(ws, {"active", "deleted", "failed"}), "active") << api().log();
  EXPECT_EQ(api().get("/v1/workspaces/" + ws, owner).body["tenancy_model"], "database");
  const EnvironmentNames prod = environment_names(ws, "prod");
  EXPECT_EQ(api().scalar("SELECT count(*) FROM pg_database WHERE datname LIKE '" + prod.database.substr(0, 36) + "%'"),
            3);
  const std::string prod_dsn = pg::dsn_with_database(api().dsn(), prod.database);
  ASSERT_EQ(as_role(prod_dsn, prod.role, "CREATE TABLE ledger (id int, amount int); INSERT INTO ledger VALUES (1, 42)"),
            "ok");

  ASSERT_EQ(api().post("/v1/workspaces/" + ws + "/freeze", owner).status, 202);
  api().wait_status(ws, {"frozen"});
  EXPECT_EQ(as_role(prod_dsn, prod.role, "INSERT INTO ledger VALUES (2, 7)"), "denied");
  ASSERT_EQ(api().post("/v1/workspaces/" + ws + "/unfreeze", owner).status, 202);
  api().wait_status(ws, {"active"});
  EXPECT_EQ(as_role(prod_dsn, prod.role, "INSERT INTO ledger VALUES (2, 7)"), "ok");

  testing::TempDir dir;
  api().take_export(ws, owner, dir.path());
  const std::string dump = read_text_file(dir.path() / "environments" / "prod.sql").value();
  EXPECT_NE(dump.find("CREATE TABLE public.ledger"), std::string::npos);
  EXPECT_NE(dump.find("1\t42"), std::string::npos);

  ASSERT_EQ(api().request("DELETE", "/v1/workspaces/" + ws, owner).status, 202);
  EXPECT_EQ(api().wait_status(ws, {"deleted"}), "deleted");
  EXPECT_EQ(api().scalar("SELECT count(*) FROM pg_database WHERE datname LIKE '" + prod.database.substr(0, 36) + "%'"),
            0);
  EXPECT_EQ(api().scalar("SELECT count(*) FROM pg_roles WHERE rolname LIKE '" + prod.role.substr(0, 36) + "%'"), 0);
}

// Faults, each on a server of its own.

TEST(LifecycleFaults, AFreezeThatFailsHalfwayLeavesTheDataAsItWas) {
  HookReceiver hooks;
  Server api("freeze:prod:fail", hooks.url());
  const std::string ws = api.create_workspace("Half Frozen");
  const std::string table = seed_dev_data(api, ws);
  const Response freeze = api.post("/v1/workspaces/" + ws + "/freeze", api.owner_key(ws));
  ASSERT_EQ(freeze.status, 202);
  EXPECT_TRUE(eventually([&] {
    return api.get("/v1/sagas/" + freeze.body["saga_id"].get<std::string>(), api.operator_key())
               .body.value("state", "") == "compensated";
  })) << api.log();
  EXPECT_EQ(api.wait_status(ws, {"active", "frozen", "failed"}), "active");
  EXPECT_EQ(write_as_dev(api, ws, table), "ok");  // dev froze, then thawed again
  EXPECT_EQ(environment_statuses(api, ws), kAll("active"));
}

TEST(LifecycleFaults, EnvironmentsShowProvisioningWhileItHangsThenFailed) {
  HookReceiver hooks;
  Server api("provision:prod:hang:2s", hooks.url());
  const Response created = api.post("/v1/workspaces", api.operator_key(),
                                    R"({"name":"Slow Prod","owner":{"user_id":"o","email":"o@example.com"}})");
  ASSERT_EQ(created.status, 202);
  const std::string ws = created.body["workspace_id"];
  EXPECT_TRUE(eventually([&] { return environment_statuses(api, ws)["prod"] == "provisioning"; }, 10s));
  EXPECT_TRUE(eventually([&] { return environment_statuses(api, ws)["dev"] == "active"; }, 10s));  // the others go on
  Response envs;
  // Judged on the same response the checks below read (a second request could see a newer state).
  EXPECT_TRUE(eventually(
      [&] {
        envs = api.get("/v1/workspaces/" + ws + "/environments", api.operator_key());
        for (const auto& e : envs.body["data"]) {
          if (e["name"] == "prod") return e["status"] == "failed";
        }
        return false;
      },
      10s));
  for (const auto& e : envs.body["data"]) {
    if (e["name"] != "prod") continue;
    EXPECT_NE(e["error"].get<std::string>().find("hung"), std::string::npos) << e.dump();
    EXPECT_EQ(e["saga_id"], created.body["saga_id"]);
  }
}

}  // namespace
}  // namespace wsflow
