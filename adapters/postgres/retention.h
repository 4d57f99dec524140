#pragma once
// Retention: a finished saga's history (steps, events, signals) is deleted
// once it finished longer ago than the retention period; its row stays, with
// pruned_at set, so its outcome, its error and its idempotency key (a repeat
// start still returns it) outlive the history. Deletion goes in small
// batches, each its own short transaction, skipping rows others hold, so it
// never blocks the engine.

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "engine/duration.h"

namespace wsflow::pg {

// Sagas per pruning transaction: short enough never to hold up the engine.
inline constexpr int kPruneBatch = 500;

struct PruneResult {
  long long sagas = 0;
  long long steps = 0;
  long long events = 0;
};

// One batch: up to `batch` sagas finished more than `older_than` ago and not
// yet pruned, oldest first. Database errors propagate (std::exception).
PruneResult prune_batch(pqxx::connection& conn, Millis older_than, int batch);

// Batches until none is left (or `stop` is set), pausing `pause` between
// them; the totals.
PruneResult prune_all(pqxx::connection& conn, Millis older_than, int batch, Millis pause,
                      const std::atomic<bool>& stop);

// Runs prune_all on its own connection and thread every `every` (from its
// start) until destroyed. Failures are logged and retried next time.
class Pruner {
 public:
  Pruner(std::string dsn, Millis retention, Millis every);
  ~Pruner();
  Pruner(const Pruner&) = delete;
  Pruner& operator=(const Pruner&) = delete;

 private:
  void loop();

  std::string dsn_;
  Millis retention_;
  Millis every_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::thread thread_;
};

}  // namespace wsflow::pg
