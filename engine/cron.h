#pragma once
// When a schedule is due: a standard 5-field cron expression evaluated in an
// IANA time zone, or a fixed interval.
//
// Cron: "minute hour day-of-month month day-of-week" with lists (1,15),
// ranges (1-5), steps (*/15, 10-50/20), month and weekday names (JAN, mon),
// 7 as Sunday, and the @yearly/@annually/@monthly/@weekly/@daily/@midnight/
// @hourly shorthands. Day-of-month and day-of-week are OR'd when both are
// restricted, as Vixie cron does (a field written starting with `*` is
// unrestricted).
//
// Daylight-saving time, as cron users expect: a local time that does not
// exist (the clock jumps over it) fires once, at the first instant after the
// jump; a local time that happens twice (the clock falls back) fires once, at
// its first occurrence.
//
// Time zones come from the system tzdata through Howard Hinnant's date/tz.h;
// the process's TZ is never read or changed.

#include <bitset>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "engine/duration.h"

namespace date {
class time_zone;
}

namespace wsflow {

using TimePoint = std::chrono::system_clock::time_point;

struct CronExpression {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days_of_month;  // 1..31
  std::bitset<13> months;         // 1..12
  std::bitset<7> days_of_week;    // 0 = Sunday
  bool day_of_month_restricted = true;
  bool day_of_week_restricted = true;

  bool day_matches(int day_of_month, int month, int weekday) const;
};

// Parses `text`; on failure returns nullopt and sets `error` to what is wrong
// (naming the field, e.g. "hour: 24 is out of range 0-23").
std::optional<CronExpression> parse_cron(const std::string& text, std::string& error);

// The zone named `name` (e.g. "Europe/Berlin", "UTC"), or nullptr if tzdata
// has no such zone.
const date::time_zone* find_time_zone(const std::string& name);

// A schedule's timing: exactly one of cron or every.
class ScheduleTiming {
 public:
  ScheduleTiming() = default;  // unusable until assigned one of the two below
  static ScheduleTiming cron(CronExpression expression, const date::time_zone* zone);
  // Slots at whole multiples of `interval` since the Unix epoch.
  static ScheduleTiming every(Millis interval);

  // The first due time strictly after `after` (whole minutes for cron).
  // Throws std::runtime_error if the expression can never match (e.g.
  // "0 0 31 2 *"), which the loader rejects up front.
  TimePoint next_after(TimePoint after) const;

 private:
  std::optional<CronExpression> cron_;
  const date::time_zone* zone_ = nullptr;
  Millis interval_{0};
};

// RFC 3339 in the zone named `zone` with its offset at that instant, e.g.
// "2026-11-25T18:00:00+01:00" (UTC, or an unknown zone: "+00:00").
std::string format_in_zone(TimePoint at, const std::string& zone);

// Parses RFC 3339 with a `Z` or a numeric offset ("2026-11-25T17:00:00Z",
// "2026-11-25T18:00:00.250+01:00"); nullopt for anything else.
std::optional<TimePoint> parse_rfc3339(const std::string& text);

// "2026-11-25T17:00:00Z" for a time point, in UTC, with milliseconds only
// when there are some. Used in idempotency keys, so it must not change.
std::string format_utc(TimePoint at);

}  // namespace wsflow
