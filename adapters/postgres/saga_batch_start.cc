// PgStore::start_sagas: many sagas of one definition in one transaction and
// three statements (the key lookup, one INSERT of the sagas and their
// `created` events, one NOTIFY), for operators' bulk starts.

#include <pqxx/pqxx>

#include <map>

#include "adapters/postgres/pg_store.h"

namespace wsflow::pg {
namespace {

// Sagas and their `created` events in one statement; ids are drawn first so
// that each request's id comes back in the requests' order. Ids follow
// creation time (migration 21 in migrations.cc).
const char* kInsertSagas =
    "WITH r AS MATERIALIZED (SELECT wsflow.time_ordered_uuid() AS id, ord, input::jsonb AS input, "
    "NULLIF(key, '') AS key, NULLIF(ws, '')::uuid AS ws, delay::bigint AS delay "
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(input, key, ws, delay, ord)), "
    "s AS (INSERT INTO wsflow.sagas (id, definition, version, definition_hash, workspace_id, state, input, context, "
    "idempotency_key, deadline_at, wake_at, priority) "
    "SELECT id, $5, $6, $7, ws, 'pending', input, input, key, "
    "CASE WHEN $8::bigint < 0 THEN NULL ELSE now() + $8::bigint * interval '1 ms' END, "
    "now() + delay * interval '1 ms', $9::smallint FROM r), "
    "e AS (INSERT INTO wsflow.saga_events (saga_id, kind, detail) SELECT id, 'created', $10::jsonb FROM r) "
    "SELECT id::text FROM r ORDER BY ord";

}  // namespace

std::vector<StartResult> insert_sagas(pqxx::work& tx, const SagaDefinition& definition,
                                      const std::vector<StartRequest>& requests) {
  for (std::size_t i = 0; i < requests.size(); ++i) {
    check_start(definition, requests[i].input, requests[i].options, "sagas[" + std::to_string(i) + "].");
  }
  std::vector<StartResult> results(requests.size());
  // Keys already used, by this batch or before.
  std::vector<std::string> keys;
  for (const StartRequest& request : requests) {
    if (!request.options.idempotency_key.empty()) keys.push_back(request.options.idempotency_key);
  }
  std::map<std::string, std::string> saga_of_key;
  if (!keys.empty()) {
    for (const auto& row : tx.exec_params("SELECT idempotency_key, id::text FROM wsflow.sagas "
                                          "WHERE idempotency_key = ANY($1::text[])",
                                          text_array(keys))) {
      saga_of_key.emplace(row[0].as<std::string>(), row[1].as<std::string>());
    }
  }
  std::vector<std::string> inputs, new_keys, workspaces, delays;
  std::vector<std::size_t> inserted_index;  // request index of each inserted row
  std::map<std::string, std::size_t> first_in_batch;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const std::string& key = requests[i].options.idempotency_key;
    if (!key.empty()) {
      if (auto it = saga_of_key.find(key); it != saga_of_key.end()) {
        results[i] = {it->second, false};
        continue;
      }
      if (!first_in_batch.emplace(key, i).second) continue;  // filled in below, from the first
    }
    inputs.push_back(requests[i].input.dump());
    new_keys.push_back(key);
    workspaces.push_back(requests[i].options.workspace_id);
    delays.push_back(std::to_string(requests[i].options.delay.count()));
    inserted_index.push_back(i);
  }
  if (!inserted_index.empty()) {
    store_definition(tx, definition);
    const auto ids = tx.exec_params(kInsertSagas, text_array(inputs), text_array(new_keys), text_array(workspaces),
                                    text_array(delays), definition.name, definition.version, definition.hash,
                                    deadline_ms(definition), static_cast<int>(definition.priority),
                                    created_event_detail(definition).dump());
    for (std::size_t row = 0; row < inserted_index.size(); ++row) {
      results[inserted_index[row]] = {ids[static_cast<int>(row)][0].as<std::string>(), true};
    }
    notify_runnable(tx, results[inserted_index.front()].saga_id);
  }
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const std::string& key = requests[i].options.idempotency_key;
    if (results[i].saga_id.empty()) results[i] = {results[first_in_batch.at(key)].saga_id, false};
  }
  return results;
}

std::vector<StartResult> PgStore::start_sagas(const SagaDefinition& definition,
                                              const std::vector<StartRequest>& requests) {
  if (requests.empty()) return {};
  for (int attempt = 1;; ++attempt) {
    auto conn = pool_.acquire();
    try {
      pqxx::work tx(*conn);
      std::vector<StartResult> results = insert_sagas(tx, definition, requests);
      tx.commit();
      return results;
    } catch (const pqxx::unique_violation&) {
      if (attempt == 2) throw;  // a racing start with one of the keys committed; the retry returns it
    }
  }
}

}  // namespace wsflow::pg
