// GET /metrics: the Prometheus text exposition (adapters/metrics), for
// operator keys with sagas:read (Prometheus sends the key as its bearer token).

#include "adapters/http/request_context.h"

namespace wsflow::http {
namespace {

Reply metrics(RequestContext& ctx) {
  require_operator(ctx, "reading metrics", "sagas:read");
  return {200, ctx.deps.metrics.scrape(ctx.tx, ctx.deps.stuck)};
}

}  // namespace

void add_metrics_route(const RouteAdder& add) { add("GET", "/metrics", metrics, Auth::kApiKey); }

}  // namespace wsflow::http
