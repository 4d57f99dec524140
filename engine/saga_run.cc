#include "engine/saga_run.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "engine/definition_loader.h"
#include "engine/log.h"

namespace wsflow::detail {
namespace {

using Clock = std::chrono::system_clock;

// How long an action runs before its saga counts as parked on it, out of the
// commit pipeline (Runtime::parked): longer than an in-process action takes,
// shorter than a call to another service.
constexpr Millis kParkAfter{5};

// kFinished: the saga's end is committed already (with its last step's).
enum class Flow { kContinue, kCompleted, kFinished, kSuspended, kFailed, kCancelled, kPaused, kInterrupted };

struct Outcome {
  Flow flow = Flow::kContinue;
  std::string reason;  // for kFailed
};

// The forward and the compensating direction run attempts the same way; this
// says which states, counters, policy and events one of them uses.
struct AttemptMode {
  bool compensating;
  StepState running, retrying, succeeded, failed;
  const char *started_event, *succeeded_event, *retry_event, *failed_event;
};

constexpr AttemptMode kForward{false,
                               StepState::kRunning,
                               StepState::kRetrying,
                               StepState::kCompleted,
                               StepState::kFailed,
                               "attempt_started",
                               "step_completed",
                               "attempt_failed",
                               "step_failed"};
constexpr AttemptMode kCompensation{true,
                                    StepState::kCompensating,
                                    StepState::kCompensating,
                                    StepState::kCompensated,
                                    StepState::kCompensationFailed,
                                    "compensation_started",
                                    "step_compensated",
                                    "compensation_attempt_failed",
                                    "compensation_failed"};

// The moment on this process's steady clock when the database's clock reads
// `at`, reckoned from one reading of both: `db_now`, read at `read_at`.
std::chrono::steady_clock::time_point steady_time_of(Clock::time_point at, Clock::time_point db_now,
                                                     std::chrono::steady_clock::time_point read_at) {
  return read_at + std::chrono::duration_cast<std::chrono::steady_clock::duration>(at - db_now);
}

std::string step_label(const std::string& step, const std::string& branch) {
  return branch.empty() ? step : step + "[" + branch + "]";
}

class SagaRun {
 public:
  // `held`: the saga was claimed ahead of its wake time and held until then.
  SagaRun(Runtime& rt, Claim claim, SagaSnapshot snapshot, std::shared_ptr<const SagaDefinition> def, bool held)
      : rt_(rt),
        claim_(std::move(claim)),
        saga_(std::move(snapshot.saga)),
        signals_(std::move(snapshot.signals)),
        def_(std::move(def)),
        db_now_at_load_(snapshot.db_now),
        loaded_at_(snapshot.read_at),
        held_(held),
        cancel_requested_(saga_.cancel_requested),
        pause_requested_(saga_.pause_requested) {
    for (auto& s : snapshot.steps) rows_[{s.step, s.branch}] = std::move(s);
    signals_seen_ = saga_.last_signal_id;
    for (const auto& signal : signals_) signals_seen_ = std::max(signals_seen_, signal.id);
  }

  asio::awaitable<void> run() {
    for (;;) {
      switch (saga_.state) {
        case SagaState::kPending:
          if (cancel_requested_) {
            co_await change_state(SagaEvent::kCancel, "cancelling", {});
          } else if (pause_requested_) {
            co_await pause();
            co_return;
          } else if (rt_.options.attempt_record_delay > Millis(0)) {
            // Recorded with the first step's commit (EngineOptions::
            // attempt_record_delay): a saga that stops before then starts
            // again from pending, having written nothing.
            deferred_start_ = state_transition(SagaEvent::kStart, "started", {});
            saga_.state = *deferred_start_->saga_state;
          } else {
            co_await change_state(SagaEvent::kStart, "started", {});
            if (rt_.options.events.saga_started) rt_.options.events.saga_started(def_->name);
          }
          break;
        case SagaState::kRunning:
        case SagaState::kWaiting: {
          if (cancel_requested_) {
            co_await change_state(SagaEvent::kCancel, "cancelling", {});
            break;
          }
          if (pause_requested_) {
            co_await pause();
            co_return;
          }
          if (past_deadline()) {
            if (held_) {
              co_await release_now();
              co_return;
            }
            co_await fail("deadline_exceeded: the saga did not finish before its deadline");
            break;
          }
          const Outcome outcome = co_await forward();
          switch (outcome.flow) {
            case Flow::kCompleted:
              co_await finish(completion());
              co_return;
            case Flow::kFinished:
              co_return;
            case Flow::kFailed:
              co_await fail(outcome.reason);
              break;
            case Flow::kCancelled:
              break;  // loop: cancel_requested_ is set
            case Flow::kPaused:
              co_await pause();
              co_return;
            case Flow::kSuspended:
              co_return;  // released by the commit that suspended
            case Flow::kInterrupted:
            case Flow::kContinue:
              co_await release_now();
              co_return;
          }
          break;
        }
        case SagaState::kCompensating: {
          const Outcome outcome = co_await compensate();
          if (outcome.flow == Flow::kInterrupted) {
            co_await release_now();
            co_return;
          }
          if (outcome.flow == Flow::kFailed) {
            Transition t = state_transition(SagaEvent::kCompensationFailed, "failed", {{"reason", outcome.reason}});
            t.saga_error = outcome.reason;
            co_await finish(std::move(t));
            log_warn("saga failed and needs an operator: " + outcome.reason, {saga_.id, saga_.workspace_id, "", "", 0});
            co_return;
          }
          // Built before co_await: GCC 12 mishandles temporaries of a ?: across a suspension.
          Transition done = cancel_requested_ ? state_transition(SagaEvent::kCancellationDone, "cancelled", {})
                                              : state_transition(SagaEvent::kCompensationDone, "compensated", {});
          co_await finish(std::move(done));
          co_return;
        }
        default:  // terminal: nothing to do but let go
          co_await release_now();
          co_return;
      }
    }
  }

