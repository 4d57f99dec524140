#include "adapters/postgres/dsn.h"

#include <libpq-fe.h>

#include <memory>
#include <stdexcept>

namespace wsflow::pg {
namespace {

// A key=value value, quoted as libpq expects.
std::string quoted(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace

std::string dsn_with_database(const std::string& dsn, const std::string& database) {
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(PQconninfoParse(dsn.c_str(), &error),
                                                                       PQconninfoFree);
  if (!options) {
    const std::string reason = error ? error : "out of memory";
    PQfreemem(error);
    throw std::invalid_argument("not a libpq connection string: " + reason);
  }
  std::string out;
  for (const PQconninfoOption* o = options.get(); o->keyword; ++o) {
    if (std::string(o->keyword) == "dbname" || !o->val) continue;
    out += std::string(o->keyword) + "=" + quoted(o->val) + " ";
  }
  return out + "dbname=" + quoted(database);
}

}  // namespace wsflow::pg
