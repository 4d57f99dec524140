#include "adapters/provisioner/environment_provisioner.h"

#include <optional>
#include <pqxx/pqxx>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "adapters/postgres/connection_pool.h"
#include "engine/duration.h"

namespace wsflow {
namespace {

class PgProvisioner final : public EnvironmentProvisioner {
 public:
  PgProvisioner(const std::string& dsn, int connections) : pool_(dsn, connections) {}

  EnvironmentNames provision(const std::string& workspace_id, const std::string& environment) override {
    const EnvironmentNames names = environment_names(workspace_id, environment);
    auto conn = pool_.acquire();
    pqxx::work tx(*conn);
    // Names are validated identifiers; quote_name keeps them so.
    const std::string role = tx.quote_name(names.role);
    tx.exec("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = " + tx.quote(names.role) +
            ") THEN CREATE ROLE " + role + " NOLOGIN; END IF; END $$");
    tx.exec("CREATE SCHEMA IF NOT EXISTS " + tx.quote_name(names.schema) + " AUTHORIZATION " + role);
    tx.commit();
    return names;
  }

  void deprovision(const std::string& workspace_id, const std::string& environment) override {
    const EnvironmentNames names = environment_names(workspace_id, environment);
    auto conn = pool_.acquire();
    pqxx::work tx(*conn);
    tx.exec("DROP SCHEMA IF EXISTS " + tx.quote_name(names.schema) + " CASCADE");
    for (const std::string& role : {names.role, keeper_of(names)}) {
      if (role_exists(tx, role)) tx.exec("DROP OWNED BY " + tx.quote_name(role));
      tx.exec("DROP ROLE IF EXISTS " + tx.quote_name(role));
    }
    tx.commit();
  }

  void freeze(const std::string& workspace_id, const std::string& environment) override {
    const EnvironmentNames names = environment_names(workspace_id, environment);
    auto conn = pool_.acquire();
    pqxx::work tx(*conn);
    const std::string role = tx.quote_name(names.role);
    const std::string keeper = tx.quote_name(keeper_of(names));
    const std::string schema = tx.quote_name(names.schema);
    tx.exec("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = " + tx.quote(keeper_of(names)) +
            ") THEN CREATE ROLE " + keeper + " NOLOGIN; END IF; END $$");
    if (role_exists(tx, names.role)) tx.exec("REASSIGN OWNED BY " + role + " TO " + keeper);
    tx.exec("GRANT USAGE ON SCHEMA " + schema + " TO " + role);
    tx.exec("GRANT SELECT ON ALL TABLES IN SCHEMA " + schema + " TO " + role);
    tx.exec("GRANT SELECT ON ALL SEQUENCES IN SCHEMA " + schema + " TO " + role);
    tx.commit();
  }

  void unfreeze(const std::string& workspace_id, const std::string& environment) override {
    const EnvironmentNames names = environment_names(workspace_id, environment);
    auto conn = pool_.acquire();
    pqxx::work tx(*conn);
    // Ownership changes rewrite the privileges: the role is the owner again,
    // with all an owner's rights, and nothing of the keeper is left.
    if (role_exists(tx, keeper_of(names))) {
      tx.exec("REASSIGN OWNED BY " + tx.quote_name(keeper_of(names)) + " TO " + tx.quote_name(names.role));
    }
    tx.commit();
  }

 private:
  static std::string keeper_of(const EnvironmentNames& names) { return names.role + "_frozen"; }
  static bool role_exists(pqxx::work& tx, const std::string& role) {
    return !tx.exec_params("SELECT 1 FROM pg_roles WHERE rolname = $1", role).empty();
  }

  pg::ConnectionPool pool_;
};

struct Fault {
  std::string operation;
  std::string environment;
  bool hang = false;
  std::optional<std::chrono::milliseconds> hang_for;  // default: the double's
};

class FaultyProvisioner final : public EnvironmentProvisioner {
 public:
  FaultyProvisioner(std::unique_ptr<EnvironmentProvisioner> inner, std::vector<Fault> faults,
                    std::chrono::milliseconds hang_for)
      : inner_(std::move(inner)), faults_(std::move(faults)), hang_for_(hang_for) {}

  EnvironmentNames provision(const std::string& workspace_id, const std::string& environment) override {
    inject("provision", environment);
    return inner_->provision(workspace_id, environment);
  }
  void deprovision(const std::string& workspace_id, const std::string& environment) override {
    inject("deprovision", environment);
    inner_->deprovision(workspace_id, environment);
  }
  void freeze(const std::string& workspace_id, const std::string& environment) override {
    inject("freeze", environment);
    inner_->freeze(workspace_id, environment);
  }
  void unfreeze(const std::string& workspace_id, const std::string& environment) override {
    inject("unfreeze", environment);
    inner_->unfreeze(workspace_id, environment);
  }

 private:
  void inject(const std::string& operation, const std::string& environment) const {
    for (const Fault& f : faults_) {
      if (f.operation != operation || f.environment != environment) continue;
      if (f.hang) std::this_thread::sleep_for(f.hang_for.value_or(hang_for_));
      throw std::runtime_error("injected fault: " + operation + " of " + environment + (f.hang ? " hung" : " failed"));
    }
  }

  std::unique_ptr<EnvironmentProvisioner> inner_;
  std::vector<Fault> faults_;
  std::chrono::milliseconds hang_for_;
};

}  // namespace

EnvironmentNames environment_names(const std::string& workspace_id, const std::string& environment) {
  static const std::regex kUuid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
  static const std::regex kEnv("[a-z][a-z0-9]{0,15}");
  if (!std::regex_match(workspace_id, kUuid)) throw std::invalid_argument("workspace id must be a lower-case UUID");
  if (!std::regex_match(environment, kEnv))
    throw std::invalid_argument("invalid environment name '" + environment + "'");
  std::string hex;
  for (char ch : workspace_id) {
    if (ch != '-') hex.push_back(ch);
  }
  const std::string name = "ws_" + hex + "_" + environment;
  return {name, name};
}

std::unique_ptr<EnvironmentProvisioner> make_pg_provisioner(const std::string& dsn, int connections) {
  return std::make_unique<PgProvisioner>(dsn, connections);
}

std::unique_ptr<EnvironmentProvisioner> make_faulty_provisioner(std::unique_ptr<EnvironmentProvisioner> inner,
                                                                const std::string& spec,
                                                                std::chrono::milliseconds hang_for) {
  std::vector<Fault> faults;
  std::stringstream items(spec);
  std::string item;
  while (std::getline(items, item, ',')) {
    if (item.empty()) continue;
    std::vector<std::string> parts;
    std::stringstream fields(item);
    for (std::string part; std::getline(fields, part, ':');) parts.push_back(part);
    static const std::set<std::string> kOperations = {"provision", "deprovision", "freeze", "unfreeze"};
    const bool hang = parts.size() >= 3 && parts[2] == "hang";
    std::optional<Millis> hang_for;
    if (parts.size() == 4 && hang) hang_for = try_parse_duration(parts[3]);
    if (parts.size() < 3 || parts.size() > 4 || !kOperations.count(parts[0]) || (parts[2] != "fail" && !hang) ||
        (parts.size() == 4 && !hang_for)) {
      throw std::invalid_argument("fault '" + item +
                                  "': expected operation:environment:fail or operation:environment:hang[:duration], "
                                  "operation one of provision, deprovision, freeze, unfreeze");
    }
    faults.push_back({parts[0], parts[1], hang, hang_for});
  }
  return std::make_unique<FaultyProvisioner>(std::move(inner), std::move(faults), hang_for);
}

}  // namespace wsflow
