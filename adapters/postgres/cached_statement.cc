#include "adapters/postgres/cached_statement.h"

#include "engine/sha256.h"

namespace wsflow::pg {

std::string cached_statement_name(const std::string& sql) { return "c_" + sha256_hex(sql).substr(0, 32); }

}  // namespace wsflow::pg
