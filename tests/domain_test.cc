// The workspace domain's pure parts and outbound adapters without a database:
// the lifecycle machine loader, slugs, webhook signing and delivery, export
// archives.

#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "adapters/export/archive_writer.h"
#include "adapters/outbound/signing.h"
#include "adapters/webhook/webhook_notifier.h"
#include "engine/sha256.h"
#include "engine/text_file.h"
#include "sagas/machine.h"
#include "sagas/workspace_actions.h"
#include "tests/support/process.h"
#include "tests/support/serve_fixture.h"

namespace wsflow {
namespace {

const std::set<std::string> kSagas = {"s.create", "s.freeze", "s.delete"};

sagas::MachineLoad load(const std::string& yaml) { return sagas::load_machine(yaml, "m.yaml", kSagas); }

TEST(Machine, TheShippedWorkspaceMachineLoads) {
  const std::set<std::string> sagas = {"workspace.create",     "workspace.freeze",   "workspace.unfreeze",
                                       "workspace.export",     "workspace.offboard", "workspace.delete",
                                       "workspace.change_plan"};
  const auto m = sagas::load_workspace_machine(std::filesystem::path(WSFLOW_SOURCE_DIR) / "definitions", sagas);
  for (const auto& e : m.errors) ADD_FAILURE() << e.to_string();
  ASSERT_TRUE(m.machine.has_value());
  EXPECT_EQ(m.machine->allowed_events("none"), std::vector<std::string>{"create"});
  EXPECT_EQ(m.machine->allowed_events("frozen"),
            (std::vector<std::string>{"unfreeze", "export", "offboard", "delete", "change_plan"}));
  EXPECT_TRUE(m.machine->allowed_events("deleted").empty());
  ASSERT_NE(m.machine->find("freeze", "active"), nullptr);
  EXPECT_EQ(m.machine->find("freeze", "active")->via, "freezing");
  EXPECT_EQ(m.machine->find("freeze", "frozen"), nullptr);
  EXPECT_FALSE(m.machine->find("export", "active")->exclusive());
  EXPECT_TRUE(m.machine->find("offboard", "active")->exclusive());
}

TEST(Machine, RejectsUnknownStatesSagasAndKeysWithTheirPlace) {
  const auto m = load(R"(machine: workspace
states: [active, frozen]
transitions:
  - { event: create, from: none, saga: s.create, to: active }
  - { event: freeze, from: active, saga: s.nope, to: frozen }
  - { event: melt, from: liquid, saga: s.freeze, to: active }
  - { event: create, from: none, saga: s.create, to: active, colour: blue }
)");
  std::vector<std::string> fields;
  for (const auto& e : m.errors) fields.push_back(e.field);
  EXPECT_FALSE(m.machine.has_value());
  EXPECT_NE(std::find(fields.begin(), fields.end(), "transitions[1].saga"), fields.end());
  EXPECT_NE(std::find(fields.begin(), fields.end(), "transitions[2].from"), fields.end());
  EXPECT_NE(std::find(fields.begin(), fields.end(), "transitions[3].colour"), fields.end());
  EXPECT_NE(std::find(fields.begin(), fields.end(), "transitions[3]"), fields.end());  // create from none again
  for (const auto& e : m.errors) EXPECT_GT(e.line, 0) << e.to_string();
}

TEST(Machine, UnreachableStateIsAnError) {
  const auto m = load(R"(machine: workspace
states: [active, archived]
transitions:
  - { event: create, from: none, saga: s.create, to: active }
)");
  ASSERT_EQ(m.errors.size(), 1u);
  EXPECT_EQ(m.errors[0].field, "states[1]");
  EXPECT_NE(m.errors[0].message.find("'archived' is unreachable"), std::string::npos);
}

TEST(Machine, IntermediateStatesCountAsReachable) {
  const auto m = load(R"(machine: workspace
states: [active, leaving, gone]
transitions:
  - { event: create, from: none, saga: s.create, to: active }
  - { event: delete, from: active, via: leaving, saga: s.delete, to: gone, intermediate: [leaving] }
)");
  EXPECT_TRUE(m.errors.empty());
}

TEST(Slug, DerivedFromTheName) {
  EXPECT_EQ(sagas::slugify("Acme Corp"), "acme-corp");
  EXPECT_EQ(sagas::slugify("  Hello,   World!! "), "hello-world");
  EXPECT_EQ(sagas::slugify("ÄÖÜ"), "workspace");
  EXPECT_EQ(sagas::slugify("a--b"), "a-b");
  EXPECT_LE(sagas::slugify(std::string(200, 'x')).size(), 48u);
}

TEST(Webhook, HmacMatchesRfc4231) {
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Random, UuidsAreVersion4AndDistinct) {
  const std::regex version4("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = random_uuid();
    ASSERT_TRUE(std::regex_match(id, version4)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Webhook, RejectsABadUrl) {
  const HttpClient client;
  EXPECT_THROW(WebhookNotifier({{"ftp://x/y"}, "k", std::chrono::seconds(1)}, client), std::invalid_argument);
  EXPECT_TRUE(
      WebhookNotifier({{}, "k", std::chrono::seconds(1)}, client).deliver_blocking("e", {}, "k").ok);  // no URLs
}

TEST(Webhook, DeliversSignedAndFailsOnNon2xx) {
  httplib::Server server;
  int status = 200;
  std::string signature, timestamp, key, body;
  server.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    signature = req.get_header_value("X-Wsflow-Signature");
    timestamp = req.get_header_value("X-Wsflow-Timestamp");
    key = req.get_header_value("Idempotency-Key");
    body = req.body;
    res.status = status;
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread thread([&] { server.listen_after_bind(); });
  const HttpClient client;
  const WebhookNotifier notifier({{"http://127.0.0.1:" + std::to_string(port) + "/hook"}, "k", std::chrono::seconds(2)},
                                 client);
  EXPECT_TRUE(notifier.deliver_blocking("workspace.created", {{"workspace_id", "w"}}, "saga/step/").ok);
  EXPECT_EQ(signature, "sha256=" + hmac_sha256_hex("k", timestamp + "." + body));
  EXPECT_NEAR(std::stoll(timestamp), std::time(nullptr), 5);
  EXPECT_EQ(key, "saga/step/");
  EXPECT_EQ(nlohmann::json::parse(body)["event"], "workspace.created");
  status = 500;
  const ActionResult refused = notifier.deliver_blocking("workspace.created", {}, "k2");
  EXPECT_FALSE(refused.ok);
  EXPECT_TRUE(refused.error.retryable);
  EXPECT_NE(refused.error.message.find("answered 500"), std::string::npos) << refused.error.message;
  server.stop();
  thread.join();
  EXPECT_FALSE(notifier.deliver_blocking("workspace.created", {}, "k3").ok);  // nobody listening
}

TEST(Archive, ATarGzWithAManifestOfEveryFileStreamedFromDiskOrMemory) {
  testing::TempDir dir;
  const std::string big(200 * 1024 + 17, 'x');  // several chunks
  dir.write("dump.sql", big);
  const auto target = dir.path() / "export-1.tar.gz";
  const WrittenArchive written =
      write_archive(target, {{"a.json", "[1]", {}}, {"environments/dev.sql", "", dir.path() / "dump.sql"}});
  EXPECT_EQ(written.manifest["files"]["a.json"]["sha256"], sha256_hex("[1]"));
  EXPECT_EQ(written.manifest["files"]["environments/dev.sql"]["sha256"], sha256_hex(big));
  EXPECT_EQ(written.manifest["files"]["environments/dev.sql"]["bytes"], big.size());
  EXPECT_EQ(written.sha256, sha256_hex(read_text_file(target).value()));
  EXPECT_EQ(written.bytes, std::filesystem::file_size(target));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "export-1.tar.gz.partial"));

  const auto out = dir.path() / "out";
  std::filesystem::create_directories(out);
  const auto untar = testing::run_command({"tar", "-xzf", target.string(), "-C", out.string()});
  ASSERT_EQ(untar.status, 0) << untar.text;
  EXPECT_EQ(read_text_file(out / "a.json").value(), "[1]");
  EXPECT_EQ(read_text_file(out / "environments" / "dev.sql").value(), big);
  EXPECT_EQ(nlohmann::json::parse(read_text_file(out / "manifest.json").value()), written.manifest);

  write_archive(target, {{"b.json", "{}", {}}});  // again: replaced whole
  const auto listed = testing::run_command({"tar", "-tzf", target.string()});
  EXPECT_EQ(listed.text, "b.json\nmanifest.json\n");
}

}  // namespace
}  // namespace wsflow