 private:
  using RowKey = std::pair<std::string, std::string>;

  // --- time ---------------------------------------------------------------
  Clock::time_point db_now() const { return db_time_of(std::chrono::steady_clock::now()); }
  // The database's clock at a moment of this process's steady clock.
  Clock::time_point db_time_of(std::chrono::steady_clock::time_point at) const {
    return db_now_at_load_ + std::chrono::duration_cast<Clock::duration>(at - loaded_at_);
  }
  bool past_deadline() const { return saga_.deadline_at && db_now() >= *saga_.deadline_at; }
  static Millis until(Clock::time_point from, Clock::time_point to) {
    return std::max(Millis(0), std::chrono::duration_cast<Millis>(to - from));
  }

  // --- commits ------------------------------------------------------------
  asio::awaitable<CommitResult> commit(Transition t, InTransaction in_tx = nullptr,
                                       std::optional<Millis> timeout = std::nullopt) {
    t.signals_seen_up_to = signals_seen_;
    std::optional<Transition> start = std::exchange(deferred_start_, std::nullopt);
    if (start) {
      t.prior_events.insert(t.prior_events.begin(),
                            EventWrite{start->event, start->event_step, start->event_branch, start->event_detail});
      if (!t.saga_state) t.saga_state = start->saga_state;
    }
    // The database counts a release's wake-up from its transaction's start,
    // which is after this: a local wake-up counted from here is never late
    // (if early, the poller finds the due time and sleeps until it).
    const auto sent = std::chrono::steady_clock::now();
    t.progress_recent = progress_set_at_ && sent - *progress_set_at_ < kProgressRecent;
    CommitResult result;
    if (in_tx) {
      result = co_await rt_.on_pool([&] { return rt_.store.commit(claim_, t, in_tx, timeout); });
    } else if (rt_.commit_pool) {
      result = co_await rt_.on(*rt_.commit_pool, [&] { return rt_.store.commit(claim_, t, nullptr, std::nullopt); });
    } else {
      result = co_await rt_.group_commit(claim_, t, def_->priority);
    }
    if (in_tx && !result.action.ok) {  // nothing was written
      deferred_start_ = std::move(start);
      co_return result;
    }
    if (start && rt_.options.events.saga_started) rt_.options.events.saga_started(def_->name);
    cancel_requested_ = cancel_requested_ || result.cancel_requested;
    pause_requested_ = pause_requested_ || result.pause_requested;
    if (t.saga_state) {
      saga_.state = *t.saga_state;
      progress_set_at_ = sent;  // a state change sets the progress time, as of a moment after this
    }
    // As the store does: an output the transition carries, else the in-transaction action's.
    if (t.step) remember(*t.step, t.step->output || !in_tx ? t.step->output : std::optional(result.action.output));
    saga_.context.update(t.context_updates);
    if (in_tx) saga_.context.update(result.action.context_updates);
    if (t.release && rt_.wake_at) {
      if (const auto wake = wake_after_release(t, sent)) rt_.wake_at(*wake);
    }
    co_return result;
  }

  // When the saga that `t`, sent at `sent`, let go of is due again, on this
  // process's clock, as the store sets its wake time: at its wake-up or its
  // deadline, whichever comes first. Nullopt when it waits for neither (a
  // signal, no deadline) or runs no more (finished, paused).
  std::optional<std::chrono::steady_clock::time_point> wake_after_release(
      const Transition& t, std::chrono::steady_clock::time_point sent) const {
    if (is_terminal(saga_.state) || saga_.state == SagaState::kPaused) return std::nullopt;
    std::optional<std::chrono::steady_clock::time_point> wake;
    if (t.release_wake_in) wake = sent + *t.release_wake_in;
    if (saga_.deadline_at) {
      const auto deadline = steady_time_of(*saga_.deadline_at, db_now_at_load_, loaded_at_);
      wake = wake ? std::min(*wake, deadline) : deadline;
    }
    return wake;
  }

