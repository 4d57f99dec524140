#include "adapters/postgres/transition_writes.h"

#include <map>
#include <stdexcept>
#include <string_view>

#include "adapters/postgres/pg_store.h"
#include "adapters/postgres/sql_time.h"

namespace wsflow::pg {
namespace {

struct Column {
  const char* name;
  const char* type;
};

// The sagas whose leases the statement must hold, and the signals consumed.
const std::vector<Column> kLeaseColumns = {{"id", "uuid"}, {"token", "uuid"}};
const std::vector<Column> kSignalColumns = {{"id", "bigint"}, {"saga_id", "uuid"}};

const std::vector<Column> kStepColumns = {{"saga_id", "uuid"},
                                          {"step", "text"},
                                          {"branch", "text"},
                                          {"step_index", "int"},
                                          {"state", "text"},
                                          {"add_attempts", "int"},
                                          {"add_compensation_attempts", "int"},
                                          {"output", "text"},
                                          {"has_output", "bool"},
                                          {"error", "text"},
                                          {"has_error", "bool"},
                                          {"wake_in", "bigint"},
                                          {"attempt_timeout", "bigint"},
                                          {"max_attempts", "int"},
                                          {"began_at", "bigint"}};

const std::vector<Column> kSagaColumns = {
    {"id", "uuid"},         {"context", "text"},           {"state", "text"},
    {"progressed", "bool"}, {"has_error", "bool"},         {"error", "text"},
    {"release", "bool"},    {"release_wake_in", "bigint"}, {"signals_seen", "bigint"}};

const std::vector<Column> kEventColumns = {
    {"saga_id", "uuid"}, {"kind", "text"}, {"step", "text"}, {"branch", "text"}, {"detail", "text"}};

// How the statement receives rows: as one array per column (any number of
// rows), or, for a commit of one saga, as one value per column (one row).
// Postgres executes the second form markedly cheaper: no arrays to parse and
// no set-returning functions (mean execution 0.097 against 0.120 ms for a
// step's commit, measured with pg_stat_statements under pgbench).
enum class Rows { kArrays, kOne };

// A prepared form of the statement: how it takes rows, whether it has the
// two parts most single-saga commits have nothing for, and how it takes the
// events. Leaving parts out spares Postgres starting them: the saga-row
// update alone opens and locks every index of the sagas table, for a step
// whose commit changes nothing in that row. A commit of one saga with at
// most one event takes that event as single values too. The array form
// always has every part, and its events as arrays.
struct Shape {
  Rows rows;
  bool signals;
  bool saga_rows;
  Rows events;
};

// Every shape, each prepared on every connection.
std::vector<Shape> all_shapes() {
  std::vector<Shape> shapes = {{Rows::kArrays, true, true, Rows::kArrays}};
  for (const bool signals : {true, false}) {
    for (const bool saga_rows : {true, false}) {
      for (const Rows events : {Rows::kArrays, Rows::kOne}) shapes.push_back({Rows::kOne, signals, saga_rows, events});
    }
  }
  return shapes;
}

// The name each shape is prepared under.
std::string statement_name(const Shape& shape) {
  if (shape.rows == Rows::kArrays) return "commit_transitions";
  return std::string("commit_one_saga") + (shape.signals ? "_signal" : "") + (shape.saga_rows ? "_saga" : "") +
         (shape.events == Rows::kOne ? "_one_event" : "");
}

// `columns` as rows named `alias`, from one parameter per column, numbered
// from `first_param`.
std::string rows_from(Rows rows, const std::vector<Column>& columns, std::size_t first_param, const char* alias = "u") {
  std::string params, names;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i > 0) {
      params += ", ";
      names += ", ";
    }
    params += "$" + std::to_string(first_param + i) + "::" + columns[i].type + (rows == Rows::kArrays ? "[]" : "");
    names += columns[i].name;
  }
  const std::string source = rows == Rows::kArrays ? "unnest(" + params + ")" : "(VALUES (" + params + "))";
  return source + " AS " + alias + "(" + names + ")";
}

