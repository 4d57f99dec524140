#pragma once
#include <string>
#include <string_view>

namespace wsflow {

// Lower-case hex SHA-256 of `data` (OpenSSL). Never fails for in-memory input.
std::string sha256_hex(std::string_view data);

// `bytes` cryptographically random bytes as lower-case hex (OpenSSL's
// RAND_bytes), for secrets such as API keys and invitation tokens. Throws
// std::runtime_error if the generator fails.
std::string random_hex(std::size_t bytes);

}  // namespace wsflow
