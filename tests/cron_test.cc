// The cron parser and due-time calculator, daylight-saving edges included.

#include "engine/cron.h"

#include <date/date.h>
#include <gtest/gtest.h>

namespace wsflow {
namespace {

using namespace std::chrono;

TimePoint utc(int y, unsigned mo, unsigned d, int h, int mi, int s = 0) {
  return TimePoint(date::sys_days(date::year(y) / mo / d) + hours(h) + minutes(mi) + seconds(s));
}

CronExpression cron(const std::string& text) {
  std::string error;
  auto parsed = parse_cron(text, error);
  EXPECT_TRUE(parsed.has_value()) << text << ": " << error;
  return parsed.value_or(CronExpression{});
}

std::string parse_error(const std::string& text) {
  std::string error;
  EXPECT_FALSE(parse_cron(text, error).has_value()) << text;
  return error;
}

ScheduleTiming in_zone(const std::string& text, const std::string& zone) {
  return ScheduleTiming::cron(cron(text), find_time_zone(zone));
}

// The first `n` due times after `from`.
std::vector<std::string> next_n(const ScheduleTiming& timing, TimePoint from, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    from = timing.next_after(from);
    out.push_back(format_utc(from));
  }
  return out;
}

TEST(Cron, ParsesListsRangesStepsAndNames) {
  const CronExpression c = cron("0,15-17,*/20 9-17/4 1,15 JAN-mar MON-FRI");
  for (int m : {0, 15, 16, 17, 20, 40}) EXPECT_TRUE(c.minutes.test(m)) << m;
  EXPECT_EQ(c.minutes.count(), 6u);
  EXPECT_EQ(c.hours.count(), 3u);  // 9, 13, 17
  EXPECT_TRUE(c.hours.test(13));
  EXPECT_EQ(c.months.count(), 3u);
  EXPECT_TRUE(c.months.test(1) && c.months.test(3));
  EXPECT_EQ(c.days_of_week.count(), 5u);
  EXPECT_FALSE(c.days_of_week.test(0));
  EXPECT_TRUE(cron("0 0 * * 7").days_of_week.test(0));  // 7 is Sunday
  EXPECT_EQ(cron("5/15 * * * *").minutes.count(), 4u);  // 5, 20, 35, 50
  EXPECT_EQ(cron("@hourly").minutes.count(), 1u);
}

TEST(Cron, RejectsMalformedExpressionsNamingTheField) {
  EXPECT_NE(parse_error("* * * *").find("expected 5 fields"), std::string::npos);
  EXPECT_EQ(parse_error("60 * * * *"), "minute: 60 is out of range 0-59");
  EXPECT_EQ(parse_error("* 24 * * *"), "hour: 24 is out of range 0-23");
  EXPECT_EQ(parse_error("* * 0 * *"), "day-of-month: 0 is out of range 1-31");
  EXPECT_NE(parse_error("*/0 * * * *").find("step"), std::string::npos);
  EXPECT_NE(parse_error("* 5-1 * * *").find("backwards"), std::string::npos);
  EXPECT_NE(parse_error("* * * FOO *").find("month"), std::string::npos);
  EXPECT_NE(parse_error("1,,2 * * * *").find("empty"), std::string::npos);
  EXPECT_NE(parse_error("* * * * MON-").find("day-of-week"), std::string::npos);
}

TEST(Cron, WeekdaysInUtc) {
  // 2026-11-28 is a Saturday.
  const ScheduleTiming t = in_zone("0 9 * * MON-FRI", "UTC");
  EXPECT_EQ(next_n(t, utc(2026, 11, 28, 12, 0), 2),
            (std::vector<std::string>{"2026-11-30T09:00:00Z", "2026-12-01T09:00:00Z"}));
}

TEST(Cron, DayOfMonthAndDayOfWeekAreOredWhenBothRestricted) {
  // 2026-11-06 and 11-20 are Fridays; 11-13 is both.
  EXPECT_EQ(next_n(in_zone("0 0 13 * FRI", "UTC"), utc(2026, 11, 1, 0, 0), 4),
            (std::vector<std::string>{"2026-11-06T00:00:00Z", "2026-11-13T00:00:00Z", "2026-11-20T00:00:00Z",
                                      "2026-11-27T00:00:00Z"}));
  EXPECT_EQ(next_n(in_zone("0 0 13 * *", "UTC"), utc(2026, 11, 1, 0, 0), 1),
            (std::vector<std::string>{"2026-11-13T00:00:00Z"}));
  // A day-of-month field starting with * leaves day-of-week in charge alone (AND).
  EXPECT_EQ(next_n(in_zone("0 0 */2 * FRI", "UTC"), utc(2026, 11, 1, 0, 0), 2),
            (std::vector<std::string>{"2026-11-13T00:00:00Z", "2026-11-27T00:00:00Z"}));
}

TEST(Cron, LeapDay) {
  EXPECT_EQ(next_n(in_zone("0 12 29 2 *", "UTC"), utc(2026, 11, 1, 0, 0), 1),
            (std::vector<std::string>{"2028-02-29T12:00:00Z"}));
}

TEST(Cron, SkippedLocalTimeFiresOnceAtTheNextValidMinute) {
  // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
  const ScheduleTiming daily = in_zone("30 2 * * *", "America/New_York");
  EXPECT_EQ(next_n(daily, utc(2026, 3, 7, 0, 0), 3),
            (std::vector<std::string>{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}));
  // 02:00 and 02:30 do not exist; with 03:00 they make one run at the jump.
  const ScheduleTiming half_hourly = in_zone("*/30 * * * *", "America/New_York");
  EXPECT_EQ(next_n(half_hourly, utc(2026, 3, 8, 6, 0), 4),
            (std::vector<std::string>{"2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z",
                                      "2026-03-08T08:00:00Z"}));
  // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
  EXPECT_EQ(next_n(in_zone("15 2 * * *", "Europe/Berlin"), utc(2026, 3, 28, 12, 0), 2),
            (std::vector<std::string>{"2026-03-29T01:00:00Z", "2026-03-30T00:15:00Z"}));
}

TEST(Cron, RepeatedLocalTimeFiresOnce) {
  // New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
  const ScheduleTiming daily = in_zone("30 1 * * *", "America/New_York");
  EXPECT_EQ(next_n(daily, utc(2026, 10, 31, 12, 0), 2),
            (std::vector<std::string>{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}));
  const ScheduleTiming half_hourly = in_zone("*/30 * * * *", "America/New_York");
  EXPECT_EQ(next_n(half_hourly, utc(2026, 11, 1, 4, 45), 4),
            (std::vector<std::string>{"2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-01T07:00:00Z",
                                      "2026-11-01T07:30:00Z"}));
  // Starting inside the second occurrence, the repeated times do not fire again.
  EXPECT_EQ(next_n(half_hourly, utc(2026, 11, 1, 6, 10), 1), (std::vector<std::string>{"2026-11-01T07:00:00Z"}));
}

TEST(Cron, NextIsStrictlyAfterAndWholeMinutes) {
  const ScheduleTiming t = in_zone("* * * * *", "UTC");
  EXPECT_EQ(format_utc(t.next_after(utc(2026, 1, 1, 0, 0))), "2026-01-01T00:01:00Z");
  EXPECT_EQ(format_utc(t.next_after(utc(2026, 1, 1, 0, 0, 59) + milliseconds(999))), "2026-01-01T00:01:00Z");
}

TEST(Cron, NeverMatchingExpressionThrows) {
  EXPECT_THROW(in_zone("0 0 31 2 *", "UTC").next_after(utc(2026, 1, 1, 0, 0)), std::runtime_error);
}

TEST(Every, SlotsAreEpochAligned) {
  const ScheduleTiming t = ScheduleTiming::every(minutes(1));
  EXPECT_EQ(format_utc(t.next_after(utc(2026, 1, 1, 12, 0, 30))), "2026-01-01T12:01:00Z");
  EXPECT_EQ(format_utc(t.next_after(utc(2026, 1, 1, 12, 1))), "2026-01-01T12:02:00Z");
  EXPECT_EQ(format_utc(ScheduleTiming::every(milliseconds(250)).next_after(utc(2026, 1, 1, 0, 0))),
            "2026-01-01T00:00:00.250Z");
}

TEST(TimeZones, UnknownZoneIsNull) {
  EXPECT_NE(find_time_zone("Europe/Berlin"), nullptr);
  EXPECT_NE(find_time_zone("UTC"), nullptr);
  EXPECT_EQ(find_time_zone("Mars/Olympus_Mons"), nullptr);
}

TEST(Rfc3339, FormatsInTheScheduleZoneAndParsesOffsets) {
  const TimePoint t = utc(2026, 11, 25, 17, 0);
  EXPECT_EQ(format_in_zone(t, "Europe/Berlin"), "2026-11-25T18:00:00+01:00");
  EXPECT_EQ(format_in_zone(t, "UTC"), "2026-11-25T17:00:00+00:00");
  EXPECT_EQ(parse_rfc3339("2026-11-25T18:00:00+01:00"), t);
  EXPECT_EQ(parse_rfc3339("2026-11-25T17:00:00Z"), t);
  EXPECT_EQ(parse_rfc3339("2026-11-25T17:00:00.250Z"), t + std::chrono::milliseconds(250));
  EXPECT_FALSE(parse_rfc3339("2026-11-25 17:00"));
  EXPECT_FALSE(parse_rfc3339("yesterday"));
  EXPECT_FALSE(parse_rfc3339("2026-13-45T17:00:00Z"));
}

}  // namespace
}  // namespace wsflow