  void remember(const StepWrite& w, const std::optional<nlohmann::json>& output) {
    StepRecord& row = rows_[{w.step, w.branch}];
    row.step = w.step;
    row.branch = w.branch;
    row.step_index = w.step_index;
    row.state = w.state;
    row.attempts += w.add_attempts;
    row.compensation_attempts += w.add_compensation_attempts;
    if (output) row.output = *output;
    if (w.error) row.error = *w.error;
    if (w.wake_in) row.wake_at = db_now() + *w.wake_in;
    if (w.state == StepState::kCompleted) row.completed_seq = ++local_completion_seq_;
  }

  Transition state_transition(SagaEvent event, std::string kind, nlohmann::json detail) {
    Transition t;
    t.saga_state = next_state(saga_.state, event);  // an illegal change is a bug: it throws
    t.event = kind;
    if (detail.is_object()) t.event_detail = std::move(detail);
    return t;
  }

  asio::awaitable<void> change_state(SagaEvent event, std::string kind, nlohmann::json detail) {
    co_await commit(state_transition(event, std::move(kind), std::move(detail)));
  }

  Transition completion() {
    Transition t = state_transition(SagaEvent::kComplete, "completed", {});
    t.saga_error = "";  // clear any interim engine error
    return t;
  }

  // The saga's completion carrying its last step's outcome, so that both are
  // one commit: the step's event goes just before the saga's.
  Transition completion_with(Transition last_step) {
    Transition t = completion();
    t.prior_events = std::move(last_step.prior_events);
    t.prior_events.push_back(EventWrite{std::move(last_step.event), std::move(last_step.event_step),
                                        std::move(last_step.event_branch), std::move(last_step.event_detail)});
    t.step = std::move(last_step.step);
    t.context_updates = std::move(last_step.context_updates);
    return t;
  }

  // Commits a terminal state, with the registry's finish hook in the same
  // transaction, and gives up the lease.
  asio::awaitable<void> finish(Transition t) {
    t.release = true;
    InTransaction hook;
    if (rt_.actions.finish_hook()) {
      nlohmann::json context = saga_.context;
      context.update(t.context_updates);  // the last step's, when it ends with the saga
      SagaOutcome outcome{
          saga_.id,    def_->name, saga_.workspace_id, *t.saga_state, t.saga_error.value_or(saga_.error),
          saga_.input, context};
      hook = [registry = &rt_.actions, outcome](pqxx::work& tx) {
        registry->finish_hook()(outcome, tx);
        return ActionResult::success();
      };
    }
    const SagaState final_state = *t.saga_state;
    const CommitResult result = co_await commit(std::move(t), hook);
    if (!result.action.ok) throw std::runtime_error("the finish hook failed: " + result.action.error.message);
    if (rt_.options.events.saga_finished) rt_.options.events.saga_finished(def_->name, final_state);
  }

  asio::awaitable<void> fail(const std::string& reason) {
    Transition t = state_transition(SagaEvent::kFail, "compensation_begun", {{"reason", reason}});
    t.saga_error = reason;
    co_await commit(std::move(t));
  }

  // Holds the saga for an operator, between steps: no wake-up until resumed
  // (timers and the deadline keep their due times and fire after).
  asio::awaitable<void> pause() {
    Transition t = state_transition(SagaEvent::kPause, "paused", {{"worker", rt_.options.owner}});
    t.release = true;
    co_await commit(std::move(t));
    pause_requested_ = false;
  }

  asio::awaitable<void> release_now() {
    Transition t;
    t.release = true;
    t.release_wake_in = Millis(0);
    co_await commit(std::move(t));
  }

  // Suspends (running -> waiting) if needed and gives up the lease until
  // `wake_in` (or the deadline / a signal when unset), in one commit.
  asio::awaitable<Outcome> suspend(std::optional<StepWrite> step, std::string kind, std::optional<Millis> wake_in,
                                   nlohmann::json detail = nlohmann::json::object()) {
    Transition t;
    if (saga_.state == SagaState::kRunning) t.saga_state = next_state(saga_.state, SagaEvent::kSuspend);
    if (step) {
      t.step = std::move(step);
      t.event = kind;
      t.event_step = t.step->step;
      t.event_detail = std::move(detail);
    }
    t.release = true;
    t.release_wake_in = wake_in;
    co_await commit(std::move(t));
    co_return Outcome{Flow::kSuspended, {}};
  }

