#include "tests/support/engine_harness.h"

#include <gtest/gtest.h>

#include "engine/definition_loader.h"
#include "engine/testing_actions.h"

namespace wsflow::testing {

const ActionRegistry& test_registry() {
  static const ActionRegistry registry = [] {
    ActionRegistry r;
    register_testing_actions(r);
    return r;
  }();
  return registry;
}

SagaDefinition definition(const std::string& yaml) {
  LoadResult loaded =
      load_definition(yaml, "inline.yaml", [](const std::string& n) { return test_registry().contains(n); });
  for (const auto& e : loaded.errors) ADD_FAILURE() << e.to_string();
  if (!loaded.definition) throw std::runtime_error("test definition does not load");
  return *loaded.definition;
}

EngineOptions fast_options() {
  EngineOptions o;
  o.lease = std::chrono::milliseconds(3000);
  o.poll_interval = std::chrono::milliseconds(200);
  o.shutdown_grace = std::chrono::milliseconds(2000);
  o.error_backoff = std::chrono::milliseconds(200);
  return o;
}

EngineHarness::EngineHarness(const std::string& dsn, EngineOptions options, const ActionRegistry* registry)
    : store_(dsn, engine_connections(options)) {
  engine_ = std::make_unique<Engine>(store_, registry ? *registry : test_registry(), options);
  listener_ = std::make_unique<pg::NotifyListener>(dsn, pg::kRunnableChannel, [this] { engine_->wake(); });
  thread_ = std::thread([this] { engine_->run(); });
}

EngineHarness::~EngineHarness() { stop(); }

void EngineHarness::stop() {
  if (!thread_.joinable()) return;
  listener_.reset();
  engine_->stop();
  thread_.join();
}

bool wait_state(Store& store, const std::string& saga_id, SagaState state, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    auto saga = store.find_saga(saga_id);
    if (saga && saga->state == state) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

SagaState wait_terminal(Store& store, const std::string& saga_id, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  SagaState last = SagaState::kPending;
  while (std::chrono::steady_clock::now() < until) {
    if (auto saga = store.find_saga(saga_id)) {
      last = saga->state;
      if (is_terminal(last)) return last;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return last;
}

std::vector<Claim> lease_sagas(Store& store, const std::string& owner, Millis lease, int limit) {
  std::vector<Claim> claims;
  for (ClaimedSaga& claimed : store.claim({owner, lease, limit, limit}).sagas)
    claims.push_back(std::move(claimed.claim));
  return claims;
}

}  // namespace wsflow::testing
