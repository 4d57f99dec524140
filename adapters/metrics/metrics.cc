#include "adapters/metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <pqxx/pqxx>

namespace wsflow::metrics {
namespace {

double seconds(Millis d) { return static_cast<double>(d.count()) / 1000.0; }

const char* kind(bool compensating) { return compensating ? "compensation" : "forward"; }

}  // namespace

struct Metrics::Families {
  explicit Families(prometheus::Registry& r)
      : sagas_started(prometheus::BuildCounter()
                          .Name("wsflow_sagas_started_total")
                          .Help("Sagas this process started running, by definition.")
                          .Register(r)),
        sagas_finished(prometheus::BuildCounter()
                           .Name("wsflow_sagas_finished_total")
                           .Help("Sagas this process finished, by definition and final state "
                                 "(completed, compensated, failed, cancelled).")
                           .Register(r)),
        attempts(prometheus::BuildCounter()
                     .Name("wsflow_step_attempts_total")
                     .Help("Step attempts, by definition, action and kind (forward or compensation).")
                     .Register(r)),
        retries(prometheus::BuildCounter()
                    .Name("wsflow_step_retries_total")
                    .Help("Failed attempts that will be retried, by definition, action and kind.")
                    .Register(r)),
        compensations(prometheus::BuildCounter()
                          .Name("wsflow_step_compensations_total")
                          .Help("Compensations that succeeded, by definition and action.")
                          .Register(r)),
        step_duration(prometheus::BuildHistogram()
                          .Name("wsflow_step_duration_seconds")
                          .Help("How long step attempts took, by definition, action and kind.")
                          .Register(r)),
        claim_latency(prometheus::BuildHistogram()
                          .Name("wsflow_claim_latency_seconds")
                          .Help("From a saga becoming due to an engine claiming it.")
                          .Register(r)),
        claim_sizes(prometheus::BuildHistogram()
                        .Name("wsflow_claim_sagas")
                        .Help("Sagas leased by each claim this process ran (a claim that found none counts 0).")
                        .Register(r)),
        definition_loads(prometheus::BuildCounter()
                             .Name("wsflow_definition_loads_total")
                             .Help("Stored definition versions this process read and parsed, by definition: "
                                   "once per version, however many sagas need it at once.")
                             .Register(r)),
        takeovers(prometheus::BuildCounter()
                      .Name("wsflow_lease_takeovers_total")
                      .Help("Sagas claimed after their previous engine's lease expired unreleased.")
                      .Register(r)),
        lease_renewals(prometheus::BuildCounter()
                           .Name("wsflow_lease_renewals_total")
                           .Help("Leases renewed by heartbeats (a lease is renewed only once it has run a sixth "
                                 "of its length: quick sagas finish before).")
                           .Register(r)),
        engine_errors(prometheus::BuildCounter()
                          .Name("wsflow_engine_errors_total")
                          .Help("Unexpected engine errors: a saga's drive failing (it is retried), a failed claim, "
                                "lease renewal or due-time lookup. Healthy engines count none.")
                          .Register(r)) {}

  prometheus::Family<prometheus::Counter>& sagas_started;
  prometheus::Family<prometheus::Counter>& sagas_finished;
  prometheus::Family<prometheus::Counter>& attempts;
  prometheus::Family<prometheus::Counter>& retries;
  prometheus::Family<prometheus::Counter>& compensations;
  prometheus::Family<prometheus::Histogram>& step_duration;
  prometheus::Family<prometheus::Histogram>& claim_latency;
  prometheus::Family<prometheus::Histogram>& claim_sizes;
  prometheus::Family<prometheus::Counter>& definition_loads;
  prometheus::Family<prometheus::Counter>& takeovers;
  prometheus::Family<prometheus::Counter>& lease_renewals;
  prometheus::Family<prometheus::Counter>& engine_errors;
};

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()), families_(std::make_unique<Families>(*registry_)) {
  families_->takeovers.Add({});
  families_->lease_renewals.Add({});
  families_->engine_errors.Add({});
}

Metrics::~Metrics() = default;

