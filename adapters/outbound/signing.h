#pragma once
// HMAC-SHA256 request signing, the same for HTTP steps and webhooks, so a
// receiver verifies both alike:
//
//   X-Wsflow-Timestamp: <unix seconds>
//   X-Wsflow-Signature: sha256=<hex HMAC-SHA256(key, "<timestamp>.<body>")>
//
// The timestamp is signed so a receiver can refuse old replays (say, older
// than five minutes) on top of de-duplicating by Idempotency-Key.

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace wsflow {

// Lower-case hex HMAC-SHA256 of `data` under `key`. Throws std::runtime_error
// if OpenSSL fails.
std::string hmac_sha256_hex(const std::string& key, const std::string& data);

// Appends the two headers above, for `body` signed at `now`, to `headers`.
void add_signature_headers(std::vector<std::pair<std::string, std::string>>& headers, const std::string& key,
                           const std::string& body, std::chrono::system_clock::time_point now);

}  // namespace wsflow
