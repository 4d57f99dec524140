#include "engine/utf8.h"

namespace wsflow {
namespace {

// The length of the well-formed sequence starting at text[at], or 0 when
// none does (a stray continuation byte, an overlong, a surrogate, a code
// point past U+10FFFF, or a sequence the text ends inside).
std::size_t sequence_length(std::string_view text, std::size_t at) {
  const auto c = static_cast<unsigned char>(text[at]);
  std::size_t extra = 0;
  unsigned int code = 0;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    extra = 1, code = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    extra = 2, code = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    extra = 3, code = c & 0x07;
  } else {
    return 0;
  }
  if (at + extra >= text.size()) return 0;  // cut short
  for (std::size_t k = 1; k <= extra; ++k) {
    const auto next = static_cast<unsigned char>(text[at + k]);
    if ((next & 0xC0) != 0x80) return 0;
    code = (code << 6) | (next & 0x3F);
  }
  const unsigned int minimum[] = {0, 0x80, 0x800, 0x10000};
  if (code < minimum[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return extra + 1;
}

}  // namespace

bool valid_utf8(std::string_view text) {
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t length = sequence_length(text, at);
    if (length == 0) return false;
    at += length;
  }
  return true;
}

std::string utf8_prefix(std::string_view text, std::size_t max_bytes) {
  const std::string_view kept = text.substr(0, max_bytes);
  std::string out;
  out.reserve(kept.size());
  for (std::size_t at = 0; at < kept.size();) {
    // Judged on the whole text, so that a character the limit cuts is told
    // from one that was never whole.
    const std::size_t length = sequence_length(text, at);
    if (length == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      ++at;
    } else if (at + length > kept.size()) {
      break;  // cut by the limit: left out whole
    } else {
      out.append(kept.substr(at, length));
      at += length;
    }
  }
  return out;
}

}  // namespace wsflow
