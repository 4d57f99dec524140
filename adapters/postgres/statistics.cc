// PgStore::refresh_statistics: ANALYZE for the store's busiest tables when
// Postgres's statistics of them are far behind their contents.
//
// Each pooled connection plans its statements once (prefer_key_lookups), with
// the statistics of the moment. Statistics taken while a table was empty (a
// new database analyzed right after its migration) make every lookup look
// free, and a plan chosen then scans the whole table on every commit until
// autovacuum analyzes it again (a minute or more: measured, a fifth of the
// throughput meanwhile). An ANALYZE replaces the statistics and makes every
// connection plan its statements afresh.

#include <pqxx/pqxx>

#include "adapters/postgres/pg_store.h"

namespace wsflow::pg {
namespace {

// Tables with at least this many live rows, whose statistics count fewer
// than a quarter of them (or none), are analyzed; a small table's plans
// are cheap whatever they are.
const char* kStale =
    "SELECT c.relname FROM pg_class c JOIN pg_stat_user_tables t ON t.relid = c.oid "
    "WHERE t.schemaname = 'wsflow' AND c.relname IN ('sagas', 'saga_steps', 'saga_events', 'signals') "
    "AND t.n_live_tup >= 1000 AND c.reltuples < t.n_live_tup / 4 ORDER BY c.relname";

}  // namespace

std::vector<std::string> PgStore::refresh_statistics() {
  auto conn = pool_.acquire();
  pqxx::nontransaction session(*conn);
  std::vector<std::string> analyzed;
  for (const auto& row : session.exec(kStale)) analyzed.push_back(row[0].as<std::string>());
  // The names come from the fixed list above.
  for (const std::string& table : analyzed) session.exec("ANALYZE wsflow." + table);
  return analyzed;
}

}  // namespace wsflow::pg
