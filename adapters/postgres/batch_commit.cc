// PgStore::commit_batch: the transitions of many sagas in one statement of
// transition_writes.h, outside a transaction, so one round trip whatever the
// batch's size.

#include <pqxx/pqxx>

#include "adapters/postgres/pg_store.h"
#include "adapters/postgres/transition_writes.h"

namespace wsflow::pg {

std::vector<Store::BatchOutcome> PgStore::commit_batch(const std::vector<BatchItem>& items) {
  std::vector<BatchOutcome> outcomes(items.size());
  // In the order given, so a saga's items (for_each branches) keep their
  // commit order; the statement locks the sagas' rows in saga-id order itself.
  std::vector<TransitionWrite> writes;
  for (const BatchItem& item : items) writes.push_back({&item.claim, &item.transition});
  try {
    auto conn = pool_.acquire();
    pqxx::nontransaction statement(*conn);
    const std::map<std::string, CommitResult> fenced = commit_transitions(statement, writes);
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto it = fenced.find(items[i].claim.saga_id);
      if (it == fenced.end()) {
        outcomes[i].error = std::make_exception_ptr(LeaseLost(items[i].claim.saga_id));
      } else {
        outcomes[i].result = it->second;
      }
    }
  } catch (...) {
    const std::exception_ptr error = std::current_exception();
    for (auto& outcome : outcomes) outcome.error = error;
  }
  return outcomes;
}

}  // namespace wsflow::pg
