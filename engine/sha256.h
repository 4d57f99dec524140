#pragma once
#include <string>
#include <string_view>

namespace wsflow {

// Lower-case hex SHA-256 of `data` (OpenSSL). Never fails for in-memory input.
std::string sha256_hex(std::string_view data);

// SHA-256 over data given in pieces (files streamed in chunks).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  // Lower-case hex of everything given so far; call once, last.
  std::string hex_digest();

 private:
  void* context_;  // EVP_MD_CTX
};

// `bytes` cryptographically random bytes as lower-case hex (OpenSSL's
// RAND_bytes), for secrets such as API keys and invitation tokens. Throws
// std::runtime_error if the generator fails.
std::string random_hex(std::size_t bytes);

// A random (version 4) UUID in its usual text form, from random_hex: made
// here rather than by the database, which would cost a round trip. Throws as
// random_hex does.
std::string random_uuid();

}  // namespace wsflow
