#pragma once
// Environments on the user's own service (`serve --provisioner http --var
// provisioner_url=…`), through this contract (`{url}` is provisioner_url):
//
//   provision    PUT    {url}/workspaces/{id}/environments/{name}
//                body {"workspace_id", "environment", "tenancy"}
//                200 or 201; a JSON object in the answer is stored on the
//                environment's row as its `details`
//   deprovision  DELETE {url}/workspaces/{id}/environments/{name}
//                200, 202, 204 or 404 (nothing left is success)
//   freeze       POST   {url}/workspaces/{id}/environments/{name}/freeze     200 or 204
//   unfreeze     POST   {url}/workspaces/{id}/environments/{name}/unfreeze   200 or 204
//
// Every request carries the calling step's Idempotency-Key (a compensation's
// ends in /compensate) and, when the `signing_key` secret is configured, the
// signature headers of adapters/outbound/signing.h. Other answers fail the
// step as an HTTP step's do (adapters/outbound/http_outcome.h), by throwing
// an ActionFailure: 408, 425, 429 and 5xx are retried (honouring
// Retry-After), other statuses are not.
//
// Blocking, as the EnvironmentProvisioner interface is: each call holds one
// of the engine's blocking-pool threads for its request's duration.

#include <chrono>
#include <memory>
#include <string>

#include "adapters/outbound/http_client.h"
#include "adapters/provisioner/environment_provisioner.h"

namespace wsflow {

struct HttpProvisionerConfig {
  std::string base_url;     // provisioner_url, without a trailing slash
  std::string signing_key;  // empty: requests are not signed
  std::chrono::milliseconds timeout{30'000};
};

// Throws std::invalid_argument when base_url is not an http(s) URL. `client`
// must outlive the provisioner.
std::unique_ptr<EnvironmentProvisioner> make_http_provisioner(HttpProvisionerConfig config, const HttpClient& client);

}  // namespace wsflow