// In the single-row form, the row of a part with nothing to write: any value
// of each column's type, with the nil UUID for a saga id, which is never a
// fenced saga's, so the part's filter drops the row.
const char* nothing(const Column& column) {
  const std::string_view type = column.type;
  if (type == "uuid") return "00000000-0000-0000-0000-000000000000";
  if (type == "bool") return "f";
  if (type == "text") return "";
  return "-1";  // int, bigint
}

const char* kStepStateEnds = "('completed','skipped','failed','compensated','compensation_failed')";

// The sagas of the statement whose leases are held: their rows are locked
// (in saga-id order, as lease renewal locks them, so that the two never wait
// on each other in a cycle) and only their rows are written.
// The token is compared with IS NOT DISTINCT FROM (the same as = here: a
// claim's token is never null) so that the comparison does not imply
// `lease_token IS NOT NULL`. With `=` it does, and the index on lease_until,
// partial on that, qualifies: a generic plan made while few sagas are leased
// then finds each saga by reading every leased saga's entry (measured: the
// single-row form's fence did, under 512 leases).
std::string fence(Rows rows) {
  return "fenced AS (SELECT s.cancel_requested, s.pause_requested, s.id FROM " +
         rows_from(rows, kLeaseColumns, 1, "c") +
         " JOIN wsflow.sagas s ON s.id = c.id AND s.lease_token IS NOT DISTINCT FROM c.token ORDER BY s.id FOR UPDATE "
         "OF s)";
}
const char* kHeld = "ANY(ARRAY(SELECT id FROM fenced))";

// The saga rows' part of the statement, its rows from `first_param` on.
std::string saga_updates_part(Rows rows, std::size_t first_param) {
  const std::string held = kHeld;
  const std::string new_state = "coalesce(NULLIF(u.state, ''), s.state)";
  return ", saga_updates AS (UPDATE wsflow.sagas s SET "
         "context = CASE WHEN u.context = '' THEN s.context ELSE s.context || u.context::jsonb END, "
         "state = " +
         new_state +
         ", progressed_at = CASE WHEN u.state <> '' OR (u.progressed AND s.progressed_at < now() - " WSF_PROGRESS_GRAIN
         ") THEN now() ELSE s.progressed_at END, "
         "pause_requested = s.pause_requested AND (u.state = '' OR u.state <> 'paused'), "
         "finished_at = CASE WHEN u.state = '' THEN s.finished_at "
         "WHEN u.state IN ('completed','compensated','failed','cancelled') THEN now() END, "
         "error = CASE WHEN u.has_error THEN NULLIF(u.error, '') ELSE s.error END, "
         "updated_at = CASE WHEN u.context <> '' OR u.state <> '' OR u.has_error OR u.release THEN now() "
         "ELSE s.updated_at END, "
         "lease_owner = CASE WHEN u.release THEN NULL ELSE s.lease_owner END, "
         "lease_token = CASE WHEN u.release THEN NULL ELSE s.lease_token END, "
         "lease_until = CASE WHEN u.release THEN NULL ELSE s.lease_until END, "
         "wake_at = CASE WHEN NOT u.release THEN s.wake_at "
         "WHEN " +
         new_state +
         " IN ('completed','compensated','failed','cancelled','paused') THEN NULL "
         "WHEN s.cancel_requested OR s.last_signal_id > u.signals_seen THEN now() "
         "WHEN u.release_wake_in < 0 THEN s.deadline_at "
         "ELSE LEAST(now() + u.release_wake_in * interval '1 ms', s.deadline_at) END "
         "FROM " +
         rows_from(rows, kSagaColumns, first_param) + " WHERE s.id = u.id AND u.id = " + held +
         " AND (u.context <> '' OR u.state <> '' OR u.has_error OR u.release "
         "OR s.progressed_at < now() - " WSF_PROGRESS_GRAIN "))";
}