  // Completes a wait step, resuming the saga (waiting -> running) in the same commit.
  asio::awaitable<void> finish_wait(int index, const Step& step, std::string kind, nlohmann::json output,
                                    nlohmann::json context_updates, std::optional<std::int64_t> consume) {
    Transition t;
    if (saga_.state == SagaState::kWaiting) t.saga_state = next_state(saga_.state, SagaEvent::kResume);
    t.step =
        StepWrite{step.name, "", index, StepState::kCompleted, 0, 0, std::move(output), std::string(), {}, {}, {}, {}};
    t.event = kind;
    t.event_step = step.name;
    t.context_updates = std::move(context_updates);
    t.consume_signal = consume;
    co_await commit(std::move(t));
  }

  // --- forward ------------------------------------------------------------
  asio::awaitable<Outcome> forward() {
    for (int index = 0; index < static_cast<int>(def_->steps.size()); ++index) {
      const Step& step = def_->steps[index];
      const std::vector<std::string> branches = step.for_each.empty() ? std::vector<std::string>{""} : step.for_each;
      std::vector<std::string> todo;
      for (const auto& branch : branches) {
        auto it = rows_.find({step.name, branch});
        if (it == rows_.end()) {
          todo.push_back(branch);
          continue;
        }
        const StepState s = it->second.state;
        if (s == StepState::kCompleted || s == StepState::kSkipped) continue;
        if (s == StepState::kFailed) {
          co_return Outcome{Flow::kFailed, "step " + step_label(step.name, branch) + " failed: " + it->second.error};
        }
        todo.push_back(branch);
      }
      if (todo.empty()) continue;
      if (rt_.stopping) co_return Outcome{Flow::kInterrupted, {}};
      if (cancel_requested_) co_return Outcome{Flow::kCancelled, {}};
      if (pause_requested_) co_return Outcome{Flow::kPaused, {}};

      const bool started = todo.size() < branches.size() || rows_.count({step.name, todo.front()}) > 0;
      if (step.when && !started && !step.when->holds(saga_.context)) {
        for (const auto& branch : todo) {
          Transition t;
          t.step = StepWrite{step.name, branch, index, StepState::kSkipped, 0, 0, {}, {}, {}, {}, {}, {}};
          t.event = "step_skipped";
          t.event_step = step.name;
          t.event_branch = branch;
          t.event_detail = {{"condition", step.when->path}};
          co_await commit(std::move(t));
        }
        continue;
      }

      Outcome outcome;
      if (step.is_wait()) {
        outcome = co_await wait_step(index, step);
      } else {
        outcome = co_await run_branches(index, step, todo);
      }
      if (outcome.flow != Flow::kContinue) co_return outcome;
    }
    co_return Outcome{Flow::kCompleted, {}};
  }

  asio::awaitable<Outcome> wait_step(int index, const Step& step) {
    const Wait& wait = *step.wait;
    auto row_it = rows_.find({step.name, ""});
    const StepRecord* row = row_it == rows_.end() ? nullptr : &row_it->second;
    const auto now = db_now();
    StepWrite waiting{step.name, "", index, StepState::kWaiting, 0, 0, {}, {}, {}, {}, {}, {}};

    if (wait.duration) {
      if (!row) {
        waiting.wake_in = *wait.duration;
        // Arguments are built before co_await: GCC 12 cannot keep a braced
        // initializer list alive across a suspension point.
        nlohmann::json detail = {{"duration", format_duration(*wait.duration)}};
        co_return co_await suspend(waiting, "timer_started", *wait.duration, std::move(detail));
      }
      if (row->wake_at && *row->wake_at <= now) {
        co_await finish_wait(index, step, "timer_fired", nlohmann::json::object(), nlohmann::json::object(),
                             std::nullopt);
        co_return Outcome{};
      }
      co_return co_await suspend(std::nullopt, "", until(now, row->wake_at.value_or(now)));
    }

    // A signal wait.
    auto signal =
        std::find_if(signals_.begin(), signals_.end(), [&](const SignalRecord& s) { return s.name == *wait.signal; });
    if (signal != signals_.end()) {
      const SignalRecord received = *signal;
      signals_.erase(signal);
      nlohmann::json output = {{"signal", received.name}, {"payload", received.payload}};
      nlohmann::json context_updates = {{received.name, received.payload}};
      co_await finish_wait(index, step, "signal_consumed", std::move(output), std::move(context_updates), received.id);
      co_return Outcome{};
    }
    if (!row) {
      waiting.wake_in = wait.signal_timeout;
      nlohmann::json detail = {{"signal", *wait.signal}};
      if (wait.signal_timeout) detail["timeout"] = format_duration(*wait.signal_timeout);
      co_return co_await suspend(waiting, "signal_wait_started", wait.signal_timeout, detail);
    }
    if (wait.signal_timeout && row->wake_at && *row->wake_at <= now) {
      if (held_) co_return Outcome{Flow::kInterrupted, {}};
      const std::string reason =
          "signal_timeout: no '" + *wait.signal + "' signal within " + format_duration(*wait.signal_timeout);
      Transition t;
      t.step = StepWrite{step.name, "", index, StepState::kFailed, 0, 0, {}, reason, {}, {}, {}, {}};
      t.event = "step_failed";
      t.event_step = step.name;
      t.event_detail = {{"code", "signal_timeout"}};
      co_await commit(std::move(t));
      co_return Outcome{Flow::kFailed, "step " + step.name + " failed: " + reason};
    }
    std::optional<Millis> wake_in;
    if (wait.signal_timeout && row->wake_at) wake_in = until(now, *row->wake_at);
    co_return co_await suspend(std::nullopt, "", wake_in);
  }

