#include "adapters/postgres/retention.h"

#include <chrono>

#include "engine/log.h"

namespace wsflow::pg {
namespace {

// The sagas are locked (SKIP LOCKED: an operator's repair holding one waits
// for the next run) before their history goes.
const char* kPrune =
    "WITH v AS (SELECT id FROM wsflow.sagas WHERE finished_at IS NOT NULL AND pruned_at IS NULL "
    "AND finished_at < now() - $1::bigint * interval '1 ms' ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED), "
    "st AS (DELETE FROM wsflow.saga_steps WHERE saga_id IN (SELECT id FROM v) RETURNING 1), "
    "ev AS (DELETE FROM wsflow.saga_events WHERE saga_id IN (SELECT id FROM v) RETURNING 1), "
    "sg AS (DELETE FROM wsflow.signals WHERE saga_id IN (SELECT id FROM v) RETURNING 1), "
    "sa AS (UPDATE wsflow.sagas SET pruned_at = now() WHERE id IN (SELECT id FROM v) RETURNING 1) "
    "SELECT (SELECT count(*) FROM sa), (SELECT count(*) FROM st), (SELECT count(*) FROM ev)";

}  // namespace

PruneResult prune_batch(pqxx::connection& conn, Millis older_than, int batch) {
  pqxx::work tx(conn);
  const pqxx::row r = tx.exec_params(kPrune, static_cast<long long>(older_than.count()), batch)[0];
  tx.commit();
  return {r[0].as<long long>(), r[1].as<long long>(), r[2].as<long long>()};
}

PruneResult prune_all(pqxx::connection& conn, Millis older_than, int batch, Millis pause,
                      const std::atomic<bool>& stop) {
  PruneResult total;
  while (!stop) {
    const PruneResult one = prune_batch(conn, older_than, batch);
    total.sagas += one.sagas;
    total.steps += one.steps;
    total.events += one.events;
    if (one.sagas < batch) break;
    std::this_thread::sleep_for(pause);
  }
  return total;
}

Pruner::Pruner(std::string dsn, Millis retention, Millis every)
    : dsn_(std::move(dsn)), retention_(retention), every_(every), thread_([this] { loop(); }) {}

Pruner::~Pruner() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Pruner::loop() {
  std::unique_ptr<pqxx::connection> conn;
  while (!stop_) {
    try {
      if (!conn || !conn->is_open()) conn = std::make_unique<pqxx::connection>(dsn_);
      const PruneResult pruned = prune_all(*conn, retention_, kPruneBatch, Millis(100), stop_);
      if (pruned.sagas > 0) {
        log_info("retention: pruned the history of " + std::to_string(pruned.sagas) + " saga(s) finished over " +
                 format_duration(retention_) + " ago (" + std::to_string(pruned.steps) + " steps, " +
                 std::to_string(pruned.events) + " events)");
      }
    } catch (const std::exception& e) {
      log_warn(std::string("retention: pruning failed, will retry: ") + e.what());
      conn.reset();
    }
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, every_, [this] { return stop_.load(); });
  }
}

}  // namespace wsflow::pg
