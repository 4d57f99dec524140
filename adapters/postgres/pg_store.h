#pragma once
// The Store on PostgreSQL (schema `wsflow`, see migrations.cc). Every call
// takes a pooled connection for its duration; statements are prepared once
// per connection. New runnable work is announced with NOTIFY on
// kRunnableChannel so idle engines wake without polling.

#include <memory>
#include <string>

#include <pqxx/row>

#include "adapters/postgres/connection_pool.h"
#include "engine/store.h"

namespace wsflow::pg {

inline constexpr const char* kRunnableChannel = "wsflow_runnable";

// The claim statement PgStore prepares ("claim"; $1 owner, $2 lease in ms,
// $3 how many at most, $4 how many of them below high priority at most, $5
// how many ms ahead of their wake time sagas may be taken), for tests that
// look at its plan.
std::string claim_statement();

class PgStore final : public Store {
 public:
  // `pool_size` connections at most; none is opened until first use, or
  // until open_connections().
  PgStore(std::string dsn, int pool_size);
  // Opens all `pool_size` connections now (ConnectionPool::open_all): for a
  // process about to run an engine, before anything else uses the store.
  void open_connections() { pool_.open_all(); }

  StartResult start_saga(const SagaDefinition& definition, const nlohmann::json& input,
                         const StartOptions& options) override;
  // saga_batch_start.cc
  std::vector<StartResult> start_sagas(const SagaDefinition& definition,
                                       const std::vector<StartRequest>& requests) override;
  bool deliver_signal(const std::string& saga_id, const std::string& name, const nlohmann::json& payload) override;
  bool request_cancel(const std::string& saga_id) override;
  bool retry(const std::string& saga_id) override;
  std::optional<SagaRecord> find_saga(const std::string& saga_id) override;
  std::vector<StepRecord> steps(const std::string& saga_id) override;
  std::vector<EventRecord> events(const std::string& saga_id) override;
  std::optional<std::string> definition_source(const std::string& hash) override;

  ClaimResult claim(const ClaimRequest& request) override;
  int renew_leases(const std::vector<Claim>& claims, Millis lease) override;
  int engines_holding_leases() override;
  void release_all(const std::string& owner) override;
  CommitResult commit(const Claim& claim, const Transition& transition, const InTransaction& in_transaction = nullptr,
                      std::optional<Millis> statement_timeout = std::nullopt) override;
  std::vector<BatchOutcome> commit_batch(const std::vector<BatchItem>& items) override;
  // statistics.cc
  std::vector<std::string> refresh_statistics() override;

  // Schedules (pg_schedules.cc).
  TimePoint schedule_now(Millis clock_offset) override;
  void register_schedules(const std::vector<ScheduleRegistration>& schedules) override;
  bool fire_due_schedule(const std::vector<std::string>& names, Millis clock_offset, const PlanFiring& plan) override;
  std::optional<Millis> until_next_due(const std::vector<std::string>& names, Millis clock_offset) override;
  std::vector<RunStarted> start_schedule_runs(const std::string& schedule, const SagaDefinition& saga,
                                              const std::vector<ScheduledRun>& runs) override;
  bool set_schedule_paused(const std::string& schedule, bool paused, const std::string& note,
                           std::optional<TimePoint> next_due_at) override;
  std::vector<ScheduleStatus> schedule_statuses() override;

 private:
  // Claim's two halves: the leases (one statement), then what they need to run.
  ClaimResult lease_due(const ClaimRequest& request);
  void read_claimed(std::vector<ClaimedSaga>& claimed);
  // Gives up leases nobody will drive; errors are swallowed (they expire then).
  void give_back(const std::vector<ClaimedSaga>& claimed) noexcept;

  ConnectionPool pool_;
};

// Starts a saga inside the caller's transaction (so that it commits, or not,
// with the caller's own writes); same contract as Store::start_saga. With an
// idempotency key a concurrent duplicate start raises pqxx::unique_violation.
StartResult insert_saga(pqxx::work& tx, const SagaDefinition& definition, const nlohmann::json& input,
                        const StartOptions& options);

// Starts many sagas inside the caller's transaction; same contract as
// Store::start_sagas.
std::vector<StartResult> insert_sagas(pqxx::work& tx, const SagaDefinition& definition,
                                      const std::vector<StartRequest>& requests);

// Throws std::invalid_argument, each message prefixed with `field_prefix`,
// unless `input` and `options` may start a saga of `definition`.
void check_start(const SagaDefinition& definition, const nlohmann::json& input, const StartOptions& options,
                 const std::string& field_prefix = "");

// Stores the definition's version (once, by hash) in the caller's transaction.
void store_definition(pqxx::work& tx, const SagaDefinition& definition);

// What a start writes for every saga: its deadline in ms from its start
// (-1: none), and the detail of its `created` event.
long long deadline_ms(const SagaDefinition& definition);
nlohmann::json created_event_detail(const SagaDefinition& definition);

// What operators asked of a saga, from a fence row whose first two columns
// are its cancel_requested and pause_requested.
CommitResult fence_requests(const pqxx::row& row);

// Appends an event to the saga's history, in the caller's transaction.
void insert_event(pqxx::work& tx, const std::string& saga_id, const std::string& kind, const std::string& step,
                  const std::string& branch, const nlohmann::json& detail);

// Tells idle engines (at commit) that the saga is runnable now.
void notify_runnable(pqxx::work& tx, const std::string& saga_id);

// True if `text` is a UUID in canonical textual form.
bool is_uuid(const std::string& text);

// A Postgres text[] literal of `items` (each quoted, so commas and braces are safe).
std::string text_array(const std::vector<std::string>& items);

}  // namespace wsflow::pg