  // Runs the not-yet-completed branches of a step concurrently and waits for
  // all of them, so that compensation never races a branch still in flight.
  asio::awaitable<Outcome> run_branches(int index, const Step& step, const std::vector<std::string>& branches) {
    if (branches.size() == 1) co_return co_await attempts(index, step, branches.front(), kForward);

    struct Join {
      explicit Join(asio::io_context& io, std::size_t n) : done(io), results(n) {}
      IoEvent done;  // set when every branch has ended
      std::vector<Outcome> results;
      std::exception_ptr error;
      std::size_t remaining = 0;
    };
    auto join = std::make_shared<Join>(rt_.io, branches.size());
    join->remaining = branches.size();
    for (std::size_t i = 0; i < branches.size(); ++i) {
      asio::co_spawn(rt_.io, attempts(index, step, branches[i], kForward),
                     [join, i](std::exception_ptr e, Outcome outcome) {
                       if (e && !join->error) join->error = e;
                       join->results[i] = std::move(outcome);
                       if (--join->remaining == 0) join->done.set();
                     });
    }
    co_await join->done.wait();
    if (join->error) std::rethrow_exception(join->error);
    for (const Outcome& o : join->results) {
      if (o.flow == Flow::kFailed) co_return o;
    }
    for (const Outcome& o : join->results) {
      if (o.flow != Flow::kContinue) co_return o;
    }
    co_return Outcome{};
  }

  ActionCall make_call(const Step& step, const std::string& branch, int attempt, bool compensating,
                       Clock::time_point deadline) const {
    ActionCall call;
    call.saga_id = saga_.id;
    call.saga_name = def_->name;
    call.step = step.name;
    call.branch = branch;
    call.idempotency_key = saga_.id + "/" + step.name + "/" + branch;
    call.attempt = attempt;
    call.compensating = compensating;
    call.input = saga_.step_inputs.contains(step.name) ? saga_.step_inputs[step.name] : step.input;
    call.saga_input = saga_.input;
    call.context = saga_.context;
    if (compensating) {
      if (auto row = rows_.find({step.name, branch}); row != rows_.end()) call.step_output = row->second.output;
    }
    call.deadline = deadline;
    call.executor = rt_.io.get_executor();
    call.blocking_executor = rt_.action_pool.get_executor();
    return call;
  }

  // Runs the action until it completes or `timeout` passes. If it is still
  // running after `slow_after`, awaits `on_slow` (which records its start)
  // and goes on waiting.
  asio::awaitable<ActionResult> invoke_async(const Action& action, const ActionCall& call, Millis timeout,
                                             std::optional<Millis> slow_after,
                                             const std::function<asio::awaitable<void>()>& on_slow) {
    struct Pending {
      explicit Pending(asio::io_context& io) : timer(io) {}
      asio::steady_timer timer;
      std::optional<ActionResult> result;
    };
    auto pending = std::make_shared<Pending>(rt_.io);
    const auto began = std::chrono::steady_clock::now();
    const auto deadline = began + timeout;
    const bool may_be_slow = slow_after && *slow_after < timeout;
    const auto first_stop = may_be_slow ? began + *slow_after : deadline;
    asio::io_context& io = rt_.io;
    Completion done = [pending, &io](ActionResult result) {
      asio::post(io, [pending, result = std::move(result)]() mutable {
        if (pending->result) return;  // too late: already timed out, or a second call
        pending->result = std::move(result);
        pending->timer.cancel();
      });
    };
    try {
      action.run_async(call, std::move(done));
    } catch (const std::exception& e) {
      co_return ActionResult::failure("exception", e.what());
    }
    // An action still running after kParkAfter waits on its service, not on
    // the database: the saga leaves the engine's commit pipeline until it
    // ends (EngineOptions::pipeline_per_batch). A quick one never parks.
    std::optional<ParkedSaga> parked;
    boost::system::error_code ec;
    pending->timer.expires_at(std::min(began + kParkAfter, first_stop));
    co_await pending->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!pending->result && std::chrono::steady_clock::now() < first_stop) {
      parked.emplace(rt_);
      pending->timer.expires_at(first_stop);
      co_await pending->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!pending->result && may_be_slow) {
      co_await on_slow();  // the action may complete meanwhile: its result is kept
      if (!pending->result) {
        pending->timer.expires_at(deadline);
        co_await pending->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    }
    if (!pending->result) {
      pending->result = ActionResult::failure("timeout", "attempt abandoned after " + format_duration(timeout));
    }
    co_return *pending->result;
  }

