// The lifecycle controller against a real database: which events are allowed
// when, the one-saga-at-a-time lock, and what each saga outcome does to the
// workspace's status.

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "engine/definition_loader.h"
#include "sagas/lifecycle.h"
#include "sagas/workspace_actions.h"
#include "tests/support/engine_harness.h"
#include "tests/support/test_cluster.h"

namespace wsflow {
namespace {

const std::filesystem::path kDefinitions = std::filesystem::path(WSFLOW_SOURCE_DIR) / "definitions";

class Lifecycle : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto names = sagas::workspace_action_names();
    definitions_ = load_definitions(kDefinitions, [&](const std::string& n) {
                     return std::find(names.begin(), names.end(), n) != names.end();
                   }).definitions;
    std::set<std::string> saga_names;
    for (const auto& [name, def] : definitions_) saga_names.insert(name);
    machine_ = *sagas::load_workspace_machine(kDefinitions, saga_names).machine;
  }

  sagas::LifecycleStarted fire(const std::string& event, const std::string& workspace, nlohmann::json input = {}) {
    pqxx::connection conn(dsn_);
    pqxx::work tx(conn);
    sagas::LifecycleRequest request{event, workspace, input.is_object() ? input : nlohmann::json::object(), "test", ""};
    auto started = sagas::fire_event(tx, machine_, definitions_, request);
    tx.commit();
    return started;
  }

  void finish(const std::string& saga_name, const std::string& saga_id, const std::string& workspace, SagaState state,
              const std::string& from) {
    pqxx::connection conn(dsn_);
    pqxx::work tx(conn);
    sagas::apply_outcome(tx, machine_,
                         {saga_id, saga_name, workspace, state, "", {{"lifecycle", {{"from", from}}}}, {}});
    tx.commit();
  }

  void set_status(const std::string& workspace, const std::string& status) {
    pqxx::connection conn(dsn_);
    pqxx::work tx(conn);
    tx.exec_params("UPDATE wsflow.workspaces SET status = $2 WHERE id = $1::uuid", workspace, status);
    tx.commit();
  }

  std::string status(const std::string& workspace) {
    pqxx::connection conn(dsn_);
    pqxx::read_transaction tx(conn);
    return tx
        .exec_params(
            "SELECT status || '/' || coalesce(active_saga_id::text, '-') FROM wsflow.workspaces "
            "WHERE id = $1::uuid",
            workspace)[0][0]
        .as<std::string>();
  }

  std::string dsn_ = testing::fresh_database();
  std::map<std::string, SagaDefinition> definitions_;
  sagas::Machine machine_;
  const std::string ws_ = "5b1e2a3c-0d4f-4a6b-8c9d-0e1f2a3b4c5d";
  const nlohmann::json create_input_ = {
      {"name", "Acme"}, {"plan", "free"}, {"owner_user_id", "u"}, {"owner_email", "u@example.com"}};
};

TEST_F(Lifecycle, CreateTakesTheLockAndCompletionActivates) {
  const auto created = fire("create", ws_, create_input_);
  EXPECT_EQ(created.status, "provisioning");
  EXPECT_EQ(status(ws_), "provisioning/" + created.saga_id);
  try {
    fire("freeze", ws_);
    FAIL() << "freeze during provisioning must be refused";
  } catch (const sagas::LifecycleError& e) {
    EXPECT_EQ(e.status, 409);
    EXPECT_EQ(e.code, "invalid_transition");
    EXPECT_NE(std::string(e.what()).find("'provisioning' (allowed: none)"), std::string::npos) << e.what();
  }
  finish("workspace.create", created.saga_id, ws_, SagaState::kCompleted, "none");
  EXPECT_EQ(status(ws_), "active/-");
}

TEST_F(Lifecycle, ACreateOfAnIdInUseIsRefusedAndStartsNothing) {
  const auto created = fire("create", ws_, create_input_);
  try {
    fire("create", ws_, create_input_);
    FAIL() << "a second create of the same id must be refused";
  } catch (const sagas::LifecycleError& e) {
    EXPECT_EQ(e.status, 409);
    EXPECT_EQ(e.code, "invalid_transition");
    EXPECT_NE(std::string(e.what()).find("'create' is not allowed while the workspace is 'provisioning'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(status(ws_), "provisioning/" + created.saga_id);
  pqxx::connection conn(dsn_);
  pqxx::read_transaction tx(conn);
  EXPECT_EQ(tx.exec_params1("SELECT count(*) FROM wsflow.sagas WHERE workspace_id = $1::uuid", ws_)[0].as<int>(), 1);
}

TEST_F(Lifecycle, OnlyOneExclusiveSagaAtATimeButExportRunsBeside) {
  finish("workspace.create", fire("create", ws_, create_input_).saga_id, ws_, SagaState::kCompleted, "none");
  const auto offboard = fire("offboard", ws_);
  set_status(ws_, "offboarded");  // as offboard's own step does while it waits out the window
  const auto exported = fire("export", ws_, {{"export_id", "00000000-0000-0000-0000-000000000001"}});
  EXPECT_EQ(exported.status, "offboarded");  // export neither changes the status nor takes the lock
  EXPECT_EQ(status(ws_), "offboarded/" + offboard.saga_id);
  try {
    fire("delete", ws_);
    FAIL() << "delete from offboarded must be refused";
  } catch (const sagas::LifecycleError& e) {
    EXPECT_EQ(e.code, "invalid_transition");
  }
  // A failed export leaves the workspace (and the offboard's lock) alone.
  finish("workspace.export", exported.saga_id, ws_, SagaState::kFailed, "offboarded");
  EXPECT_EQ(status(ws_), "offboarded/" + offboard.saga_id);
}

TEST_F(Lifecycle, OperationInProgressWhenTheLockIsHeld) {
  finish("workspace.create", fire("create", ws_, create_input_).saga_id, ws_, SagaState::kCompleted, "none");
  const auto freeze = fire("freeze", ws_);
  set_status(ws_, "active");  // as if the status had moved on while the saga still runs
  try {
    fire("freeze", ws_);
    FAIL() << "a second exclusive saga must be refused";
  } catch (const sagas::LifecycleError& e) {
    EXPECT_EQ(e.code, "operation_in_progress");
    EXPECT_NE(std::string(e.what()).find(freeze.saga_id), std::string::npos);
  }
}

TEST_F(Lifecycle, RollbackAndFailureOutcomes) {
  const auto created = fire("create", ws_, create_input_);
  finish("workspace.create", created.saga_id, ws_, SagaState::kCompensated, "none");
  EXPECT_EQ(status(ws_), "deleted/-");  // on_rollback: deleted

  const std::string other = "6c2f3b4d-1e5a-4b7c-9d0e-1f2a3b4c5d6e";
  finish("workspace.create", fire("create", other, create_input_).saga_id, other, SagaState::kCompleted, "none");
  const auto freeze = fire("freeze", other);
  finish("workspace.freeze", freeze.saga_id, other, SagaState::kCompensated, "active");
  EXPECT_EQ(status(other), "active/-");  // on_rollback: source
  const auto again = fire("freeze", other);
  finish("workspace.freeze", again.saga_id, other, SagaState::kFailed, "active");
  EXPECT_EQ(status(other), "failed/-");  // a compensation gave up: an operator must look
}

TEST_F(Lifecycle, UnknownWorkspaceIsNotFound) {
  try {
    fire("freeze", ws_);
    FAIL();
  } catch (const sagas::LifecycleError& e) {
    EXPECT_EQ(e.status, 404);
  }
}

}  // namespace
}  // namespace wsflow
