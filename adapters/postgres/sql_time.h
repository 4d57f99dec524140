#pragma once
// Internal to the Postgres adapter: timestamps cross the wire as integer
// epoch milliseconds, in both directions.

#include <chrono>
#include <optional>

#include <pqxx/field>

// SQL: a timestamptz column or expression as epoch milliseconds (bigint).
#define WSF_MS(col) "(extract(epoch from " col ") * 1000)::bigint"
// SQL: a bigint parameter of epoch milliseconds as a timestamptz.
#define WSF_TS(param) "('epoch'::timestamptz + " param "::bigint * interval '1 ms')"

// SQL: how stale sagas.progressed_at (the clock of the no-progress stuck
// reasons) may get before a finished step moves it: a saga's quick steps
// then leave its row, and its indexes, alone.
#define WSF_PROGRESS_GRAIN "interval '1 second'"

namespace wsflow::pg {

inline std::optional<std::chrono::system_clock::time_point> time_of(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(f.as<long long>()));
}

inline long long epoch_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace wsflow::pg
