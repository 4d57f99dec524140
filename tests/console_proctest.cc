// The web console end to end in a real headless browser (Debian's chromium,
// driven by playwright-core from npm; both installed by scripts/setup): a
// workspace's create saga gets stuck on a hung prod provisioner (the
// provisioner's failing double), an operator finds it in the console, retries
// it and watches it complete. Screenshots go to the test's output directory.

#include <gtest/gtest.h>

#include "tests/support/live_server.h"

namespace wsflow::testing {
namespace {

TEST(Console, AnOperatorFindsAStuckSagaRetriesItAndWatchesItComplete) {
  const std::filesystem::path tools = std::filesystem::path(WSFLOW_SOURCE_DIR) / ".tools";
  const char* chromium_env = std::getenv("WSFLOW_CHROMIUM");
  const std::string chromium = chromium_env ? chromium_env : "/usr/bin/chromium";
  if (!std::filesystem::exists(chromium) || !std::filesystem::exists(tools / "node_modules/playwright-core")) {
    GTEST_SKIP() << "no browser here: " << chromium << " or " << tools / "node_modules/playwright-core"
                 << " is missing (scripts/setup installs both where apt and npm can be reached)";
  }
  HookReceiver hooks;
  Server api("provision:prod:hang_once:20s", hooks.url(), "2s", "7d", {"--stuck-after", "1s"});
  const Response created =
      api.post("/v1/workspaces", api.operator_key(),
               R"({"name":"Hung Prod","plan":"pro","owner":{"user_id":"u1","email":"u1@example.com"}})");
  ASSERT_EQ(created.status, 202) << created.body.dump();
  const std::string saga = created.body["saga_id"];
  bool stuck = false;
  for (int i = 0; i < 200 && !stuck; ++i) {
    stuck = api.get("/v1/sagas/" + saga, api.operator_key()).body["stuck"].is_object();
    if (!stuck) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(stuck) << api.get("/v1/sagas/" + saga, api.operator_key()).body.dump();

  const std::filesystem::path shots = std::filesystem::temp_directory_path() / ("wsflow-console-" + saga);
  std::filesystem::create_directories(shots);
  setenv("WSFLOW_TOOLS", tools.c_str(), 1);
  const Output browser = run_command({"node", std::string(WSFLOW_SOURCE_DIR) + "/tests/console/stuck_saga_retry.mjs",
                                      api.url(), api.operator_key(), saga, shots.string()});
  std::cout << browser.text << "screenshots (kept if the test fails): " << shots.string() << "\n";
  ASSERT_EQ(browser.status, 0) << browser.text << api.log();
  EXPECT_EQ(api.get("/v1/sagas/" + saga, api.operator_key()).body["state"], "completed");
  EXPECT_EQ(api.wait_status(created.body["workspace_id"], {"active"}), "active");
  EXPECT_TRUE(std::filesystem::exists(shots / "3-completed.png"));
  if (!HasFailure()) std::filesystem::remove_all(shots);  // kept only to look at a failure
}

}  // namespace
}  // namespace wsflow::testing
