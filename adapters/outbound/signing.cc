#include "adapters/outbound/signing.h"

#include <openssl/hmac.h>

#include <stdexcept>

namespace wsflow {

std::string hmac_sha256_hex(const std::string& key, const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
            data.size(), digest, &length)) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

void add_signature_headers(std::vector<std::pair<std::string, std::string>>& headers, const std::string& key,
                           const std::string& body, std::chrono::system_clock::time_point now) {
  const std::string timestamp =
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  headers.emplace_back("X-Wsflow-Timestamp", timestamp);
  headers.emplace_back("X-Wsflow-Signature", "sha256=" + hmac_sha256_hex(key, timestamp + "." + body));
}

}  // namespace wsflow
