#include "engine/cron.h"

#include <date/tz.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <regex>
#include <stdexcept>
#include <vector>

namespace wsflow {
namespace {

struct FieldSpec {
  const char* name;
  int min, max;
  const std::vector<std::string>* names;  // names[i] is the value min + i; nullptr: none
};

const std::vector<std::string> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                              "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
const std::vector<std::string> kWeekdayNames = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

const FieldSpec kFields[] = {
    {"minute", 0, 59, nullptr},
    {"hour", 0, 23, nullptr},
    {"day-of-month", 1, 31, nullptr},
    {"month", 1, 12, &kMonthNames},
    {"day-of-week", 0, 7, &kWeekdayNames},
};

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t at = text.find(separator, start);
    parts.push_back(text.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return parts;
    start = at + 1;
  }
}

// A number or (where the field has names) a name, within the field's range.
std::optional<int> value_of(const FieldSpec& field, const std::string& text, std::string& error) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (text.size() > 2 || std::stoi(text) < field.min || std::stoi(text) > field.max) {
      error = std::string(field.name) + ": " + text + " is out of range " + std::to_string(field.min) + "-" +
              std::to_string(field.max);
      return std::nullopt;
    }
    return std::stoi(text);
  }
  if (field.names) {
    std::string upper = text;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto it = std::find(field.names->begin(), field.names->end(), upper);
    if (it != field.names->end()) return field.min + static_cast<int>(it - field.names->begin());
  }
  error = std::string(field.name) + ": '" + text + "' is not a " + (field.names ? "number or name" : "number");
  return std::nullopt;
}

// Sets the bits of `bits` (indexed by value) that one comma-separated field selects.
template <std::size_t N>
bool parse_field(const FieldSpec& field, const std::string& text, std::bitset<N>& bits, std::string& error) {
  for (const std::string& item : split(text, ',')) {
    if (item.empty()) {
      error = std::string(field.name) + ": empty list item in '" + text + "'";
      return false;
    }
    std::string range = item;
    int step = 1;
    if (const auto slash = item.find('/'); slash != std::string::npos) {
      range = item.substr(0, slash);
      const std::string step_text = item.substr(slash + 1);
      if (step_text.empty() || step_text.size() > 2 ||
          !std::all_of(step_text.begin(), step_text.end(), [](unsigned char c) { return std::isdigit(c); }) ||
          std::stoi(step_text) == 0) {
        error = std::string(field.name) + ": step '" + step_text + "' must be a positive number";
        return false;
      }
      step = std::stoi(step_text);
    }
    int low = field.min, high = field.max;
    if (range != "*") {
      const auto dash = range.find('-');
      auto first = value_of(field, range.substr(0, dash), error);
      if (!first) return false;
      low = *first;
      if (dash != std::string::npos) {
        auto last = value_of(field, range.substr(dash + 1), error);
        if (!last) return false;
        high = *last;
        if (high < low) {
          error = std::string(field.name) + ": range '" + range + "' runs backwards";
          return false;
        }
      } else {
        high = item.find('/') == std::string::npos ? low : field.max;  // "5/15" means 5-max/15
      }
    }
    for (int v = low; v <= high; v += step) bits.set(static_cast<std::size_t>(v));
  }
  return true;
}

const std::map<std::string, std::string> kShorthands = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},  {"@midnight", "0 0 * * *"}, {"@hourly", "0 * * * *"},
};
}  // namespace

bool CronExpression::day_matches(int day_of_month, int month, int weekday) const {
  if (!months.test(static_cast<std::size_t>(month))) return false;
  const bool dom = days_of_month.test(static_cast<std::size_t>(day_of_month));
  const bool dow = days_of_week.test(static_cast<std::size_t>(weekday));
  if (day_of_month_restricted && day_of_week_restricted) return dom || dow;
  return dom && dow;
}