  // Attempts one branch of a step (or its compensation) until it succeeds,
  // fails for good, or the process stops.
  asio::awaitable<Outcome> attempts(int index, const Step& step, const std::string& branch, AttemptMode mode) {
    const std::string& action_name = mode.compensating ? step.compensate : step.action;
    const RetryPolicy& policy = mode.compensating ? step.compensate_retry : step.retry;
    const Action* action = rt_.actions.find(action_name);
    const std::string label = step_label(step.name, branch);
    auto counter = [&] {
      auto it = rows_.find({step.name, branch});
      if (it == rows_.end()) return 0;
      return mode.compensating ? it->second.compensation_attempts : it->second.attempts;
    };
    auto write = [&](StepState state) {
      StepWrite w{step.name, branch, index, state, 0, 0, {}, {}, {}, {}, {}, {}};
      return w;
    };
    auto event = [&](Transition& t, const char* kind, nlohmann::json detail) {
      t.event = kind;
      t.event_step = step.name;
      t.event_branch = branch;
      t.event_detail = std::move(detail);
    };

    for (;;) {
      if (rt_.stopping) co_return Outcome{Flow::kInterrupted, {}};
      // A cancel stops forward retries; compensation always runs to its end.
      if (!mode.compensating && cancel_requested_) co_return Outcome{Flow::kCancelled, {}};
      // A pause holds a retrying step too; compensation is never paused half-way.
      if (!mode.compensating && pause_requested_) co_return Outcome{Flow::kPaused, {}};
      const int attempt = counter() + 1;
      if (!mode.compensating && past_deadline()) {
        Transition t;
        t.step = write(mode.failed);
        t.step->error = "deadline_exceeded";
        event(t, mode.failed_event, {{"code", "deadline_exceeded"}});
        co_await commit(std::move(t));
        co_return Outcome{Flow::kFailed, "step " + label + " failed: the saga deadline passed"};
      }
      Millis timeout = step.timeout;
      if (!mode.compensating && saga_.deadline_at) timeout = std::min(timeout, until(db_now(), *saga_.deadline_at));
      Transition start;
      start.step = write(mode.running);
      (mode.compensating ? start.step->add_compensation_attempts : start.step->add_attempts) = 1;
      start.step->attempt_timeout = timeout;
      start.step->max_attempts = policy.max_attempts;
      event(start, mode.started_event,
            {{"attempt", attempt}, {"max_attempts", policy.max_attempts}, {"worker", rt_.options.owner}});
      // The start is committed first, or (EngineOptions::attempt_record_delay)
      // with the outcome when that comes soon enough: a transactional action
      // takes effect only with its outcome's commit, and an idempotent one may
      // run again after a crash.
      const bool defer_start = !mode.compensating && action != nullptr &&
                               (action->run_in_transaction || step.idempotent) &&
                               rt_.options.attempt_record_delay > Millis(0);
      bool start_recorded = false;
      std::function<asio::awaitable<void>()> record_start = [&]() -> asio::awaitable<void> {
        co_await commit(start);
        start_recorded = true;
      };
      if (!defer_start) co_await record_start();
      const auto attempt_began = std::chrono::steady_clock::now();
      auto with_start = [&](Transition t) {
        if (start_recorded) return t;
        t.step->began_at = db_time_of(attempt_began);
        t.step->add_attempts += start.step->add_attempts;
        t.step->add_compensation_attempts += start.step->add_compensation_attempts;
        t.step->max_attempts = start.step->max_attempts;
        // One event for the attempt, its outcome's, saying what the start's
        // would have (the attempt, its limit, the worker): a step's quick
        // attempt writes one history row, not two.
        for (const auto& [key, value] : start.event_detail.items()) t.event_detail.emplace(key, value);
        return t;
      };
      const ActionCall call = make_call(step, branch, attempt, mode.compensating, Clock::now() + timeout);
      auto report = [&](bool ok, bool will_retry) {
        if (!rt_.options.events.attempt_finished) return;
        rt_.options.events.attempt_finished(
            {def_->name, action_name, mode.compensating, ok, will_retry,
             std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - attempt_began)});
      };
      Transition success;
      success.step = write(mode.succeeded);
      success.step->error = "";
      event(success, mode.succeeded_event, {{"attempt", attempt}});
      ActionResult result;
      if (action == nullptr) {
        result = ActionResult::failure("unknown_action", "action '" + action_name + "' is not registered", false);
      } else if (action->run_in_transaction) {
        InTransaction in_tx = [&](pqxx::work& tx) { return action->run_in_transaction(call, tx); };
        result = (co_await commit(with_start(success), in_tx, timeout)).action;
        if (result.ok) {
          report(true, false);
          co_return Outcome{};
        }
      } else {
        result = co_await invoke_async(*action, call, timeout,
                                       defer_start ? std::optional(rt_.options.attempt_record_delay) : std::nullopt,
                                       record_start);
        if (result.ok) {
          success.step->output = result.output;
          success.event_detail.update(result.detail);
          if (!mode.compensating) success.context_updates = result.context_updates;
          // Forward's last step done leaves nothing between it and the
          // saga's completion: one commit records both.
          const bool ends_saga =
              !mode.compensating && index + 1 == static_cast<int>(def_->steps.size()) && step.for_each.empty();
          if (ends_saga) {
            co_await finish(completion_with(with_start(std::move(success))));
            report(true, false);
            co_return Outcome{Flow::kFinished, {}};
          }
          co_await commit(with_start(std::move(success)));
          report(true, false);
          co_return Outcome{};
        }
      }

      const ActionError& error = result.error;
      const bool final = !error.retryable || !policy.should_retry(error.code, attempt);
      report(false, !final);
      log(final ? LogLevel::kWarn : LogLevel::kInfo,
          std::string(mode.compensating ? "compensation" : "step") + " attempt failed" +
              (final ? " for good: " : ", will retry: ") + error.code + ": " + error.message,
          {saga_.id, saga_.workspace_id, step.name, branch, attempt});
      if (final && !mode.compensating && step.optional) {
        Transition t;
        t.step = write(StepState::kSkipped);
        t.step->error = error.code + ": " + error.message;
        event(t, "step_abandoned",
              {{"attempt", attempt}, {"code", error.code}, {"message", error.message}, {"optional", true}});
        co_await commit(with_start(std::move(t)));
        co_return Outcome{};
      }
      // The next retry's time is stored, for operators to see. A service's
      // Retry-After replaces the backoff, up to the policy's longest delay.
      Millis delay = final ? Millis(0) : retry_delay(policy, attempt + 1, rt_.rng);
      if (!final && error.retry_after) delay = std::min(*error.retry_after, policy.max);
      Transition t;
      t.step = write(final ? mode.failed : mode.retrying);
      t.step->error = error.code + ": " + error.message;
      if (!final) t.step->wake_in = delay;
      event(t, final ? mode.failed_event : mode.retry_event,
            {{"attempt", attempt},
             {"max_attempts", policy.max_attempts},
             {"code", error.code},
             {"message", error.message},
             {"retryable", error.retryable}});
      t.event_detail.update(result.detail);
      if (!final && error.retry_after) t.event_detail["retry_after_ms"] = error.retry_after->count();
      co_await commit(with_start(std::move(t)));
      if (final) {
        co_return Outcome{Flow::kFailed, (mode.compensating ? "compensation of step " : "step ") + label +
                                             " failed after " + std::to_string(attempt) + " attempt(s): " + error.code +
                                             ": " + error.message};
      }
      if (!co_await rt_.sleep(delay)) co_return Outcome{Flow::kInterrupted, {}};
    }
  }

