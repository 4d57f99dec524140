// The only translation unit that includes Boost.MSM (heavy templates, and
// built as C++17: see lifecycle.h).
// The transition table has more rows than mpl::vector's preprocessed limit of 20.
#define BOOST_MPL_CFG_NO_PREPROCESSED_HEADERS
#define BOOST_MPL_LIMIT_VECTOR_SIZE 40
#define BOOST_MPL_LIMIT_MAP_SIZE 40
#include <boost/msm/back/state_machine.hpp>
#include <boost/msm/front/functor_row.hpp>
#include <boost/msm/front/state_machine_def.hpp>

#include "engine/lifecycle.h"

namespace wsflow {
namespace {

namespace msmf = boost::msm::front;

struct Start {};
struct Suspend {};
struct Resume {};
struct Complete {};
struct Fail {};
struct Cancel {};
struct CompensationDone {};
struct CancellationDone {};
struct CompensationFailed {};
struct Retry {};
struct Pause {};
struct Unpause {};
struct Resolve {};
struct RetryStep {};
struct SkipStep {};
struct Rerun {};

struct LifecycleDef : msmf::state_machine_def<LifecycleDef> {
  SagaState state = SagaState::kPending;
  bool refused = false;

  template <SagaState S>
  struct Tracked : msmf::state<> {
    template <class Event, class Fsm>
    void on_entry(const Event&, Fsm& fsm) {
      fsm.state = S;
    }
  };
  struct Pending : Tracked<SagaState::kPending> {};
  struct Running : Tracked<SagaState::kRunning> {};
  struct Waiting : Tracked<SagaState::kWaiting> {};
  struct Compensating : Tracked<SagaState::kCompensating> {};
  struct Completed : Tracked<SagaState::kCompleted> {};
  struct Compensated : Tracked<SagaState::kCompensated> {};
  struct Failed : Tracked<SagaState::kFailed> {};
  struct Cancelled : Tracked<SagaState::kCancelled> {};
  struct Paused : Tracked<SagaState::kPaused> {};

  using initial_state = Pending;

  // clang-format off
  struct transition_table : boost::mpl::vector<
    msmf::Row<Pending,      Start,              Running>,
    msmf::Row<Pending,      Cancel,             Compensating>,
    msmf::Row<Running,      Suspend,            Waiting>,
    msmf::Row<Running,      Complete,           Completed>,
    msmf::Row<Running,      Fail,               Compensating>,
    msmf::Row<Running,      Cancel,             Compensating>,
    msmf::Row<Waiting,      Resume,             Running>,
    msmf::Row<Waiting,      Fail,               Compensating>,
    msmf::Row<Waiting,      Cancel,             Compensating>,
    msmf::Row<Compensating, CompensationDone,   Compensated>,
    msmf::Row<Compensating, CancellationDone,   Cancelled>,
    msmf::Row<Compensating, CompensationFailed, Failed>,
    msmf::Row<Failed,       Retry,              Compensating>,
    // Operators: hold a saga between steps, and let it go on.
    msmf::Row<Pending,      Pause,              Paused>,
    msmf::Row<Running,      Pause,              Paused>,
    msmf::Row<Waiting,      Pause,              Paused>,
    msmf::Row<Paused,       Unpause,            Running>,
    msmf::Row<Paused,       Cancel,             Compensating>,
    // Operators: a compensation that gave up is marked done by hand.
    msmf::Row<Failed,       Resolve,            Compensating>,
    // Operators: a fresh attempt budget for the step in flight, or the step
    // done by hand; the saga stays where it is.
    msmf::Row<Running,      RetryStep,          Running>,
    msmf::Row<Waiting,      RetryStep,          Waiting>,
    msmf::Row<Paused,       RetryStep,          Paused>,
    msmf::Row<Compensating, RetryStep,          Compensating>,
    msmf::Row<Pending,      SkipStep,           Pending>,
    msmf::Row<Running,      SkipStep,           Running>,
    msmf::Row<Waiting,      SkipStep,           Waiting>,
    msmf::Row<Paused,       SkipStep,           Paused>,
    // Operators: a finished saga is run again from a step, as a new saga.
    msmf::Row<Completed,    Rerun,              Completed>,
    msmf::Row<Compensated,  Rerun,              Compensated>,
    msmf::Row<Failed,       Rerun,              Failed>,
    msmf::Row<Cancelled,    Rerun,              Cancelled>
  > {};
  // clang-format on

