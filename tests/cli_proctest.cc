// The operators' CLI (`wsflow sagas|workspaces …`) against a running serve,
// through the HTTP API: golden output for people, JSON for scripts, exit
// codes, and repairs with their audit trail and scopes.
//
// Golden files live in tests/golden/; ids, times and durations are
// normalised. WSFLOW_UPDATE_GOLDEN=1 rewrites them (review the diff).

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/live_server.h"

namespace wsflow::testing {
namespace {

struct LongWindow {
  static constexpr const char* kWindow = "1h";  // offboarded workspaces wait, so their saga can be repaired
};

class CliTest : public SharedServerSuite<LongWindow> {
 protected:
  Output wsflow(std::vector<std::string> args, const std::string& key) {
    std::vector<std::string> argv = {"env", "-u", "WSFLOW_URL", "WSFLOW_API_KEY=" + key, "NO_COLOR=1", WSFLOW_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--url", api().url()});
    return run_command(argv);
  }

  // Runs `args` with the operator key, expecting success.
  std::string ok(const std::vector<std::string>& args) {
    const Output out = wsflow(args, ops());
    EXPECT_EQ(out.status, 0) << out.text;
    return out.text;
  }

  static std::string normalised(std::string text) {
    const std::pair<const char*, const char*> rules[] = {
        {"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>"},
        {"\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}", "<time>"},
        {"\\d{2}:\\d{2}:\\d{2}\\.\\d{3}", "<clock>"},
        {"\\b\\d+(\\.\\d+)?(ms|s|m|h)\\b", "<dur>"},
        {"ws-[0-9a-f]+", "<slug>"},
        {" {2,}", "  "},  // column widths follow the values replaced above
        {" +\n", "\n"}};
    for (const auto& [pattern, replacement] : rules) text = std::regex_replace(text, std::regex(pattern), replacement);
    return text;
  }

  void expect_golden(const std::string& name, const std::string& output) {
    const std::filesystem::path file = std::filesystem::path(WSFLOW_SOURCE_DIR) / "tests" / "golden" / name;
    const std::string actual = normalised(output);
    if (std::getenv("WSFLOW_UPDATE_GOLDEN")) {
      std::ofstream(file) << actual;
      return;
    }
    EXPECT_EQ(actual, read_text_file(file).value_or("<missing " + file.string() + ">")) << "raw output:\n" << output;
  }

  std::string wait_saga_state(const std::string& id, const std::set<std::string>& states) {
    std::string state;
    for (int i = 0; i < 600; ++i) {
      state = api().get("/v1/sagas/" + id, ops()).body.value("state", "");
      if (states.count(state)) break;
      std::this_thread::sleep_for(50ms);
    }
    return state;
  }
};

TEST_F(CliTest, SagasShowPrintsStepsAndTheTimeline) {
  const Response started = api().post("/v1/sagas", ops(), R"({"definition":"invitations.expire"})");
  ASSERT_EQ(started.status, 202) << started.body.dump();
  const std::string id = started.body["saga_id"];
  ASSERT_EQ(wait_saga_state(id, {"completed"}), "completed");
  expect_golden("sagas_show.txt", ok({"sagas", "show", id}));
  const json parsed = json::parse(ok({"sagas", "show", id, "--json"}));
  EXPECT_EQ(parsed["saga"]["id"], id);
  EXPECT_EQ(parsed["events"].back()["kind"], "completed");
}

TEST_F(CliTest, SagasAndWorkspacesListAndShow) {
  const std::string ws = api().create_workspace("Golden Inc");
  expect_golden("sagas_list.txt", ok({"sagas", "list", "--workspace", ws}));
  const json sagas = json::parse(ok({"sagas", "list", "--workspace", ws, "--json"}));
  ASSERT_EQ(sagas.size(), 1u);
  EXPECT_EQ(sagas[0]["definition"], "workspace.create");
  expect_golden("workspaces_show.txt", ok({"workspaces", "show", ws}));
  EXPECT_NE(ok({"workspaces", "list"}).find(ws), std::string::npos);
}

TEST_F(CliTest, ExitCodesTellScriptsWhatWentWrong) {
  const std::string ws = api().create_workspace("Codes Inc");
  const std::string create_saga = json::parse(ok({"sagas", "list", "--workspace", ws, "--json"}))[0]["id"];
  const Output missing = wsflow({"sagas", "show", "00000000-0000-0000-0000-000000000000"}, ops());
  EXPECT_EQ(missing.status, 3) << missing.text;
  const Output no_key = wsflow({"sagas", "list"}, "");
  EXPECT_EQ(no_key.status, 4) << no_key.text;
  EXPECT_NE(no_key.text.find("WSFLOW_API_KEY"), std::string::npos) << no_key.text;
  const Output refused = wsflow({"sagas", "pause", create_saga}, ops());
  EXPECT_EQ(refused.status, 1) << refused.text;
  EXPECT_NE(refused.text.find("allowed actions: rerun-from"), std::string::npos) << refused.text;
  const Output unreachable = run_command({"env", "WSFLOW_API_KEY=" + ops(), WSFLOW_BINARY, "sagas", "list", "--url",
                                          "http://127.0.0.1:" + std::to_string(free_port())});
  EXPECT_EQ(unreachable.status, 5) << unreachable.text;
}

TEST_F(CliTest, RepairsAreAuditedWithTheKeyAndNeedARepairScope) {
  const std::string ws = api().create_workspace("Repair Inc");
  const std::string owner = api().owner_key(ws);
  const Response offboard = api().post("/v1/workspaces/" + ws + "/offboard", owner);
  ASSERT_EQ(offboard.status, 202) << offboard.body.dump();
  const std::string id = offboard.body["saga_id"];
  ASSERT_EQ(wait_saga_state(id, {"waiting"}), "waiting");  // the 1h window

  // A read-only support key sees everything and repairs nothing.
  const Output key = run_command(
      {WSFLOW_BINARY, "--database-url", api().dsn(), "keys", "create", "--name", "support", "--scopes", "sagas:read"});
  ASSERT_EQ(key.status, 0) << key.text;
  const std::string support = key.text.substr(0, key.text.find('\n'));
  EXPECT_EQ(wsflow({"sagas", "show", id}, support).status, 0);
  const Output denied = wsflow({"sagas", "pause", id}, support);
  EXPECT_EQ(denied.status, 4) << denied.text;
  const Output preview = wsflow({"sagas", "cancel", id, "--dry-run"}, support);  // a preview only reads
  EXPECT_EQ(preview.status, 0) << preview.text;
  EXPECT_NE(preview.text.find("environment.unfreeze for freeze_data"), std::string::npos) << preview.text;

  EXPECT_NE(ok({"sagas", "pause", id, "--reason", "customer asked on ticket 7"}).find("is paused"), std::string::npos);
  const json audit = api().get("/v1/workspaces/" + ws + "/audit?order=desc&limit=5", ops()).body["data"];
  ASSERT_FALSE(audit.empty());
  EXPECT_EQ(audit[0]["action"], "saga.pause");
  EXPECT_EQ(audit[0]["detail"]["key_name"], "ops");
  EXPECT_EQ(audit[0]["detail"]["reason"], "customer asked on ticket 7");

  // Bulk: a dry run lists what would be touched; the real run links each saga to it.
  const std::string dry = ok({"sagas", "bulk", "resume", "--workspace", ws, "--state", "paused", "--dry-run"});
  EXPECT_NE(dry.find(id), std::string::npos) << dry;
  EXPECT_EQ(api().get("/v1/sagas/" + id, ops()).body["state"], "paused");
  const json bulk = json::parse(ok({"sagas", "bulk", "resume", "--workspace", ws, "--state", "paused", "--json"}));
  EXPECT_EQ(bulk["touched"], 1);
  const json events = api().get("/v1/sagas/" + id + "/events?limit=100", ops()).body["data"];
  bool linked = false;
  for (const auto& e : events)
    linked = linked || (e["kind"] == "operator_resume" && e["detail"]["bulk_id"] == bulk["bulk_id"]);
  EXPECT_TRUE(linked) << events.dump();
  EXPECT_EQ(wait_saga_state(id, {"waiting"}), "waiting");  // back to its window, due time kept
  // The timeline shows who did what.
  const std::string shown = ok({"sagas", "show", id});
  EXPECT_NE(shown.find("operator_pause"), std::string::npos) << shown;
  EXPECT_NE(shown.find("(key ops): customer asked on ticket 7"), std::string::npos) << shown;
}

TEST_F(CliTest, TheListSaysWhySagasAreStuck) {
  // No engine takes a saga due in the past when the grace is over: a saga
  // whose engine died (its lease expired) is the one an operator finds.
  const std::string ws = api().create_workspace("Stuck Inc");
  const json listed = api().get("/v1/sagas?workspace_id=" + ws, ops()).body["data"];
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_TRUE(listed[0]["stuck"].is_null());
  api().scalar(
      "UPDATE wsflow.sagas SET state = 'running', lease_owner = 'gone/1', lease_token = gen_random_uuid(), "
      "lease_until = now() - interval '1 hour' WHERE workspace_id = '" +
      ws + "' RETURNING 1");
  const json stuck = api().get("/v1/sagas?stuck=true&reason=lease_expired&workspace_id=" + ws, ops()).body;
  ASSERT_EQ(stuck["data"].size(), 1u) << stuck.dump();
  EXPECT_EQ(stuck["data"][0]["stuck"]["detail"]["lease_owner"], "gone/1");
  const std::string table = ok({"sagas", "list", "--stuck", "--workspace", ws});
  EXPECT_NE(table.find("lease_expired"), std::string::npos) << table;
  const Response bad = api().get("/v1/sagas?reason=tired", ops());
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body["error"]["field"], "reason");
}

TEST_F(CliTest, JsonLogsNameTheSagaAndCarryNoSecret) {
  hooks_->fail_next(1, "workspace.created");  // one failed attempt to log
  const std::string ws = api().create_workspace("Logged Inc");
  const std::string owner = api().owner_key(ws);
  ASSERT_FALSE(owner.empty());
  const std::string log = api().log();
  std::istringstream lines(log);
  std::string line;
  int records = 0;
  bool attempt_logged = false;
  while (std::getline(lines, line)) {
    const json record = json::parse(line, nullptr, false);
    ASSERT_TRUE(record.is_object()) << "not a JSON log line: " << line;
    for (const char* field : {"ts", "level", "msg"}) EXPECT_TRUE(record.contains(field)) << line;
    ++records;
    if (record.value("workspace_id", "") == ws && record.value("step", "") == "notify") {
      attempt_logged = true;
      EXPECT_FALSE(record.value("saga_id", "").empty()) << line;
      EXPECT_EQ(record.value("attempt", 0), 1) << line;
    }
  }
  EXPECT_GT(records, 3);
  EXPECT_TRUE(attempt_logged) << log;
  // The webhook signing secret and every API key secret stay out of the logs.
  for (const std::string& secret : {std::string("s3cret"), ops(), owner, ops().substr(13), owner.substr(13)}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << "a secret reached the log";
  }
}

TEST(StuckForReal, AnEngineKilledMidStepLeavesALeaseExpiredSagaThatAnApiOnlyServeReports) {
  HookReceiver hooks;
  // The API alone (no engine): it reports, and never takes the saga over itself.
  Server api("", hooks.url(), "1h", "7d", {"--no-engine", "--stuck-grace", "500ms"});
  setenv("WSFLOW_TEST_FAULTS", "provision:prod:hang:60s", 1);
  TempDir dir;
  // A bare 0 is a duration too: no claiming ahead.
  auto engine = start_serve(api.dsn(), std::filesystem::path(WSFLOW_SOURCE_DIR) / "definitions", "engine-1",
                            dir.path() / "engine.log",
                            {"--listen", "127.0.0.1:0", "--lease", "1s", "--poll", "100ms", "--claim-ahead", "0"});
  unsetenv("WSFLOW_TEST_FAULTS");
  const Response created = api.post("/v1/workspaces", api.operator_key(),
                                    R"({"name":"Killed","owner":{"user_id":"k1","email":"k1@example.com"}})");
  ASSERT_EQ(created.status, 202) << created.body.dump();
  const std::string saga = created.body["saga_id"];
  // Dev and staging provisioned; prod hanging in the provisioner.
  auto prod_running = [&] {
    const Response detail = api.get("/v1/sagas/" + saga, api.operator_key());  // kept: the loop reads into it
    int completed = 0;
    bool prod = false;
    for (const auto& step : detail.body["steps"]) {
      if (step["step"] != "provision_environments") continue;
      if (step["state"] == "completed") ++completed;
      if (step["branch"] == "prod" && step["state"] == "running") prod = true;
    }
    return prod && completed == 2;
  };
  for (int i = 0; i < 300 && !prod_running(); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(prod_running()) << api.get("/v1/sagas/" + saga, api.operator_key()).body.dump() << engine->log();
  engine->signal(SIGKILL);
  ASSERT_EQ(engine->wait(10s), 128 + SIGKILL);

  json stuck;
  for (int i = 0; i < 200; ++i) {
    stuck = api.get("/v1/sagas/" + saga, api.operator_key()).body["stuck"];
    if (stuck.is_object() && stuck["reason"] == "lease_expired") break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(stuck.is_object()) << api.log();
  EXPECT_EQ(stuck["reason"], "lease_expired");
  EXPECT_EQ(stuck["detail"]["lease_owner"], "engine-1");
  EXPECT_EQ(stuck["detail"]["step"], "provision_environments");
  EXPECT_EQ(stuck["detail"]["branch"], "prod");
  const json listed = api.get("/v1/sagas?reason=lease_expired", api.operator_key()).body["data"];
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["id"], saga);
}

}  // namespace
}  // namespace wsflow::testing