  // --- compensation -------------------------------------------------------
  // An attempt of an external action that was in flight when its process died
  // may have taken effect: it is compensated too (compensations are
  // idempotent and tolerate nothing to undo). A transactional action's effect
  // commits only with its step, so a `running` row of one did nothing.
  bool in_doubt(const Step& step, const StepRecord& row) const {
    if (row.state != StepState::kRunning) return false;
    const Action* action = rt_.actions.find(step.action);
    return action == nullptr || !action->run_in_transaction;
  }

  asio::awaitable<Outcome> compensate() {
    std::vector<const StepRecord*> todo;
    for (const auto& [key, row] : rows_) {
      const Step* step = def_->find_step(row.step);
      if (!step || step->compensate.empty()) continue;
      if (row.step_index < saga_.compensate_from) continue;  // an operator's cancel from a later step
      if (row.state == StepState::kCompleted || row.state == StepState::kCompensating || in_doubt(*step, row)) {
        todo.push_back(&row);
      }
    }
    // Undo in reverse order of completion (branches of a for_each included).
    std::sort(todo.begin(), todo.end(), [](const StepRecord* a, const StepRecord* b) {
      if (a->step_index != b->step_index) return a->step_index > b->step_index;
      return a->completed_seq > b->completed_seq;
    });
    std::vector<RowKey> keys;
    for (const StepRecord* row : todo) keys.push_back({row->step, row->branch});
    for (const auto& [step_name, branch] : keys) {
      const Step& step = *def_->find_step(step_name);
      const int index = rows_.at({step_name, branch}).step_index;
      Outcome outcome = co_await attempts(index, step, branch, kCompensation);
      if (outcome.flow != Flow::kContinue) co_return outcome;
    }
    co_return Outcome{};
  }

