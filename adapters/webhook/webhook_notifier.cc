#include "adapters/webhook/webhook_notifier.h"

#include <httplib.h>
#include <openssl/hmac.h>

#include <regex>
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

WebhookNotifier::WebhookNotifier(WebhookConfig config) : config_(std::move(config)) {
  static const std::regex kUrl(R"((https?://[^/\s]+)(/[^\s]*)?)");
  for (const std::string& url : config_.urls) {
    std::smatch m;
    if (!std::regex_match(url, m, kUrl))
      throw std::invalid_argument("webhook URL '" + url + "' is not http(s)://host/path");
    targets_.push_back({m[1].str(), m[2].matched ? m[2].str() : "/"});
  }
}

void WebhookNotifier::deliver(const std::string& event, const nlohmann::json& payload,
                              const std::string& idempotency_key) const {
  if (targets_.empty()) return;
  const std::string body = nlohmann::json{{"event", event}, {"data", payload}}.dump();
  const httplib::Headers headers = {{"X-Wsflow-Event", event},
                                    {"X-Wsflow-Signature", "sha256=" + hmac_sha256_hex(config_.secret, body)},
                                    {"Idempotency-Key", idempotency_key}};
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(config_.timeout);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(config_.timeout - seconds);
  for (const Target& target : targets_) {
    httplib::Client client(target.origin);
    client.set_connection_timeout(seconds.count(), micros.count());
    client.set_read_timeout(seconds.count(), micros.count());
    client.set_write_timeout(seconds.count(), micros.count());
    const auto response = client.Post(target.path, headers, body, "application/json");
    if (!response) {
      throw std::runtime_error("webhook " + target.origin + target.path + ": " + httplib::to_string(response.error()));
    }
    if (response->status < 200 || response->status >= 300) {
      throw std::runtime_error("webhook " + target.origin + target.path + " answered " +
                               std::to_string(response->status));
    }
  }
}

}  // namespace wsflow
