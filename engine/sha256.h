#pragma once
#include <string>
#include <string_view>

namespace wsflow {

// Lower-case hex SHA-256 of `data` (OpenSSL). Never fails for in-memory input.
std::string sha256_hex(std::string_view data);

}  // namespace wsflow
