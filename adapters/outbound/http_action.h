#pragma once
// The `http` action behind every `http:` step (engine/http_step.h): renders
// the step's request from its templates, sends it with the step's
// idempotency key (and a signature, when the `signing_key` secret is
// configured), and maps the answer to the step's outcome:
//
//   a status in `success` (any 2xx when empty)  completes the step; `output`
//                                                pointers into the JSON body
//                                                become its output (and, outside
//                                                for_each, context fields)
//   408, 425, 429, 5xx                           retryable `http_<status>`,
//                                                honouring Retry-After
//   any other status                             non-retryable `http_<status>`
//   timeout / connection / TLS / bad answer      retryable `timeout`,
//                                                `connection_failed`,
//                                                `tls_failed`, `bad_response`
//   a reference with no value                    non-retryable `unresolved_reference`
//   a header value with a line break             non-retryable `invalid_request`
//
// The attempt's event keeps the request line and the response's status and
// first 64 KiB of body, with every secret's value redacted; outputs and error
// messages are redacted too. Secrets are read from memory for each request
// and never written anywhere.

#include <map>
#include <memory>
#include <string>

#include "adapters/outbound/http_client.h"
#include "adapters/outbound/runtime_values.h"
#include "engine/action.h"

namespace wsflow {

// The secret whose value, when configured, signs every HTTP step's request.
inline constexpr const char* kSigningSecret = "signing_key";

// The first bytes of a response body an attempt's event keeps (as UTF-8:
// see utf8_prefix).
inline constexpr std::size_t kKeptResponseBytes = 64 * 1024;

// The action. `client` must outlive it; `values` are copied.
Action make_http_action(const HttpClient& client, RuntimeValues values);

}  // namespace wsflow
