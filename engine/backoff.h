#pragma once
// Retry policy of a step or a compensation, and the delay before each retry.

#include <cstdint>
#include <random>
#include <set>
#include <string>

#include "engine/duration.h"

namespace wsflow {

enum class Backoff { kExponential, kFixed };
enum class Jitter { kNone, kFull, kEqual };

struct RetryPolicy {
  int max_attempts = 3;  // total attempts, including the first; >= 1
  Backoff backoff = Backoff::kExponential;
  Millis initial{200};
  Millis max{Millis(30'000)};
  Jitter jitter = Jitter::kFull;
  std::set<std::string> non_retryable;  // error codes that never retry

  // True when an error with `code` may be tried again after `attempts_made`.
  bool should_retry(const std::string& code, int attempts_made) const {
    return attempts_made < max_attempts && non_retryable.count(code) == 0;
  }
};

// The un-jittered delay before attempt `next_attempt` (2 is the first retry):
// initial * 2^(next_attempt-2) for exponential, initial for fixed, capped at max.
Millis base_delay(const RetryPolicy& policy, int next_attempt);

// base_delay with the policy's jitter applied: full = uniform [0, base],
// equal = base/2 + uniform [0, base/2], none = base.
Millis retry_delay(const RetryPolicy& policy, int next_attempt, std::mt19937_64& rng);

}  // namespace wsflow
