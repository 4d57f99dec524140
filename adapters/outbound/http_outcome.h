#pragma once
// How an outbound exchange that brought no accepted answer fails a step: the
// one mapping HTTP steps, the HTTP provisioner and webhooks share.
//
//   408, 425, 429, 5xx            retryable `http_<status>`, with Retry-After
//   any other status              non-retryable `http_<status>`
//   no answer                     retryable `timeout`, `connection_failed`,
//                                 `tls_failed`, `bad_response`; `bad_url` is not

#include <string>

#include "adapters/outbound/http_client.h"
#include "engine/action.h"

namespace wsflow {

bool is_retryable_status(int status);

// `request_line` ("POST https://…") starts the message; it must already be
// free of secrets, and so must `result.error` be made by the caller if its
// URL held any.
ActionError http_failure(const OutboundResult& result, const std::string& request_line);

}  // namespace wsflow
