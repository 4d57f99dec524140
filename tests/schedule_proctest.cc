// Schedules across real `wsflow serve` processes: two processes share one
// schedule and start exactly one run per due time; a process killed with
// SIGKILL in the middle of an invitation-expiry batch loses and doubles
// nothing once another process takes over.

#include <signal.h>

#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <regex>
#include <thread>

#include "engine/text_file.h"
#include "tests/support/serve_fixture.h"
#include "tests/support/test_cluster.h"

namespace wsflow {
namespace {

using namespace std::chrono_literals;

using testing::eventually;
using testing::scalar;

TEST(ScheduleProcesses, TwoServeProcessesStartExactlyOneRunPerDueTime) {
  const std::string dsn = testing::fresh_database();
  testing::TempDir dir;
  dir.write("job.yaml", "saga: tick.job\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n");
  dir.write("tick.yaml", "schedule: tick\nevery: 1s\nsaga: tick.job\noverlap: allow\n");
  auto a = testing::start_serve(dsn, dir.path(), "a", dir.path() / "a.log", {"--poll", "200ms"});
  auto b = testing::start_serve(dsn, dir.path(), "b", dir.path() / "b.log", {"--poll", "200ms"});
  ASSERT_TRUE(eventually([&] { return scalar(dsn, "SELECT count(*) FROM wsflow.sagas") >= 8; }, 30s))
      << a->log() << b->log();
  a->signal(SIGTERM);
  b->signal(SIGTERM);
  ASSERT_TRUE(a->wait(20s).has_value());
  ASSERT_TRUE(b->wait(20s).has_value());

  const long long runs = scalar(dsn, "SELECT count(*) FROM wsflow.sagas WHERE idempotency_key LIKE 'schedule/tick/%'");
  const long long due_times = scalar(
      dsn, "SELECT count(DISTINCT input->'schedule'->>'due_at') FROM wsflow.sagas WHERE definition = 'tick.job'");
  const long long span_slots = scalar(
      dsn,
      "SELECT (extract(epoch from max((input->'schedule'->>'due_at')::timestamptz) - "
      "min((input->'schedule'->>'due_at')::timestamptz)))::bigint + 1 FROM wsflow.sagas WHERE definition = 'tick.job'");
  const long long skipped = scalar(dsn, "SELECT skipped_count FROM wsflow.schedules WHERE name = 'tick'");
  EXPECT_GE(runs, 8);
  EXPECT_EQ(runs, due_times);  // never two runs for one due time
  EXPECT_LE(span_slots - runs, skipped) << "a slot neither ran nor was counted as skipped";
  // None failed. A run fired as both processes stopped may wait for the next one to start.
  EXPECT_EQ(scalar(dsn,
                   "SELECT count(*) FROM wsflow.sagas WHERE state NOT IN ('completed', 'pending', 'running') "
                   "AND definition = 'tick.job'"),
            0);
  // The only scheduler line either process logs is its start: no firing failed (a racing duplicate would).
  for (const auto* p : {a.get(), b.get()}) {
    const std::string log = p->log();
    const std::regex line("scheduler: ");
    EXPECT_EQ(std::distance(std::sregex_iterator(log.begin(), log.end(), line), std::sregex_iterator()), 1) << log;
  }
}

TEST(ScheduleProcesses, KillDashNineMidExpiryBatchThenRestartExpiresEachInvitationOnce) {
  constexpr long long kInvitations = 30'000;
  const std::string dsn = testing::fresh_database();
  testing::TempDir dir;
  // The shipped expiry saga, in small batches (many statements, so the kill
  // lands inside the step), fired every second.
  const std::filesystem::path shipped = std::filesystem::path(WSFLOW_SOURCE_DIR) / "definitions";
  dir.write("invitations.expire.yaml", std::regex_replace(read_text_file(shipped / "invitations.expire.yaml").value(),
                                                          std::regex("batch: 500"), "batch: 50"));
  dir.write("expire.schedule.yaml", "schedule: invitations.expire\nevery: 1s\nsaga: invitations.expire\n");
  scalar(dsn,
         "WITH w AS (INSERT INTO wsflow.workspaces (id, name, plan, status) VALUES (gen_random_uuid(), 'w', "
         "'enterprise', 'active') RETURNING id) "
         "INSERT INTO wsflow.invitations (workspace_id, email, role, state, token_hash, invited_by, expires_at) "
         "SELECT w.id, 'u' || g || '@example.com', 'member', 'pending', md5(g::text), 'test', "
         "now() - interval '1 minute' FROM w, generate_series(1, " +
             std::to_string(kInvitations) + ") g RETURNING 1");
  const std::string expired_sql = "SELECT count(*) FROM wsflow.invitations WHERE state = 'expired'";

  auto first = testing::start_serve(dsn, dir.path(), "first", dir.path() / "first.log", {"--lease", "2s"});
  // The expiry step runs in its outcome's transaction, which records its
  // attempt and the saga's start too: nothing about the saga is written while
  // it runs. Its transaction's lock on the invitations it updates is what
  // shows it midway (held from its first batch to its commit).
  ASSERT_TRUE(eventually(
      [&] {
        return scalar(dsn,
                      "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                      "WHERE c.relname = 'invitations' AND l.mode = 'RowExclusiveLock' "
                      "AND l.pid <> pg_backend_pid()") > 0;
      },
      30s, 5ms))
      << first->log();
  first->signal(SIGKILL);
  first->wait(10s);
  const long long at_kill = scalar(dsn, expired_sql);
  EXPECT_TRUE(at_kill == 0 || at_kill == kInvitations) << "a partial batch committed: " << at_kill;
  if (at_kill == kInvitations) std::cerr << "note: the kill landed after the step committed\n";

  auto second = testing::start_serve(dsn, dir.path(), "second", dir.path() / "second.log", {"--lease", "2s"});
  EXPECT_TRUE(eventually([&] { return scalar(dsn, expired_sql) == kInvitations; }, 60s)) << second->log();
  second->signal(SIGTERM);
  second->wait(20s);
  EXPECT_EQ(scalar(dsn, "SELECT count(*) FROM wsflow.audit_log WHERE action = 'invitation.expired'"), kInvitations);
  EXPECT_EQ(scalar(dsn,
                   "SELECT coalesce(max(c), 0) FROM (SELECT count(*) c FROM wsflow.audit_log "
                   "WHERE action = 'invitation.expired' GROUP BY detail->>'invitation_id') per_invitation"),
            1);
}

}  // namespace
}  // namespace wsflow
