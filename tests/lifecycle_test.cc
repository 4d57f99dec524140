#include "engine/lifecycle.h"

#include <gtest/gtest.h>

namespace wsflow {
namespace {

using S = SagaState;
using E = SagaEvent;

TEST(Lifecycle, HappyPathAndWaiting) {
  EXPECT_EQ(next_state(S::kPending, E::kStart), S::kRunning);
  EXPECT_EQ(next_state(S::kRunning, E::kSuspend), S::kWaiting);
  EXPECT_EQ(next_state(S::kWaiting, E::kResume), S::kRunning);
  EXPECT_EQ(next_state(S::kRunning, E::kComplete), S::kCompleted);
}

TEST(Lifecycle, FailureCompensates) {
  EXPECT_EQ(next_state(S::kRunning, E::kFail), S::kCompensating);
  EXPECT_EQ(next_state(S::kWaiting, E::kFail), S::kCompensating);
  EXPECT_EQ(next_state(S::kCompensating, E::kCompensationDone), S::kCompensated);
  EXPECT_EQ(next_state(S::kCompensating, E::kCompensationFailed), S::kFailed);
  EXPECT_EQ(next_state(S::kFailed, E::kRetry), S::kCompensating);
}

TEST(Lifecycle, CancelGoesThroughCompensation) {
  for (S from : {S::kPending, S::kRunning, S::kWaiting}) {
    EXPECT_EQ(next_state(from, E::kCancel), S::kCompensating) << to_string(from);
  }
  EXPECT_EQ(next_state(S::kCompensating, E::kCancellationDone), S::kCancelled);
}

TEST(Lifecycle, IllegalCommandsAreRefusedWithTheAllowedEvents) {
  try {
    next_state(S::kCompleted, E::kRetry);
    FAIL() << "retrying a completed saga must be refused";
  } catch (const IllegalTransition& e) {
    EXPECT_EQ(e.from(), S::kCompleted);
    EXPECT_EQ(e.event(), E::kRetry);
    EXPECT_NE(std::string(e.what()).find("'completed'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("allowed: rerun)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(next_state(S::kPending, E::kComplete), IllegalTransition);
  EXPECT_THROW(next_state(S::kCancelled, E::kCancel), IllegalTransition);
  EXPECT_THROW(next_state(S::kCompensated, E::kStart), IllegalTransition);
  EXPECT_THROW(next_state(S::kWaiting, E::kComplete), IllegalTransition);
}

TEST(Lifecycle, TerminalStatesAllowOnlyARerunButFailedAlsoRetryAndResolve) {
  for (S s : {S::kCompleted, S::kCompensated, S::kCancelled}) {
    EXPECT_TRUE(is_terminal(s));
    EXPECT_EQ(allowed_events(s), std::vector<E>{E::kRerun}) << to_string(s);
    EXPECT_EQ(next_state(s, E::kRerun), s);
  }
  EXPECT_EQ(allowed_events(S::kFailed), (std::vector<E>{E::kRetry, E::kResolve, E::kRerun}));
  EXPECT_EQ(next_state(S::kFailed, E::kResolve), S::kCompensating);
  EXPECT_EQ(allowed_events(S::kPending), (std::vector<E>{E::kStart, E::kCancel, E::kPause, E::kSkipStep}));
}

TEST(Lifecycle, OperatorsPauseBetweenStepsAndResume) {
  for (S from : {S::kPending, S::kRunning, S::kWaiting}) {
    EXPECT_EQ(next_state(from, E::kPause), S::kPaused) << to_string(from);
  }
  EXPECT_FALSE(is_terminal(S::kPaused));
  EXPECT_EQ(next_state(S::kPaused, E::kUnpause), S::kRunning);
  EXPECT_EQ(next_state(S::kPaused, E::kCancel), S::kCompensating);
  EXPECT_EQ(next_state(S::kPaused, E::kSkipStep), S::kPaused);
  // A paused saga is not running: it neither starts, completes nor suspends.
  EXPECT_THROW(next_state(S::kPaused, E::kComplete), IllegalTransition);
  EXPECT_THROW(next_state(S::kPaused, E::kPause), IllegalTransition);
  // Compensation is never paused half-way, and nothing finished is paused.
  EXPECT_THROW(next_state(S::kCompensating, E::kPause), IllegalTransition);
  EXPECT_THROW(next_state(S::kCompleted, E::kPause), IllegalTransition);
  EXPECT_THROW(next_state(S::kRunning, E::kUnpause), IllegalTransition);
}

TEST(Lifecycle, StepRepairsKeepTheSagaWhereItIs) {
  for (S s : {S::kRunning, S::kWaiting, S::kPaused, S::kCompensating}) {
    EXPECT_EQ(next_state(s, E::kRetryStep), s) << to_string(s);
  }
  EXPECT_THROW(next_state(S::kCompleted, E::kRetryStep), IllegalTransition);
  EXPECT_THROW(next_state(S::kCompensating, E::kSkipStep), IllegalTransition);
  EXPECT_THROW(next_state(S::kRunning, E::kRerun), IllegalTransition);
}

TEST(Lifecycle, StateNamesRoundTrip) {
  for (S s : {S::kPending, S::kRunning, S::kWaiting, S::kCompensating, S::kCompleted, S::kCompensated, S::kFailed,
              S::kCancelled, S::kPaused}) {
    EXPECT_EQ(saga_state_from_string(to_string(s)), s);
  }
  EXPECT_FALSE(saga_state_from_string("exploded").has_value());
}

}  // namespace
}  // namespace wsflow
