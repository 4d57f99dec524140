#include "adapters/provisioner/http_provisioner.h"

#include <set>
#include <stdexcept>

#include "adapters/outbound/http_outcome.h"
#include "adapters/outbound/signing.h"
#include "engine/action.h"
#include "engine/template.h"

namespace wsflow {
namespace {

class HttpProvisioner final : public EnvironmentProvisioner {
 public:
  HttpProvisioner(HttpProvisionerConfig config, const HttpClient& client)
      : config_(std::move(config)), client_(client) {}

  const char* kind() const override { return "http"; }

  nlohmann::json provision(const EnvironmentRequest& request) override {
    const nlohmann::json body = {{"workspace_id", request.workspace_id},
                                 {"environment", request.environment},
                                 {"tenancy", request.tenancy == Tenancy::kSchema ? "schema" : "database"}};
    const OutboundResponse answer = call("PUT", "", request, body.dump(), {200, 201});
    nlohmann::json details = nlohmann::json::parse(answer.body, nullptr, false);
    return details.is_object() ? details : nlohmann::json();
  }
  void deprovision(const EnvironmentRequest& request) override {
    call("DELETE", "", request, "", {200, 202, 204, 404});
  }
  void freeze(const EnvironmentRequest& request) override { call("POST", "/freeze", request, "", {200, 204}); }
  void unfreeze(const EnvironmentRequest& request) override { call("POST", "/unfreeze", request, "", {200, 204}); }

 private:
  OutboundResponse call(const char* method, const char* suffix, const EnvironmentRequest& request,
                        const std::string& body, const std::set<int>& accepted) const {
    OutboundRequest outbound;
    outbound.method = method;
    outbound.url = config_.base_url + "/workspaces/" + percent_encode(request.workspace_id) + "/environments/" +
                   percent_encode(request.environment) + suffix;
    outbound.body = body;
    outbound.timeout = config_.timeout;
    if (!body.empty()) outbound.headers.emplace_back("Content-Type", "application/json");
    outbound.headers.emplace_back("Idempotency-Key", request.idempotency_key);
    if (!config_.signing_key.empty()) {
      add_signature_headers(outbound.headers, config_.signing_key, body, std::chrono::system_clock::now());
    }
    const std::string request_line = std::string(method) + " " + outbound.url;
    OutboundResult result = client_.send_blocking(std::move(outbound));
    if (result.response && accepted.count(result.response->status)) return *result.response;
    throw ActionFailure(http_failure(result, request_line));
  }

  HttpProvisionerConfig config_;
  const HttpClient& client_;
};

}  // namespace

std::unique_ptr<EnvironmentProvisioner> make_http_provisioner(HttpProvisionerConfig config, const HttpClient& client) {
  while (!config.base_url.empty() && config.base_url.back() == '/') config.base_url.pop_back();
  if (!parse_url(config.base_url)) {
    throw std::invalid_argument("provisioner_url '" + config.base_url + "' is not an http(s):// URL");
  }
  return std::make_unique<HttpProvisioner>(std::move(config), client);
}

}  // namespace wsflow
