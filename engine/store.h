#pragma once
// The Store contract: everything the engine and its clients persist. The
// Postgres implementation lives in adapters/postgres; tests wrap it to inject
// faults. All calls block and are safe to make from several threads at once.
//
// Fencing: every executor-side write names the Claim it was made under and is
// refused with LeaseLost (nothing written, the in-transaction action rolled
// back) once another process has claimed the saga. This is what keeps two
// processes from both committing the same step.
//
// Errors: bad arguments throw std::invalid_argument; database failures throw
// the driver's exceptions (std::exception); LeaseLost as above.

#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <pqxx/transaction>

#include "engine/action.h"
#include "engine/definition.h"
#include "engine/duration.h"
#include "engine/lifecycle.h"
#include "engine/schedule_state.h"

namespace wsflow {

using TimePoint = std::chrono::system_clock::time_point;

enum class StepState {
  kRunning,   // an attempt is in flight (or was, when its process died)
  kRetrying,  // an attempt failed; another will follow after the backoff
  kWaiting,   // a wait step: timer or signal pending
  kCompleted,
  kSkipped,       // `when:` did not hold
  kFailed,        // failed for good
  kCompensating,  // its compensation is in flight
  kCompensated,
  kCompensationFailed,  // its compensation failed for good
};
const char* to_string(StepState state);
std::optional<StepState> step_state_from_string(const std::string& name);

struct SagaRecord {
  std::string id;
  std::string definition;  // saga name
  int version = 0;
  std::string definition_hash;
  std::string workspace_id;  // empty when the saga is not about one workspace
  SagaState state = SagaState::kPending;
  nlohmann::json input;
  nlohmann::json context;
  std::string idempotency_key;
  std::optional<TimePoint> deadline_at;
  std::optional<TimePoint> wake_at;
  std::string error;
  bool cancel_requested = false;
  bool pause_requested = false;  // an operator asked it to pause at the next step boundary
  int compensate_from = -1;      // a cancel undoes only steps from this index on; -1: all
  // An operator's replacement of steps' static `input:`, by step name (a rerun's).
  nlohmann::json step_inputs = nlohmann::json::object();
  std::int64_t last_signal_id = 0;  // every signal delivered to it has an id up to this one
  TimePoint created_at;
  TimePoint updated_at;
};

struct StepRecord {
  std::string step;
  std::string branch;
  int step_index = 0;
  StepState state = StepState::kRunning;
  int attempts = 0;
  int compensation_attempts = 0;
  nlohmann::json output;
  std::string error;
  std::optional<TimePoint> wake_at;
  std::int64_t completed_seq = 0;  // order in which steps completed, for compensation
};

struct SignalRecord {
  std::int64_t id = 0;
  std::string name;
  nlohmann::json payload;
};

struct EventRecord {
  std::int64_t id = 0;
  std::string kind;
  std::string step;
  std::string branch;
  nlohmann::json detail;
  TimePoint at;
};

// A saga held by one process under a lease.
struct Claim {
  std::string saga_id;
  std::string lease_token;
  bool takeover = false;  // the saga's previous lease had expired unreleased (its engine died or hung)
};

// What the executor reads when it (re)starts driving a saga.
struct SagaSnapshot {
  SagaRecord saga;
  std::vector<StepRecord> steps;
  std::vector<SignalRecord> signals;              // delivered, not yet consumed, oldest first
  TimePoint db_now;                               // the database clock, which all durable times use
  std::chrono::steady_clock::time_point read_at;  // when db_now was read, on this process's clock
};

// A saga just leased, as it was when its lease was taken.
struct ClaimedSaga {
  Claim claim;
  SagaSnapshot snapshot;
  Priority priority = Priority::kNormal;  // its definition's, as claimed
};

// What a claim asks for: up to `limit` (> 0) runnable sagas for `owner`,
// leased for `lease`, at most `below_high` (<= limit) of them of normal or
// low priority. A saga is runnable when it is not leased (or its lease
// expired) and its wake time is at most `ahead` away: one claimed before its
// wake time is the engine's to hold until then (EngineOptions::claim_ahead).
struct ClaimRequest {
  std::string owner;
  Millis lease{0};
  int limit = 0;
  int below_high = 0;
  Millis ahead{0};
};

// What a claim found.
struct ClaimResult {
  std::vector<ClaimedSaga> sagas;
  // Set when fewer sagas than asked were due: how long until the earliest
  // future wake time of a saga that may run (a timer, a retry, a jittered
  // start; nullopt when none has one) is within the claim's `ahead` of now.
  // The poller sleeps no longer than that, so a timer fires on time with any
  // poll interval.
  std::optional<Millis> next_wake_in;
};

class LeaseLost : public std::runtime_error {
 public:
  explicit LeaseLost(const std::string& saga_id)
      : std::runtime_error("lease on saga " + saga_id + " was lost to another process") {}
};

// One step-row write within a Transition.
struct StepWrite {
  std::string step;
  std::string branch;
  int step_index = 0;
  StepState state = StepState::kRunning;
  int add_attempts = 0;               // added to the attempt counter
  int add_compensation_attempts = 0;  // added to the compensation attempt counter
  std::optional<nlohmann::json> output;
  std::optional<std::string> error;  // replaces the stored error when set ("" clears it)
  std::optional<Millis> wake_in;     // wake_at = db now + wake_in (a timer, or the next retry)
  // An attempt starting: it is overdue (a stuck reason) after db now +
  // attempt_timeout. Every other write clears the attempt deadline.
  std::optional<Millis> attempt_timeout;
  std::optional<int> max_attempts;  // the retry policy's budget, shown to operators
  // When the attempt began, on the database's clock, for an attempt recorded
  // only with its outcome (EngineOptions::attempt_record_delay): a new step
  // row's started_at, so that its duration is the attempt's, not zero.
  std::optional<TimePoint> began_at;
};

// A saga_events row written with a commit.
struct EventWrite {
  std::string kind;
  std::string step;
  std::string branch;
  nlohmann::json detail = nlohmann::json::object();
};

// Everything one commit changes. Applied atomically, with its event, or not at all.
struct Transition {
  // Recorded just before `event`, in order, in the same commit: records that
  // waited for this one (EngineOptions::attempt_record_delay), such as the
  // saga's start and the start of an attempt whose outcome came first.
  std::vector<EventWrite> prior_events;
  std::string event;  // saga_events.kind
  std::string event_step;
  std::string event_branch;
  nlohmann::json event_detail = nlohmann::json::object();
  std::optional<SagaState> saga_state;
  std::optional<std::string> saga_error;
  std::optional<StepWrite> step;
  // Merged (top level) into the saga context, together with the context
  // updates of the in-transaction action, if one ran.
  nlohmann::json context_updates = nlohmann::json::object();
  std::optional<std::int64_t> consume_signal;  // mark this signal consumed
  // Give up the lease in the same commit; the saga becomes runnable again at
  // min(db now + release_wake_in, deadline), or never by time when unset (a
  // terminal saga, or one waiting only for a signal with no deadline).
  bool release = false;
  std::optional<Millis> release_wake_in;
  // The newest signal id the releasing process has seen: a signal delivered
  // after it (while the saga was leased) makes the saga runnable now, so a
  // concurrent delivery is never lost. Likewise a pending cancel request.
  std::int64_t signals_seen_up_to = 0;
  // The saga's progress time (the clock of the "no progress" stuck reason)
  // was set by this process's own commits less than kProgressRecent ago. A
  // store moves that time on a step's progress only when it is a second old,
  // so a commit whose step progresses and which changes nothing else of the
  // saga's row may then leave the row alone.
  bool progress_recent = false;
};

// Under the store's one-second progress grain, with room for a commit's wait
// in a queue.
inline constexpr Millis kProgressRecent{900};

struct StartOptions {
  std::string idempotency_key;  // empty: none; else a repeat returns the first saga
  std::string workspace_id;     // empty: none
  Millis delay{0};              // runnable this long after it is inserted (schedule jitter)
};

struct StartResult {
  std::string saga_id;
  bool created = false;  // false when idempotency_key matched an existing saga
};

// One saga of a batch start.
struct StartRequest {
  nlohmann::json input = nlohmann::json::object();
  StartOptions options;
};

// Runs the transactional action, if any, inside a commit; its result's output
// and context updates are what the commit stores.
using InTransaction = std::function<ActionResult(pqxx::work&)>;

struct CommitResult {
  ActionResult action;            // the in-transaction action's result (success when none ran)
  bool cancel_requested = false;  // someone asked the saga to cancel (read under the lease lock)
  bool pause_requested = false;   // an operator asked it to pause (likewise)
};

class Store {
 public:
  virtual ~Store() = default;

