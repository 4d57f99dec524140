#pragma once
// The saga lifecycle (DESIGN §3), enforced by a Boost.MSM state machine:
//
//   pending -> running <-> waiting -> completed
//   running|waiting -> compensating -> compensated | failed
//   pending|running|waiting --cancel--> compensating -> cancelled
//   failed --retry--> compensating           (an operator retries compensation)
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

enum class SagaState { kPending, kRunning, kWaiting, kCompensating, kCompleted, kCompensated, kFailed, kCancelled };

enum class SagaEvent {
  kStart,               // pending -> running
  kSuspend,             // running -> waiting (timer, signal)
  kResume,              // waiting -> running
  kComplete,            // running -> completed
  kFail,                // running|waiting -> compensating
  kCancel,              // pending|running|waiting -> compensating
  kCompensationDone,    // compensating -> compensated
  kCancellationDone,    // compensating -> cancelled
  kCompensationFailed,  // compensating -> failed
  kRetry,               // failed -> compensating
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
