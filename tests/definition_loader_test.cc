#include "engine/definition_loader.h"
#include "engine/schedule_loader.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/engine_harness.h"

namespace wsflow {
namespace {

LoadResult load(const std::string& yaml) {
  return load_definition(yaml, "saga.yaml", [](const std::string& n) { return testing::test_registry().contains(n); });
}

// The one error the document must produce, with its place.
DefinitionError only_error(const std::string& yaml) {
  LoadResult r = load(yaml);
  EXPECT_FALSE(r.definition.has_value());
  EXPECT_EQ(r.errors.size(), 1u);
  for (const auto& e : r.errors) std::cerr << "  " << e.to_string() << "\n";
  return r.errors.empty() ? DefinitionError{} : r.errors.front();
}

const char* kValid = R"(saga: demo.create
version: 2
input: { required: [name] }
deadline: 15m
defaults:
  timeout: 30s
  retry: { max_attempts: 6, backoff: exponential, initial: 200ms, max: 30s, jitter: full,
           non_retryable: [invalid_input] }
steps:
  - name: reserve
    action: testing.succeed
    compensate: testing.succeed
    compensable: true
  - name: provision
    for_each: [dev, staging, prod]
    action: testing.succeed
    compensate: testing.succeed
    timeout: 5m
    retry: { max_attempts: 2 }
  - name: approval
    wait: { signal: approved, timeout: 1h }
  - name: cool_off
    wait: { for: 30d }
  - name: notify
    when: { path: plan, equals: enterprise }
    action: testing.succeed
    input: { channel: email, urgent: true, copies: 2 }
)";

TEST(DefinitionLoader, LoadsEveryFeatureWithDefaultsApplied) {
  LoadResult r = load(kValid);
  ASSERT_TRUE(r.errors.empty()) << r.errors.front().to_string();
  const SagaDefinition& d = *r.definition;
  EXPECT_EQ(d.name, "demo.create");
  EXPECT_EQ(d.version, 2);
  EXPECT_EQ(d.required_input, std::vector<std::string>{"name"});
  EXPECT_EQ(d.deadline, Millis(15 * 60'000));
  ASSERT_EQ(d.steps.size(), 5u);
  EXPECT_EQ(d.steps[0].timeout, Millis(30'000));
  EXPECT_EQ(d.steps[0].retry.max_attempts, 6);
  EXPECT_EQ(d.steps[0].retry.non_retryable.count("invalid_input"), 1u);
  EXPECT_EQ(d.steps[1].for_each, (std::vector<std::string>{"dev", "staging", "prod"}));
  EXPECT_EQ(d.steps[1].timeout, Millis(5 * 60'000));
  EXPECT_EQ(d.steps[1].retry.max_attempts, 2);
  EXPECT_EQ(d.steps[1].retry.initial, Millis(200));  // merged over the defaults
  EXPECT_EQ(d.steps[2].wait->signal, "approved");
  EXPECT_EQ(d.steps[2].wait->signal_timeout, Millis(3'600'000));
  EXPECT_EQ(d.steps[3].wait->duration, Millis(30LL * 24 * 3'600'000));
  ASSERT_TRUE(d.steps[4].when.has_value());
  EXPECT_TRUE(d.steps[4].when->holds({{"plan", "enterprise"}}));
  EXPECT_FALSE(d.steps[4].when->holds({{"plan", "free"}}));
  EXPECT_EQ(d.steps[4].input["urgent"], true);
  EXPECT_EQ(d.steps[4].input["copies"], 2);
  EXPECT_EQ(d.steps[4].input["channel"], "email");
  EXPECT_EQ(d.hash.size(), 64u);
}

TEST(DefinitionLoader, HashIdentifiesTheExactText) {
  const std::string edited = std::string(kValid) + "# edited\n";
  EXPECT_EQ(load(kValid).definition->hash, load(kValid).definition->hash);
  EXPECT_NE(load(kValid).definition->hash, load(edited).definition->hash);
}

TEST(DefinitionLoader, UnknownKeyNamesFieldLineAndColumn) {
  const DefinitionError e =
      only_error("saga: s\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n    retries: 3\n");
  EXPECT_EQ(e.file, "saga.yaml");
  EXPECT_EQ(e.line, 6);
  EXPECT_EQ(e.column, 5);
  EXPECT_EQ(e.field, "steps[0].retries");
  EXPECT_NE(e.message.find("unknown key"), std::string::npos);
}

TEST(DefinitionLoader, UnknownTopLevelKey) {
  const DefinitionError e =
      only_error("saga: s\nversion: 1\nstep: []\nsteps:\n  - name: a\n    action: testing.succeed\n");
  EXPECT_EQ(e.field, "step");
  EXPECT_EQ(e.line, 3);
}

TEST(DefinitionLoader, UnknownAction) {
  const DefinitionError e = only_error("saga: s\nversion: 1\nsteps:\n  - name: a\n    action: nope.nothing\n");
  EXPECT_EQ(e.field, "steps[0].action");
  EXPECT_EQ(e.line, 5);
  EXPECT_EQ(e.column, 13);
  EXPECT_NE(e.message.find("unknown action 'nope.nothing'"), std::string::npos);
}

TEST(DefinitionLoader, UnknownCompensation) {
  const DefinitionError e =
      only_error("saga: s\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n    compensate: undo.it\n");
  EXPECT_EQ(e.field, "steps[0].compensate");
}

TEST(DefinitionLoader, DuplicateStep) {
  const DefinitionError e = only_error(
      "saga: s\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n  - name: a\n    action: "
      "testing.succeed\n");
  EXPECT_EQ(e.field, "steps[1].name");
  EXPECT_EQ(e.line, 6);
  EXPECT_NE(e.message.find("duplicate step name 'a'"), std::string::npos);
}

TEST(DefinitionLoader, ADuplicateStepsOtherErrorsAreReportedToo) {
  const LoadResult r = load_definition(
      "saga: s\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n  - name: a\n    action: "
      "testing.succeed\n    timeout: soon\n",
      "d.yaml", [](const std::string& n) { return n.rfind("testing.", 0) == 0; });
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].field, "steps[1].name");
  EXPECT_EQ(r.errors[1].field, "steps[1].timeout");
  EXPECT_EQ(r.errors[1].line, 8);
}

TEST(DefinitionLoader, BadDuration) {
  const DefinitionError e =
      only_error("saga: s\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n    timeout: 10 minutes\n");
  EXPECT_EQ(e.field, "steps[0].timeout");
  EXPECT_EQ(e.line, 6);
  EXPECT_NE(e.message.find("invalid duration '10 minutes'"), std::string::npos);
}

TEST(DefinitionLoader, BadDurationInRetryAndWait) {
  LoadResult r = load(
      "saga: s\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n    retry: { initial: soon }\n"
      "  - name: b\n    wait: { for: 3 days }\n");
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].field, "steps[0].retry.initial");
  EXPECT_EQ(r.errors[1].field, "steps[1].wait.for");
}

TEST(DefinitionLoader, MissingRequiredFields) {
  LoadResult r = load("version: 1\nsteps:\n  - action: testing.succeed\n");
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].field, "saga");
  EXPECT_EQ(r.errors[1].field, "steps[0].name");
  EXPECT_NE(r.errors[1].message.find("required"), std::string::npos);
}

TEST(DefinitionLoader, StepWithoutActionOrWait) {
  const DefinitionError e = only_error("saga: s\nversion: 1\nsteps:\n  - name: a\n");
  EXPECT_EQ(e.field, "steps[0].action");
}

TEST(DefinitionLoader, WrongTypes) {
  LoadResult r = load(
      "saga: s\nversion: one\nsteps:\n  - name: a\n    action: testing.succeed\n    for_each: dev\n"
      "    retry: { max_attempts: many }\n    input: [1, 2]\n");
  ASSERT_EQ(r.errors.size(), 4u);
  EXPECT_EQ(r.errors[0].field, "version");
  EXPECT_NE(r.errors[0].message.find("expected an integer"), std::string::npos);
  EXPECT_EQ(r.errors[1].field, "steps[0].input");
  EXPECT_EQ(r.errors[2].field, "steps[0].retry.max_attempts");
  EXPECT_EQ(r.errors[3].field, "steps[0].for_each");
}

TEST(DefinitionLoader, StepsMustBeANonEmptyList) {
  EXPECT_EQ(only_error("saga: s\nversion: 1\nsteps: {}\n").field, "steps");
  EXPECT_EQ(only_error("saga: s\nversion: 1\nsteps: []\n").field, "steps");
}

TEST(DefinitionLoader, CompensableNeedsCompensate) {
  const DefinitionError e =
      only_error("saga: s\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n    compensable: true\n");
  EXPECT_EQ(e.field, "steps[0].compensate");
  EXPECT_NE(e.message.find("compensable"), std::string::npos);
}

TEST(DefinitionLoader, WaitRules) {
  EXPECT_EQ(only_error("saga: s\nversion: 1\nsteps:\n  - name: a\n    wait: { for: 1s, signal: x }\n").field,
            "steps[0].wait");
  EXPECT_EQ(only_error("saga: s\nversion: 1\nsteps:\n  - name: a\n    wait: {}\n").field, "steps[0].wait");
  EXPECT_EQ(only_error("saga: s\nversion: 1\nsteps:\n  - name: a\n    wait: { for: 1s }\n    action: testing.succeed\n")
                .field,
            "steps[0].action");
}

TEST(DefinitionLoader, WhenNeedsExactlyOneOperator) {
  EXPECT_EQ(only_error("saga: s\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n"
                       "    when: { path: plan }\n")
                .field,
            "steps[0].when");
  EXPECT_EQ(only_error("saga: s\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n"
                       "    when: { path: plan, equals: a, in: [b] }\n")
                .field,
            "steps[0].when");
}

TEST(DefinitionLoader, BadEnumsAndBounds) {
  LoadResult r = load(
      "saga: s\nversion: 0\nsteps:\n  - name: Bad-Name\n    action: testing.succeed\n"
      "  - name: b\n    action: testing.succeed\n    retry: { backoff: linear, jitter: some, max_attempts: 0,"
      " initial: 10s, max: 1s }\n");
  std::vector<std::string> fields;
  for (const auto& e : r.errors) fields.push_back(e.field);
  EXPECT_EQ(fields, (std::vector<std::string>{"version", "steps[0].name", "steps[1].retry.max_attempts",
                                              "steps[1].retry.backoff", "steps[1].retry.jitter", "steps[1].retry"}));
}

TEST(DefinitionLoader, YamlSyntaxErrorHasAPlace) {
  const DefinitionError e = only_error("saga: s\nversion: 1\nsteps:\n  - name: [a\n");
  EXPECT_GT(e.line, 0);
  EXPECT_NE(e.message.find("YAML syntax error"), std::string::npos);
}

TEST(DefinitionLoader, ReportsEveryErrorNotJustTheFirst) {
  LoadResult r = load(
      "saga: s\nversion: 1\nsteps:\n  - name: a\n    action: x.y\n  - name: b\n    action: testing.succeed\n"
      "    timeout: forever\n  - name: a\n    action: testing.succeed\n");
  EXPECT_EQ(r.errors.size(), 3u);
}

class DefinitionDirectory : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("wsflow-defs-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  DefinitionSet load_dir() {
    return load_definitions(dir_, [](const std::string& n) { return testing::test_registry().contains(n); });
  }
  std::filesystem::path dir_;
};

