#pragma once
// Delivers lifecycle events as JSON POSTs to the configured URLs through the
// HTTP steps' client (adapters/outbound/http_client.h), so a delivery in
// flight holds no thread. Each carries the step's idempotency key (header
// Idempotency-Key), so a receiver can drop the duplicates that at-least-once
// delivery produces, and the signature headers of adapters/outbound/signing.h
// (HMAC-SHA256 over "<timestamp>.<body>").

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <nlohmann/json.hpp>

#include "adapters/outbound/http_client.h"
#include "engine/action.h"

namespace wsflow {

struct WebhookConfig {
  std::vector<std::string> urls;  // http://host:port/path (https too)
  std::string secret;             // HMAC key; empty signs with an empty key
  std::chrono::milliseconds timeout{5000};
};

class WebhookNotifier {
 public:
  // Throws std::invalid_argument for a URL that is not http(s)://host[:port]/path.
  // `client` must outlive the notifier.
  WebhookNotifier(WebhookConfig config, const HttpClient& client);

  // Posts to every URL at once, on `executor`; `done` gets success when each
  // answered 2xx (at once without URLs), else the first failure, as
  // adapters/outbound/http_outcome.h maps it, with the URL in its message.
  // Never throws.
  void deliver(boost::asio::any_io_executor executor, const std::string& event, const nlohmann::json& payload,
               const std::string& idempotency_key, Completion done) const;

  // The same, blocking the caller until every URL answered.
  ActionResult deliver_blocking(const std::string& event, const nlohmann::json& payload,
                                const std::string& idempotency_key) const;

 private:
  WebhookConfig config_;
  const HttpClient& client_;
};

}  // namespace wsflow
