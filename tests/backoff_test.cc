#include "engine/backoff.h"

#include <gtest/gtest.h>

namespace wsflow {
namespace {

RetryPolicy exponential(Millis initial, Millis max, Jitter jitter = Jitter::kNone) {
  RetryPolicy p;
  p.backoff = Backoff::kExponential;
  p.initial = initial;
  p.max = max;
  p.jitter = jitter;
  return p;
}

TEST(Backoff, ExponentialDoublesFromInitialUpToMax) {
  const RetryPolicy p = exponential(Millis(100), Millis(1000));
  EXPECT_EQ(base_delay(p, 2), Millis(100));
  EXPECT_EQ(base_delay(p, 3), Millis(200));
  EXPECT_EQ(base_delay(p, 4), Millis(400));
  EXPECT_EQ(base_delay(p, 5), Millis(800));
  EXPECT_EQ(base_delay(p, 6), Millis(1000));
  EXPECT_EQ(base_delay(p, 60), Millis(1000));  // no overflow on long retry chains
}

TEST(Backoff, FixedStaysAtInitial) {
  RetryPolicy p = exponential(Millis(250), Millis(10'000));
  p.backoff = Backoff::kFixed;
  EXPECT_EQ(base_delay(p, 2), Millis(250));
  EXPECT_EQ(base_delay(p, 9), Millis(250));
}

TEST(Backoff, FullJitterStaysWithinZeroAndBase) {
  const RetryPolicy p = exponential(Millis(100), Millis(1000), Jitter::kFull);
  std::mt19937_64 rng(42);
  bool saw_below_base = false;
  for (int i = 0; i < 200; ++i) {
    const Millis d = retry_delay(p, 4, rng);
    EXPECT_GE(d, Millis(0));
    EXPECT_LE(d, Millis(400));
    saw_below_base |= d < Millis(400);
  }
  EXPECT_TRUE(saw_below_base);
}

TEST(Backoff, EqualJitterKeepsAtLeastHalf) {
  const RetryPolicy p = exponential(Millis(100), Millis(1000), Jitter::kEqual);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    const Millis d = retry_delay(p, 3, rng);
    EXPECT_GE(d, Millis(100));
    EXPECT_LE(d, Millis(200));
  }
}

TEST(Backoff, ShouldRetryRespectsAttemptsAndNonRetryableCodes) {
  RetryPolicy p;
  p.max_attempts = 3;
  p.non_retryable = {"invalid_input"};
  EXPECT_TRUE(p.should_retry("timeout", 1));
  EXPECT_TRUE(p.should_retry("timeout", 2));
  EXPECT_FALSE(p.should_retry("timeout", 3));
  EXPECT_FALSE(p.should_retry("invalid_input", 1));
}

}  // namespace
}  // namespace wsflow
