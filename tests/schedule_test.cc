// Schedule definitions (loader) and the firing policies (plan_firing),
// without a database.

#include <date/date.h>
#include <gtest/gtest.h>

#include "engine/schedule_loader.h"
#include "engine/scheduler.h"
#include "tests/support/engine_harness.h"
#include "tests/support/serve_fixture.h"

namespace wsflow {
namespace {

using namespace std::chrono;

std::map<std::string, SagaDefinition> sagas() {
  std::map<std::string, SagaDefinition> defs;
  defs.emplace("job", testing::definition("saga: job\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n"));
  defs.emplace("needs.input", testing::definition("saga: needs.input\nversion: 1\ninput: { required: [tenant] }\n"
                                                  "steps:\n  - name: a\n    action: testing.succeed\n"));
  return defs;
}

ScheduleLoad load(const std::string& yaml) { return load_schedule(yaml, "s.yaml", sagas()); }

std::vector<std::string> errors_of(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& e : load(yaml).errors) out.push_back(e.to_string());
  return out;
}

TEST(ScheduleLoader, LoadsEveryField) {
  const ScheduleLoad r = load(R"(schedule: nightly
cron: "0 3 * * *"
timezone: Europe/Berlin
saga: needs.input
input: { tenant: acme }
misfire: catch_up
max_catch_up: 3
overlap: buffer_one
jitter: 30s
)");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  const ScheduleDefinition& s = *r.schedule;
  EXPECT_EQ(s.name, "nightly");
  EXPECT_EQ(s.cron, "0 3 * * *");
  EXPECT_EQ(s.timezone, "Europe/Berlin");
  EXPECT_EQ(s.input["tenant"], "acme");
  EXPECT_EQ(s.misfire, Misfire::kCatchUp);
  EXPECT_EQ(s.max_catch_up, 3);
  EXPECT_EQ(s.overlap, Overlap::kBufferOne);
  EXPECT_EQ(s.jitter, seconds(30));
  const TimePoint winter = TimePoint(date::sys_days(date::year(2026) / 1 / 10));
  EXPECT_EQ(format_utc(s.timing.next_after(winter)), "2026-01-10T02:00:00Z");  // 03:00 CET

  const ScheduleLoad every = load("schedule: tick\nevery: 1m\nsaga: job\n");
  ASSERT_TRUE(every.errors.empty());
  EXPECT_EQ(every.schedule->every, minutes(1));
  EXPECT_EQ(every.schedule->misfire, Misfire::kFireOnce);  // the defaults
  EXPECT_EQ(every.schedule->overlap, Overlap::kSkip);
  EXPECT_NE(every.schedule->timing_hash, r.schedule->timing_hash);
}

TEST(ScheduleLoader, ReportsEveryErrorWithItsPlace) {
  const auto errors = errors_of(R"(schedule: Bad Name
cron: "61 * * * *"
timezone: Mars/Base
saga: nothing.here
misfire: sometimes
max_catch_up: 5
overlap: queue
jitter: soon
colour: red
)");
  const std::vector<std::string> expected = {
      "s.yaml:9:1: colour: unknown key",
      "s.yaml:1:11: schedule: schedule names are lower-case",
      "s.yaml:3:11: timezone: unknown time zone 'Mars/Base'",
      "s.yaml:2:7: cron: invalid cron expression '61 * * * *': minute: 61 is out of range 0-59",
      "s.yaml:4:7: saga: no saga definition named 'nothing.here'",
      "s.yaml:5:10: misfire: expected fire_once or catch_up, got 'sometimes'",
      "s.yaml:6:15: max_catch_up: goes with misfire: catch_up",
      "s.yaml:7:10: overlap: expected skip, buffer_one or allow, got 'queue'",
      "s.yaml:8:9: jitter: invalid duration",
  };
  ASSERT_EQ(errors.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(errors[i].rfind(expected[i], 0), 0u) << errors[i] << "\n  expected: " << expected[i];
  }
}

TEST(ScheduleLoader, TimingAndInputRules) {
  EXPECT_EQ(errors_of("schedule: a\nsaga: job\n").at(0),
            "s.yaml:1:1: cron: required field is missing (or give every:)");
  EXPECT_EQ(errors_of("schedule: a\ncron: '* * * * *'\nevery: 1m\nsaga: job\n").at(0),
            "s.yaml:3:8: every: give either cron or every, not both");
  EXPECT_EQ(errors_of("schedule: a\nevery: 1m\ntimezone: UTC\nsaga: job\n").at(0),
            "s.yaml:3:11: timezone: timezone goes with cron, not every");
  EXPECT_EQ(errors_of("schedule: a\ncron: '0 0 31 2 *'\nsaga: job\n").at(0),
            "s.yaml:2:7: cron: cron expression '0 0 31 2 *' never matches a date");
  EXPECT_EQ(errors_of("schedule: a\nevery: 1m\nsaga: needs.input\ninput: { other: 1 }\n").at(0),
            "s.yaml:4:8: input.tenant: required by saga 'needs.input'");
}

TEST(ScheduleLoader, DirectoryLoadsOnlyScheduleFilesAndRefusesDuplicates) {
  testing::TempDir dir;
  dir.write("job.yaml", "saga: job\nversion: 1\nsteps:\n  - name: a\n    action: testing.succeed\n");
  dir.write("a.yaml", "schedule: tick\nevery: 1m\nsaga: job\n");
  dir.write("b.yaml", "schedule: tick\nevery: 5m\nsaga: job\n");
  const ScheduleSet set = load_schedules(dir.path(), sagas());
  EXPECT_EQ(set.schedules.size(), 1u);
  ASSERT_EQ(set.errors.size(), 1u);
  EXPECT_NE(set.errors[0].to_string().find("schedule 'tick' is already defined in"), std::string::npos);
}

// --- firing policies -------------------------------------------------------

const SagaDefinition& job() {
  static const std::map<std::string, SagaDefinition> defs = sagas();
  return defs.at("job");
}

ScheduleDefinition every_minute(Misfire misfire, Overlap overlap, int max_catch_up = 10) {
  ScheduleDefinition s;
  s.name = "tick";
  s.every = minutes(1);
  s.timing = ScheduleTiming::every(minutes(1));
  s.saga = "job";
  s.misfire = misfire;
  s.overlap = overlap;
  s.max_catch_up = max_catch_up;
  return s;
}

const TimePoint kNoon = TimePoint(date::sys_days(date::year(2026) / 11 / 25) + hours(12));

std::vector<std::string> dues(const FirePlan& plan) {
  std::vector<std::string> out;
  for (const auto& run : plan.runs) out.push_back(format_utc(run.due));
  return out;
}

TEST(PlanFiring, OnTimeStartsOneRunKeyedByItsDueTime) {
  const FirePlan plan = plan_firing(every_minute(Misfire::kFireOnce, Overlap::kSkip), job(),
                                    {"tick", kNoon, std::nullopt, false, kNoon + milliseconds(3)});
  ASSERT_EQ(plan.runs.size(), 1u);
  EXPECT_EQ(plan.runs[0].idempotency_key, "schedule/tick/2026-11-25T12:00:00Z");
  EXPECT_EQ(plan.runs[0].input["schedule"]["due_at"], "2026-11-25T12:00:00Z");
  EXPECT_EQ(format_utc(plan.next_due_at), "2026-11-25T12:01:00Z");
  EXPECT_EQ(plan.skipped, 0);
}

TEST(PlanFiring, FireOnceStandsForAllMissedSlots) {
  // Down from 12:00 to 12:59:30: 60 slots passed.
  const FirePlan plan = plan_firing(every_minute(Misfire::kFireOnce, Overlap::kSkip), job(),
                                    {"tick", kNoon, std::nullopt, false, kNoon + minutes(59) + seconds(30)});
  EXPECT_EQ(dues(plan), (std::vector<std::string>{"2026-11-25T12:59:00Z"}));
  EXPECT_EQ(plan.skipped, 59);
  EXPECT_EQ(format_utc(plan.next_due_at), "2026-11-25T13:00:00Z");
}

TEST(PlanFiring, CatchUpRunsTheLatestSlotsUpToItsBound) {
  const FirePlan plan = plan_firing(every_minute(Misfire::kCatchUp, Overlap::kAllow, 3), job(),
                                    {"tick", kNoon, std::nullopt, false, kNoon + minutes(4) + seconds(1)});
  EXPECT_EQ(dues(plan),
            (std::vector<std::string>{"2026-11-25T12:02:00Z", "2026-11-25T12:03:00Z", "2026-11-25T12:04:00Z"}));
  EXPECT_EQ(plan.skipped, 2);
}

TEST(PlanFiring, OverlapSkipStartsNothingWhileThePreviousRunIsUnfinished) {
  const FirePlan busy =
      plan_firing(every_minute(Misfire::kFireOnce, Overlap::kSkip), job(), {"tick", kNoon, std::nullopt, true, kNoon});
  EXPECT_TRUE(busy.runs.empty());
  EXPECT_EQ(busy.skipped, 1);
  EXPECT_FALSE(busy.buffered_due_at);
  // Catch-up under skip: the first slot starts, the rest would overlap it.
  const FirePlan caught = plan_firing(every_minute(Misfire::kCatchUp, Overlap::kSkip), job(),
                                      {"tick", kNoon, std::nullopt, false, kNoon + minutes(2)});
  EXPECT_EQ(dues(caught), (std::vector<std::string>{"2026-11-25T12:00:00Z"}));
  EXPECT_EQ(caught.skipped, 2);
}

TEST(PlanFiring, BufferOneKeepsOneSlotForWhenThePreviousRunEnds) {
  const ScheduleDefinition s = every_minute(Misfire::kCatchUp, Overlap::kBufferOne);
  const FirePlan busy = plan_firing(s, job(), {"tick", kNoon, std::nullopt, true, kNoon + minutes(1)});
  EXPECT_TRUE(busy.runs.empty());
  ASSERT_TRUE(busy.buffered_due_at);
  EXPECT_EQ(format_utc(*busy.buffered_due_at), "2026-11-25T12:00:00Z");
  EXPECT_EQ(busy.skipped, 1);  // 12:01 found the buffer full
  // The previous run ended: the buffered slot starts, next_due_at unchanged.
  const FirePlan freed = plan_firing(s, job(), {"tick", kNoon + minutes(2), kNoon, false, kNoon + minutes(1)});
  EXPECT_EQ(dues(freed), (std::vector<std::string>{"2026-11-25T12:00:00Z"}));
  EXPECT_FALSE(freed.buffered_due_at);
  EXPECT_EQ(freed.next_due_at, kNoon + minutes(2));
}

TEST(PlanFiring, JitterIsTheSameForTheSameSlotAndWithinBounds) {
  ScheduleDefinition s = every_minute(Misfire::kFireOnce, Overlap::kAllow);
  s.jitter = seconds(10);
  std::set<long long> delays;
  for (int i = 0; i < 50; ++i) {
    const Millis d = s.jitter_for(kNoon + minutes(i));
    EXPECT_EQ(d, s.jitter_for(kNoon + minutes(i)));
    EXPECT_GE(d.count(), 0);
    EXPECT_LT(d, seconds(10));
    delays.insert(d.count());
  }
  EXPECT_GT(delays.size(), 40u);  // spread, not constant
  EXPECT_EQ(plan_firing(s, job(), {"tick", kNoon, std::nullopt, false, kNoon}).runs[0].delay, s.jitter_for(kNoon));
}

}  // namespace
}  // namespace wsflow
