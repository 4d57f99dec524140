#pragma once
// Durations as written in saga definitions and on the command line:
// an integer followed by a unit, "250ms", "60s", "5m", "1h", "30d".

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace wsflow {

using Millis = std::chrono::milliseconds;

// Parses "<digits><unit>" with unit one of ms, s, m, h, d. Returns nullopt for
// anything else: empty text, a missing or unknown unit, a sign, a fraction,
// white space, or a value that overflows 64-bit milliseconds.
std::optional<Millis> try_parse_duration(std::string_view text);

// Like try_parse_duration; throws std::invalid_argument naming the text.
Millis parse_duration(std::string_view text);

// The shortest exact spelling: 90000ms -> "90s", 1500ms -> "1500ms".
std::string format_duration(Millis d);

}  // namespace wsflow
