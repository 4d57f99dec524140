#pragma once
// Statements a process runs again and again, prepared once per connection.
//
// An unnamed statement (pqxx's exec_params) is parsed, analysed and planned
// anew on every execution: on the API's and the domain's hot paths, parsing
// and planning took about a fifth of the machine's CPU (POST /v1/workspaces
// at 200/s, wsflow and Postgres on two cores). A cached
// statement is prepared on a connection the first time that connection runs
// it, under a name derived from its text, and only executed after that.
//
// Only for SQL whose text is fixed (parameters as $n): a text built from
// values (quoted names, say) would prepare a new statement on the server for
// every value.

#include <pqxx/pqxx>

#include <string>
#include <utility>

namespace wsflow::pg {

// The statement's name on every connection: a digest of its text.
std::string cached_statement_name(const std::string& sql);

// Runs `sql` with `args` in `tx` as a prepared statement, preparing it on
// the transaction's connection first if need be. Throws what libpqxx throws.
template <typename... Args>
pqxx::result exec_cached(pqxx::transaction_base& tx, const std::string& sql, Args&&... args) {
  const std::string name = cached_statement_name(sql);
  tx.conn().prepare(name, sql);  // a no-op once the connection has it
  return tx.exec_prepared(name, std::forward<Args>(args)...);
}

}  // namespace wsflow::pg
