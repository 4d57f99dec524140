#include "app/views.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <vector>

#include "engine/cron.h"
#include "engine/duration.h"

namespace wsflow::app {
namespace {

using json = nlohmann::json;

const char* kRed = "\033[31m";
const char* kGreen = "\033[32m";
const char* kYellow = "\033[33m";
const char* kDim = "\033[2m";
const char* kBold = "\033[1m";
const char* kReset = "\033[0m";

std::string paint(const std::string& text, const char* colour, Style style) {
  if (!style.colour || text.empty()) return text;
  return colour + text + kReset;
}

const char* state_colour(const std::string& state) {
  if (state == "completed" || state == "active") return kGreen;
  if (state == "failed" || state == "compensation_failed") return kRed;
  if (state == "compensating" || state == "compensated" || state == "cancelled" || state == "paused" ||
      state == "retrying" || state == "frozen")
    return kYellow;
  return kBold;
}

std::string text(const json& value) {
  if (value.is_null()) return "";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

// The API's timestamps carry microseconds; a person needs milliseconds at most.
std::optional<TimePoint> time_of(const json& value) {
  if (!value.is_string()) return std::nullopt;
  std::string t = value.get<std::string>();
  const auto dot = t.find('.');
  if (dot != std::string::npos) {
    auto end = t.find_first_not_of("0123456789", dot + 1);
    if (end == std::string::npos) end = t.size();
    if (end - dot - 1 > 3) t.erase(dot + 4, end - dot - 4);
  }
  return parse_rfc3339(t);
}

// "2026-11-25 19:50:16" (UTC), or "" for none.
std::string when(const json& value) {
  const auto at = time_of(value);
  if (!at) return "";
  std::string utc = format_utc(std::chrono::floor<std::chrono::seconds>(*at));
  utc[10] = ' ';
  return utc.substr(0, 19);
}

// "19:50:16.123" for the timeline.
std::string clock_time(const json& value) {
  const auto at = time_of(value);
  if (!at) return "";
  std::string utc = format_utc(*at);
  if (utc.find('.') == std::string::npos) utc.insert(utc.size() - 1, ".000");
  return utc.substr(11, 12);
}

std::string between(const json& from, const json& to) {
  const auto a = time_of(from), b = time_of(to);
  if (!a || !b) return "";
  return format_duration(std::chrono::duration_cast<Millis>(*b - *a));
}

// Columns padded to the widest cell; `colours[i]` paints column i's cells.
std::string table(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows,
                  const std::vector<std::function<const char*(const std::string&)>>& colours, Style style) {
  std::vector<std::size_t> width(headers.size());
  for (std::size_t c = 0; c < headers.size(); ++c) width[c] = headers[c].size();
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::ostringstream out;
  auto line = [&](const std::vector<std::string>& cells, bool header) {
    std::string text;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      std::string cell = cells[c];
      const bool last = c + 1 == cells.size();
      const std::string padding = last ? "" : std::string(width[c] - cell.size() + 2, ' ');
      const char* colour = header ? kDim : (c < colours.size() && colours[c] ? colours[c](cell) : nullptr);
      text += (colour ? paint(cell, colour, style) : cell) + padding;
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out << text << "\n";
  };
  line(headers, true);
  for (const auto& row : rows) line(row, false);
  return out.str();
}

std::string label(const json& item) {
  const std::string step = text(item["step"]);
  const std::string branch = text(item.value("branch", json()));
  return branch.empty() ? step : step + "[" + branch + "]";
}

std::string stuck_line(const json& stuck) {
  if (!stuck.is_object()) return "";
  const json& d = stuck["detail"];
  std::string line = text(stuck["reason"]) + " since " + when(stuck["since"]);
  if (d.contains("step") && !d["step"].is_null()) {
    line += ": " + std::string(d.value("compensating", false) ? "compensating " : "step ") + label(d);
  }
  if (d.contains("attempt") && !d["attempt"].is_null()) {
    line += ", attempt " + text(d["attempt"]);
    if (!d.value("max_attempts", json()).is_null()) line += " of " + text(d["max_attempts"]);
  }
  if (!d.value("last_error", json()).is_null()) line += ", last error: " + text(d["last_error"]);
  if (!d.value("next_retry_at", json()).is_null()) line += ", next retry " + when(d["next_retry_at"]);
  if (!d.value("lease_owner", json()).is_null()) line += ", engine " + text(d["lease_owner"]);
  if (!d.value("error", json()).is_null()) line += " (" + text(d["error"]) + ")";
  return line;
}

// One event's particulars, in words.
std::string event_summary(const json& e) {
  const json& d = e["detail"];
  const std::string kind = text(e["kind"]);
  std::string s;
  if (d.contains("attempt")) {
    s = "attempt " + text(d["attempt"]);
    if (d.contains("max_attempts")) s += " of " + text(d["max_attempts"]);
  }
  if (d.contains("code")) s += (s.empty() ? "" : ": ") + text(d["code"]);
  if (d.contains("message")) s += (s.empty() ? "" : ": ") + text(d["message"]);
  if (d.contains("reason") && kind.rfind("operator_", 0) != 0) s += (s.empty() ? "" : ": ") + text(d["reason"]);
  if (d.contains("duration")) s += "for " + text(d["duration"]);
  if (d.contains("condition")) s += "when: " + text(d["condition"]) + " did not hold";
  if (d.contains("signal")) s += (s.empty() ? "" : " ") + std::string("signal ") + text(d["signal"]);
  if (kind == "created") s = text(d["definition"]) + " v" + text(d["version"]);
  if (kind.rfind("operator_", 0) == 0) {
    s = "by " + text(d["by"]);
    if (!text(d.value("key_name", json())).empty()) s += " (key " + text(d["key_name"]) + ")";
    if (d.contains("reason")) s += ": " + text(d["reason"]);
    if (d.contains("new_saga_id")) s += "; new saga " + text(d["new_saga_id"]);
    if (d.contains("bulk_id")) s += "; bulk " + text(d["bulk_id"]);
  }
  return s;
}

}  // namespace

Style style_for_stdout() { return {isatty(STDOUT_FILENO) == 1 && std::getenv("NO_COLOR") == nullptr}; }

std::string saga_table(const json& sagas, Style style) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : sagas) {
    rows.push_back({text(s["id"]), text(s["definition"]), text(s["state"]),
                    s["stuck"].is_object() ? text(s["stuck"]["reason"]) : "-", when(s["updated_at"])});
  }
  if (rows.empty()) return "no sagas match\n";
  return table({"ID", "DEFINITION", "STATE", "STUCK", "UPDATED"}, rows,
               {nullptr, nullptr, [](const std::string& v) { return state_colour(v); },
                [](const std::string& v) { return v == "-" ? nullptr : kRed; }},
               style);
}

