#include "adapters/outbound/http_outcome.h"

#include <map>

namespace wsflow {

bool is_retryable_status(int status) { return status == 408 || status == 425 || status == 429 || status >= 500; }

ActionError http_failure(const OutboundResult& result, const std::string& request_line) {
  if (result.failure == OutboundFailure::kNone) {
    const int status = result.response->status;
    const bool retryable = is_retryable_status(status);
    return {"http_" + std::to_string(status), request_line + " answered " + std::to_string(status), retryable,
            retryable ? result.response->retry_after : std::nullopt};
  }
  static const std::map<OutboundFailure, std::pair<const char*, bool>> kCodes = {
      {OutboundFailure::kBadUrl, {"bad_url", false}},
      {OutboundFailure::kConnect, {"connection_failed", true}},
      {OutboundFailure::kTimeout, {"timeout", true}},
      {OutboundFailure::kTls, {"tls_failed", true}},
      {OutboundFailure::kProtocol, {"bad_response", true}}};
  const auto& [code, retryable] = kCodes.at(result.failure);
  return {code, request_line + ": " + result.error, retryable, std::nullopt};
}

}  // namespace wsflow
