// Durable schedules against a real Postgres: a ManualClock moves time (its
// offset reaches the database's now), so nothing here sleeps for a due time.

#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <thread>

#include "engine/schedule_commands.h"
#include "engine/schedule_loader.h"
#include "engine/scheduler.h"
#include "tests/support/engine_harness.h"
#include "tests/support/test_cluster.h"

namespace wsflow {
namespace {

using namespace std::chrono;
using json = nlohmann::json;

class SchedulerTest : public ::testing::Test {
 protected:
  std::string dsn_ = testing::fresh_database();
  pg::PgStore store_{dsn_, 4};
  ManualClock clock_;
  std::map<std::string, SagaDefinition> sagas_ = {
      {"job", testing::definition("saga: job\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n")}};
  std::map<std::string, ScheduleDefinition> schedules_;

  void add_schedule(const std::string& yaml) {
    ScheduleLoad loaded = load_schedule(yaml, "inline.yaml", sagas_);
    for (const auto& e : loaded.errors) ADD_FAILURE() << e.to_string();
    schedules_.emplace(loaded.schedule->name, *loaded.schedule);
  }

  // Puts the clock just before the next whole minute, so each advance of a
  // minute passes exactly one every-minute slot.
  void align_clock() {
    const TimePoint now = store_.schedule_now(offset_from_system(clock_));
    clock_.advance(duration_cast<Millis>(ScheduleTiming::every(minutes(1)).next_after(now) - now - seconds(1)));
  }

  json rows(const std::string& sql) {
    pqxx::connection conn(dsn_);
    pqxx::read_transaction tx(conn);
    return json::parse(
        tx.exec("SELECT coalesce(json_agg(r), '[]')::text FROM (" + sql + ") r")[0][0].as<std::string>());
  }
  long long count(const std::string& where) {
    return rows("SELECT count(*) AS n FROM wsflow.sagas WHERE " + where)[0]["n"].get<long long>();
  }
  void finish_all_runs() {
    pqxx::connection conn(dsn_);
    pqxx::work tx(conn);
    tx.exec("UPDATE wsflow.sagas SET state = 'completed' WHERE state = 'pending'");
    tx.commit();
  }
};

TEST_F(SchedulerTest, FiresEachDueTimeOnceWithItsKeyAndAdvances) {
  add_schedule("schedule: tick\nevery: 1m\nsaga: job\ninput: { region: eu }\n");
  align_clock();
  Scheduler scheduler(store_, schedules_, sagas_, clock_);
  scheduler.register_schedules();
  EXPECT_EQ(scheduler.fire_due(), 0);  // the first slot is the next whole minute
  clock_.advance(seconds(2));
  EXPECT_EQ(scheduler.fire_due(), 1);
  EXPECT_EQ(scheduler.fire_due(), 0);  // nothing more until the next minute
  const json runs = rows("SELECT idempotency_key, input FROM wsflow.sagas");
  ASSERT_EQ(runs.size(), 1u);
  const std::string key = runs[0]["idempotency_key"];
  EXPECT_EQ(key.rfind("schedule/tick/", 0), 0u) << key;
  EXPECT_EQ(key.substr(key.size() - 4), ":00Z") << key;
  EXPECT_EQ(runs[0]["input"]["region"], "eu");
  EXPECT_EQ("schedule/tick/" + runs[0]["input"]["schedule"]["due_at"].get<std::string>(), key);

  finish_all_runs();  // else the default overlap policy (skip) would skip the next slot
  clock_.advance(minutes(1));
  EXPECT_EQ(scheduler.fire_due(), 1);
  EXPECT_EQ(count("true"), 2);
  const auto listed = ScheduleCommands(store_, schedules_, sagas_, clock_).list();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].last_saga_state, "pending");
  EXPECT_EQ(listed[0].next_due_at - *listed[0].last_due_at, minutes(1));
}

