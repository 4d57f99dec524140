#pragma once
// UTF-8 checks for bytes from outside: request paths and bodies, and the
// answers of users' services. JSON strings (nlohmann::json::dump, the
// database's jsonb) must be well-formed UTF-8, so bytes that may not be are
// checked, or made so, before they go into one.

#include <cstddef>
#include <string>
#include <string_view>

namespace wsflow {

// Whether `text` is well-formed UTF-8 (no overlongs, surrogates, bytes past
// U+10FFFF or sequences cut short).
bool valid_utf8(std::string_view text);

// The first `max_bytes` bytes of `text` as well-formed UTF-8: it never ends
// inside a character (one cut by the limit is left out whole), and every
// byte that starts no well-formed sequence becomes U+FFFD (3 bytes, so the
// result can be longer than `max_bytes` when there are such bytes).
std::string utf8_prefix(std::string_view text, std::size_t max_bytes);

}  // namespace wsflow
