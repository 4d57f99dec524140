#include "bench/store_floor.h"

#include <atomic>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "adapters/postgres/pg_store.h"

namespace wsflow::bench {
namespace {

constexpr int kSagasPerThread = 64;
constexpr Millis kLease = std::chrono::minutes(10);  // far beyond any run: never renewed

// Leases the `count` sagas of `definition` just started. A claim takes
// whatever is due, so sagas of other definitions that a shared database holds
// are given back at once, runnable now (after the bench's own, which were due
// first).
std::vector<Claim> lease_all(pg::PgStore& store, const std::string& owner, const SagaDefinition& definition,
                             std::size_t count) {
  std::vector<Claim> mine;
  for (int round = 0; mine.size() < count && round < 100; ++round) {
    const int want = static_cast<int>(count - mine.size());
    ClaimResult found = store.claim({owner, kLease, want, want});
    for (ClaimedSaga& claimed : found.sagas) {
      if (claimed.snapshot.saga.definition == definition.name) {
        mine.push_back(claimed.claim);
        continue;
      }
      Transition give_back;
      give_back.release = true;
      give_back.release_wake_in = Millis(0);
      store.commit(claimed.claim, give_back);
    }
    if (found.sagas.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (mine.size() < count) throw std::runtime_error("store floor: could not lease its sagas");
  return mine;
}

// A quick step's commit: its attempt and outcome in one step row and one
// event, as the engine writes it when the attempt's start was deferred.
Transition step_completed(const std::string& step, const std::string& owner) {
  Transition t;
  t.step = StepWrite{};
  t.step->step = step;
  t.step->state = StepState::kCompleted;
  t.step->add_attempts = 1;
  t.step->max_attempts = 3;
  t.step->error = "";
  t.step->output = nlohmann::json::object();
  t.step->began_at = std::chrono::system_clock::now();  // the SQL takes the earlier of it and the database's now
  t.event = "step_completed";
  t.event_step = step;
  t.event_detail = {{"attempt", 1}, {"max_attempts", 3}, {"worker", owner}};
  return t;
}

}  // namespace

StoreFloor run_store_floor(const BenchRun& run, int threads, std::chrono::milliseconds duration) {
  const auto definition = run.define("store_floor_" + std::to_string(threads), noop_steps(1));
  const std::string owner = "bench-store-floor-" + run.id;
  const std::size_t count = static_cast<std::size_t>(threads) * kSagasPerThread;
  start_many(run, *definition, static_cast<long long>(count));
  pg::PgStore store(run.dsn, threads);
  const std::vector<Claim> claims = lease_all(store, owner, *definition, count);

  std::atomic<long long> commits{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  const auto started = std::chrono::steady_clock::now();
  const auto until = started + duration;
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      try {
        for (long long n = 0; std::chrono::steady_clock::now() < until; ++n) {
          const Claim& claim = claims[static_cast<std::size_t>(w * kSagasPerThread + n % kSagasPerThread)];
          store.commit(claim, step_completed("s" + std::to_string(n), owner));
          commits.fetch_add(1, std::memory_order_relaxed);
        }
      } catch (...) {
        std::lock_guard lock(failure_mutex);
        if (!failure) failure = std::current_exception();
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  for (const Claim& claim : claims) {
    Transition done;
    done.saga_state = SagaState::kCompleted;
    done.event = "completed";
    done.release = true;
    store.commit(claim, done);
  }
  if (failure) std::rethrow_exception(failure);
  return {threads, commits.load(), seconds, static_cast<double>(commits.load()) / seconds};
}

}  // namespace wsflow::bench
