// GET /metrics: Prometheus text exposition of what the database knows (every
// process reports the same totals), for operator keys (Prometheus sends the
// key as its bearer token).

#include <pqxx/pqxx>
#include <sstream>

#include "adapters/http/request_context.h"

namespace wsflow::http {
namespace {

// Label values are names we control, but escape them as the format requires.
std::string label(const std::string& value) {
  std::string out;
  for (char ch : value) {
    if (ch == '\\' || ch == '"') out.push_back('\\');
    if (ch == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(ch);
  }
  return out;
}

Reply metrics(RequestContext& ctx) {
  require_operator(ctx, "reading metrics", "sagas:read");
  std::ostringstream out;
  out << "# HELP wsflow_sagas Sagas by definition and state.\n# TYPE wsflow_sagas gauge\n";
  for (const auto& r :
       ctx.tx.exec("SELECT definition, state, count(*) FROM wsflow.sagas GROUP BY 1, 2 ORDER BY 1, 2")) {
    out << "wsflow_sagas{definition=\"" << label(r[0].as<std::string>()) << "\",state=\""
        << label(r[1].as<std::string>()) << "\"} " << r[2].as<long long>() << "\n";
  }
  out << "# HELP wsflow_sagas_leased Sagas a process is driving right now.\n# TYPE wsflow_sagas_leased gauge\n"
      << "wsflow_sagas_leased "
      << ctx.tx.exec("SELECT count(*) FROM wsflow.sagas WHERE lease_until > now()")[0][0].as<long long>() << "\n";
  out << "# HELP wsflow_sagas_overdue Runnable sagas whose wake-up time passed more than a minute ago.\n"
      << "# TYPE wsflow_sagas_overdue gauge\nwsflow_sagas_overdue "
      << ctx.tx
             .exec(
                 "SELECT count(*) FROM wsflow.sagas WHERE state IN ('pending','running','waiting','compensating') "
                 "AND wake_at < now() - interval '1 minute' AND (lease_until IS NULL OR lease_until < now())")[0][0]
             .as<long long>()
      << "\n";
  out << "# HELP wsflow_step_attempts_total Step attempts started, by step state.\n"
      << "# TYPE wsflow_step_attempts_total counter\n";
  for (const auto& r : ctx.tx.exec("SELECT state, sum(attempts) FROM wsflow.saga_steps GROUP BY 1 ORDER BY 1")) {
    out << "wsflow_step_attempts_total{state=\"" << label(r[0].as<std::string>()) << "\"} " << r[1].as<long long>()
        << "\n";
  }
  out << "# HELP wsflow_workspaces Workspaces by status.\n# TYPE wsflow_workspaces gauge\n";
  for (const auto& r : ctx.tx.exec("SELECT status, count(*) FROM wsflow.workspaces GROUP BY 1 ORDER BY 1")) {
    out << "wsflow_workspaces{status=\"" << label(r[0].as<std::string>()) << "\"} " << r[1].as<long long>() << "\n";
  }
  return {200, out.str()};
}

}  // namespace

void add_metrics_route(const RouteAdder& add) { add("GET", "/metrics", metrics, Auth::kApiKey); }

}  // namespace wsflow::http
