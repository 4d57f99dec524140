#include "engine/store.h"

namespace wsflow {
namespace {

constexpr StepState kAllStepStates[] = {
    StepState::kRunning,      StepState::kRetrying,    StepState::kWaiting,
    StepState::kCompleted,    StepState::kSkipped,     StepState::kFailed,
    StepState::kCompensating, StepState::kCompensated, StepState::kCompensationFailed};

}  // namespace

const char* to_string(StepState state) {
  switch (state) {
    case StepState::kRunning:
      return "running";
    case StepState::kRetrying:
      return "retrying";
    case StepState::kWaiting:
      return "waiting";
    case StepState::kCompleted:
      return "completed";
    case StepState::kSkipped:
      return "skipped";
    case StepState::kFailed:
      return "failed";
    case StepState::kCompensating:
      return "compensating";
    case StepState::kCompensated:
      return "compensated";
    case StepState::kCompensationFailed:
      return "compensation_failed";
  }
  return "?";
}

std::optional<StepState> step_state_from_string(const std::string& name) {
  for (StepState s : kAllStepStates) {
    if (name == to_string(s)) return s;
  }
  return std::nullopt;
}

}  // namespace wsflow
