// PgStore::commit_batch: the transitions of many sagas in one transaction and
// a fixed number of statements, whatever the batch's size: one fence locking
// every row (in saga-id order, as lease renewal locks them), then the writes
// of transition_writes.h, which PgStore::commit shares.

#include <pqxx/pqxx>

#include <algorithm>
#include <map>

#include "adapters/postgres/pg_store.h"
#include "adapters/postgres/transition_writes.h"

namespace wsflow::pg {
namespace {

const char* kFenceAll =
    "SELECT s.cancel_requested, s.pause_requested, s.id::text "
    "FROM unnest($1::uuid[], $2::uuid[]) AS c(id, token) JOIN wsflow.sagas s ON s.id = c.id AND s.lease_token = "
    "c.token "
    "ORDER BY s.id FOR UPDATE OF s";

}  // namespace

void prepare_batch_statements(pqxx::connection& conn) { conn.prepare("batch_fence", kFenceAll); }

std::vector<Store::BatchOutcome> PgStore::commit_batch(const std::vector<BatchItem>& items) {
  std::vector<BatchOutcome> outcomes(items.size());
  // One transition: commit()'s statements, each a lookup by primary key,
  // are fewer and cheaper than the multi-row ones.
  if (items.size() == 1) {
    try {
      outcomes[0].result = commit(items[0].claim, items[0].transition);
    } catch (...) {
      outcomes[0].error = std::current_exception();
    }
    return outcomes;
  }
  std::vector<std::size_t> order(items.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Stable: a saga's items (for_each branches) keep their commit order.
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return items[a].claim.saga_id < items[b].claim.saga_id; });
  try {
    auto conn = pool_.acquire();
    pqxx::work tx(*conn);
    std::vector<std::string> ids, tokens;
    for (std::size_t i : order) {
      ids.push_back(items[i].claim.saga_id);
      tokens.push_back(items[i].claim.lease_token);
    }
    std::map<std::string, CommitResult> held;
    for (const auto& row : tx.exec_prepared("batch_fence", text_array(ids), text_array(tokens))) {
      held.emplace(row[2].as<std::string>(), fence_requests(row));
    }
    std::vector<TransitionWrite> fenced;
    for (std::size_t i : order) {
      auto it = held.find(items[i].claim.saga_id);
      if (it == held.end()) {
        outcomes[i].error = std::make_exception_ptr(LeaseLost(items[i].claim.saga_id));
        continue;
      }
      outcomes[i].result = it->second;
      fenced.push_back({&items[i].claim.saga_id, &items[i].transition});
    }
    write_transitions(tx, fenced);
    tx.commit();
  } catch (...) {
    const std::exception_ptr error = std::current_exception();
    for (auto& outcome : outcomes) outcome.error = error;
  }
  return outcomes;
}

}  // namespace wsflow::pg