// The step rows' part of the statement, its rows from `first_param` on: an
// existing row is updated, another inserted. Many rows go by an update and
// an insert of the rows it did not find; one row by a single insert that
// updates on conflict, which Postgres starts and runs cheaper (one table
// write instead of two, no join), and whose update may name the row's
// parameters directly.
std::string step_writes_part(Rows rows, std::size_t first_param) {
  const std::string held = kHeld;
  const std::string insert =
      "INSERT INTO wsflow.saga_steps AS s (saga_id, step, branch, step_index, state, attempts, "
      "compensation_attempts, output, error, wake_at, completed_seq, finished_at, attempt_deadline_at, "
      "max_attempts, started_at) "
      "SELECT u.saga_id, u.step, u.branch, u.step_index, u.state, u.add_attempts, u.add_compensation_attempts, "
      "u.output::jsonb, NULLIF(u.error, ''), "
      "CASE WHEN u.wake_in < 0 THEN NULL ELSE now() + u.wake_in * interval '1 ms' END, "
      "CASE WHEN u.state = 'completed' THEN nextval('wsflow.step_completion_seq') END, "
      "CASE WHEN u.state IN " +
      std::string(kStepStateEnds) +
      " THEN now() END, "
      "CASE WHEN u.attempt_timeout < 0 THEN NULL ELSE now() + u.attempt_timeout * interval '1 ms' END, "
      "NULLIF(u.max_attempts, -1), "
      "CASE WHEN u.began_at < 0 THEN now() ELSE LEAST(now(), " WSF_TS("u.began_at") ") END FROM ";
  if (rows == Rows::kOne) {
    const auto param = [&](std::string_view name) {
      for (std::size_t i = 0; i < kStepColumns.size(); ++i) {
        if (name == kStepColumns[i].name) {
          return "$" + std::to_string(first_param + i) + "::" + kStepColumns[i].type;
        }
      }
      throw std::logic_error("no step column " + std::string(name));
    };
    return ", step_upsert AS (" + insert + rows_from(rows, kStepColumns, first_param) + " WHERE u.saga_id = " + held +
           " ON CONFLICT (saga_id, step, branch) DO UPDATE SET state = excluded.state, "
           "attempts = s.attempts + excluded.attempts, "
           "compensation_attempts = s.compensation_attempts + excluded.compensation_attempts, "
           "output = CASE WHEN " +
           param("has_output") + " THEN excluded.output ELSE s.output END, error = CASE WHEN " + param("has_error") +
           " THEN excluded.error ELSE s.error END, wake_at = CASE WHEN " + param("wake_in") +
           " < 0 THEN s.wake_at ELSE excluded.wake_at END, "
           "completed_seq = coalesce(excluded.completed_seq, s.completed_seq), "
           "attempt_deadline_at = excluded.attempt_deadline_at, "
           "max_attempts = coalesce(excluded.max_attempts, s.max_attempts), "
           "finished_at = excluded.finished_at, updated_at = now())";
  }
  return ", step_rows AS (SELECT * FROM " + rows_from(rows, kStepColumns, first_param) + " WHERE u.saga_id = " + held +
         "), step_updates AS (UPDATE wsflow.saga_steps s SET state = u.state, attempts = s.attempts + u.add_attempts, "
         "compensation_attempts = s.compensation_attempts + u.add_compensation_attempts, "
         "output = CASE WHEN u.has_output THEN u.output::jsonb ELSE s.output END, "
         "error = CASE WHEN u.has_error THEN NULLIF(u.error, '') ELSE s.error END, "
         "wake_at = CASE WHEN u.wake_in < 0 THEN s.wake_at ELSE now() + u.wake_in * interval '1 ms' END, "
         "completed_seq = coalesce(CASE WHEN u.state = 'completed' THEN nextval('wsflow.step_completion_seq') END, "
         "s.completed_seq), "
         "attempt_deadline_at = CASE WHEN u.attempt_timeout < 0 THEN NULL "
         "ELSE now() + u.attempt_timeout * interval '1 ms' END, "
         "max_attempts = coalesce(NULLIF(u.max_attempts, -1), s.max_attempts), "
         "finished_at = CASE WHEN u.state IN " +
         kStepStateEnds +
         " THEN now() END, updated_at = now() "
         "FROM step_rows u WHERE s.saga_id = u.saga_id AND s.step = u.step AND s.branch = u.branch "
         "RETURNING s.saga_id, s.step, s.branch), step_inserts AS (" +
         insert +
         "step_rows u WHERE NOT EXISTS (SELECT 1 FROM step_updates d WHERE d.saga_id = u.saga_id AND d.step = u.step "
         "AND d.branch = u.branch))";
}

