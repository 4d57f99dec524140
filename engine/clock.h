#pragma once
// Where the engine's notion of "now" comes from. Production uses the system
// clock; tests hand in a ManualClock and move it forward instead of sleeping.
//
// Durable times (due times, expiry times) are computed by the database, so
// that every process agrees on them. A store applies a clock's offset from
// the system clock to the database's now() (see offset_from_system), which is
// how a moved test clock reaches the database too.

#include <atomic>
#include <chrono>

#include "engine/duration.h"

namespace wsflow {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::system_clock::now(); }
};

// A clock that moves only when told to: it runs with the system clock from
// the offset it was last given. Thread-safe.
class ManualClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::system_clock::now() + offset(); }
  void advance(Millis by) { offset_ms_ += by.count(); }
  // Makes now() read `at` at this instant.
  void set(TimePoint at) {
    offset_ms_ = std::chrono::duration_cast<Millis>(at - std::chrono::system_clock::now()).count();
  }
  Millis offset() const { return Millis(offset_ms_.load()); }

 private:
  std::atomic<long long> offset_ms_{0};
};

// How far `clock` is ahead of the system clock (negative: behind), rounded to
// milliseconds; zero for the system clock.
inline Millis offset_from_system(const Clock& clock) {
  return std::chrono::duration_cast<Millis>(clock.now() - std::chrono::system_clock::now());
}

}  // namespace wsflow
