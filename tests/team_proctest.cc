// The team model end to end, over HTTP against `wsflow serve`: the role
// matrix as one table (every workspace endpoint x caller), the escalation
// paths, invitations, removal, ownership, plans and schedules.

#include <gtest/gtest.h>
#include <atomic>

#include "tests/support/live_server.h"

namespace wsflow {
namespace {

using testing::Response;
using testing::Server;
using json = nlohmann::json;
using namespace std::chrono_literals;

// "201", or "403 forbidden" for an error: the status and the error code.
std::string outcome(const Response& r) {
  if (r.status < 400) return std::to_string(r.status);
  return std::to_string(r.status) + " " + r.body["error"].value("code", "?");
}

class Team : public testing::SharedServerSuite<testing::ShortWindow> {
 protected:
  // Invites `email` as `role` with `key`; returns the token.
  std::string invite(const std::string& ws, const std::string& key, const std::string& email,
                     const std::string& role = "member") {
    const Response r =
        api().post("/v1/workspaces/" + ws + "/invitations", key, json{{"email", email}, {"role", role}}.dump());
    EXPECT_EQ(r.status, 201) << r.body.dump();
    return r.body.value("token", "");
  }
  // Accepts as `user_id`; returns the new member's first key.
  std::string accept(const std::string& token, const std::string& user_id) {
    const Response r = api().post("/v1/invitations/accept", "", json{{"token", token}, {"user_id", user_id}}.dump());
    EXPECT_EQ(r.status, 201) << r.body.dump();
    return r.status == 201 ? r.body["key"]["key"].get<std::string>() : "";
  }
  // A member joined by invitation; returns their first key.
  std::string join(const std::string& ws, const std::string& user_id, const std::string& role) {
    return accept(invite(ws, api().owner_key(ws), user_id + "@example.com", role), user_id);
  }
  // A key the caller mints for themselves.
  std::string own_key(const std::string& ws, const std::string& key, const json& scopes) {
    const Response r = api().post("/v1/workspaces/" + ws + "/keys", key, json{{"scopes", scopes}}.dump());
    EXPECT_EQ(r.status, 201) << r.body.dump();
    return r.body.value("key", "");
  }
  std::vector<std::string> audit_actions(const std::string& ws) {
    std::vector<std::string> actions;
    const Response r = api().get("/v1/workspaces/" + ws + "/audit?limit=100", ops());
    EXPECT_EQ(r.status, 200) << r.body.dump();
    for (const auto& a : r.body["data"]) {
      actions.push_back(a["action"]);
    }
    return actions;
  }
  bool has_audit(const std::string& ws, const std::string& action) {
    const auto actions = audit_actions(ws);
    return std::find(actions.begin(), actions.end(), action) != actions.end();
  }
};

// --- the role matrix --------------------------------------------------------

enum Caller { kOperator, kOwner, kOwnerRead, kAdmin, kAdminRead, kMember, kMemberRead, kStranger, kCallers };
const char* kCallerNames[] = {"operator",   "owner",  "owner:read",  "admin",
                              "admin:read", "member", "member:read", "stranger"};

struct MatrixRow {
  const char* method;
  const char* path;  // {ws} is the workspace
  const char* body;  // {n} is a number unique to the call
  std::array<const char*, kCallers> expected;
};

// Authorised calls are made to fail (or do something harmless) right after
// authorisation, so one workspace serves the whole table: it holds a
// lifecycle lock (a made-up saga id), so freeze/offboard/delete answer 409
// operation_in_progress; the plan asked for is the current one; the member or
// key named does not exist.
const MatrixRow kMatrix[] = {
    // clang-format off
    //                                                        operator  owner   owner:read admin  admin:read member member:read stranger
    {"GET", "/v1/workspaces/{ws}", "",                        {"200", "200", "200", "200", "200", "200", "200", "404 workspace_not_found"}},
    {"PATCH", "/v1/workspaces/{ws}", R"({"description":"d{n}"})",
                                                              {"200", "200", "403 forbidden", "200", "403 forbidden", "403 forbidden", "403 forbidden", "404 workspace_not_found"}},
    {"GET", "/v1/workspaces/{ws}/environments", "",           {"200", "200", "200", "200", "200", "200", "200", "404 workspace_not_found"}},
    {"GET", "/v1/workspaces/{ws}/audit", "",                  {"200", "200", "200", "200", "200", "200", "200", "404 workspace_not_found"}},
    {"GET", "/v1/workspaces/{ws}/members", "",                {"200", "200", "200", "200", "200", "200", "200", "404 workspace_not_found"}},
    {"GET", "/v1/workspaces/{ws}/invitations", "",            {"200", "200", "200", "200", "200", "200", "200", "404 workspace_not_found"}},
    {"GET", "/v1/workspaces/{ws}/keys", "",                   {"200", "200", "200", "200", "200", "200", "200", "404 workspace_not_found"}},
    {"POST", "/v1/workspaces/{ws}/invitations", R"({"email":"m{n}@example.com"})",
                                                              {"201", "201", "403 forbidden", "201", "403 forbidden", "403 forbidden", "403 forbidden", "404 workspace_not_found"}},
    {"POST", "/v1/workspaces/{ws}/members", R"({"user_id":"direct{n}","email":"d{n}@example.com"})",
                                                              {"201", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden"}},
    {"PATCH", "/v1/workspaces/{ws}/members/target", R"({"role":"member"})",
                                                              {"200", "200", "403 forbidden", "200", "403 forbidden", "403 forbidden", "403 forbidden", "404 workspace_not_found"}},
    {"PATCH", "/v1/workspaces/{ws}/members/target", R"({"role":"owner"})",
                                                              {"403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "404 workspace_not_found"}},
    {"DELETE", "/v1/workspaces/{ws}/members/nobody", "",      {"404 member_not_found", "404 member_not_found", "403 forbidden", "404 member_not_found", "403 forbidden", "403 forbidden", "403 forbidden", "404 workspace_not_found"}},
    {"POST", "/v1/workspaces/{ws}/transfer-ownership", R"({"user_id":"nobody"})",
                                                              {"403 forbidden", "404 member_not_found", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "404 workspace_not_found"}},
    {"POST", "/v1/workspaces/{ws}/keys", R"({"name":"k{n}","scopes":["workspace:read"]})",
                                                              {"400 missing_field", "201", "403 forbidden", "201", "403 forbidden", "403 forbidden", "403 forbidden", "404 workspace_not_found"}},
    {"DELETE", "/v1/workspaces/{ws}/keys/00000000-0000-0000-0000-000000000000", "",
                                                              {"404 key_not_found", "404 key_not_found", "403 forbidden", "404 key_not_found", "403 forbidden", "404 key_not_found", "403 forbidden", "404 workspace_not_found"}},
    {"POST", "/v1/workspaces/{ws}/freeze", "",                {"409 operation_in_progress", "409 operation_in_progress", "403 forbidden", "409 operation_in_progress", "403 forbidden", "403 forbidden", "403 forbidden", "404 workspace_not_found"}},
    {"POST", "/v1/workspaces/{ws}/unfreeze", "",              {"409 invalid_transition", "409 invalid_transition", "403 forbidden", "409 invalid_transition", "403 forbidden", "403 forbidden", "403 forbidden", "404 workspace_not_found"}},
    {"POST", "/v1/workspaces/{ws}/offboard", "",              {"409 operation_in_progress", "409 operation_in_progress", "403 forbidden", "409 operation_in_progress", "403 forbidden", "403 forbidden", "403 forbidden", "404 workspace_not_found"}},
    {"POST", "/v1/workspaces/{ws}/export", "",                {"202", "202", "403 forbidden", "202", "403 forbidden", "403 forbidden", "403 forbidden", "404 workspace_not_found"}},
    {"POST", "/v1/workspaces/{ws}/plan", R"({"plan":"pro"})", {"403 forbidden", "409 plan_unchanged", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "404 workspace_not_found"}},
    {"DELETE", "/v1/workspaces/{ws}", "",                     {"403 forbidden", "409 operation_in_progress", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "404 workspace_not_found"}},
    {"GET", "/v1/sagas", "",                                  {"200", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden"}},
    {"GET", "/v1/schedules", "",                              {"200", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden"}},
    {"GET", "/v1/invitations?email=x@example.com", "",        {"200", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden", "403 forbidden"}},
    // clang-format on
};

std::string fill(std::string text, const std::string& ws, int n) {
  text = std::regex_replace(text, std::regex("\\{ws\\}"), ws);
  return std::regex_replace(text, std::regex("\\{n\\}"), std::to_string(n));
}

TEST_F(Team, RoleMatrix) {
  const std::string ws = api().create_workspace("Matrix Co", "boss");
  const std::string other = api().create_workspace("Elsewhere", "stranger");
  std::array<std::string, kCallers> keys;
  keys[kOperator] = ops();
  keys[kOwner] = api().owner_key(ws);
  keys[kAdmin] = join(ws, "adm", "admin");
  keys[kMember] = join(ws, "mem", "member");
  join(ws, "target", "member");
  keys[kOwnerRead] = own_key(ws, keys[kOwner], {"read"});
  keys[kAdminRead] = own_key(ws, keys[kAdmin], {"read"});
  keys[kMemberRead] = api().member_key(ws, "mem", {"read"});  // members mint no keys: break-glass
  keys[kStranger] = api().owner_key(other);
  api().scalar("UPDATE wsflow.workspaces SET active_saga_id = gen_random_uuid() WHERE id = '" + ws + "' RETURNING 1");

  int n = 0;
  for (const MatrixRow& row : kMatrix) {
    for (int caller = 0; caller < kCallers; ++caller) {
      const Response r = api().request(row.method, fill(row.path, ws, n), keys[caller], fill(row.body, ws, n));
      ++n;
      EXPECT_EQ(outcome(r), row.expected[caller]) << row.method << " " << row.path << " " << row.body << " as "
                                                  << kCallerNames[caller] << ": " << r.body.dump();
    }
  }
}

// --- escalation: nobody obtains more than they hold -------------------------

TEST_F(Team, AnAdminCannotBecomeTheOwner) {
  const std::string ws = api().create_workspace("Escalation", "queen");
  const std::string admin = join(ws, "knave", "admin");
  const std::string path = "/v1/workspaces/" + ws;
  // The hole this issue closes: a key for the owner's user_id.
  EXPECT_EQ(outcome(api().post(path + "/keys", admin, R"({"user_id":"queen"})")), "403 forbidden");
  EXPECT_EQ(outcome(api().request("PATCH", path + "/members/knave", admin, R"({"role":"owner"})")), "403 forbidden");
  EXPECT_EQ(outcome(api().request("PATCH", path + "/members/queen", admin, R"({"role":"member"})")), "403 forbidden");
  EXPECT_EQ(outcome(api().request("DELETE", path + "/members/queen", admin)), "403 forbidden");
  EXPECT_EQ(outcome(api().post(path + "/transfer-ownership", admin, R"({"user_id":"knave"})")), "403 forbidden");
  EXPECT_EQ(outcome(api().post(path + "/invitations", admin, R"({"email":"x@example.com","role":"owner"})")),
            "400 invalid_field");
  const json owners_keys = api().get(path + "/keys", ops()).body["data"];  // a copy: the response is a temporary
  std::string owner_key_id;
  for (const auto& k : owners_keys) {
    if (k["user_id"] == "queen") owner_key_id = k["id"];
  }
  EXPECT_EQ(outcome(api().request("DELETE", path + "/keys/" + owner_key_id, admin)), "403 forbidden");
  EXPECT_EQ(outcome(api().request("DELETE", path, admin)), "403 forbidden");
  // Every key the admin holds or mints still acts as an admin.
  const std::string minted = own_key(ws, admin, {"*"});
  EXPECT_EQ(outcome(api().request("DELETE", path, minted)), "403 forbidden");
  EXPECT_EQ(api().get(path, ops()).body["status"], "active");
}

TEST_F(Team, AKeyNeverMintsWiderScopesThanItHolds) {
  const std::string ws = api().create_workspace("Narrow", "nora");
  const std::string path = "/v1/workspaces/" + ws + "/keys";
  const std::string narrow = own_key(ws, api().owner_key(ws), {"keys:write", "workspace:read"});
  EXPECT_EQ(outcome(api().post(path, narrow, R"({"scopes":["*"]})")), "403 forbidden");
  EXPECT_EQ(outcome(api().post(path, narrow, R"({"scopes":["write"]})")), "403 forbidden");
  EXPECT_EQ(outcome(api().post(path, narrow, R"({"scopes":["lifecycle:write"]})")), "403 forbidden");
  EXPECT_EQ(outcome(api().post(path, narrow, R"({"scopes":["workspace:read"]})")), "201");
  const Response defaulted = api().post(path, narrow, "{}");  // no scopes: the caller's own
  EXPECT_EQ(defaulted.body["scopes"], json({"keys:write", "workspace:read"}));
  EXPECT_EQ(outcome(api().post(path, narrow, R"({"scopes":["root"]})")), "400 invalid_field");
  // A CI key that only exports.
  const std::string ci = own_key(ws, api().owner_key(ws), {"exports:write"});
  EXPECT_EQ(outcome(api().post("/v1/workspaces/" + ws + "/export", ci)), "202");
  EXPECT_EQ(outcome(api().post("/v1/workspaces/" + ws + "/freeze", ci)), "403 forbidden");
  EXPECT_EQ(outcome(api().post("/v1/workspaces/" + ws + "/invitations", ci, R"({"email":"c@example.com"})")),
            "403 forbidden");
}

TEST_F(Team, OperatorsMintOnlyAsAuditedBreakGlass) {
  const std::string ws = api().create_workspace("Support Case", "sam");
  const std::string path = "/v1/workspaces/" + ws + "/keys";
  EXPECT_EQ(outcome(api().post(path, ops(), R"({"user_id":"sam"})")), "400 invalid_field");
  EXPECT_EQ(outcome(api().post(path, ops(), R"({"on_behalf_of":"sam"})")), "400 missing_field");
  const Response minted = api().post(path, ops(), R"({"on_behalf_of":"sam","reason":"ticket 4711","scopes":["read"]})");
  ASSERT_EQ(minted.status, 201) << minted.body.dump();
  EXPECT_EQ(outcome(api().get("/v1/workspaces/" + ws, minted.body["key"])), "200");
  bool listed = false;
  const Response keys = api().get(path, api().owner_key(ws));
  for (const auto& k : keys.body["data"]) {
    if (k["id"] != minted.body["id"]) continue;
    listed = true;
    EXPECT_EQ(k["mint_reason"], "ticket 4711");
    EXPECT_EQ(k["created_by"].get<std::string>().rfind("operator:", 0), 0u);
    EXPECT_EQ(k["user_id"], "sam");
  }
  EXPECT_TRUE(listed);
  EXPECT_TRUE(has_audit(ws, "api_key.minted_on_behalf"));
  EXPECT_EQ(outcome(api().request("DELETE", "/v1/workspaces/" + ws, ops())), "403 forbidden");
  EXPECT_EQ(outcome(api().post("/v1/workspaces/" + ws + "/transfer-ownership", ops(), R"({"user_id":"sam"})")),
            "403 forbidden");
}

TEST_F(Team, OperatorKeysAreScopedSoASupportConsoleCanBeReadOnly) {
  const auto make_key = [&](const std::string& scopes) {
    const auto out = testing::run_command(
        {WSFLOW_BINARY, "--database-url", api().dsn(), "keys", "create", "--name", "support", "--scopes", scopes});
    EXPECT_EQ(out.status, 0) << out.text;
    return out.text.substr(0, out.text.find('\n'));
  };
  const std::string ws = api().create_workspace("Supported", "sue");
  const std::string saga = api().post("/v1/workspaces/" + ws + "/export", ops()).body["saga_id"];
  const std::string support = make_key("sagas:read");
  EXPECT_EQ(outcome(api().get("/v1/sagas", support)), "200");
  EXPECT_EQ(outcome(api().get("/v1/sagas/" + saga, support)), "200");
  EXPECT_EQ(outcome(api().get("/v1/schedules", support)), "200");
  EXPECT_EQ(outcome(api().get("/metrics", support)), "200");
  EXPECT_EQ(outcome(api().post("/v1/sagas/" + saga + "/cancel", support)), "403 forbidden");
  EXPECT_EQ(outcome(api().post("/v1/schedules/invitations.expire/trigger", support)), "403 forbidden");
  EXPECT_EQ(outcome(api().get("/v1/workspaces/" + ws, support)), "403 forbidden");
  EXPECT_EQ(outcome(api().post("/v1/workspaces", support, R"({"name":"x","owner":{"user_id":"a","email":"a@b.co"}})")),
            "403 forbidden");

  const std::string creator = make_key("workspaces:create,workspaces:read");
  const Response created =
      api().post("/v1/workspaces", creator, R"({"name":"Created By Scope","owner":{"user_id":"c","email":"c@b.co"}})");
  EXPECT_EQ(created.status, 202) << created.body.dump();
  EXPECT_EQ(outcome(api().get("/v1/workspaces/" + ws, creator)), "200");
  EXPECT_EQ(outcome(api().post("/v1/workspaces/" + ws + "/freeze", creator)), "403 forbidden");
  EXPECT_EQ(outcome(api().get("/v1/sagas", creator)), "403 forbidden");

  const auto refused = testing::run_command(
      {WSFLOW_BINARY, "--database-url", api().dsn(), "keys", "create", "--scopes", "sagas:everything"});
  EXPECT_NE(refused.status, 0);
}

// --- invitations ------------------------------------------------------------

TEST_F(Team, InvitationIsAcceptedOnceWithTheTokenAlone) {
  const std::string ws = api().create_workspace("Invites", "ivy");
  const std::string token = invite(ws, api().owner_key(ws), "Jo@Example.com", "admin");
  EXPECT_EQ(token.rfind("wsi_", 0), 0u);
  const Response pending = api().get("/v1/invitations?email=jo@example.com", ops());
  ASSERT_EQ(pending.body["data"].size(), 1u);
  EXPECT_EQ(pending.body["data"][0]["workspace_id"], ws);
  EXPECT_EQ(pending.body["data"][0]["state"], "pending");
  EXPECT_FALSE(pending.body["data"][0].contains("token"));  // shown once, at creation

  EXPECT_EQ(outcome(api().post("/v1/invitations/accept", "", json{{"token", token}}.dump())), "400 missing_field");
  EXPECT_EQ(outcome(api().post("/v1/invitations/accept", "", R"({"token":"wsi_nope","user_id":"jo"})")),
            "400 invalid_field");
  const Response accepted = api().post("/v1/invitations/accept", "", json{{"token", token}, {"user_id", "jo"}}.dump());
  ASSERT_EQ(accepted.status, 201) << accepted.body.dump();
  EXPECT_EQ(accepted.body["member"]["role"], "admin");
  const std::string jo = accepted.body["key"]["key"];
  EXPECT_EQ(outcome(api().get("/v1/workspaces/" + ws, jo)), "200");
  EXPECT_EQ(outcome(api().post("/v1/invitations/accept", "", json{{"token", token}, {"user_id", "jo2"}}.dump())),
            "409 invitation_not_pending");
  EXPECT_TRUE(api().get("/v1/invitations?email=jo@example.com", ops()).body["data"].empty());
  EXPECT_TRUE(has_audit(ws, "invitation.created"));
  EXPECT_TRUE(has_audit(ws, "invitation.accepted"));
  // A second invitation for a member's email is refused.
  EXPECT_EQ(outcome(api().post("/v1/workspaces/" + ws + "/invitations", api().owner_key(ws),
                               R"({"email":"jo@example.com"})")),
            "409 member_exists");
}

TEST_F(Team, SecretsAreShownOnceEvenToAnIdempotentReplay) {
  const std::string ws = api().create_workspace("Secretive", "sly");
  const std::string owner = api().owner_key(ws);
  const Response first =
      api().post("/v1/workspaces/" + ws + "/invitations", owner, R"({"email":"s@example.com"})", "invite-s");
  const Response replay =
      api().post("/v1/workspaces/" + ws + "/invitations", owner, R"({"email":"s@example.com"})", "invite-s");
  ASSERT_EQ(first.status, 201);
  EXPECT_EQ(replay.status, 201);
  EXPECT_EQ(replay.body["id"], first.body["id"]);
  EXPECT_TRUE(first.body["token"].is_string());
  EXPECT_TRUE(replay.body["token"].is_null());
  const Response key = api().post("/v1/workspaces/" + ws + "/keys", owner, R"({"name":"once"})", "key-once");
  EXPECT_TRUE(
      api().post("/v1/workspaces/" + ws + "/keys", owner, R"({"name":"once"})", "key-once").body["key"].is_null());
  EXPECT_EQ(api().scalar("SELECT count(*) FROM wsflow.http_idempotency WHERE body LIKE '%wsi\\_%' OR body LIKE "
                         "'%\"" +
                         key.body["key"].get<std::string>() + "\"%'"),
            0);
}

TEST_F(Team, ResendKillsTheOldTokenDeclineAndCancelEndIt) {
  const std::string ws = api().create_workspace("Resends", "rae");
  const std::string owner = api().owner_key(ws);
  const Response created = api().post("/v1/workspaces/" + ws + "/invitations", owner, R"({"email":"kai@example.com"})");
  const std::string id = created.body["id"];
  const Response resent = api().post("/v1/workspaces/" + ws + "/invitations/" + id + "/resend", owner);
  ASSERT_EQ(resent.status, 200) << resent.body.dump();
  EXPECT_NE(resent.body["token"], created.body["token"]);
  EXPECT_EQ(outcome(api().post("/v1/invitations/accept", "",
                               json{{"token", created.body["token"]}, {"user_id", "kai"}}.dump())),
            "404 invitation_not_found");
  EXPECT_EQ(outcome(api().post("/v1/invitations/decline", "", json{{"token", resent.body["token"]}}.dump())), "200");
  EXPECT_EQ(outcome(api().post("/v1/invitations/accept", "",
                               json{{"token", resent.body["token"]}, {"user_id", "kai"}}.dump())),
            "409 invitation_not_pending");
  const std::string other =
      api().post("/v1/workspaces/" + ws + "/invitations", owner, R"({"email":"lee@example.com"})").body["id"];
  EXPECT_EQ(outcome(api().post("/v1/workspaces/" + ws + "/invitations/" + other + "/cancel", owner)), "200");
  EXPECT_EQ(outcome(api().post("/v1/workspaces/" + ws + "/invitations/" + other + "/cancel", owner)),
            "409 invitation_not_pending");
  const Response listed = api().get("/v1/workspaces/" + ws + "/invitations?state=cancelled", owner);
  ASSERT_EQ(listed.body["data"].size(), 1u);
  EXPECT_EQ(listed.body["data"][0]["id"], other);
}

TEST_F(Team, TheExpirySagaExpiresDueInvitationsIntoTheAuditFeed) {
  const std::string ws = api().create_workspace("Expiring", "eve");
  const std::string id =
      api()
          .post("/v1/workspaces/" + ws + "/invitations", api().owner_key(ws), R"({"email":"old@example.com"})")
          .body["id"];
  // Seven days pass (the clock-moved test of the exact moment is team_pgtest).
  api().scalar("UPDATE wsflow.invitations SET expires_at = now() - interval '1 second' WHERE id = '" + id +
               "' RETURNING 1");
  const Response triggered = api().post("/v1/schedules/invitations.expire/trigger", ops());
  ASSERT_EQ(triggered.status, 202) << triggered.body.dump();
  std::string state;
  for (int i = 0; i < 200 && state != "expired"; ++i) {
    std::this_thread::sleep_for(50ms);
    state = api().get("/v1/workspaces/" + ws + "/invitations", ops()).body["data"][0].value("state", "");
  }
  EXPECT_EQ(state, "expired");
  EXPECT_TRUE(has_audit(ws, "invitation.expired"));
}

// --- members, ownership, plans ----------------------------------------------

TEST_F(Team, RemovalRevokesKeysAtOnceWhileTheirSagasRunOn) {
  const std::string ws = api().create_workspace("Removal", "rita");
  const std::string admin = join(ws, "al", "admin");
  EXPECT_EQ(outcome(api().get("/v1/workspaces/" + ws, admin)), "200");
  const Response exported = api().post("/v1/workspaces/" + ws + "/export", admin);  // a saga the admin started
  ASSERT_EQ(exported.status, 202);
  const Response removed = api().request("DELETE", "/v1/workspaces/" + ws + "/members/al", api().owner_key(ws));
  ASSERT_EQ(removed.status, 200) << removed.body.dump();
  EXPECT_EQ(removed.body["keys_revoked"], 1);
  EXPECT_EQ(outcome(api().get("/v1/workspaces/" + ws, admin)), "401 unauthorized");  // the very next request
  // The export the admin started goes on to write its archive.
  const std::string export_path = "/v1/workspaces/" + ws + "/exports/" + exported.body["export_id"].get<std::string>();
  std::string export_status;
  for (int i = 0; i < 200 && export_status != "completed"; ++i) {
    std::this_thread::sleep_for(50ms);
    export_status = api().get(export_path, ops()).body.value("status", "");
  }
  EXPECT_EQ(export_status, "completed");
  bool revoked_listed = false;
  const Response keys = api().get("/v1/workspaces/" + ws + "/keys", api().owner_key(ws));
  for (const auto& k : keys.body["data"]) {
    if (k["user_id"] == "al") revoked_listed = !k["revoked_at"].is_null();
  }
  EXPECT_TRUE(revoked_listed);
  const auto actions = audit_actions(ws);
  EXPECT_NE(std::find(actions.begin(), actions.end(), "member.removed"), actions.end());
  EXPECT_NE(std::find(actions.begin(), actions.end(), "workspace.export_requested"), actions.end());  // history stays
}

TEST_F(Team, MembersLeaveTheOwnerTransfersFirst) {
  const std::string ws = api().create_workspace("Leaving Team", "lou");
  const std::string member = join(ws, "max", "member");
  const std::string owner = api().owner_key(ws);
  EXPECT_EQ(outcome(api().request("DELETE", "/v1/workspaces/" + ws + "/members/max", member)), "200");
  EXPECT_EQ(outcome(api().get("/v1/workspaces/" + ws, member)), "401 unauthorized");
  EXPECT_EQ(outcome(api().request("DELETE", "/v1/workspaces/" + ws + "/members/lou", owner)), "409 owner_cannot_leave");
  const std::string admin = join(ws, "ann", "admin");
  const Response transferred =
      api().post("/v1/workspaces/" + ws + "/transfer-ownership", owner, R"({"user_id":"ann"})");
  ASSERT_EQ(transferred.status, 200) << transferred.body.dump();
  EXPECT_EQ(transferred.body["owner"]["user_id"], "ann");
  // The old owner's key now acts as an admin; the new owner's as the owner.
  EXPECT_EQ(outcome(api().post("/v1/workspaces/" + ws + "/plan", owner, R"({"plan":"enterprise"})")), "403 forbidden");
  EXPECT_EQ(outcome(api().request("DELETE", "/v1/workspaces/" + ws + "/members/lou", owner)), "200");  // may leave now
  std::map<std::string, std::string> roles;
  const Response members = api().get("/v1/workspaces/" + ws + "/members", admin);
  EXPECT_EQ(members.status, 200) << members.body.dump();
  for (const auto& m : members.body["data"]) roles[m["user_id"]] = m["role"];
  EXPECT_EQ(roles, (std::map<std::string, std::string>{{"ann", "owner"}}));
  EXPECT_TRUE(has_audit(ws, "ownership.transferred"));
  EXPECT_TRUE(has_audit(ws, "member.left"));
}

TEST_F(Team, PlanLimitsCountPendingInvitationsAndDowngradesAreRefused) {
  const Response created =
      api().post("/v1/workspaces", ops(),
                 R"({"name":"Starter Co","plan":"starter","owner":{"user_id":"stan","email":"stan@example.com"}})");
  ASSERT_EQ(created.status, 202);
  const std::string ws = created.body["workspace_id"];
  const std::string owner = created.body["owner_key"]["key"];
  api().wait_status(ws, {"active"});
  for (int i = 1; i <= 4; ++i) invite(ws, owner, "seat" + std::to_string(i) + "@example.com");
  const Response full = api().post("/v1/workspaces/" + ws + "/invitations", owner, R"({"email":"five@example.com"})");
  EXPECT_EQ(outcome(full), "409 plan_limit");
  EXPECT_EQ(full.body["error"]["plan"], "starter");
  EXPECT_EQ(full.body["error"]["limit"], 5);
  EXPECT_EQ(full.body["error"]["count"], 5);
  const Response downgrade = api().post("/v1/workspaces/" + ws + "/plan", owner, R"({"plan":"free"})");
  EXPECT_EQ(outcome(downgrade), "409 plan_limit");
  EXPECT_EQ(downgrade.body["error"]["count"], 5);
  EXPECT_EQ(outcome(api().post("/v1/workspaces/" + ws + "/plan", owner, R"({"plan":"platinum"})")),
            "400 invalid_field");
  const Response upgrade = api().post("/v1/workspaces/" + ws + "/plan", owner, R"({"plan":"pro"})");
  ASSERT_EQ(upgrade.status, 202) << upgrade.body.dump();
  std::string plan;
  for (int i = 0; i < 200 && plan != "pro"; ++i) {
    std::this_thread::sleep_for(50ms);
    plan = api().get("/v1/workspaces/" + ws, owner).body.value("plan", "");
  }
  EXPECT_EQ(plan, "pro");
  EXPECT_TRUE(has_audit(ws, "workspace.plan_changed"));
  EXPECT_EQ(outcome(api().post("/v1/workspaces/" + ws + "/invitations", owner, R"({"email":"five@example.com"})")),
            "201");
}

TEST_F(Team, OneUserBelongsToManyWorkspacesWithADifferentRoleInEach) {
  const std::string first = api().create_workspace("First Home", "f-owner");
  const std::string second = api().create_workspace("Second Home", "s-owner");
  const std::string as_admin = join(first, "multi", "admin");
  const std::string as_member = join(second, "multi", "member");
  EXPECT_EQ(outcome(api().post("/v1/workspaces/" + first + "/invitations", as_admin, R"({"email":"z@example.com"})")),
            "201");
  EXPECT_EQ(outcome(api().post("/v1/workspaces/" + second + "/invitations", as_member, R"({"email":"z@example.com"})")),
            "403 forbidden");
  EXPECT_EQ(outcome(api().get("/v1/workspaces/" + second, as_admin)), "404 workspace_not_found");  // keys stay home
  ASSERT_EQ(api().get("/v1/workspaces/" + first + "/members", as_admin).status, 200);
  // Usage is written within a second of the request: the invitation, the
  // refused read and the list, made with the admin's key (the operator's
  // reads here count for no member).
  json multi = json::object();
  for (int i = 0; i < 100 && multi.value("request_count", 0) < 3; ++i) {
    if (i > 0) std::this_thread::sleep_for(50ms);
    const Response listed = api().get("/v1/workspaces/" + first + "/members", ops());
    for (const auto& m : listed.body["data"]) {
      if (m["user_id"] == "multi") multi = m;
    }
  }
  EXPECT_EQ(multi["role"], "admin");
  EXPECT_EQ(multi["request_count"], 3);
  EXPECT_FALSE(multi["last_active_at"].is_null());
}

TEST_F(Team, ConcurrentRequestsWithOneKeyAreEachCounted) {
  const std::string ws = api().create_workspace("Busy Home", "b-owner");
  const std::string key = join(ws, "busy", "admin");
  constexpr int kThreads = 4, kEach = 10;
  std::vector<std::thread> clients;
  std::atomic<int> ok = 0;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) ok += api().get("/v1/workspaces/" + ws, key).status == 200;
    });
  }
  for (auto& c : clients) c.join();
  ASSERT_EQ(ok, kThreads * kEach);
  json busy = json::object();
  for (int i = 0; i < 100 && busy.value("request_count", 0) < kThreads * kEach; ++i) {
    if (i > 0) std::this_thread::sleep_for(50ms);
    const Response listed = api().get("/v1/workspaces/" + ws + "/members", ops());
    for (const auto& m : listed.body["data"]) {
      if (m["user_id"] == "busy") busy = m;
    }
  }
  EXPECT_EQ(busy["request_count"], kThreads * kEach);
  const Response keys = api().get("/v1/workspaces/" + ws + "/keys", ops());
  bool used = false;
  for (const auto& k : keys.body["data"]) used = used || !k["last_used_at"].is_null();
  EXPECT_TRUE(used) << keys.body.dump();
}

// --- schedules ----------------------------------------------------------------

TEST_F(Team, SchedulesAreListedPausedResumedAndBackfilledByOperators) {
  const Response listed = api().get("/v1/schedules", ops());
  ASSERT_EQ(listed.status, 200) << listed.body.dump();
  ASSERT_EQ(listed.body["data"].size(), 1u);
  const json& s = listed.body["data"][0];
  EXPECT_EQ(s["name"], "invitations.expire");
  EXPECT_EQ(s["cron"], "* * * * *");
  EXPECT_EQ(s["timezone"], "UTC");
  EXPECT_EQ(s["saga"], "invitations.expire");
  const std::string next = s["next_due_at"];
  EXPECT_EQ(next.substr(next.size() - 9), ":00+00:00") << next;  // RFC 3339 with offset, whole minutes

  const Response paused = api().post("/v1/schedules/invitations.expire/pause", ops(), R"({"note":"mail outage"})");
  EXPECT_EQ(paused.body["paused"], true);
  EXPECT_EQ(api().get("/v1/schedules", ops()).body["data"][0]["note"], "mail outage");
  EXPECT_EQ(api().post("/v1/schedules/invitations.expire/resume", ops(), "{}").body["paused"], false);
  EXPECT_EQ(outcome(api().post("/v1/schedules/nothing/trigger", ops())), "404 schedule_not_found");
  EXPECT_EQ(outcome(api().post("/v1/schedules/invitations.expire/backfill", ops(), R"({"from":"yesterday","to":"x"})")),
            "400 invalid_field");
  EXPECT_EQ(outcome(api().post("/v1/schedules/invitations.expire/backfill", ops(),
                               R"({"from":"2020-01-01T00:00:00Z","to":"2020-01-02T00:00:00Z"})")),
            "400 invalid_range");  // 1441 slots: over the cap
  const std::string body = R"({"from":"2026-01-01T00:00:00Z","to":"2026-01-01T00:02:00Z"})";
  const Response backfilled = api().post("/v1/schedules/invitations.expire/backfill", ops(), body);
  ASSERT_EQ(backfilled.status, 202) << backfilled.body.dump();
  ASSERT_EQ(backfilled.body["runs"].size(), 3u);
  EXPECT_EQ(backfilled.body["runs"][0]["due_at"], "2026-01-01T00:00:00Z");
  const Response again = api().post("/v1/schedules/invitations.expire/backfill", ops(), body);
  EXPECT_EQ(again.body["runs"][2]["saga_id"], backfilled.body["runs"][2]["saga_id"]);  // each slot once
  EXPECT_EQ(again.body["runs"][2]["created"], false);

  const auto cli = testing::run_command({WSFLOW_BINARY, "--database-url", api().dsn(), "--definitions",
                                         std::string(WSFLOW_SOURCE_DIR) + "/definitions", "schedules", "list"});
  EXPECT_EQ(cli.status, 0) << cli.text;
  EXPECT_NE(cli.text.find("invitations.expire  cron \"* * * * *\" UTC  next "), std::string::npos) << cli.text;
}

}  // namespace
}  // namespace wsflow