std::optional<CronExpression> parse_cron(const std::string& text, std::string& error) {
  std::string expanded = text;
  if (auto it = kShorthands.find(text); it != kShorthands.end()) expanded = it->second;
  std::vector<std::string> fields;
  std::string current;
  for (char c : expanded) {
    if (c == ' ' || c == '\t') {
      if (!current.empty()) fields.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  if (!current.empty()) fields.push_back(std::move(current));
  if (fields.size() != 5) {
    error = "expected 5 fields (minute hour day-of-month month day-of-week), got " + std::to_string(fields.size());
    return std::nullopt;
  }
  CronExpression cron;
  std::bitset<8> weekdays;
  if (!parse_field(kFields[0], fields[0], cron.minutes, error) ||
      !parse_field(kFields[1], fields[1], cron.hours, error) ||
      !parse_field(kFields[2], fields[2], cron.days_of_month, error) ||
      !parse_field(kFields[3], fields[3], cron.months, error) || !parse_field(kFields[4], fields[4], weekdays, error)) {
    return std::nullopt;
  }
  for (std::size_t d = 0; d < 7; ++d) cron.days_of_week[d] = weekdays[d];
  if (weekdays[7]) cron.days_of_week.set(0);  // 7 is Sunday too
  cron.day_of_month_restricted = fields[2].front() != '*';
  cron.day_of_week_restricted = fields[4].front() != '*';
  return cron;
}

const date::time_zone* find_time_zone(const std::string& name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return nullptr;
  }
}

ScheduleTiming ScheduleTiming::cron(CronExpression expression, const date::time_zone* zone) {
  if (!zone) throw std::invalid_argument("a cron schedule needs a time zone");
  ScheduleTiming timing;
  timing.cron_ = std::move(expression);
  timing.zone_ = zone;
  return timing;
}

ScheduleTiming ScheduleTiming::every(Millis interval) {
  if (interval.count() <= 0) throw std::invalid_argument("an interval must be positive");
  ScheduleTiming timing;
  timing.interval_ = interval;
  return timing;
}

TimePoint ScheduleTiming::next_after(TimePoint after) const {
  using namespace std::chrono;
  if (!cron_) {
    const auto since_epoch = duration_cast<Millis>(after.time_since_epoch());
    const auto slots =
        since_epoch.count() >= 0 ? since_epoch / interval_ : (since_epoch - interval_ + Millis(1)) / interval_;
    return TimePoint(duration_cast<system_clock::duration>(interval_ * (slots + 1)));
  }
  // Local candidates earlier than this cannot map past `after`: no zone's
  // offset changes by three hours or more at once.
  const date::local_seconds earliest = zone_->to_local(floor<seconds>(after)) - hours(3);
  const date::local_days first_day = floor<date::days>(earliest);
  // Five years covers every satisfiable expression (29 February with a weekday included).
  for (date::local_days day = first_day; day < first_day + date::days(5 * 366 + 1); day += date::days(1)) {
    const date::year_month_day ymd(day);
    const int weekday = static_cast<int>(date::weekday(day).c_encoding());
    if (!cron_->day_matches(static_cast<int>(static_cast<unsigned>(ymd.day())),
                            static_cast<int>(static_cast<unsigned>(ymd.month())), weekday)) {
      continue;
    }
    for (int h = 0; h < 24; ++h) {
      if (!cron_->hours.test(static_cast<std::size_t>(h)) || day + hours(h + 1) <= earliest) continue;
      for (int m = 0; m < 60; ++m) {
        if (!cron_->minutes.test(static_cast<std::size_t>(m))) continue;
        const date::local_seconds local = day + hours(h) + minutes(m);
        if (local < earliest) continue;
        const date::local_info info = zone_->get_info(local);
        date::sys_seconds instant;
        if (info.result == date::local_info::nonexistent) {
          instant = info.second.begin;  // the first valid instant after the jump
        } else {
          instant = date::sys_seconds(local.time_since_epoch() - info.first.offset);  // first occurrence
        }
        if (instant > after) return TimePoint(instant);
      }
    }
  }
  throw std::runtime_error("the cron expression never matches");
}

std::string format_in_zone(TimePoint at, const std::string& zone_name) {
  const date::time_zone* zone = find_time_zone(zone_name);
  if (!zone) zone = find_time_zone("UTC");
  return date::format("%FT%T%Ez", date::make_zoned(zone, std::chrono::floor<std::chrono::seconds>(at)));
}

std::optional<TimePoint> parse_rfc3339(const std::string& text) {
  using namespace std::chrono;
  static const std::regex kShape(
      R"((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(?:Z|([+-])(\d{2}):(\d{2})))");
  std::smatch m;
  if (!std::regex_match(text, m, kShape)) return std::nullopt;
  const auto number = [&](int group) { return m[group].matched ? std::stoi(m[group].str()) : 0; };
  const date::year_month_day day{date::year(number(1)), date::month(static_cast<unsigned>(number(2))),
                                 date::day(static_cast<unsigned>(number(3)))};
  if (!day.ok() || number(4) > 23 || number(5) > 59 || number(6) > 60 || number(9) > 23 || number(10) > 59) {
    return std::nullopt;
  }
  std::string fraction = m[7].matched ? m[7].str() : "0";
  fraction.resize(3, '0');
  const minutes offset = (m[8].matched && m[8].str() == "-" ? -1 : 1) * (hours(number(9)) + minutes(number(10)));
  return TimePoint(date::sys_days(day) + hours(number(4)) + minutes(number(5)) + seconds(number(6)) +
                   milliseconds(std::stoi(fraction)) - offset);
}

std::string format_utc(TimePoint at) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(at);
  const auto s = floor<seconds>(ms);
  std::string text = date::format("%FT%T", s);
  if (const auto rest = (ms - s).count(); rest != 0) {
    char buffer[8];
    std::snprintf(buffer, sizeof buffer, ".%03d", static_cast<int>(rest));
    text += buffer;
  }
  return text + "Z";
}

}  // namespace wsflow
