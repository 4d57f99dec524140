#include "adapters/webhook/webhook_notifier.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <stdexcept>

#include "adapters/outbound/http_outcome.h"
#include "adapters/outbound/signing.h"

namespace wsflow {

WebhookNotifier::WebhookNotifier(WebhookConfig config, const HttpClient& client)
    : config_(std::move(config)), client_(client) {
  for (const std::string& url : config_.urls) {
    if (!parse_url(url)) throw std::invalid_argument("webhook URL '" + url + "' is not http(s)://host/path");
  }
}

void WebhookNotifier::deliver(boost::asio::any_io_executor executor, const std::string& event,
                              const nlohmann::json& payload, const std::string& idempotency_key,
                              Completion done) const {
  if (config_.urls.empty()) {
    boost::asio::post(executor, [done = std::move(done)] { done(ActionResult::success()); });
    return;
  }
  const std::string body = nlohmann::json{{"event", event}, {"data", payload}}.dump();
  // Every URL's answer joins here; the first failure is the result.
  struct Join {
    std::size_t waiting;
    std::optional<ActionResult> failure;
    Completion done;
  };
  auto join = std::make_shared<Join>(Join{config_.urls.size(), std::nullopt, std::move(done)});
  for (const std::string& url : config_.urls) {
    OutboundRequest request{"POST", url, {}, body, config_.timeout};
    request.headers = {
        {"Content-Type", "application/json"}, {"X-Wsflow-Event", event}, {"Idempotency-Key", idempotency_key}};
    add_signature_headers(request.headers, config_.secret, body, std::chrono::system_clock::now());
    client_.send(executor, std::move(request), [join, url](OutboundResult result) {
      const bool delivered = result.response && result.response->status >= 200 && result.response->status < 300;
      if (!delivered && !join->failure) {
        join->failure = ActionResult::failure("", "");
        join->failure->error = http_failure(result, "webhook POST " + url);
      }
      if (--join->waiting == 0) join->done(join->failure ? *join->failure : ActionResult::success());
    });
  }
}

ActionResult WebhookNotifier::deliver_blocking(const std::string& event, const nlohmann::json& payload,
                                               const std::string& idempotency_key) const {
  boost::asio::io_context io;
  ActionResult result;
  deliver(io.get_executor(), event, payload, idempotency_key, [&result](ActionResult r) { result = std::move(r); });
  io.run();
  return result;
}

}  // namespace wsflow
