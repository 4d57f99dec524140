#pragma once
// Delivers lifecycle events as JSON POSTs to the configured URLs, signed
// with HMAC-SHA256 over the body (header X-Wsflow-Signature: sha256=<hex>)
// and carrying the step's idempotency key (header Idempotency-Key), so a
// receiver can drop the duplicates that at-least-once delivery produces.
// Retries are the calling step's retry policy: deliver() throws on the first
// URL that does not answer 2xx within the timeout.

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace wsflow {

struct WebhookConfig {
  std::vector<std::string> urls;  // http://host:port/path (https too)
  std::string secret;             // HMAC key; empty signs with an empty key
  std::chrono::milliseconds timeout{5000};
};

// Lower-case hex HMAC-SHA256 of `data` under `key`.
std::string hmac_sha256_hex(const std::string& key, const std::string& data);

class WebhookNotifier {
 public:
  // Throws std::invalid_argument for a URL that is not http(s)://host[:port]/path.
  explicit WebhookNotifier(WebhookConfig config);

  // No-op without URLs. Throws std::runtime_error naming the URL and status.
  void deliver(const std::string& event, const nlohmann::json& payload, const std::string& idempotency_key) const;

 private:
  struct Target {
    std::string origin;  // scheme://host:port
    std::string path;
  };
  WebhookConfig config_;
  std::vector<Target> targets_;
};

}  // namespace wsflow
