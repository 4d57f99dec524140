#include "engine/schedule_loader.h"

#include <yaml-cpp/yaml.h>

#include <regex>

#include "engine/sha256.h"
#include "engine/text_file.h"
#include "engine/yaml_checker.h"

namespace wsflow {

const char* to_string(Misfire misfire) { return misfire == Misfire::kFireOnce ? "fire_once" : "catch_up"; }

const char* to_string(Overlap overlap) {
  switch (overlap) {
    case Overlap::kSkip:
      return "skip";
    case Overlap::kBufferOne:
      return "buffer_one";
    case Overlap::kAllow:
      return "allow";
  }
  return "skip";
}

Millis ScheduleDefinition::jitter_for(TimePoint due) const {
  if (jitter.count() <= 0) return Millis(0);
  const std::string digest = sha256_hex(name + "/" + format_utc(due));
  return Millis(std::stoull(digest.substr(0, 12), nullptr, 16) % static_cast<unsigned long long>(jitter.count()));
}

bool yaml_has_top_level_key(const std::string& yaml_text, const char* key) {
  try {
    const YAML::Node root = YAML::Load(yaml_text);
    return root.IsMap() && root[key];
  } catch (const YAML::Exception&) {
    return false;
  }
}

namespace {

// `jitter: 0s` is allowed (no jitter), unlike the positive durations elsewhere.
Millis parse_jitter(YamlChecker& c, const YAML::Node& root) {
  const YAML::Node node = root["jitter"];
  if (!node) return Millis(0);
  std::optional<Millis> value;
  if (node.IsScalar()) value = try_parse_duration(node.Scalar());
  if (!value) {
    c.error(node, "jitter", "invalid duration: expected an integer and a unit (ms, s, m, h, d), e.g. 30s or 0s");
    return Millis(0);
  }
  return *value;
}

void parse_timing(YamlChecker& c, const YAML::Node& root, ScheduleDefinition& schedule) {
  if (root["cron"] && root["every"]) {
    c.error(root["every"], "every", "give either cron or every, not both");
    return;
  }
  if (!root["cron"] && !root["every"]) {
    c.error(root, "cron", "required field is missing (or give every:)");
    return;
  }
  if (root["every"]) {
    if (root["timezone"]) c.error(root["timezone"], "timezone", "timezone goes with cron, not every");
    if (auto every = c.duration(root, "", "every", true)) {
      schedule.every = *every;
      schedule.timing = ScheduleTiming::every(*every);
    }
    return;
  }
  if (auto zone_name = c.string(root, "", "timezone", false)) schedule.timezone = *zone_name;
  const date::time_zone* zone = find_time_zone(schedule.timezone);
  if (!zone) c.error(root["timezone"], "timezone", "unknown time zone '" + schedule.timezone + "' (an IANA name)");
  auto text = c.string(root, "", "cron", true);
  if (!text) return;
  std::string problem;
  auto expression = parse_cron(*text, problem);
  if (!expression) {
    c.error(root["cron"], "cron", "invalid cron expression '" + *text + "': " + problem);
    return;
  }
  schedule.cron = *text;
  if (!zone) return;
  schedule.timing = ScheduleTiming::cron(*expression, zone);
  try {
    schedule.timing.next_after(TimePoint());
    schedule.timing.next_after(std::chrono::system_clock::now());
  } catch (const std::runtime_error&) {
    c.error(root["cron"], "cron", "cron expression '" + *text + "' never matches a date");
  }
}

}  // namespace

ScheduleLoad load_schedule(const std::string& yaml_text, const std::string& file,
                           const std::map<std::string, SagaDefinition>& sagas) {
  ScheduleLoad result;
  const std::optional<YAML::Node> parsed = parse_yaml(yaml_text, file, result.errors);
  if (!parsed) return result;
  const YAML::Node& root = *parsed;
  YamlChecker c(file, result.errors);
  if (!c.map(root, "",
             {"schedule", "description", "cron", "every", "timezone", "saga", "input", "misfire", "max_catch_up",
              "overlap", "jitter"})) {
    return result;
  }
  ScheduleDefinition schedule;
  schedule.file = file;
  if (auto name = c.string(root, "", "schedule", true)) {
    static const std::regex kName("[a-z][a-z0-9_.-]{0,99}");
    if (!std::regex_match(*name, kName)) {
      c.error(root["schedule"], "schedule",
              "schedule names are lower-case letters, digits, '.', '-' and '_' starting with a letter, got '" + *name +
                  "'");
    }
    schedule.name = *name;
  }
  if (auto description = c.string(root, "", "description", false)) schedule.description = *description;
  parse_timing(c, root, schedule);

  if (auto saga = c.string(root, "", "saga", true)) {
    schedule.saga = *saga;
    auto def = sagas.find(*saga);
    if (def == sagas.end()) {
      c.error(root["saga"], "saga", "no saga definition named '" + *saga + "'");
    } else if (root["input"] && root["input"].IsMap()) {
      schedule.input = yaml_to_json(root["input"]);
      for (const std::string& field : def->second.required_input) {
        if (!schedule.input.contains(field)) {
          c.error(root["input"], "input." + field, "required by saga '" + *saga + "'");
        }
      }
    } else if (!root["input"] && !def->second.required_input.empty()) {
      c.error(root, "input", "saga '" + *saga + "' requires input: " + def->second.required_input.front());
    }
  }
  if (root["input"] && !root["input"].IsMap()) c.error(root["input"], "input", "expected a mapping");

  schedule.misfire = c.choice<Misfire>(root, "", "misfire",
                                       {{to_string(Misfire::kFireOnce), Misfire::kFireOnce},
                                        {to_string(Misfire::kCatchUp), Misfire::kCatchUp}})
                         .value_or(Misfire::kFireOnce);
  if (auto max = c.integer(root, "", "max_catch_up", false, 1)) {
    if (schedule.misfire != Misfire::kCatchUp) {
      c.error(root["max_catch_up"], "max_catch_up", "goes with misfire: catch_up");
    } else if (*max > 1000) {
      c.error(root["max_catch_up"], "max_catch_up", "must be at most 1000");
    }
    schedule.max_catch_up = static_cast<int>(*max);
  }
  schedule.overlap = c.choice<Overlap>(root, "", "overlap",
                                       {{to_string(Overlap::kSkip), Overlap::kSkip},
                                        {to_string(Overlap::kBufferOne), Overlap::kBufferOne},
                                        {to_string(Overlap::kAllow), Overlap::kAllow}})
                         .value_or(Overlap::kSkip);
  schedule.jitter = parse_jitter(c, root);
  schedule.timing_hash =
      sha256_hex(schedule.cron + "|" + std::to_string(schedule.every.count()) + "|" + schedule.timezone);
  if (result.errors.empty()) result.schedule = std::move(schedule);
  return result;
}

ScheduleSet load_schedules(const std::filesystem::path& path, const std::map<std::string, SagaDefinition>& sagas) {
  ScheduleSet set;
  std::error_code ec;
  const std::vector<std::filesystem::path> files =
      std::filesystem::is_directory(path, ec) ? yaml_files_in(path) : std::vector<std::filesystem::path>{path};
  for (const auto& file : files) {
    const std::optional<std::string> text = read_text_file(file);
    if (!text || !yaml_has_top_level_key(*text, "schedule")) continue;  // unreadable files: load_definitions says so
    ScheduleLoad loaded = load_schedule(*text, file.string(), sagas);
    set.errors.insert(set.errors.end(), loaded.errors.begin(), loaded.errors.end());
    if (!loaded.schedule) continue;
    const std::string name = loaded.schedule->name;
    if (auto it = set.schedules.find(name); it != set.schedules.end()) {
      set.errors.push_back(
          {file.string(), 1, 1, "schedule", "schedule '" + name + "' is already defined in " + it->second.file});
      continue;
    }
    set.schedules.emplace(name, std::move(*loaded.schedule));
  }
  return set;
}

}  // namespace wsflow