TEST_F(SchedulerTest, TwoSchedulersRacingStartExactlyOneRunPerDueTime) {
  add_schedule("schedule: tick\nevery: 1m\nsaga: job\noverlap: allow\n");
  align_clock();
  pg::PgStore other_store(dsn_, 4);
  Scheduler a(store_, schedules_, sagas_, clock_);
  Scheduler b(other_store, schedules_, sagas_, clock_);
  a.register_schedules();
  b.register_schedules();
  constexpr int kTicks = 30;
  int fired = 0;
  for (int tick = 0; tick < kTicks; ++tick) {
    clock_.advance(minutes(1));
    int fired_a = 0, fired_b = 0;
    std::thread racer([&] { fired_a = a.fire_due(); });
    fired_b = b.fire_due();
    racer.join();
    EXPECT_EQ(fired_a + fired_b, 1) << "tick " << tick;
    fired += fired_a + fired_b;
  }
  EXPECT_EQ(fired, kTicks);
  EXPECT_EQ(count("true"), kTicks);
  EXPECT_EQ(rows("SELECT DISTINCT idempotency_key FROM wsflow.sagas").size(), static_cast<std::size_t>(kTicks));
}

TEST_F(SchedulerTest, AFiringThatDiesMidwayCommitsNothingAndTheSlotFiresLater) {
  add_schedule("schedule: tick\nevery: 1m\nsaga: job\n");
  align_clock();
  Scheduler scheduler(store_, schedules_, sagas_, clock_);
  scheduler.register_schedules();
  clock_.advance(seconds(2));
  const auto crash = [](const DueSchedule&) -> FirePlan { throw std::runtime_error("process died mid-fire"); };
  EXPECT_THROW(store_.fire_due_schedule({"tick"}, offset_from_system(clock_), crash), std::runtime_error);
  EXPECT_EQ(count("true"), 0);
  EXPECT_EQ(scheduler.fire_due(), 1);  // the same slot, once
  EXPECT_EQ(count("true"), 1);
}

TEST_F(SchedulerTest, MisfireFireOnceAndCatchUpAfterDowntime) {
  add_schedule("schedule: once\nevery: 1m\nsaga: job\nmisfire: fire_once\noverlap: allow\n");
  add_schedule("schedule: catchup\nevery: 1m\nsaga: job\nmisfire: catch_up\nmax_catch_up: 5\noverlap: allow\n");
  align_clock();
  Scheduler scheduler(store_, schedules_, sagas_, clock_);
  scheduler.register_schedules();
  clock_.advance(minutes(20));  // nobody ran for 20 minutes
  scheduler.fire_due();
  EXPECT_EQ(count("idempotency_key LIKE 'schedule/once/%'"), 1);
  EXPECT_EQ(count("idempotency_key LIKE 'schedule/catchup/%'"), 5);
  for (const auto& s : ScheduleCommands(store_, schedules_, sagas_, clock_).list()) {
    EXPECT_EQ(s.skipped_count, s.name == "once" ? 19 : 15) << s.name;
  }
}

TEST_F(SchedulerTest, OverlapSkipAndBufferOneFollowThePreviousRun) {
  add_schedule("schedule: skipper\nevery: 1m\nsaga: job\n");
  add_schedule("schedule: buffer\nevery: 1m\nsaga: job\noverlap: buffer_one\n");
  align_clock();
  Scheduler scheduler(store_, schedules_, sagas_, clock_);
  scheduler.register_schedules();
  clock_.advance(seconds(2));
  EXPECT_EQ(scheduler.fire_due(), 2);
  // The runs stay pending (no engine here): the next slots overlap them.
  clock_.advance(minutes(1));
  scheduler.fire_due();
  clock_.advance(minutes(1));
  scheduler.fire_due();
  EXPECT_EQ(count("idempotency_key LIKE 'schedule/skipper/%'"), 1);
  EXPECT_EQ(count("idempotency_key LIKE 'schedule/buffer/%'"), 1);
  finish_all_runs();
  EXPECT_EQ(scheduler.fire_due(), 1);  // the buffered slot starts once its predecessor ended
  EXPECT_EQ(count("idempotency_key LIKE 'schedule/buffer/%'"), 2);
  EXPECT_EQ(count("idempotency_key LIKE 'schedule/skipper/%'"), 1);
  EXPECT_EQ(scheduler.fire_due(), 0);
}