TEST_F(DefinitionDirectory, LoadsSagaFilesAndLeavesMachineFilesAlone) {
  write("a.yaml", "saga: a\nversion: 1\nsteps:\n  - name: x\n    action: testing.succeed\n");
  write("b.yml", "saga: b\nversion: 1\nsteps:\n  - name: x\n    action: testing.succeed\n");
  write("workspace.machine.yaml", "machine: workspace\ntransitions: []\n");
  write("notes.txt", "not yaml at all: [");
  DefinitionSet set = load_dir();
  EXPECT_TRUE(set.errors.empty());
  EXPECT_EQ(set.definitions.size(), 2u);
  EXPECT_EQ(set.definitions.count("a"), 1u);
}

TEST_F(DefinitionDirectory, DuplicateSagaNamesAcrossFilesAreAnError) {
  write("a.yaml", "saga: same\nversion: 1\nsteps:\n  - name: x\n    action: testing.succeed\n");
  write("b.yaml", "saga: same\nversion: 2\nsteps:\n  - name: x\n    action: testing.succeed\n");
  DefinitionSet set = load_dir();
  ASSERT_EQ(set.errors.size(), 1u);
  EXPECT_NE(set.errors[0].message.find("already defined"), std::string::npos);
  EXPECT_NE(set.errors[0].file.find("b.yaml"), std::string::npos);
}

