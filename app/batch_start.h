#pragma once
// `wsflow start SAGA --batch FILE`: many sagas of one definition from a JSON
// Lines file, one saga per line:
//   {"input": {...}, "workspace_id": "<uuid>", "idempotency_key": "..."}
// (every field optional; blank lines are skipped).
//
// Every line is read and checked before anything starts: a bad line throws
// std::runtime_error naming FILE:LINE and the field, and nothing is started.
// Sagas are then started kBatchStartChunk per transaction; a database error
// part-way leaves the earlier chunks started, which is why lines should carry
// idempotency keys: a rerun of the same file then starts only the rest.

#include <iosfwd>
#include <string>
#include <vector>

#include "engine/definition.h"
#include "engine/store.h"

namespace wsflow::app {

inline constexpr std::size_t kBatchStartChunk = 5000;

// The requests of `path`, checked against `definition`.
std::vector<StartRequest> read_batch_file(const std::string& path, const SagaDefinition& definition);

struct BatchStartSummary {
  std::size_t created = 0;
  std::size_t existing = 0;  // an earlier start had the line's key
  double seconds = 0;
};

// Starts `requests`, printing each saga's id to `ids` (one per line, in the
// file's order).
BatchStartSummary start_batch(Store& store, const SagaDefinition& definition, const std::vector<StartRequest>& requests,
                              std::ostream& ids);

}  // namespace wsflow::app