EngineEvents Metrics::engine_events() {
  Families* f = families_.get();
  EngineEvents events;
  events.saga_started = [f](const std::string& definition) {
    f->sagas_started.Add({{"definition", definition}}).Increment();
  };
  events.saga_finished = [f](const std::string& definition, SagaState state) {
    f->sagas_finished.Add({{"definition", definition}, {"state", to_string(state)}}).Increment();
  };
  events.attempt_finished = [f](const AttemptReport& a) {
    const prometheus::Labels labels = {
        {"definition", a.definition}, {"action", a.action}, {"kind", kind(a.compensating)}};
    f->attempts.Add(labels).Increment();
    if (a.will_retry) f->retries.Add(labels).Increment();
    if (a.ok && a.compensating) f->compensations.Add({{"definition", a.definition}, {"action", a.action}}).Increment();
    static const prometheus::Histogram::BucketBoundaries kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                                     1,     2.5,  5,     10,   30,  60,   300};
    f->step_duration.Add(labels, kBuckets).Observe(seconds(a.duration));
  };
  events.claimed = [f](Millis latency, bool takeover) {
    static const prometheus::Histogram::BucketBoundaries kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                                     0.1,   0.25,   0.5,   1,    2.5,   10};
    f->claim_latency.Add({}, kBuckets).Observe(seconds(latency));
    if (takeover) f->takeovers.Add({}).Increment();
  };
  events.claim_ran = [f](const ClaimReport& claim) {
    static const prometheus::Histogram::BucketBoundaries kBuckets = {0,  1,  2,  4, 8,
                                                                     16, 32, 48, 64};  // a claim leases 64 at most
    f->claim_sizes.Add({}, kBuckets).Observe(claim.found);
  };
  events.definition_loaded = [f](const std::string& definition) {
    f->definition_loads.Add({{"definition", definition}}).Increment();
  };
  events.leases_renewed = [f](int renewed) { f->lease_renewals.Add({}).Increment(renewed); };
  events.engine_error = [f](const std::string&) { f->engine_errors.Add({}).Increment(); };
  return events;
}

void Metrics::watch_pool(const std::string& name, pg::ConnectionPool& pool) { pools_.emplace_back(name, &pool); }

void Metrics::watch_gauge(const std::string& name, const std::string& help, std::function<double()> read) {
  gauges_.push_back({name, help, std::move(read)});
}

std::string Metrics::scrape(pqxx::work& tx, const pg::StuckSettings& stuck) {
  // Gauges of the database's present state: built fresh each time, so a
  // label set that no longer exists (a state with no sagas) disappears.
  prometheus::Registry now;
  auto& sagas = prometheus::BuildGauge().Name("wsflow_sagas").Help("Sagas by definition and state.").Register(now);
  for (const auto& r : tx.exec("SELECT definition, state, count(*) FROM wsflow.sagas GROUP BY 1, 2")) {
    sagas.Add({{"definition", r[0].as<std::string>()}, {"state", r[1].as<std::string>()}}).Set(r[2].as<double>());
  }
  auto& stuck_gauge = prometheus::BuildGauge().Name("wsflow_sagas_stuck").Help("Stuck sagas by reason.").Register(now);
  for (const auto& [reason, count] : pg::stuck_counts(tx, stuck)) {
    stuck_gauge.Add({{"reason", reason}}).Set(static_cast<double>(count));
  }
  auto& workspaces = prometheus::BuildGauge().Name("wsflow_workspaces").Help("Workspaces by status.").Register(now);
  for (const auto& r : tx.exec("SELECT status, count(*) FROM wsflow.workspaces GROUP BY 1")) {
    workspaces.Add({{"status", r[0].as<std::string>()}}).Set(r[1].as<double>());
  }
  auto& pools = prometheus::BuildGauge()
                    .Name("wsflow_db_connections_in_use")
                    .Help("Database connections leased out, by pool (and its size).")
                    .Register(now);
  for (const auto& [name, pool] : pools_) {
    pools.Add({{"pool", name}, {"size", std::to_string(pool->size())}}).Set(pool->in_use());
  }
  for (const WatchedGauge& gauge : gauges_) {
    prometheus::BuildGauge().Name(gauge.name).Help(gauge.help).Register(now).Add({}).Set(gauge.read());
  }
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (auto& family : now.Collect()) families.push_back(std::move(family));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace wsflow::metrics
