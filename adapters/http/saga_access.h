#pragma once
// Internal to the API: what the saga routes and the repair routes share.

#include <string>

#include "adapters/http/request_context.h"
#include "adapters/postgres/saga_queries.h"

namespace wsflow::http {

// The saga's workspace ("" if none), after checking the caller may see the
// saga: an operator, or a key of its workspace. 404 otherwise.
std::string visible_saga(RequestContext& ctx, const std::string& saga_id);

// When a saga counts as stuck: the server's settings, the threshold replaced
// by the request's stuck_after (400 when malformed).
pg::StuckSettings stuck_settings(const RequestContext& ctx);

// pg::parse_saga_filter, its FilterError as a 400 naming the parameter.
pg::SagaFilter filter_or_400(const pg::FilterParam& get, int max_limit = 100);

}  // namespace wsflow::http