  template <class Fsm, class Event>
  void no_transition(const Event&, Fsm&, int) {
    refused = true;
  }
};

using Lifecycle = boost::msm::back::state_machine<LifecycleDef>;

template <class Event>
void fire(Lifecycle& fsm) {
  fsm.process_event(Event{});
}

void fire(Lifecycle& fsm, SagaEvent event) {
  switch (event) {
    case SagaEvent::kStart:
      return fire<Start>(fsm);
    case SagaEvent::kSuspend:
      return fire<Suspend>(fsm);
    case SagaEvent::kResume:
      return fire<Resume>(fsm);
    case SagaEvent::kComplete:
      return fire<Complete>(fsm);
    case SagaEvent::kFail:
      return fire<Fail>(fsm);
    case SagaEvent::kCancel:
      return fire<Cancel>(fsm);
    case SagaEvent::kCompensationDone:
      return fire<CompensationDone>(fsm);
    case SagaEvent::kCancellationDone:
      return fire<CancellationDone>(fsm);
    case SagaEvent::kCompensationFailed:
      return fire<CompensationFailed>(fsm);
    case SagaEvent::kRetry:
      return fire<Retry>(fsm);
    case SagaEvent::kPause:
      return fire<Pause>(fsm);
    case SagaEvent::kUnpause:
      return fire<Unpause>(fsm);
    case SagaEvent::kResolve:
      return fire<Resolve>(fsm);
    case SagaEvent::kRetryStep:
      return fire<RetryStep>(fsm);
    case SagaEvent::kSkipStep:
      return fire<SkipStep>(fsm);
    case SagaEvent::kRerun:
      return fire<Rerun>(fsm);
  }
}

// MSM machines cannot be placed in an arbitrary state, so each persisted
// state is reached by replaying a canonical path from pending.
std::vector<SagaEvent> path_to(SagaState state) {
  using E = SagaEvent;
  switch (state) {
    case SagaState::kPending:
      return {};
    case SagaState::kRunning:
      return {E::kStart};
    case SagaState::kWaiting:
      return {E::kStart, E::kSuspend};
    case SagaState::kCompensating:
      return {E::kStart, E::kFail};
    case SagaState::kCompleted:
      return {E::kStart, E::kComplete};
    case SagaState::kCompensated:
      return {E::kStart, E::kFail, E::kCompensationDone};
    case SagaState::kFailed:
      return {E::kStart, E::kFail, E::kCompensationFailed};
    case SagaState::kCancelled:
      return {E::kCancel, E::kCancellationDone};
    case SagaState::kPaused:
      return {E::kPause};
  }
  return {};
}

std::optional<SagaState> try_next(SagaState from, SagaEvent event) {
  Lifecycle fsm;
  fsm.start();
  for (SagaEvent e : path_to(from)) fire(fsm, e);
  fire(fsm, event);
  if (fsm.refused) return std::nullopt;
  return fsm.state;
}

constexpr SagaEvent kAllEvents[] = {SagaEvent::kStart,
                                    SagaEvent::kSuspend,
                                    SagaEvent::kResume,
                                    SagaEvent::kComplete,
                                    SagaEvent::kFail,
                                    SagaEvent::kCancel,
                                    SagaEvent::kCompensationDone,
                                    SagaEvent::kCancellationDone,
                                    SagaEvent::kCompensationFailed,
                                    SagaEvent::kRetry,
                                    SagaEvent::kPause,
                                    SagaEvent::kUnpause,
                                    SagaEvent::kResolve,
                                    SagaEvent::kRetryStep,
                                    SagaEvent::kSkipStep,
                                    SagaEvent::kRerun};

constexpr SagaState kAllStates[] = {SagaState::kPending,      SagaState::kRunning,   SagaState::kWaiting,
                                    SagaState::kCompensating, SagaState::kCompleted, SagaState::kCompensated,
                                    SagaState::kFailed,       SagaState::kCancelled, SagaState::kPaused};

}  // namespace

IllegalTransition::IllegalTransition(SagaState from, SagaEvent event)
    : std::logic_error([&] {
        std::string allowed;
        for (SagaEvent e : allowed_events(from)) allowed += (allowed.empty() ? "" : ", ") + std::string(to_string(e));
        return std::string("event '") + to_string(event) + "' is not allowed in state '" + to_string(from) +
               "' (allowed: " + (allowed.empty() ? "none" : allowed) + ")";
      }()),
      from_(from),
      event_(event) {}

SagaState next_state(SagaState from, SagaEvent event) {
  if (auto to = try_next(from, event)) return *to;
  throw IllegalTransition(from, event);
}

std::vector<SagaEvent> allowed_events(SagaState from) {
  std::vector<SagaEvent> events;
  for (SagaEvent e : kAllEvents) {
    if (try_next(from, e)) events.push_back(e);
  }
  return events;
}

bool is_terminal(SagaState state) {
  return state == SagaState::kCompleted || state == SagaState::kCompensated || state == SagaState::kCancelled ||
         state == SagaState::kFailed;
}

const char* to_string(SagaState state) {
  switch (state) {
    case SagaState::kPending:
      return "pending";
    case SagaState::kRunning:
      return "running";
    case SagaState::kWaiting:
      return "waiting";
    case SagaState::kCompensating:
      return "compensating";
    case SagaState::kCompleted:
      return "completed";
    case SagaState::kCompensated:
      return "compensated";
    case SagaState::kFailed:
      return "failed";
    case SagaState::kCancelled:
      return "cancelled";
    case SagaState::kPaused:
      return "paused";
  }
  return "?";
}

const char* to_string(SagaEvent event) {
  switch (event) {
    case SagaEvent::kStart:
      return "start";
    case SagaEvent::kSuspend:
      return "suspend";
    case SagaEvent::kResume:
      return "resume";
    case SagaEvent::kComplete:
      return "complete";
    case SagaEvent::kFail:
      return "fail";
    case SagaEvent::kCancel:
      return "cancel";
    case SagaEvent::kCompensationDone:
      return "compensation_done";
    case SagaEvent::kCancellationDone:
      return "cancellation_done";
    case SagaEvent::kCompensationFailed:
      return "compensation_failed";
    case SagaEvent::kRetry:
      return "retry";
    case SagaEvent::kPause:
      return "pause";
    case SagaEvent::kUnpause:
      return "unpause";
    case SagaEvent::kResolve:
      return "resolve";
    case SagaEvent::kRetryStep:
      return "retry_step";
    case SagaEvent::kSkipStep:
      return "skip_step";
    case SagaEvent::kRerun:
      return "rerun";
  }
  return "?";
}

std::optional<SagaState> saga_state_from_string(const std::string& name) {
  for (SagaState s : kAllStates) {
    if (name == to_string(s)) return s;
  }
  return std::nullopt;
}

}  // namespace wsflow