// One statement, so one round trip, whatever the transitions write, and,
// outside a transaction, its own commit. Each part writes only fenced sagas:
//   - the signals they consumed;
//   - step rows: existing ones updated, the others inserted (no one else
//     writes a fenced saga's steps);
//   - saga rows: progress (a step finished, or any state change) is a stuck
//     reason's clock (minutes, by default), so a step's progress moves it only
//     when it is a second old, and a saga's quick steps do not each write a new
//     version of its row (and an entry in each of its indexes). A released
//     saga becomes runnable again: never by time once it is over or paused;
//     now if a cancel or a signal the engine had not seen arrived while it was
//     leased; else when it asked, or at its deadline. Those arrivals are read
//     from the row's latest version (which the fence waited for), not from
//     the statement's snapshot, which may be older;
//   - events.
// It returns the fenced sagas, with what operators asked of them. Postgres
// runs the writing parts after the main query, which reads the fence to its
// end: every row is locked, in order, before any is written.
//
// The events come as arrays (one saga's commit may write several), or, in a
// shape for one event, as single values.
// Parameters are numbered in that order, over the parts the shape has.
std::string commit_transitions_sql(const Shape& shape) {
  const Rows rows = shape.rows;
  std::size_t next_param = 1 + kLeaseColumns.size();
  const auto params_of = [&](const std::vector<Column>& columns) {
    const std::size_t first = next_param;
    next_param += columns.size();
    return first;
  };
  const std::string held = kHeld;
  std::string signals_part;
  if (shape.signals) {
    signals_part = ", signals_consumed AS (UPDATE wsflow.signals g SET consumed_at = now() FROM " +
                   rows_from(rows, kSignalColumns, params_of(kSignalColumns), "c") +
                   " WHERE g.id = c.id AND g.saga_id = c.saga_id AND c.saga_id = " + held +
                   " AND g.consumed_at IS NULL)";
  }
  const std::size_t step_params = params_of(kStepColumns);
  const std::size_t saga_params = shape.saga_rows ? params_of(kSagaColumns) : 0;
  const std::size_t event_params = params_of(kEventColumns);
  return "WITH " + fence(rows) + signals_part + step_writes_part(rows, step_params) +
         (shape.saga_rows ? saga_updates_part(rows, saga_params) : "") +
         ", event_inserts AS (INSERT INTO wsflow.saga_events (saga_id, kind, step, branch, detail) "
         "SELECT u.saga_id, u.kind, u.step, u.branch, u.detail::jsonb FROM " +
         rows_from(shape.events, kEventColumns, event_params) + " WHERE u.saga_id = " + held +
         ") SELECT cancel_requested, pause_requested, id::text FROM fenced";
}

const char* flag(bool value) { return value ? "t" : "f"; }

bool progresses(StepState state) {
  return state == StepState::kCompleted || state == StepState::kSkipped || state == StepState::kCompensated;
}

// The rows of one statement, column by column.
struct Columns {
  explicit Columns(const std::vector<Column>& of) : columns(&of), values(of.size()) {}
  void add(std::initializer_list<std::string> row) {
    std::size_t i = 0;
    for (const std::string& value : row) values[i++].push_back(value);
  }
  std::size_t rows() const { return values.empty() ? 0 : values.front().size(); }
  // The statement's parameters for these columns, in the form given (the
  // single-row form holds at most one row).
  void append_params(Rows form, std::vector<std::string>& params) const {
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (form == Rows::kArrays) {
        params.push_back(text_array(values[i]));
      } else {
        params.push_back(values[i].empty() ? nothing((*columns)[i]) : values[i].front());
      }
    }
  }
  const std::vector<Column>* columns;
  std::vector<std::vector<std::string>> values;
};

std::string millis_or_none(const std::optional<Millis>& value) { return std::to_string(value ? value->count() : -1); }

// A saga's changes among the writes, merged in order: an UPDATE ... FROM
// meeting the same row twice would apply only one of them.
struct SagaChange {
  nlohmann::json context = nlohmann::json::object();
  std::string state;
  std::optional<std::string> error;
  bool progressed = false;
  bool release = false;
  std::optional<Millis> release_wake_in;
  std::int64_t signals_seen_up_to = 0;

  bool any() const { return !context.empty() || !state.empty() || error || progressed || release; }
};

}  // namespace

