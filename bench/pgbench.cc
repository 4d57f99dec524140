#include "bench/pgbench.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <stdexcept>

#include "adapters/postgres/embedded_cluster.h"
#include "bench/bench_support.h"

namespace wsflow::bench {
namespace {

std::string pgbench_path() {
  const auto candidate = pg::server_bin_dir() / "pgbench";
  if (!std::filesystem::exists(candidate)) throw std::runtime_error("pgbench not found (install postgresql-contrib)");
  return candidate.string();
}

std::string quoted(const std::string& dsn) { return "'" + dsn + "'"; }

double read_figure(const std::string& out, const char* pattern) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(pattern))) {
    throw std::runtime_error(std::string("cannot read '") + pattern + "' in pgbench's output:\n" + out);
  }
  return std::stod(m[1]);
}

}  // namespace

void pgbench_init(const std::string& dsn, int scale) {
  capture(pgbench_path() + " -i -q -s " + std::to_string(scale) + " " + quoted(dsn));
}

PgbenchResult pgbench_run(const std::string& dsn, int clients, int seconds) {
  const std::string out =
      capture(pgbench_path() + " -n -N -M prepared -c " + std::to_string(clients) + " -j " +
              std::to_string(std::min(clients, 2)) + " -T " + std::to_string(seconds) + " " + quoted(dsn));
  return {clients, read_figure(out, R"(tps = ([0-9.]+))"), read_figure(out, R"(latency average = ([0-9.]+) ms)")};
}

}  // namespace wsflow::bench