TEST_F(DefinitionDirectory, ErrorsNameTheirFile) {
  write("good.yaml", "saga: a\nversion: 1\nsteps:\n  - name: x\n    action: testing.succeed\n");
  write("bad.yaml", "saga: b\nversion: 1\nsteps:\n  - name: x\n    action: testing.nope\n");
  DefinitionSet set = load_dir();
  ASSERT_EQ(set.errors.size(), 1u);
  EXPECT_NE(set.errors[0].to_string().find("bad.yaml:5:13: steps[0].action: unknown action"), std::string::npos)
      << set.errors[0].to_string();
  EXPECT_EQ(set.definitions.size(), 1u);
}

TEST(DefinitionExamples, EveryDocumentedExampleLoads) {
  // definitions/README.md shows these files; a broken example fails here.
  DefinitionSet set = load_definitions(std::filesystem::path(WSFLOW_SOURCE_DIR) / "definitions" / "examples",
                                       [](const std::string& n) { return testing::test_registry().contains(n); });
  for (const auto& e : set.errors) ADD_FAILURE() << e.to_string();
  EXPECT_GE(set.definitions.size(), 3u);
  const ScheduleSet schedules =
      load_schedules(std::filesystem::path(WSFLOW_SOURCE_DIR) / "definitions" / "examples", set.definitions);
  for (const auto& e : schedules.errors) ADD_FAILURE() << e.to_string();
  ASSERT_EQ(schedules.schedules.count("example.nightly"), 1u);
  EXPECT_EQ(schedules.schedules.at("example.nightly").overlap, Overlap::kBufferOne);
  // The HTTP example lives apart: it names vars and secrets serve must be given.
  DefinitionSet http = load_definitions(std::filesystem::path(WSFLOW_SOURCE_DIR) / "definitions" / "examples" / "http",
                                        [](const std::string&) { return false; });
  for (const auto& e : http.errors) ADD_FAILURE() << e.to_string();
  ASSERT_EQ(http.definitions.count("example.billing"), 1u);
  EXPECT_TRUE(http.definitions.at("example.billing").steps[1].is_http());
}

}  // namespace
}  // namespace wsflow
