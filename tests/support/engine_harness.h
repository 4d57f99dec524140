#pragma once
// Runs an in-process Engine on its own thread against a test database, with
// the testing actions registered and NOTIFY wake-ups wired as in `serve`.

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "adapters/postgres/notify_listener.h"
#include "adapters/postgres/pg_store.h"
#include "engine/action_registry.h"
#include "engine/definition.h"
#include "engine/engine.h"

namespace wsflow::testing {

// The registry every test uses: the testing.* actions.
const ActionRegistry& test_registry();

// Parses a definition the test wrote inline; fails the test on any error.
SagaDefinition definition(const std::string& yaml);

EngineOptions fast_options();

class EngineHarness {
 public:
  // `registry` defaults to test_registry(); it must outlive the harness.
  EngineHarness(const std::string& dsn, EngineOptions options = fast_options(),
                const ActionRegistry* registry = nullptr);
  ~EngineHarness();  // stop() and join

  // Stops the engine and waits for run() to return (a clean restart point).
  void stop();
  pg::PgStore& store() { return store_; }

 private:
  pg::PgStore store_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<pg::NotifyListener> listener_;
  std::thread thread_;
};

// Leases up to `limit` runnable sagas as process `owner` would (Store::claim),
// for a test that plays that process; returns the leases alone.
std::vector<Claim> lease_sagas(Store& store, const std::string& owner, Millis lease, int limit);

// Polls until the saga reaches a terminal state or `timeout` passes; returns
// its last state.
SagaState wait_terminal(Store& store, const std::string& saga_id,
                        std::chrono::milliseconds timeout = std::chrono::seconds(30));
// Polls until the saga is in `state` (true) or `timeout` passes (false).
bool wait_state(Store& store, const std::string& saga_id, SagaState state,
                std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace wsflow::testing