  Runtime& rt_;
  Claim claim_;
  SagaRecord saga_;
  std::vector<SignalRecord> signals_;  // delivered, not yet consumed
  std::shared_ptr<const SagaDefinition> def_;
  std::map<RowKey, StepRecord> rows_;
  Clock::time_point db_now_at_load_;
  std::chrono::steady_clock::time_point loaded_at_;
  // This run began by holding the saga until its wake time, on what it read
  // before: a signal or a cancel may have come meanwhile. It decides no
  // timeout (a deadline, a signal's) on that: it lets the saga go, to be
  // claimed again at once and read afresh.
  const bool held_;
  bool cancel_requested_;
  bool pause_requested_;
  std::int64_t signals_seen_ = 0;
  // The saga's start, while it waits to be recorded with the next commit.
  std::optional<Transition> deferred_start_;
  // When this run last set the saga's progress time (Transition::progress_recent).
  std::optional<std::chrono::steady_clock::time_point> progress_set_at_;
  std::int64_t local_completion_seq_ = 1LL << 62;  // orders steps completed in this run after loaded ones
};

// Reads and parses a stored definition version.
asio::awaitable<std::shared_ptr<const SagaDefinition>> read_definition(Runtime& rt, const std::string& hash) {
  const std::optional<std::string> source = co_await rt.on_pool([&] { return rt.store.definition_source(hash); });
  if (!source) throw std::runtime_error("definition version " + hash + " is not stored");
  LoadResult loaded = load_definition(*source, "stored definition " + hash,
                                      [&](const std::string& name) { return rt.actions.contains(name); });
  if (!loaded.definition) {
    throw std::runtime_error("stored definition " + hash + " no longer loads: " + loaded.errors.front().to_string());
  }
  auto def = std::make_shared<const SagaDefinition>(std::move(*loaded.definition));
  if (rt.options.events.definition_loaded) rt.options.events.definition_loaded(def->name);
  co_return def;
}

// The definition version a saga started on, parsed once per process. A claim
// leases up to 64 sagas at once, all new to this process after a start or a
// new version: they wait for the first one's read instead of each reading and
// parsing the same source (measured: 64 reads of one version for one claim).
// A failed read is not kept: each saga waiting for it fails with its error
// and is retried later (EngineOptions::error_backoff), reading again.
asio::awaitable<std::shared_ptr<const SagaDefinition>> definition_for(Runtime& rt, const std::string& hash) {
  if (auto it = rt.definitions.find(hash); it != rt.definitions.end()) co_return it->second;
  std::shared_ptr<Runtime::DefinitionLoad> load;
  if (auto it = rt.definitions_loading.find(hash); it != rt.definitions_loading.end()) {
    load = it->second;
    co_await load->done.wait();
  } else {
    load = std::make_shared<Runtime::DefinitionLoad>(rt.io);
    rt.definitions_loading.emplace(hash, load);
    try {
      load->definition = co_await read_definition(rt, hash);
      rt.definitions.emplace(hash, load->definition);
    } catch (...) {
      load->error = std::current_exception();
    }
    rt.definitions_loading.erase(hash);
    load->done.set();
  }
  if (load->error) std::rethrow_exception(load->error);
  co_return load->definition;
}

// When a saga claimed ahead of its wake time (EngineOptions::claim_ahead) is
// due, on this process's clock; nullopt if it was due when claimed. A
// millisecond late: both times come from the database rounded to the
// millisecond, and so the database's clock, and the run's reckoning of it,
// are past the wake time when the hold ends.
std::optional<std::chrono::steady_clock::time_point> held_until(const SagaSnapshot& snapshot) {
  const auto& wake_at = snapshot.saga.wake_at;
  if (!wake_at || *wake_at <= snapshot.db_now) return std::nullopt;
  return steady_time_of(*wake_at, snapshot.db_now, snapshot.read_at) + Millis(1);
}

}  // namespace

asio::awaitable<void> drive_saga(Runtime& rt, ClaimedSaga claimed) {
  Claim claim = std::move(claimed.claim);
  SagaSnapshot snapshot = std::move(claimed.snapshot);
  if (rt.options.events.claimed && snapshot.saga.wake_at) {
    rt.options.events.claimed(
        std::max(Millis(0), std::chrono::duration_cast<Millis>(snapshot.db_now - *snapshot.saga.wake_at)),
        claim.takeover);
  }
  auto def = co_await definition_for(rt, snapshot.saga.definition_hash);
  const auto hold = held_until(snapshot);
  // Stopped meanwhile: the lease goes with the engine's others, the wake time kept.
  if (hold && !co_await rt.sleep_until(*hold)) co_return;
  SagaRun run(rt, std::move(claim), std::move(snapshot), std::move(def), hold.has_value());
  co_await run.run();
}

}  // namespace wsflow::detail
