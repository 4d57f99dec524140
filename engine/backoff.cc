#include "engine/backoff.h"

#include <algorithm>

namespace wsflow {

Millis base_delay(const RetryPolicy& policy, int next_attempt) {
  const std::int64_t cap = std::max<std::int64_t>(policy.max.count(), 0);
  std::int64_t delay = std::min<std::int64_t>(policy.initial.count(), cap);
  if (policy.backoff == Backoff::kExponential) {
    for (int i = 2; i < next_attempt && delay < cap; ++i) delay = std::min(delay * 2, cap);
  }
  return Millis(delay);
}

Millis retry_delay(const RetryPolicy& policy, int next_attempt, std::mt19937_64& rng) {
  const std::int64_t base = base_delay(policy, next_attempt).count();
  switch (policy.jitter) {
    case Jitter::kNone:
      return Millis(base);
    case Jitter::kFull:
      return Millis(std::uniform_int_distribution<std::int64_t>(0, base)(rng));
    case Jitter::kEqual:
      return Millis(base / 2 + std::uniform_int_distribution<std::int64_t>(0, base - base / 2)(rng));
  }
  return Millis(base);
}

}  // namespace wsflow
