#include "engine/duration.h"

#include <array>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <utility>

namespace wsflow {
namespace {

struct Unit {
  std::string_view suffix;
  std::int64_t millis;
};

// Longest suffix first so "ms" is not read as "m" followed by junk.
constexpr std::array<Unit, 5> kUnits{
    {{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}, {"d", 24 * 60 * 60 * 1000}}};

}  // namespace

std::optional<Millis> try_parse_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 18) return std::nullopt;
  const std::string_view suffix = text.substr(digits);
  for (const Unit& unit : kUnits) {
    if (suffix != unit.suffix) continue;
    std::int64_t value = 0;
    for (std::size_t i = 0; i < digits; ++i) value = value * 10 + (text[i] - '0');
    if (value > std::numeric_limits<std::int64_t>::max() / unit.millis) return std::nullopt;
    return Millis(value * unit.millis);
  }
  return std::nullopt;
}

Millis parse_duration(std::string_view text) {
  if (auto d = try_parse_duration(text)) return *d;
  throw std::invalid_argument("invalid duration '" + std::string(text) +
                              "': expected an integer and a unit (ms, s, m, h, d), e.g. 30s");
}

std::string format_duration(Millis d) {
  const std::int64_t ms = d.count();
  for (auto it = kUnits.rbegin(); it != kUnits.rend(); ++it) {
    if (ms != 0 && ms % it->millis == 0) return std::to_string(ms / it->millis) + std::string(it->suffix);
  }
  return std::to_string(ms) + "ms";
}

}  // namespace wsflow