std::string saga_report(const json& saga, const json& events, Style style) {
  std::ostringstream out;
  out << paint("saga " + text(saga["id"]), kBold, style) << "  " << text(saga["definition"]) << " v"
      << text(saga["version"]) << "  " << paint(text(saga["state"]), state_colour(text(saga["state"])), style)
      << "\n";
  if (!saga["workspace_id"].is_null()) out << "workspace " << text(saga["workspace_id"]) << "\n";
  out << "created " << when(saga["created_at"]) << ", updated " << when(saga["updated_at"]);
  if (!saga["finished_at"].is_null()) out << ", finished " << when(saga["finished_at"]);
  out << "\n";
  if (!saga["rerun_of"].is_null()) {
    out << "rerun of " << text(saga["rerun_of"]) << " from step " << text(saga["rerun_from_step"]) << "\n";
  }
  for (const auto& r : saga.value("reruns", json::array())) out << "rerun as " << text(r) << "\n";
  if (!saga["error"].is_null()) out << "error: " << text(saga["error"]) << "\n";
  if (saga["stuck"].is_object()) out << paint("stuck: " + stuck_line(saga["stuck"]), kRed, style) << "\n";
  if (saga.value("pause_requested", false)) out << "pause requested: it pauses at its next step\n";
  std::string allowed;
  for (const auto& a : saga.value("allowed_actions", json::array())) allowed += (allowed.empty() ? "" : ", ") + text(a);
  out << "allowed actions: " << (allowed.empty() ? "none" : allowed) << "\n\n";

  std::vector<std::vector<std::string>> rows;
  for (const auto& s : saga["steps"]) {
    std::string attempts = text(s["attempts"]);
    if (!s["max_attempts"].is_null()) attempts += "/" + text(s["max_attempts"]);
    if (s["compensation_attempts"].get<int>() > 0) attempts += " +" + text(s["compensation_attempts"]) + " undo";
    rows.push_back({text(s["index"]), label(s), text(s["state"]), attempts,
                    between(s["started_at"], s["finished_at"]), text(s["error"])});
  }
  out << paint("STEPS", kBold, style) << "\n";
  if (rows.empty()) {
    out << "none yet\n";
  } else {
    out << table({"#", "STEP", "STATE", "ATTEMPTS", "TOOK", "ERROR"}, rows,
                 {nullptr, nullptr, [](const std::string& v) { return state_colour(v); }}, style);
  }
  out << "\n" << paint("TIMELINE (UTC)", kBold, style) << "\n";
  for (const auto& e : events) {
    const std::string kind = text(e["kind"]);
    const bool by_operator = kind.rfind("operator_", 0) == 0;
    std::string line = clock_time(e["at"]) + "  " + kind;
    const std::string where = text(e["step"]).empty() ? "" : label(e);
    if (!where.empty()) line += "  " + where;
    const std::string summary = event_summary(e);
    if (!summary.empty()) line += "  " + summary;
    const bool bad = kind.find("failed") != std::string::npos;
    out << "  " << (by_operator ? paint(line, kYellow, style) : bad ? paint(line, kRed, style) : line) << "\n";
  }
  return out.str();
}