  // --- clients ---
  // Stores `definition` by hash (once) and a pending saga on it. Throws
  // std::invalid_argument naming the first missing required input field.
  virtual StartResult start_saga(const SagaDefinition& definition, const nlohmann::json& input,
                                 const StartOptions& options) = 0;
  // Starts many sagas of one definition in one transaction: all of them or,
  // on any error, none. Each request is checked as start_saga checks it; the
  // std::invalid_argument names the request ("sagas[3].input.email: ...").
  // A key already used, or repeated in the batch, returns the saga it
  // started (created false). Results are in the requests' order.
  virtual std::vector<StartResult> start_sagas(const SagaDefinition& definition,
                                               const std::vector<StartRequest>& requests) = 0;
  // Records a signal for the saga and wakes it. Returns false when the saga
  // does not exist or has already finished.
  virtual bool deliver_signal(const std::string& saga_id, const std::string& name, const nlohmann::json& payload) = 0;
  // Asks a saga to stop: it compensates and ends `cancelled`. Throws
  // IllegalTransition if the saga has already finished; false if unknown.
  virtual bool request_cancel(const std::string& saga_id) = 0;
  // An operator's repair of a `failed` saga (its compensation gave up): the
  // failed compensations get a fresh retry budget and the saga compensates
  // again. Throws IllegalTransition unless the saga is failed; false if unknown.
  virtual bool retry(const std::string& saga_id) = 0;
  virtual std::optional<SagaRecord> find_saga(const std::string& saga_id) = 0;
  virtual std::vector<StepRecord> steps(const std::string& saga_id) = 0;
  virtual std::vector<EventRecord> events(const std::string& saga_id) = 0;
  // The YAML text of a stored definition version.
  virtual std::optional<std::string> definition_source(const std::string& hash) = 0;

