// PgStore::commit_batch: the transitions of many sagas in one transaction and
// a fixed number of statements, whatever the batch's size: one fence locking
// every row (in saga-id order, as lease renewal locks them), one write of
// every step row, one update of every saga row that changes (its progress,
// context, state and error together: one new row version per saga, not
// one per change), one insert of every event. Signals consumed and leases
// released, which few transitions carry, keep their own statements.
// PgStore::commit (pg_store.cc) writes the same rows one transition at a time.

#include <pqxx/pqxx>

#include <algorithm>
#include <map>

#include "adapters/postgres/pg_store.h"
#include "adapters/postgres/sql_time.h"

namespace wsflow::pg {
namespace {

const char* kFenceAll =
    "SELECT s.id::text, s.cancel_requested, s.pause_requested "
    "FROM unnest($1::uuid[], $2::uuid[]) AS c(id, token) JOIN wsflow.sagas s ON s.id = c.id AND s.lease_token = "
    "c.token "
    "ORDER BY s.id FOR UPDATE OF s";

// Existing step rows are updated, the others inserted; the sagas are locked,
// so no one else writes these rows meanwhile.
const char* kWriteSteps =
    "WITH u AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], $6::int[], $7::int[], "
    "$8::text[], $9::bool[], $10::text[], $11::bool[], $12::bigint[], $13::bigint[], $14::int[]) "
    "AS u(saga_id, step, branch, step_index, state, add_attempts, add_compensation_attempts, output, has_output, "
    "error, has_error, wake_in, attempt_timeout, max_attempts)), "
    "updated AS (UPDATE wsflow.saga_steps s SET state = u.state, attempts = s.attempts + u.add_attempts, "
    "compensation_attempts = s.compensation_attempts + u.add_compensation_attempts, "
    "output = CASE WHEN u.has_output THEN u.output::jsonb ELSE s.output END, "
    "error = CASE WHEN u.has_error THEN NULLIF(u.error, '') ELSE s.error END, "
    "wake_at = CASE WHEN u.wake_in < 0 THEN s.wake_at ELSE now() + u.wake_in * interval '1 ms' END, "
    "completed_seq = coalesce(CASE WHEN u.state = 'completed' THEN nextval('wsflow.step_completion_seq') END, "
    "s.completed_seq), "
    "attempt_deadline_at = CASE WHEN u.attempt_timeout < 0 THEN NULL "
    "ELSE now() + u.attempt_timeout * interval '1 ms' END, "
    "max_attempts = coalesce(NULLIF(u.max_attempts, -1), s.max_attempts), "
    "finished_at = CASE WHEN u.state IN ('completed','skipped','failed','compensated','compensation_failed') "
    "THEN now() END, updated_at = now() "
    "FROM u WHERE s.saga_id = u.saga_id AND s.step = u.step AND s.branch = u.branch "
    "RETURNING s.saga_id, s.step, s.branch) "
    "INSERT INTO wsflow.saga_steps (saga_id, step, branch, step_index, state, attempts, compensation_attempts, output, "
    "error, wake_at, completed_seq, finished_at, attempt_deadline_at, max_attempts) "
    "SELECT u.saga_id, u.step, u.branch, u.step_index, u.state, u.add_attempts, u.add_compensation_attempts, "
    "u.output::jsonb, NULLIF(u.error, ''), "
    "CASE WHEN u.wake_in < 0 THEN NULL ELSE now() + u.wake_in * interval '1 ms' END, "
    "CASE WHEN u.state = 'completed' THEN nextval('wsflow.step_completion_seq') END, "
    "CASE WHEN u.state IN ('completed','skipped','failed','compensated','compensation_failed') THEN now() END, "
    "CASE WHEN u.attempt_timeout < 0 THEN NULL ELSE now() + u.attempt_timeout * interval '1 ms' END, "
    "NULLIF(u.max_attempts, -1) FROM u "
    "WHERE NOT EXISTS (SELECT 1 FROM updated d WHERE d.saga_id = u.saga_id AND d.step = u.step AND d.branch = "
    "u.branch)";

// Progress (a step finished, or any state change) is a stuck reason's clock
// (minutes, by default): a step's progress moves it only when it is a second
// old, so a saga's quick steps do not each write a new version of its row
// (and an entry in each of its indexes).
const char* kUpdateSagas =
    "UPDATE wsflow.sagas s SET "
    "context = CASE WHEN u.context = '' THEN s.context ELSE s.context || u.context::jsonb END, "
    "state = coalesce(NULLIF(u.state, ''), s.state), "
    "progressed_at = CASE WHEN u.state <> '' OR (u.progressed AND s.progressed_at < now() - " WSF_PROGRESS_GRAIN
    ") THEN now() ELSE s.progressed_at END, "
    "pause_requested = s.pause_requested AND (u.state = '' OR u.state <> 'paused'), "
    "finished_at = CASE WHEN u.state = '' THEN s.finished_at "
    "WHEN u.state IN ('completed','compensated','failed','cancelled') THEN now() END, "
    "error = CASE WHEN u.has_error THEN NULLIF(u.error, '') ELSE s.error END, "
    "updated_at = CASE WHEN u.context <> '' OR u.state <> '' OR u.has_error THEN now() ELSE s.updated_at END "
    "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::bool[], $6::text[]) "
    "AS u(id, context, state, progressed, has_error, error) WHERE s.id = u.id "
    "AND (u.context <> '' OR u.state <> '' OR u.has_error OR s.progressed_at < now() - " WSF_PROGRESS_GRAIN ")";

const char* kInsertEvents =
    "INSERT INTO wsflow.saga_events (saga_id, kind, step, branch, detail) "
    "SELECT saga_id, kind, step, branch, detail::jsonb "
    "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]) AS e(saga_id, kind, step, branch, detail)";

}  // namespace

void prepare_batch_statements(pqxx::connection& conn) {
  conn.prepare("batch_fence", kFenceAll);
  conn.prepare("batch_write_steps", kWriteSteps);
  conn.prepare("batch_update_sagas", kUpdateSagas);
  conn.prepare("batch_insert_events", kInsertEvents);
}

namespace {

const char* flag(bool value) { return value ? "t" : "f"; }

bool progresses(StepState state) {
  return state == StepState::kCompleted || state == StepState::kSkipped || state == StepState::kCompensated;
}

// The columns of one multi-row statement, one text array literal each.
struct Columns {
  explicit Columns(std::size_t count) : values(count) {}
  void add(std::initializer_list<std::string> row) {
    std::size_t i = 0;
    for (const std::string& value : row) values[i++].push_back(value);
  }
  bool empty() const { return values.front().empty(); }
  std::string operator[](std::size_t column) const { return text_array(values[column]); }
  std::vector<std::vector<std::string>> values;
};

// Writes the fenced items' rows, in saga-id order.
void write_batch(pqxx::work& tx, const std::vector<const Store::BatchItem*>& fenced) {
  Columns steps(14), sagas(6), events(5);
  // The for_each branches of one saga may share a batch: their changes to
  // the saga row are merged, in commit order, into one update (an UPDATE
  // ... FROM meeting the same row twice applies only one).
  struct SagaChange {
    nlohmann::json context = nlohmann::json::object();
    std::string state;
    std::optional<std::string> error;
    bool progressed = false;
  };
  std::map<std::string, SagaChange> changes;
  for (const Store::BatchItem* item : fenced) {
    const std::string& id = item->claim.saga_id;
    const Transition& t = item->transition;
    if (t.step) {
      const StepWrite& w = *t.step;
      steps.add({id, w.step, w.branch, std::to_string(w.step_index), to_string(w.state), std::to_string(w.add_attempts),
                 std::to_string(w.add_compensation_attempts), (w.output ? *w.output : nlohmann::json()).dump(),
                 flag(w.output.has_value()), w.error.value_or(""), flag(w.error.has_value()),
                 std::to_string(w.wake_in ? w.wake_in->count() : -1),
                 std::to_string(w.attempt_timeout ? w.attempt_timeout->count() : -1),
                 std::to_string(w.max_attempts.value_or(-1))});
    }
    SagaChange& change = changes[id];
    if (t.context_updates.is_object()) change.context.update(t.context_updates);
    if (t.saga_state) change.state = to_string(*t.saga_state);
    if (t.saga_error) change.error = t.saga_error;
    change.progressed = change.progressed || (t.step && progresses(t.step->state));
    if (t.prior_event) {
      const EventWrite& e = *t.prior_event;
      events.add({id, e.kind, e.step, e.branch, e.detail.dump()});
    }
    if (!t.event.empty()) events.add({id, t.event, t.event_step, t.event_branch, t.event_detail.dump()});
  }
  for (const auto& [id, change] : changes) {
    if (change.context.empty() && change.state.empty() && !change.progressed && !change.error) continue;
    sagas.add({id, change.context.empty() ? "" : change.context.dump(), change.state, flag(change.progressed),
               flag(change.error.has_value()), change.error.value_or("")});
  }
  if (!steps.empty()) {
    tx.exec_prepared("batch_write_steps", steps[0], steps[1], steps[2], steps[3], steps[4], steps[5], steps[6],
                     steps[7], steps[8], steps[9], steps[10], steps[11], steps[12], steps[13]);
  }
  if (!sagas.empty())
    tx.exec_prepared("batch_update_sagas", sagas[0], sagas[1], sagas[2], sagas[3], sagas[4], sagas[5]);
  for (const Store::BatchItem* item : fenced) {
    const Transition& t = item->transition;
    if (t.consume_signal) tx.exec_prepared("consume_signal", *t.consume_signal, item->claim.saga_id);
  }
  if (!events.empty()) tx.exec_prepared("batch_insert_events", events[0], events[1], events[2], events[3], events[4]);
  for (const Store::BatchItem* item : fenced) {
    const Transition& t = item->transition;
    if (!t.release) continue;
    tx.exec_prepared("release", item->claim.saga_id,
                     static_cast<long long>(t.release_wake_in ? t.release_wake_in->count() : -1),
                     static_cast<long long>(t.signals_seen_up_to));
  }
}

}  // namespace

std::vector<Store::BatchOutcome> PgStore::commit_batch(const std::vector<BatchItem>& items) {
  std::vector<BatchOutcome> outcomes(items.size());
  // One transition: commit()'s statements, each a lookup by primary key,
  // are fewer and cheaper than the multi-row ones.
  if (items.size() == 1) {
    try {
      outcomes[0].result = commit(items[0].claim, items[0].transition);
    } catch (...) {
      outcomes[0].error = std::current_exception();
    }
    return outcomes;
  }
  std::vector<std::size_t> order(items.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Stable: a saga's items (for_each branches) keep their commit order.
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return items[a].claim.saga_id < items[b].claim.saga_id; });
  try {
    auto conn = pool_.acquire();
    pqxx::work tx(*conn);
    // Every row these statements touch is found by its key: a plan that
    // scans a table, made while it was small (a new database) and cached
    // for good as it grows, would make each batch slower than the last.
    // Planning each batch afresh instead cost a fifth of the database's time.
    tx.exec("SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off");
    std::vector<std::string> ids, tokens;
    for (std::size_t i : order) {
      ids.push_back(items[i].claim.saga_id);
      tokens.push_back(items[i].claim.lease_token);
    }
    std::map<std::string, CommitResult> held;
    for (const auto& row : tx.exec_prepared("batch_fence", text_array(ids), text_array(tokens))) {
      CommitResult requests;
      requests.cancel_requested = row[1].as<bool>();
      requests.pause_requested = row[2].as<bool>();
      held.emplace(row[0].as<std::string>(), requests);
    }
    std::vector<const BatchItem*> fenced;
    for (std::size_t i : order) {
      auto it = held.find(items[i].claim.saga_id);
      if (it == held.end()) {
        outcomes[i].error = std::make_exception_ptr(LeaseLost(items[i].claim.saga_id));
        continue;
      }
      outcomes[i].result = it->second;
      fenced.push_back(&items[i]);
    }
    if (!fenced.empty()) write_batch(tx, fenced);
    tx.commit();
  } catch (...) {
    const std::exception_ptr error = std::current_exception();
    for (auto& outcome : outcomes) outcome.error = error;
  }
  return outcomes;
}

}  // namespace wsflow::pg
