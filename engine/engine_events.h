#pragma once
// What an engine reports as it works, for metrics. Plain callbacks, any of
// which may be left empty; they run on the engine's event-loop thread and
// must be quick and must not throw.

#include <functional>
#include <string>

#include "engine/duration.h"
#include "engine/lifecycle.h"

namespace wsflow {

struct AttemptReport {
  std::string definition;  // saga name
  std::string action;
  bool compensating = false;
  bool ok = false;
  bool will_retry = false;  // failed, and another attempt follows
  Millis duration{0};
};

// One claim: the room it asked for (of it, the room for sagas below high
// priority) and how many sagas it leased.
struct ClaimReport {
  int room = 0;
  int room_below_high = 0;
  int found = 0;
};

struct EngineEvents {
  std::function<void(const std::string& definition)> saga_started;
  std::function<void(const std::string& definition, SagaState final_state)> saga_finished;
  std::function<void(const AttemptReport& attempt)> attempt_finished;
  // A saga was claimed `latency` after it became due; `takeover` when the
  // lease it replaced had expired (its previous engine died or hung).
  std::function<void(Millis latency, bool takeover)> claimed;
  // The engine read and parsed a stored definition version (`definition` is
  // its saga name): once per version per process, however many sagas need
  // it at once.
  std::function<void(const std::string& definition)> definition_loaded;
  // A claim ran (whether or not it found sagas); not called when it failed.
  std::function<void(const ClaimReport& claim)> claim_ran;
  // A heartbeat renewed `renewed` leases (those it did not renew had more
  // than half their length left until the next heartbeat).
  std::function<void(int renewed)> leases_renewed;
  // Something failed that should not have: driving a saga hit an unexpected
  // error (the saga is retried after EngineOptions::error_backoff), or a
  // claim, lease renewal or wake-time lookup failed. A deadlock would show
  // here. Healthy engines report none.
  std::function<void(const std::string& what)> engine_error;
};

}  // namespace wsflow