  // --- executor ---
  // Leases the runnable sagas `request` asks for, highest priority first,
  // then earliest wake time first, and then reads each of them: what a
  // process needs to start driving them, and when to look again. If the
  // reads fail, the leases are given back (or, if even that fails, left to
  // expire) and the error is thrown.
  virtual ClaimResult claim(const ClaimRequest& request) = 0;
  // Extends the leases named by `claims` (a process's sagas in flight; a
  // saga it let go of after an error is not renewed, so its lease expires
  // and it runs again). Returns how many were still held.
  virtual int renew_leases(const std::vector<Claim>& claims, Millis lease) = 0;
  // How many engines (distinct lease owners) hold an unexpired lease now.
  virtual int engines_holding_leases() = 0;
  // Gives up every lease `owner` holds, making those sagas runnable now, but
  // for those claimed ahead of a wake time still to come: runnable then.
  virtual void release_all(const std::string& owner) = 0;
  // Refreshes the database's planner statistics of the store's tables that
  // are far behind their contents (taken while a table was empty, say), so
  // that the plans the store's connections keep fit the tables again; returns
  // the tables refreshed. Cheap when there are none: the engine calls it with
  // every heartbeat.
  virtual std::vector<std::string> refresh_statistics() = 0;
  // Applies `transition` atomically, after running `in_transaction` (if set)
  // in the same transaction. If that returns a failure, nothing is written and
  // the failure is returned. Throws LeaseLost if the claim is stale.
  virtual CommitResult commit(const Claim& claim, const Transition& transition,
                              const InTransaction& in_transaction = nullptr,
                              std::optional<Millis> statement_timeout = std::nullopt) = 0;

  // Group commit: applies transitions of several sagas (a saga's for_each
  // branches may each bring one: they apply in the items' order, on
  // different step rows) in one database transaction, each as if committed
  // alone: a stale
  // claim's transition is skipped (its outcome holds LeaseLost) without
  // affecting the others. Returns one outcome per item, in order; if the
  // transaction itself fails, every outcome holds that error.
  struct BatchItem {
    Claim claim;
    Transition transition;
  };
  struct BatchOutcome {
    CommitResult result;
    std::exception_ptr error;  // set when this item was not committed
  };
  virtual std::vector<BatchOutcome> commit_batch(const std::vector<BatchItem>& items) = 0;

  // --- schedules ---
  // Every time argument and result below is on the database's clock moved by
  // `clock_offset` (zero in production; tests move it instead of sleeping).
  //
  // The database's now.
  virtual TimePoint schedule_now(Millis clock_offset) = 0;
  // Inserts new schedules and updates known ones (a changed timing_hash
  // replaces next_due_at with first_due_at; pause state and history stay).
  virtual void register_schedules(const std::vector<ScheduleRegistration>& schedules) = 0;
  // Locks one schedule among `names` that is due (next_due_at reached, or a
  // buffered run whose predecessor has finished) and not paused, skipping
  // schedules another process holds; calls `plan` with it and applies the
  // plan (starts its runs, advances next_due_at) in the same transaction.
  // Returns false when none was due. `plan` may throw: nothing is written.
  virtual bool fire_due_schedule(const std::vector<std::string>& names, Millis clock_offset,
                                 const PlanFiring& plan) = 0;
  // How long until the earliest due time among the unpaused `names`
  // (zero or less: something is due now); nullopt when there is none.
  virtual std::optional<Millis> until_next_due(const std::vector<std::string>& names, Millis clock_offset) = 0;
  // Starts `runs` of `schedule` (operator trigger and backfill) and records
  // the newest as the schedule's last run. Throws UnknownSchedule
  // (engine/schedule_commands.h) if the schedule is not registered.
  virtual std::vector<RunStarted> start_schedule_runs(const std::string& schedule, const SagaDefinition& saga,
                                                      const std::vector<ScheduledRun>& runs) = 0;
  // Pauses or resumes; resuming sets next_due_at (slots passed while paused
  // do not fire). False if the schedule is not registered.
  virtual bool set_schedule_paused(const std::string& schedule, bool paused, const std::string& note,
                                   std::optional<TimePoint> next_due_at) = 0;
  virtual std::vector<ScheduleStatus> schedule_statuses() = 0;
};

}  // namespace wsflow
