#pragma once
// Internal to the Postgres adapter: the rows a committed transition writes,
// for PgStore::commit (one transition) and PgStore::commit_batch (many), in
// one implementation. Whatever the number of transitions, they cost one
// statement (one round trip), plus one per signal they consume (few do):
//   - one write of every step row (updated if it exists, else inserted);
//   - one update per saga row: context, state, error, progress and the
//     lease's release merged, so one new row version per saga;
//   - one insert of every event.
// The caller has fenced every saga (holds its row lock under a live lease).

#include <pqxx/pqxx>

#include <string>
#include <vector>

#include "engine/store.h"

namespace wsflow::pg {

struct TransitionWrite {
  const std::string* saga_id = nullptr;
  const Transition* transition = nullptr;
  // The in-transaction action's result, if one ran: its output is the step's
  // and its context updates are merged after the transition's own.
  const ActionResult* action = nullptr;
};

// Prepares the statements of write_transitions on a pooled connection.
void prepare_transition_statements(pqxx::connection& conn);

// Every row the store's statements touch is found by its key (or a small
// index range). A multi-row statement joins arrays against the tables, and a
// plan that scans a table, made while it was small (a new database) and
// cached for good as it grows, would make each batch slower than the last
// (planning each batch afresh instead cost a fifth of the database's time).
// Run once on each of the store's connections: its sessions never plan a
// table scan or a hash or merge join where a key lookup will do, and plan
// each prepared statement once (a custom plan per execution, which Postgres
// keeps choosing when it knows an array's length but not in general, would
// cost more than the statement).
void prefer_key_lookups(pqxx::connection& conn);

// Writes `writes` in the caller's transaction. The for_each branches of one
// saga may be among them: their saga-row changes are merged in the order
// given. Throws what libpqxx throws; the caller's transaction is then void.
void write_transitions(pqxx::work& tx, const std::vector<TransitionWrite>& writes);

}  // namespace wsflow::pg
