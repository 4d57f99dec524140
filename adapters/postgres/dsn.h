#pragma once
// libpq connection strings.

#include <string>

namespace wsflow::pg {

// `dsn` (key=value pairs or a postgresql:// URI) pointed at `database`
// instead, as key=value pairs. Throws std::invalid_argument naming libpq's
// complaint when `dsn` does not parse.
std::string dsn_with_database(const std::string& dsn, const std::string& database);

}  // namespace wsflow::pg
