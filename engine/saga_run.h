#pragma once
// Internal to the engine: drives one claimed saga from its last commit until
// it finishes, must wait (timer, signal) or the process stops, committing
// every step and saga transition (with its event) before the next action
// starts; the saga's start and a quick idempotent attempt's start are the
// exceptions, written with the commit after them
// (EngineOptions::attempt_record_delay). The claim is given up in the last
// commit, except when the lease was lost, in which case nothing more is
// written.

#include <boost/asio/awaitable.hpp>

#include "engine/runtime.h"

namespace wsflow::detail {

// Throws LeaseLost when another process took the saga over; other exceptions
// (database down, a bug) propagate with the saga still leased.
boost::asio::awaitable<void> drive_saga(Runtime& runtime, ClaimedSaga claimed);

}  // namespace wsflow::detail
