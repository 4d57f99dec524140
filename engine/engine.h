#pragma once
// The executor of one wsflow process. It claims runnable sagas from the Store
// (any number of processes may share one database), drives each on a single
// Boost.Asio event-loop thread while database calls and blocking actions run
// on a small pool, renews its leases by heartbeat, and resumes whatever is
// runnable when it starts, including sagas whose previous owner died.
//
// Lifetime: construct, call run() on one thread (it blocks), call stop() from
// any thread to shut down: no new claims, in-flight sagas get
// `shutdown_grace` to reach a commit, then every lease still held is given up
// so another process can take over at once, and run() returns.

#include <memory>
#include <string>

#include "engine/action_registry.h"
#include "engine/engine_options.h"
#include "engine/store.h"

namespace wsflow {

class Engine {
 public:
  // `store` and `actions` must outlive the engine.
  Engine(Store& store, const ActionRegistry& actions, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs until stop(). Call once.
  void run();
  // Thread-safe, idempotent; returns at once (run() returns when drained).
  void stop();
  // Thread-safe: look for runnable sagas now (e.g. on a NOTIFY).
  void wake();

  const std::string& owner() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wsflow
