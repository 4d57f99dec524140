#pragma once
// The saga lifecycle (DESIGN §3), enforced by a Boost.MSM state machine:
//
//   pending -> running <-> waiting -> completed
//   running|waiting -> compensating -> compensated | failed
//   pending|running|waiting --cancel--> compensating -> cancelled
//   failed --retry--> compensating           (an operator retries compensation)
//   pending|running|waiting --pause--> paused --unpause--> running
//   paused --cancel--> compensating
//   failed --resolve--> compensating         (a failed compensation was done by hand)
//   running|waiting|paused|compensating --retry_step--> itself   (fresh attempts)
//   pending|running|waiting|paused --skip_step--> itself         (step done by hand)
//   completed|compensated|failed|cancelled --rerun--> itself     (a new saga reruns it)
//
// The executor and operator commands ask `next_state` for every change; an
// event the current state does not allow throws IllegalTransition, so an
// illegal command is refused rather than ignored.
//
// This header is C++17-clean: the MSM translation unit is built as C++17
// because Boost 1.74's MSM does not compile as C++20.

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace wsflow {

enum class SagaState {
  kPending,
  kRunning,
  kWaiting,
  kCompensating,
  kCompleted,
  kCompensated,
  kFailed,
  kCancelled,
  kPaused,  // held by an operator between steps; never claimed; not terminal
};

enum class SagaEvent {
  kStart,               // pending -> running
  kSuspend,             // running -> waiting (timer, signal)
  kResume,              // waiting -> running
  kComplete,            // running -> completed
  kFail,                // running|waiting -> compensating
  kCancel,              // pending|running|waiting|paused -> compensating
  kCompensationDone,    // compensating -> compensated
  kCancellationDone,    // compensating -> cancelled
  kCompensationFailed,  // compensating -> failed
  kRetry,               // failed -> compensating
  kPause,               // pending|running|waiting -> paused
  kUnpause,             // paused -> running
  kResolve,             // failed -> compensating, the failed compensation marked done by hand
  kRetryStep,           // the step in flight gets a fresh attempt budget (no state change)
  kSkipStep,            // a step is marked done with an operator's output (no state change)
  kRerun,               // a finished saga is run again as a new saga (no state change)
};

class IllegalTransition : public std::logic_error {
 public:
  IllegalTransition(SagaState from, SagaEvent event);
  SagaState from() const { return from_; }
  SagaEvent event() const { return event_; }

 private:
  SagaState from_;
  SagaEvent event_;
};

// The state after `event` in `from`. Throws IllegalTransition when refused.
SagaState next_state(SagaState from, SagaEvent event);

// The events `from` accepts, in enum order.
std::vector<SagaEvent> allowed_events(SagaState from);

bool is_terminal(SagaState state);

const char* to_string(SagaState state);
const char* to_string(SagaEvent event);
// Inverse of to_string(SagaState); nullopt for an unknown name.
std::optional<SagaState> saga_state_from_string(const std::string& name);

}  // namespace wsflow