void prepare_transition_statements(pqxx::connection& conn) {
  for (const Shape& shape : all_shapes()) conn.prepare(statement_name(shape), commit_transitions_sql(shape));
}

void prefer_key_lookups(pqxx::connection& conn) {
  pqxx::nontransaction session(conn);
  session.exec(
      "SET enable_seqscan = off; SET enable_hashjoin = off; SET enable_mergejoin = off; "
      "SET plan_cache_mode = force_generic_plan");
}

std::map<std::string, CommitResult> commit_transitions(pqxx::transaction_base& tx,
                                                       const std::vector<TransitionWrite>& writes) {
  std::map<std::string, std::string> leases;  // saga id -> lease token
  Columns signals(kSignalColumns), steps(kStepColumns), sagas(kSagaColumns), events(kEventColumns);
  std::map<std::string, SagaChange> changes;
  for (const TransitionWrite& write : writes) {
    const std::string& id = write.claim->saga_id;
    leases.emplace(id, write.claim->lease_token);
    const Transition& t = *write.transition;
    if (t.consume_signal) signals.add({std::to_string(*t.consume_signal), id});
    if (t.step) {
      const StepWrite& w = *t.step;
      // An in-transaction action's output is only known now.
      const bool has_output = w.output.has_value() || write.action != nullptr;
      const nlohmann::json output = w.output ? *w.output : write.action ? write.action->output : nullptr;
      steps.add({id, w.step, w.branch, std::to_string(w.step_index), to_string(w.state), std::to_string(w.add_attempts),
                 std::to_string(w.add_compensation_attempts), output.dump(), flag(has_output), w.error.value_or(""),
                 flag(w.error.has_value()), millis_or_none(w.wake_in), millis_or_none(w.attempt_timeout),
                 std::to_string(w.max_attempts.value_or(-1)), std::to_string(w.began_at ? epoch_ms(*w.began_at) : -1)});
    }
    SagaChange& change = changes[id];
    if (t.context_updates.is_object()) change.context.update(t.context_updates);
    if (write.action && write.action->context_updates.is_object()) change.context.update(write.action->context_updates);
    if (t.saga_state) change.state = to_string(*t.saga_state);
    if (t.saga_error) change.error = t.saga_error;
    change.progressed = change.progressed || (t.step && progresses(t.step->state) && !t.progress_recent);
    if (t.release) {
      change.release = true;
      change.release_wake_in = t.release_wake_in;
      change.signals_seen_up_to = t.signals_seen_up_to;
    }
    for (const EventWrite& e : t.prior_events) events.add({id, e.kind, e.step, e.branch, e.detail.dump()});
    if (!t.event.empty()) events.add({id, t.event, t.event_step, t.event_branch, t.event_detail.dump()});
  }
  for (const auto& [id, change] : changes) {
    if (!change.any()) continue;
    sagas.add({id, change.context.empty() ? "" : change.context.dump(), change.state, flag(change.progressed),
               flag(change.error.has_value()), change.error.value_or(""), flag(change.release),
               millis_or_none(change.release_wake_in), std::to_string(change.signals_seen_up_to)});
  }
  Columns fence_rows(kLeaseColumns);
  for (const auto& [id, token] : leases) fence_rows.add({id, token});
  const bool one_row_each = fence_rows.rows() == 1 && signals.rows() <= 1 && steps.rows() <= 1 && sagas.rows() <= 1;
  const Shape shape = one_row_each ? Shape{Rows::kOne, signals.rows() > 0, sagas.rows() > 0,
                                           events.rows() <= 1 ? Rows::kOne : Rows::kArrays}
                                   : Shape{Rows::kArrays, true, true, Rows::kArrays};
  std::vector<std::string> params;
  fence_rows.append_params(shape.rows, params);
  if (shape.signals) signals.append_params(shape.rows, params);
  steps.append_params(shape.rows, params);
  if (shape.saga_rows) sagas.append_params(shape.rows, params);
  events.append_params(shape.events, params);
  std::map<std::string, CommitResult> fenced;
  for (const auto& row : tx.exec_prepared(statement_name(shape), pqxx::prepare::make_dynamic_params(params))) {
    fenced.emplace(row[2].as<std::string>(), fence_requests(row));
  }
  return fenced;
}

}  // namespace wsflow::pg