std::string workspace_table(const json& workspaces, Style style) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& w : workspaces) {
    rows.push_back({text(w["id"]), text(w["slug"]), text(w["plan"]), text(w["status"]), when(w["created_at"])});
  }
  if (rows.empty()) return "no workspaces\n";
  return table({"ID", "SLUG", "PLAN", "STATUS", "CREATED"}, rows,
               {nullptr, nullptr, nullptr, [](const std::string& v) { return state_colour(v); }}, style);
}

std::string workspace_report(const json& w, const json& audit, Style style) {
  std::ostringstream out;
  out << paint("workspace " + text(w["id"]), kBold, style) << "  " << text(w["slug"]) << "  "
      << paint(text(w["status"]), state_colour(text(w["status"])), style) << "\n";
  out << "name " << text(w["name"]) << ", plan " << text(w["plan"]) << ", region " << text(w["region"])
      << ", tenancy " << text(w["tenancy_model"]) << "\n";
  out << "created " << when(w["created_at"]) << ", updated " << when(w["updated_at"]) << "\n";
  if (!w["active_saga_id"].is_null()) out << "active saga " << text(w["active_saga_id"]) << "\n";
  if (!w["hard_delete_at"].is_null()) out << "hard delete at " << when(w["hard_delete_at"]) << "\n";
  std::vector<std::vector<std::string>> envs;
  for (const auto& e : w.value("environments", json::array())) {
    envs.push_back({text(e["name"]), text(e["status"]), text(e.value("error", json()))});
  }
  out << "\n" << paint("ENVIRONMENTS", kBold, style) << "\n";
  out << (envs.empty() ? "none\n"
                       : table({"NAME", "STATUS", "ERROR"}, envs,
                               {nullptr, [](const std::string& v) { return state_colour(v); }}, style));
  std::vector<std::vector<std::string>> entries;
  for (const auto& a : audit) {
    entries.push_back({when(a["at"]), text(a["actor"]), text(a["action"])});
  }
  out << "\n" << paint("AUDIT (newest first)", kBold, style) << "\n";
  out << (entries.empty() ? "none\n" : table({"AT", "ACTOR", "ACTION"}, entries, {}, style));
  return out.str();
}

}  // namespace wsflow::app
