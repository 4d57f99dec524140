#include "adapters/postgres/pg_store.h"

#include <pqxx/pqxx>

#include <algorithm>
#include <map>
#include <regex>

#include "adapters/postgres/cached_statement.h"
#include "adapters/postgres/saga_repairs.h"
#include "adapters/postgres/sql_time.h"
#include "adapters/postgres/transition_writes.h"

namespace wsflow::pg {
namespace {

const char* kSagaColumns =
    "id::text, definition, version, definition_hash, coalesce(workspace_id::text, ''), state, input::text, "
    "context::text, coalesce(idempotency_key, ''), " WSF_MS("deadline_at") ", " WSF_MS("wake_at") ", "
    "coalesce(error, ''), cancel_requested, " WSF_MS("created_at") ", " WSF_MS("updated_at") ", pause_requested, "
    "coalesce(compensate_from, -1), step_inputs::text, last_signal_id";

const char* kStepColumns =
    "step, branch, step_index, state, attempts, compensation_attempts, coalesce(output::text, 'null'), "
    "coalesce(error, ''), " WSF_MS("wake_at") ", coalesce(completed_seq, 0)";

// A start in one statement (one round trip): the definition's source (once
// per version), the saga, its "created" event, and the NOTIFY that wakes the
// engines (sent when the transaction commits). A cached statement, not one of
// the pool's: insert_saga runs on callers' connections too.
const std::string kInsertSaga =
    "WITH d AS (INSERT INTO wsflow.definitions (hash, name, version, source) VALUES ($3, $1, $2, $10) "
    "ON CONFLICT (hash) DO NOTHING), "
    "s AS (INSERT INTO wsflow.sagas (definition, version, definition_hash, workspace_id, state, input, context, "
    "idempotency_key, deadline_at, wake_at, priority) VALUES ($1, $2, $3, NULLIF($4, '')::uuid, 'pending', $5::jsonb, "
    "$5::jsonb, NULLIF($6, ''), CASE WHEN $7::bigint < 0 THEN NULL ELSE now() + $7::bigint * interval '1 ms' END, "
    "now() + $8::bigint * interval '1 ms', $9::smallint) RETURNING id), "
    "e AS (INSERT INTO wsflow.saga_events (saga_id, kind, detail) SELECT id, 'created', $11::jsonb FROM s) "
    "SELECT id::text, pg_notify('" +
    std::string(kRunnableChannel) + "', id::text) FROM s";

}  // namespace

// A claim in one statement, so one round trip and its own transaction:
// leases up to $3 sagas due within $5 ms for owner $1 for $2 ms, high
// priority first, at most $4 of them below high priority. Sagas nobody holds
// come from an index range scan on (priority, wake_at) per priority; that
// index holds no leased saga, so a claim never reads through the sagas in
// flight (a running saga stays due until its lease is released). Sagas whose
// lease expired (their process died) come first, through the index on
// lease_until, and count against both limits. Its one row when nothing was
// due carries only how many milliseconds until the earliest wake-up beyond
// those it could take comes within $5 ms, counted from the clock as it
// answers (NULL when none is due ever); every row carries it.
// The lease need not reach the disk before the sagas run (synchronous_commit
// off): if the database loses it in a crash, the lease never existed, and
// this process's first commit under it is refused by the fence (LeaseLost);
// that commit, being durable, makes the lease durable first (the log is
// written in order).
std::string claim_statement() {
  const std::string runnable_states = "state IN ('pending','running','waiting','compensating')";
  const std::string horizon = "now() + $5::bigint * interval '1 ms'";
  const std::string runnable = runnable_states + " AND wake_at <= " + horizon;
  // Due sagas matching `which`: at most `limit`, an SQL expression; of those
  // nobody holds, or (`expired`) of those whose lease has run out. Those are
  // found through the index on lease_until alone, the rest checked on what it
  // finds: `(...) IS TRUE` is never an index condition. Otherwise the planner
  // may AND in the index on state, whose range for the runnable states holds
  // every saga in flight and every pending one of a backlog, read whole by
  // every claim (measured: most of a claim's time, under a 10,000-saga
  // backlog).
  const auto due = [&](const std::string& which, const std::string& limit, bool expired) {
    const std::string wanted = runnable + " AND " + which;
    return "(SELECT id, " + std::string(expired ? "true" : "false") + " AS takeover, priority, wake_at FROM " +
           "wsflow.sagas WHERE " +
           (expired ? "lease_token IS NOT NULL AND lease_until < now() AND (" + wanted + ") IS TRUE"
                    : wanted + " AND lease_token IS NULL") +
           " ORDER BY wake_at LIMIT greatest(0, " + limit + ") FOR UPDATE SKIP LOCKED)";
  };
  const auto count = [](const std::string& cte) { return "(SELECT count(*) FROM " + cte + ")"; };
  const auto priority = [](const char* op, Priority p) {
    return std::string("priority ") + op + " " + std::to_string(static_cast<int>(p));
  };
  const std::string expired_high = due(priority("=", Priority::kHigh), "$3", true);
  const std::string expired_rest =
      due(priority("<", Priority::kHigh), "least($3 - " + count("expired_high") + ", $4)", true);
  const std::string taken_over = count("expired_high") + " - " + count("expired_rest");
  const std::string high = due(priority("=", Priority::kHigh), "$3 - " + taken_over, false);
  const std::string normal =
      due(priority("=", Priority::kNormal),
          "least($3 - " + taken_over + " - " + count("high") + ", $4 - " + count("expired_rest") + ")", false);
  const std::string low = due(priority("=", Priority::kLow),
                              "least($3 - " + taken_over + " - " + count("high") + " - " + count("normal") + ", $4 - " +
                                  count("expired_rest") + " - " + count("normal") + ")",
                              false);
  const std::string leased =
      "(UPDATE wsflow.sagas s SET lease_owner = $1, lease_token = gen_random_uuid(), "
      "lease_until = now() + $2::bigint * interval '1 ms' FROM due WHERE s.id = due.id "
      "RETURNING s.id::text, s.lease_token::text, due.takeover, due.priority, due.wake_at)";
  const std::string next =
      "(SELECT ceil(extract(epoch from min(n.at) - clock_timestamp()) * 1000)::bigint - $5::bigint AS ms "
      "FROM (VALUES (0), (1), (2)) p(priority), LATERAL (SELECT min(wake_at) AS at FROM wsflow.sagas "
      "WHERE priority = p.priority::smallint AND " +
      runnable_states + " AND lease_token IS NULL AND wake_at > " + horizon + ") n)";
  return "WITH async AS (SELECT set_config('synchronous_commit', 'off', true)), expired_high AS " + expired_high +
         ", expired_rest AS " + expired_rest + ", high AS " + high + ", normal AS " + normal + ", low AS " + low +
         ", due AS (SELECT * FROM expired_high UNION ALL SELECT * FROM expired_rest UNION ALL SELECT * FROM high "
         "UNION ALL SELECT * FROM normal UNION ALL SELECT * FROM low), leased AS " +
         leased + ", next AS " + next +
         " SELECT l.id, l.lease_token, l.takeover, l.priority, next.ms FROM async, next LEFT JOIN leased l ON true "
         "ORDER BY l.priority DESC, l.wake_at";
}

namespace {

// Leases as the two arrays statements match them by: tokens are unique to
// one lease, so a row whose id and token are both among them is held by one
// of the leases.
struct LeaseArrays {
  std::string ids, tokens;
};
LeaseArrays lease_arrays(const std::vector<Claim>& leases) {
  std::vector<std::string> ids, tokens;
  for (const Claim& c : leases) {
    ids.push_back(c.saga_id);
    tokens.push_back(c.lease_token);
  }
  return {text_array(ids), text_array(tokens)};
}

// name -> SQL, prepared on every pooled connection.
const std::pair<const char*, std::string> kStatements[] = {
    {"saga_by_id", std::string("SELECT ") + kSagaColumns + " FROM wsflow.sagas WHERE id = $1::uuid"},
    {"steps_of", std::string("SELECT ") + kStepColumns +
                     " FROM wsflow.saga_steps WHERE saga_id = $1::uuid ORDER BY step_index, branch"},
    {"events_of", "SELECT id, kind, step, branch, detail::text, " WSF_MS("at") " FROM wsflow.saga_events "
                                                                               "WHERE saga_id = $1::uuid ORDER BY id"},
    {"notify_runnable", std::string("SELECT pg_notify('") + kRunnableChannel + "', $1)"},
    {"lock_saga", "SELECT state, cancel_requested FROM wsflow.sagas WHERE id = $1::uuid FOR UPDATE"},
    {"insert_signal",
     "INSERT INTO wsflow.signals (saga_id, name, payload) VALUES ($1::uuid, $2, $3::jsonb) RETURNING id"},
    {"signal_arrived", "UPDATE wsflow.sagas SET wake_at = now(), last_signal_id = $2 WHERE id = $1::uuid"},
    {"mark_cancel",
     "UPDATE wsflow.sagas SET cancel_requested = true, wake_at = now(), updated_at = now() WHERE id = $1::uuid"},
    {"claim", claim_statement()},
    // Rows are locked in saga-id order, the order commit_batch fences them in:
    // a heartbeat and a group commit over the same sagas never wait on each
    // other in a cycle (a plain UPDATE locks them in scan order).
    {"renew",
     "UPDATE wsflow.sagas s SET lease_until = now() + $3::bigint * interval '1 ms' "
     "FROM (SELECT id FROM wsflow.sagas WHERE id = ANY($1::uuid[]) AND lease_token = ANY($2::uuid[]) "
     "ORDER BY id FOR UPDATE) locked WHERE s.id = locked.id"},
    // Leases taken by a claim whose reads then failed (no commit under them
    // yet, so no lock order to keep): runnable at once again.
    {"give_back",
     "UPDATE wsflow.sagas SET lease_owner = NULL, lease_token = NULL, lease_until = NULL "
     "WHERE id = ANY($1::uuid[]) AND lease_token = ANY($2::uuid[])"},
    {"release_all",
     "UPDATE wsflow.sagas SET lease_owner = NULL, lease_token = NULL, lease_until = NULL, "
     "wake_at = CASE WHEN wake_at > now() THEN wake_at WHEN wake_at IS NOT NULL THEN now() END "
     "WHERE lease_token IS NOT NULL AND lease_owner = $1"},
    // Through the partial index on lease_until: the leased sagas alone.
    {"engines_holding_leases",
     "SELECT count(DISTINCT lease_owner) FROM wsflow.sagas WHERE lease_token IS NOT NULL AND lease_until > now()"},
    {"fence",
     "SELECT cancel_requested, pause_requested FROM wsflow.sagas WHERE id = $1::uuid AND lease_token = $2::uuid FOR "
     "UPDATE"},
    // What a claim reads of the sagas it leased; a row's saga id comes last.
    // The database's clock comes last: as the leases start, for the sagas'
    // timers and deadlines.
    {"claimed_sagas", std::string("SELECT ") + kSagaColumns + ", " WSF_MS("clock_timestamp()") +
                          " FROM wsflow.sagas WHERE id = ANY($1::uuid[])"},
    {"claimed_steps", std::string("SELECT ") + kStepColumns +
                          ", saga_id::text FROM wsflow.saga_steps WHERE saga_id = ANY($1::uuid[]) "
                          "ORDER BY saga_id, step_index, branch"},
    {"claimed_signals",
     "SELECT id, name, payload::text, saga_id::text FROM wsflow.signals WHERE saga_id = ANY($1::uuid[]) "
     "AND consumed_at IS NULL ORDER BY id"},
    {"definition_source", "SELECT source FROM wsflow.definitions WHERE hash = $1"},
};

void prepare_all(pqxx::connection& conn) {
  for (const auto& [name, sql] : kStatements) conn.prepare(name, sql);
  prepare_transition_statements(conn);
  prefer_key_lookups(conn);
}

SagaRecord saga_from(const pqxx::row& r) {
  SagaRecord s;
  s.id = r[0].as<std::string>();
  s.definition = r[1].as<std::string>();
  s.version = r[2].as<int>();
  s.definition_hash = r[3].as<std::string>();
  s.workspace_id = r[4].as<std::string>();
  s.state = saga_state_from_string(r[5].as<std::string>()).value_or(SagaState::kFailed);
  s.input = nlohmann::json::parse(r[6].as<std::string>());
  s.context = nlohmann::json::parse(r[7].as<std::string>());
  s.idempotency_key = r[8].as<std::string>();
  s.deadline_at = time_of(r[9]);
  s.wake_at = time_of(r[10]);
  s.error = r[11].as<std::string>();
  s.cancel_requested = r[12].as<bool>();
  s.created_at = *time_of(r[13]);
  s.updated_at = *time_of(r[14]);
  s.pause_requested = r[15].as<bool>();
  s.compensate_from = r[16].as<int>();
  s.step_inputs = nlohmann::json::parse(r[17].as<std::string>());
  s.last_signal_id = r[18].as<std::int64_t>();
  return s;
}

StepRecord step_from(const pqxx::row& r) {
  StepRecord s;
  s.step = r[0].as<std::string>();
  s.branch = r[1].as<std::string>();
  s.step_index = r[2].as<int>();
  s.state = step_state_from_string(r[3].as<std::string>()).value_or(StepState::kFailed);
  s.attempts = r[4].as<int>();
  s.compensation_attempts = r[5].as<int>();
  s.output = nlohmann::json::parse(r[6].as<std::string>());
  s.error = r[7].as<std::string>();
  s.wake_at = time_of(r[8]);
  s.completed_seq = r[9].as<long long>();
  return s;
}

std::vector<StepRecord> steps_from(const pqxx::result& rows) {
  std::vector<StepRecord> steps;
  for (const auto& r : rows) steps.push_back(step_from(r));
  return steps;
}

SignalRecord signal_from(const pqxx::row& r) {
  return {r[0].as<long long>(), r[1].as<std::string>(), nlohmann::json::parse(r[2].as<std::string>())};
}

}  // namespace

bool is_uuid(const std::string& text) {
  static const std::regex kUuid("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
  return std::regex_match(text, kUuid);
}

CommitResult fence_requests(const pqxx::row& row) {
  CommitResult requests;
  requests.cancel_requested = row[0].as<bool>();
  requests.pause_requested = row[1].as<bool>();
  return requests;
}

void insert_event(pqxx::work& tx, const std::string& saga_id, const std::string& kind, const std::string& step,
                  const std::string& branch, const nlohmann::json& detail) {
  tx.exec_params(
      "INSERT INTO wsflow.saga_events (saga_id, kind, step, branch, detail) VALUES ($1::uuid, $2, $3, $4, $5::jsonb)",
      saga_id, kind, step, branch, detail.dump());
}

void notify_runnable(pqxx::work& tx, const std::string& saga_id) {
  tx.exec_params(std::string("SELECT pg_notify('") + kRunnableChannel + "', $1)", saga_id);
}

std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (const std::string& item : items) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (char c : item) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

PgStore::PgStore(std::string dsn, int pool_size) : pool_(std::move(dsn), pool_size, prepare_all) {}

void check_start(const SagaDefinition& definition, const nlohmann::json& input, const StartOptions& options,
                 const std::string& field_prefix) {
  if (!input.is_object()) throw std::invalid_argument(field_prefix + "input: expected a JSON object");
  for (const std::string& field : definition.required_input) {
    if (!input.contains(field) || input[field].is_null()) {
      throw std::invalid_argument(field_prefix + "input." + field + ": required by saga '" + definition.name + "'");
    }
  }
  if (!options.workspace_id.empty() && !is_uuid(options.workspace_id)) {
    throw std::invalid_argument(field_prefix + "workspace_id: expected a UUID");
  }
}

long long deadline_ms(const SagaDefinition& definition) {
  return definition.deadline ? static_cast<long long>(definition.deadline->count()) : -1;
}

nlohmann::json created_event_detail(const SagaDefinition& definition) {
  return {{"definition", definition.name}, {"version", definition.version}, {"hash", definition.hash}};
}

void store_definition(pqxx::work& tx, const SagaDefinition& definition) {
  tx.exec_params(
      "INSERT INTO wsflow.definitions (hash, name, version, source) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (hash) DO NOTHING",
      definition.hash, definition.name, definition.version, definition.source);
}

StartResult insert_saga(pqxx::work& tx, const SagaDefinition& definition, const nlohmann::json& input,
                        const StartOptions& options) {
  check_start(definition, input, options);
  if (!options.idempotency_key.empty()) {
    auto existing =
        exec_cached(tx, "SELECT id::text FROM wsflow.sagas WHERE idempotency_key = $1", options.idempotency_key);
    if (!existing.empty()) return {existing[0][0].as<std::string>(), false};
  }
  // A concurrent start with the same key blocks on the unique index until the
  // first commits, then fails here: the caller's transaction is aborted and
  // its retry finds the first saga above.
  auto inserted = exec_cached(tx, kInsertSaga, definition.name, definition.version, definition.hash,
                              options.workspace_id, input.dump(), options.idempotency_key, deadline_ms(definition),
                              static_cast<long long>(options.delay.count()), static_cast<int>(definition.priority),
                              definition.source, created_event_detail(definition).dump());
  const std::string id = inserted[0][0].as<std::string>();
  return {id, true};
}

StartResult PgStore::start_saga(const SagaDefinition& definition, const nlohmann::json& input,
                                const StartOptions& options) {
  for (int attempt = 1;; ++attempt) {
    auto conn = pool_.acquire();
    try {
      pqxx::work tx(*conn);
      StartResult result = insert_saga(tx, definition, input, options);
      tx.commit();
      return result;
    } catch (const pqxx::unique_violation&) {
      if (attempt == 2) throw;  // the racing start committed; the retry returns it
    }
  }
}

namespace {

// Runs a client command on a saga under its row lock, then wakes the engines.
// `apply` gets the transaction and the saga's state and returns false to
// refuse (nothing is written). False too when there is no such saga.
template <class Apply>
bool on_locked_saga(ConnectionPool& pool, const std::string& saga_id, Apply apply) {
  if (!is_uuid(saga_id)) return false;
  auto conn = pool.acquire();
  pqxx::work tx(*conn);
  auto saga = tx.exec_prepared("lock_saga", saga_id);
  if (saga.empty()) return false;
  const SagaState state = saga_state_from_string(saga[0][0].as<std::string>()).value_or(SagaState::kFailed);
  if (!apply(tx, state)) return false;
  tx.exec_prepared("notify_runnable", saga_id);
  tx.commit();
  return true;
}

}  // namespace

bool PgStore::deliver_signal(const std::string& saga_id, const std::string& name, const nlohmann::json& payload) {
  if (name.empty()) throw std::invalid_argument("signal name: must not be empty");
  return on_locked_saga(pool_, saga_id, [&](pqxx::work& tx, SagaState state) {
    if (is_terminal(state)) return false;
    const auto id = tx.exec_prepared("insert_signal", saga_id, name, payload.dump())[0][0].as<long long>();
    insert_event(tx, saga_id, "signal_received", "", "", {{"signal", name}, {"signal_id", id}});
    tx.exec_prepared("signal_arrived", saga_id, id);
    return true;
  });
}

bool PgStore::request_cancel(const std::string& saga_id) {
  return on_locked_saga(pool_, saga_id, [&](pqxx::work& tx, SagaState state) {
    if (state != SagaState::kCompensating) next_state(state, SagaEvent::kCancel);  // throws if refused
    tx.exec_prepared("mark_cancel", saga_id);
    insert_event(tx, saga_id, "cancel_requested", "", "", nlohmann::json::object());
    return true;
  });
}

bool PgStore::retry(const std::string& saga_id) {
  return on_locked_saga(pool_, saga_id, [&](pqxx::work& tx, SagaState state) {
    retry_failed_compensations(tx, saga_id, next_state(state, SagaEvent::kRetry));  // throws unless failed
    insert_event(tx, saga_id, "retry_requested", "", "", nlohmann::json::object());
    return true;
  });
}

std::optional<SagaRecord> PgStore::find_saga(const std::string& saga_id) {
  if (!is_uuid(saga_id)) return std::nullopt;
  auto conn = pool_.acquire();
  pqxx::read_transaction tx(*conn);
  auto rows = tx.exec_prepared("saga_by_id", saga_id);
  if (rows.empty()) return std::nullopt;
  return saga_from(rows[0]);
}

std::vector<StepRecord> PgStore::steps(const std::string& saga_id) {
  if (!is_uuid(saga_id)) return {};
  auto conn = pool_.acquire();
  pqxx::read_transaction tx(*conn);
  return steps_from(tx.exec_prepared("steps_of", saga_id));
}

std::vector<EventRecord> PgStore::events(const std::string& saga_id) {
  if (!is_uuid(saga_id)) return {};
  auto conn = pool_.acquire();
  pqxx::read_transaction tx(*conn);
  std::vector<EventRecord> events;
  for (const auto& r : tx.exec_prepared("events_of", saga_id)) {
    events.push_back({r[0].as<long long>(), r[1].as<std::string>(), r[2].as<std::string>(), r[3].as<std::string>(),
                      nlohmann::json::parse(r[4].as<std::string>()), *time_of(r[5])});
  }
  return events;
}

std::optional<std::string> PgStore::definition_source(const std::string& hash) {
  auto conn = pool_.acquire();
  pqxx::read_transaction tx(*conn);
  auto rows = tx.exec_prepared("definition_source", hash);
  if (rows.empty()) return std::nullopt;
  return rows[0][0].as<std::string>();
}

ClaimResult PgStore::claim(const ClaimRequest& request) {
  ClaimResult result = lease_due(request);
  if (result.sagas.empty()) return result;
  try {
    read_claimed(result.sagas);
  } catch (...) {
    give_back(result.sagas);  // so that they run now, here or elsewhere, not when the leases expire
    throw;
  }
  return result;
}

ClaimResult PgStore::lease_due(const ClaimRequest& request) {
  auto conn = pool_.acquire();
  pqxx::nontransaction statement(*conn);
  ClaimResult result;
  for (const auto& r : statement.exec_prepared("claim", request.owner, static_cast<long long>(request.lease.count()),
                                               request.limit, std::max(request.below_high, 0),
                                               static_cast<long long>(std::max(request.ahead, Millis(0)).count()))) {
    if (!r[4].is_null()) result.next_wake_in = Millis(r[4].as<long long>());
    if (r[0].is_null()) continue;  // nothing was due: the row only says when something will be
    result.sagas.push_back(
        {{r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<bool>()}, {}, static_cast<Priority>(r[3].as<int>())});
  }
  return result;
}

// Every claimed saga's rows, in three statements whatever their number, read
// after the leases are committed: nothing but this process writes a leased
// saga's steps, and whatever operators ask of it meanwhile (a cancel, a
// signal) its first commit's fence reads anyway.
void PgStore::read_claimed(std::vector<ClaimedSaga>& claimed) {
  std::map<std::string, SagaSnapshot*> by_id;
  std::vector<std::string> ids;
  for (ClaimedSaga& c : claimed) {
    by_id[c.claim.saga_id] = &c.snapshot;
    ids.push_back(c.claim.saga_id);
  }
  const std::string id_array = text_array(ids);
  auto conn = pool_.acquire();
  pqxx::nontransaction statement(*conn);
  std::optional<TimePoint> db_now;
  for (const auto& r : statement.exec_prepared("claimed_sagas", id_array)) {
    by_id.at(r[0].as<std::string>())->saga = saga_from(r);
    db_now = time_of(r[19]);
  }
  const auto read_at = std::chrono::steady_clock::now();
  for (const auto& r : statement.exec_prepared("claimed_steps", id_array)) {
    by_id.at(r[10].as<std::string>())->steps.push_back(step_from(r));
  }
  for (const auto& r : statement.exec_prepared("claimed_signals", id_array)) {
    by_id.at(r[3].as<std::string>())->signals.push_back(signal_from(r));
  }
  // A saga deleted since its claim (only a bench does that) is not run.
  std::erase_if(claimed, [](const ClaimedSaga& c) { return c.snapshot.saga.id.empty(); });
  for (ClaimedSaga& c : claimed) {
    c.snapshot.db_now = *db_now;
    c.snapshot.read_at = read_at;
  }
}

void PgStore::give_back(const std::vector<ClaimedSaga>& claimed) noexcept {
  try {
    std::vector<Claim> leases;
    for (const ClaimedSaga& c : claimed) leases.push_back(c.claim);
    const LeaseArrays arrays = lease_arrays(leases);
    auto conn = pool_.acquire();  // a fresh one if the reads broke theirs
    pqxx::nontransaction(*conn).exec_prepared("give_back", arrays.ids, arrays.tokens);
  } catch (const std::exception&) {
  }
}

int PgStore::renew_leases(const std::vector<Claim>& claims, Millis lease) {
  if (claims.empty()) return 0;
  const LeaseArrays arrays = lease_arrays(claims);
  auto conn = pool_.acquire();
  pqxx::work tx(*conn);
  tx.exec("SET LOCAL synchronous_commit = off");  // as for a claim: a lost renewal is a lost lease, fenced off
  auto result = tx.exec_prepared("renew", arrays.ids, arrays.tokens, static_cast<long long>(lease.count()));
  tx.commit();
  return static_cast<int>(result.affected_rows());
}

int PgStore::engines_holding_leases() {
  auto conn = pool_.acquire();
  pqxx::nontransaction statement(*conn);
  return statement.exec_prepared1("engines_holding_leases")[0].as<int>();
}

void PgStore::release_all(const std::string& owner) {
  auto conn = pool_.acquire();
  pqxx::work tx(*conn);
  tx.exec_prepared("release_all", owner);
  tx.commit();
}

namespace {

// Locks the saga row if `claim` still holds its lease, and reads what
// operators asked of the saga meanwhile; nullopt if the lease is lost.
std::optional<CommitResult> fence(pqxx::work& tx, const Claim& claim) {
  auto rows = tx.exec_prepared("fence", claim.saga_id, claim.lease_token);
  if (rows.empty()) return std::nullopt;
  return fence_requests(rows[0]);
}

}  // namespace

CommitResult PgStore::commit(const Claim& claim, const Transition& t, const InTransaction& in_transaction,
                             std::optional<Millis> statement_timeout) {
  auto conn = pool_.acquire();
  if (!in_transaction) {  // one statement, its own transaction
    pqxx::nontransaction statement(*conn);
    auto fenced = commit_transitions(statement, {{&claim, &t}});
    if (fenced.empty()) throw LeaseLost(claim.saga_id);
    return fenced.begin()->second;
  }
  // The action runs under the fence, so the fence comes first.
  pqxx::work tx(*conn);
  const std::optional<CommitResult> fenced = fence(tx, claim);
  if (!fenced) throw LeaseLost(claim.saga_id);
  CommitResult result = *fenced;
  if (statement_timeout) {
    tx.exec("SET LOCAL statement_timeout = " + std::to_string(std::max<long long>(statement_timeout->count(), 1)));
  }
  tx.exec("SAVEPOINT wsflow_action");
  try {
    result.action = in_transaction(tx);
  } catch (const std::exception& e) {
    result.action = ActionResult::failure("exception", e.what());
  }
  if (!result.action.ok) return result;  // tx rolls back when destroyed
  tx.exec("RELEASE SAVEPOINT wsflow_action");
  if (statement_timeout) tx.exec("SET LOCAL statement_timeout = 0");
  commit_transitions(tx, {{&claim, &t, &result.action}});  // its fence holds the lock this one took
  tx.commit();
  return result;
}

}  // namespace wsflow::pg
