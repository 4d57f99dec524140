#pragma once
#include <string>

#include "engine/duration.h"
#include "engine/engine_events.h"

namespace wsflow {

struct EngineOptions {
  std::string owner;                    // unique per process; generated when empty
  Millis lease{Millis(15'000)};         // how long a claim lasts without a heartbeat
  Millis poll_interval{Millis(1'000)};  // fallback when no NOTIFY arrives
  // A claim also takes the sagas whose wake time (a timer, a retry's
  // backoff, a deadline, a jittered start) is at most this far off, and the
  // engine holds each until its wake time before it does anything with it:
  // the claim's own time (a round trip, longer under load) then comes before
  // the wake time instead of after it. A saga held so is leased, not parked
  // in the database; it counts against max_active_sagas but not against the
  // commit pipeline. Zero: claimed only once due.
  Millis claim_ahead{Millis(20)};
  int max_active_sagas = 512;  // sagas driven at once by this process
  // Of those, slots only high-priority sagas may take (at most half of them):
  // a bulk backlog of normal sagas never fills the engine, so a saga a user
  // waits on starts at once instead of after the backlog's next saga ends.
  int high_priority_slots = 16;
  int blocking_threads = 4;              // threads for database calls, and as many again for blocking actions
  Millis shutdown_grace{Millis(5'000)};  // stop() waits this long for in-flight steps
  Millis error_backoff{Millis(2'000)};   // retry delay after an unexpected error driving a saga
  unsigned long long seed = 0;           // jitter RNG seed; 0 = random
  bool group_commit = true;              // batch ready transitions of many sagas into one transaction
  // Group commit's batches in flight at once on the database, shared by the
  // engines driving sagas on it: each sends its share (commit_share below),
  // counting every second the engines that hold leases. The database takes
  // only a few commits at once well: four processes sending three each
  // measured about 9% slower than at one each (BENCHMARKS.md). Batches run
  // on the blocking threads, one of which is always left for claims and
  // loads, and a high-priority batch may go beyond the share by one.
  int commit_batches = 3;
  // With group commit, sagas of normal or low priority are claimed only
  // while fewer than this many per batch slot (the engine's share of
  // commit_batches, plus one for the batch being filled) are in its commit
  // pipeline: driven, but not in an action that has run 5 ms or more, nor in
  // a retry's sleep. A batch takes 128, so the default keeps every slot
  // sending full batches; a saga beyond that only queues, and the memory of
  // each saga in flight, the engine's and the database's, grows colder: four
  // engines holding 512 quick sagas each, one batch slot each, committed
  // less than one engine, and 7% less than four holding 256 each
  // (BENCHMARKS.md). One engine's limit, 4 x 128, is its max_active_sagas.
  // Sagas in slow actions do not count: up to max_active_sagas of them still
  // run at once. High-priority sagas are claimed regardless. Zero: no limit.
  int pipeline_per_batch = 128;
  // With group commit off, each transition is a transaction of its own, and
  // transactions share a WAL flush only when they commit at the same time:
  // this many are committed at once, each on its own connection (unused
  // with group commit on).
  int commit_threads = 16;
  // An attempt of an idempotent step (and any in-transaction action) is
  // recorded as started only when it is still running after this long; one
  // that ends sooner is recorded with its outcome, in one commit instead of
  // two. A process dying mid-attempt then leaves no trace of it, and the
  // step runs again under the same idempotency key. Steps marked
  // `idempotent: false` and compensations are always recorded first. A
  // saga's start (pending to running) likewise waits for its first commit.
  // Zero: always recorded first.
  Millis attempt_record_delay{Millis(50)};
  EngineEvents events;  // metrics hooks (engine/engine_events.h)
};

// One engine's share of `commit_batches` when `engines` (at least one) drive
// sagas on the database: the nearest whole number, at least 1.
inline int commit_share(int commit_batches, int engines) {
  engines = engines < 1 ? 1 : engines;
  const int share = (commit_batches + engines / 2) / engines;
  return share < 1 ? 1 : share;
}

// How many database connections the engine's store must have so that no
// engine thread waits for one: a blocking thread each (the poller and the
// heartbeat run on those too), the commit threads when group commit is off,
// and two to spare for whoever else shares the store (`serve`'s scheduler
// and HTTP routes).
inline int engine_connections(const EngineOptions& options) {
  return options.blocking_threads + 2 + (options.group_commit ? 0 : options.commit_threads);
}

}  // namespace wsflow
