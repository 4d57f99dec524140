#include "adapters/http/http_message.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace wsflow::http {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      const int high = hex_digit(text[i + 1]);
      const int low = hex_digit(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

template <typename Map>
std::string first_value(const Map& map, const std::string& name) {
  const auto it = map.find(name);
  return it == map.end() ? "" : it->second;
}

std::optional<std::uint64_t> number(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

}  // namespace

bool CaseInsensitiveLess::operator()(const std::string& a, const std::string& b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](unsigned char x, unsigned char y) {
    return std::tolower(x) < std::tolower(y);
  });
}

std::string HttpRequest::get_param_value(const std::string& name) const { return first_value(params, name); }

std::string HttpRequest::get_header_value(const std::string& name) const { return first_value(headers, name); }

void parse_target(const std::string& target, std::string& path, std::multimap<std::string, std::string>& params) {
  const std::size_t question = target.find('?');
  path = percent_decode(std::string_view(target).substr(0, question), false);
  if (question == std::string::npos) return;
  std::string_view query = std::string_view(target).substr(question + 1);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    params.emplace(percent_decode(pair.substr(0, eq), true),
                   eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1), true));
  }
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> byte_range(const std::string& header, std::uint64_t size) {
  const std::string prefix = "bytes=";
  if (header.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  const std::string_view spec = std::string_view(header).substr(prefix.size());
  const std::size_t dash = spec.find('-');
  if (dash == std::string_view::npos || spec.find(',') != std::string_view::npos) return std::nullopt;
  const std::string_view first_text = spec.substr(0, dash);
  const std::string_view last_text = spec.substr(dash + 1);
  if (first_text.empty()) {  // bytes=-N: the last N bytes
    const auto suffix = number(last_text);
    if (!suffix) return std::nullopt;
    if (*suffix == 0 || size == 0) return std::make_pair(size, size);
    return std::make_pair(size - std::min(*suffix, size), size - 1);
  }
  const auto first = number(first_text);
  const auto last = last_text.empty() ? std::optional<std::uint64_t>(size == 0 ? 0 : size - 1) : number(last_text);
  if (!first || !last || *last < *first) return std::nullopt;
  if (*first >= size) return std::make_pair(size, size);
  return std::make_pair(*first, std::min(*last, size - 1));
}

}  // namespace wsflow::http