TEST_F(SchedulerTest, OperatorsPauseResumeTriggerAndBackfill) {
  add_schedule("schedule: tick\nevery: 1m\nsaga: job\noverlap: allow\n");
  align_clock();
  Scheduler scheduler(store_, schedules_, sagas_, clock_);
  scheduler.register_schedules();
  const ScheduleCommands commands(store_, schedules_, sagas_, clock_);

  commands.pause("tick", "maintenance window");
  clock_.advance(minutes(5));
  EXPECT_EQ(scheduler.fire_due(), 0);
  EXPECT_TRUE(commands.list()[0].paused);
  EXPECT_EQ(commands.list()[0].note, "maintenance window");
  commands.resume("tick", "done");
  EXPECT_EQ(scheduler.fire_due(), 0);  // slots passed while paused do not fire
  EXPECT_GT(commands.list()[0].next_due_at, store_.schedule_now(offset_from_system(clock_)));

  const RunStarted first = commands.trigger("tick", "t1");
  EXPECT_TRUE(first.created);
  EXPECT_FALSE(commands.trigger("tick", "t1").created);  // same token, same run
  EXPECT_EQ(commands.list()[0].last_saga_id, first.saga_id);

  const TimePoint now = floor<minutes>(store_.schedule_now(offset_from_system(clock_)));
  const auto backfilled = commands.backfill("tick", now - minutes(10), now - minutes(6));  // both ends included
  ASSERT_EQ(backfilled.size(), 5u);
  for (const auto& run : backfilled) EXPECT_TRUE(run.created);
  const auto again = commands.backfill("tick", now - minutes(8), now - minutes(4));
  ASSERT_EQ(again.size(), 5u);
  EXPECT_EQ(again[0].saga_id, backfilled[2].saga_id);  // the same slot, the same saga
  EXPECT_FALSE(again[0].created);
  EXPECT_TRUE(again[4].created);
  EXPECT_EQ(count("idempotency_key LIKE 'schedule/tick/20%'"), 7);

  EXPECT_THROW(commands.backfill("tick", now, now + minutes(5)), std::invalid_argument);
  EXPECT_THROW(commands.backfill("tick", now - hours(48), now), std::invalid_argument);  // over 1000 slots
  EXPECT_THROW(commands.trigger("nope", "x"), UnknownSchedule);
}

TEST_F(SchedulerTest, CommandsOnAScheduleNoServeRegisteredYetAreRefusedCleanly) {
  add_schedule("schedule: tick\nevery: 1m\nsaga: job\n");
  const ScheduleCommands commands(store_, schedules_, sagas_, clock_);
  EXPECT_TRUE(commands.list().empty());
  EXPECT_THROW(commands.trigger("tick", "t"), UnknownSchedule);
  EXPECT_THROW(commands.pause("tick", ""), UnknownSchedule);
  EXPECT_EQ(count("true"), 0);
}

TEST_F(SchedulerTest, ChangedTimingReschedulesKeptTimingDoesNot) {
  add_schedule("schedule: tick\nevery: 1m\nsaga: job\n");
  Scheduler(store_, schedules_, sagas_, clock_).register_schedules();
  const TimePoint first = ScheduleCommands(store_, schedules_, sagas_, clock_).list()[0].next_due_at;
  clock_.advance(seconds(30));
  Scheduler(store_, schedules_, sagas_, clock_).register_schedules();  // a restart: same timing
  EXPECT_EQ(ScheduleCommands(store_, schedules_, sagas_, clock_).list()[0].next_due_at, first);
  schedules_.clear();
  add_schedule("schedule: tick\nevery: 1h\nsaga: job\n");
  Scheduler(store_, schedules_, sagas_, clock_).register_schedules();
  const TimePoint hourly = ScheduleCommands(store_, schedules_, sagas_, clock_).list()[0].next_due_at;
  EXPECT_EQ(duration_cast<milliseconds>(hourly.time_since_epoch()).count() % 3'600'000, 0);
}

TEST_F(SchedulerTest, RunSleepsUntilTheDueTimeNotTheLongestSleep) {
  add_schedule("schedule: fast\nevery: 1s\nsaga: job\noverlap: allow\n");
  const SystemClock system_clock;
  SchedulerOptions options;
  options.max_sleep = minutes(10);  // were it to sleep this long, nothing would fire
  Scheduler scheduler(store_, schedules_, sagas_, system_clock, options);
  std::thread runner([&] { scheduler.run(); });
  const auto until = steady_clock::now() + seconds(20);
  while (count("true") < 3 && steady_clock::now() < until) std::this_thread::sleep_for(milliseconds(50));
  scheduler.stop();
  runner.join();
  EXPECT_GE(count("true"), 3);
}

}  // namespace
}  // namespace wsflow
