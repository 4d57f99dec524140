#pragma once
// Internal to the Postgres adapter: a commit of transitions, for
// PgStore::commit (one transition) and PgStore::commit_batch (many), in one
// implementation and one statement (one round trip) whatever their number:
//   - the fence: every saga's row locked, in saga-id order, if its lease is
//     still held; nothing is written for the others;
//   - the signals they consumed;
//   - one write of every step row (updated if it exists, else inserted: in
//     the single-value form, by one insert that updates on conflict);
//   - one update per saga row: context, state, error, progress and the
//     lease's release merged, so one new row version per saga;
//   - one insert of every event.
// Run outside a transaction (pqxx::nontransaction), the statement is its own
// transaction: all of it commits, durably, or none of it. It is prepared in
// two forms of the same text: rows as arrays (any number), and rows as single
// values, which a commit of one saga with at most one row of each kind takes
// because Postgres runs it cheaper. The single-value form comes also without
// the signals' part, the saga row's part or both, for a commit with nothing
// for them (a step of a saga whose progress time is recent, say): Postgres
// then does not start those parts at all. It takes a single event as single
// values too; more than one come as arrays.

#include <pqxx/pqxx>

#include <map>
#include <string>
#include <vector>

#include "engine/store.h"

namespace wsflow::pg {

struct TransitionWrite {
  const Claim* claim = nullptr;
  const Transition* transition = nullptr;
  // The in-transaction action's result, if one ran: its output is the step's
  // and its context updates are merged after the transition's own.
  const ActionResult* action = nullptr;
};

// Prepares the statement of commit_transitions on a pooled connection.
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

// Fences and writes `writes` in `tx`, and returns the sagas whose leases were
// held (by saga id, with what operators asked of them); a saga missing from
// it lost its lease and nothing of it was written. The for_each branches of
// one saga may be among the writes: their saga-row changes are merged in the
// order given. Throws what libpqxx throws; a transaction is then void, and
// outside one nothing was written.
std::map<std::string, CommitResult> commit_transitions(pqxx::transaction_base& tx,
                                                       const std::vector<TransitionWrite>& writes);

}  // namespace wsflow::pg
