#include "adapters/provisioner/environment_provisioner.h"

#include <atomic>
#include <optional>
#include <pqxx/pqxx>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "adapters/postgres/connection_pool.h"
#include "adapters/postgres/dsn.h"
#include "engine/duration.h"

namespace wsflow {
namespace {

class PgProvisioner final : public EnvironmentProvisioner {
 public:
  PgProvisioner(const std::string& dsn, int connections) : dsn_(dsn), pool_(dsn, connections) {}

  const char* kind() const override { return "postgres"; }

  nlohmann::json provision(const EnvironmentRequest& request) override {
    const EnvironmentNames names = environment_names(request.workspace_id, request.environment);
    auto conn = pool_.acquire();
    if (request.tenancy == Tenancy::kSchema) {
      pqxx::work tx(*conn);
      create_role(tx, names.role);
      tx.exec("CREATE SCHEMA IF NOT EXISTS " + tx.quote_name(names.schema) + " AUTHORIZATION " +
              tx.quote_name(names.role));
      tx.commit();
      return nullptr;
    }
    // CREATE DATABASE runs outside a transaction; each statement is idempotent.
    pqxx::nontransaction tx(*conn);
    create_role(tx, names.role);
    if (tx.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", names.database).empty()) {
      tx.exec("CREATE DATABASE " + tx.quote_name(names.database) + " OWNER " + tx.quote_name(names.role));
    }
    tx.exec("REVOKE CONNECT, TEMPORARY ON DATABASE " + tx.quote_name(names.database) + " FROM PUBLIC");
    tx.exec("GRANT CONNECT ON DATABASE " + tx.quote_name(names.database) + " TO " + tx.quote_name(names.role));
    return nullptr;
  }

  void deprovision(const EnvironmentRequest& request) override {
    const EnvironmentNames names = environment_names(request.workspace_id, request.environment);
    auto conn = pool_.acquire();
    if (request.tenancy == Tenancy::kDatabase) {
      pqxx::nontransaction drop(*conn);
      drop.exec("DROP DATABASE IF EXISTS " + drop.quote_name(names.database) + " WITH (FORCE)");
    }
    pqxx::work tx(*conn);
    tx.exec("DROP SCHEMA IF EXISTS " + tx.quote_name(names.schema) + " CASCADE");
    for (const std::string& role : {names.role, keeper_of(names)}) {
      if (role_exists(tx, role)) tx.exec("DROP OWNED BY " + tx.quote_name(role));
      tx.exec("DROP ROLE IF EXISTS " + tx.quote_name(role));
    }
    tx.commit();
  }

  void freeze(const EnvironmentRequest& request) override {
    const EnvironmentNames names = environment_names(request.workspace_id, request.environment);
    const Tenancy tenancy = request.tenancy;
    on_environment(names, tenancy, [&](pqxx::work& tx) {
      const std::string role = tx.quote_name(names.role);
      create_role(tx, keeper_of(names));
      if (role_exists(tx, names.role)) tx.exec("REASSIGN OWNED BY " + role + " TO " + tx.quote_name(keeper_of(names)));
      if (tenancy == Tenancy::kDatabase) {
        tx.exec("GRANT CONNECT ON DATABASE " + tx.quote_name(names.database) + " TO " + role);
      }
      // Read access to every schema the data is in (a database may hold several).
      for (const auto& row :
           tx.exec_params("SELECT nspname FROM pg_namespace WHERE nspname = $1 OR ($2 AND nspname NOT LIKE 'pg\\_%' "
                          "AND nspname <> 'information_schema')",
                          names.schema, tenancy == Tenancy::kDatabase)) {
        const std::string schema = tx.quote_name(row[0].as<std::string>());
        tx.exec("GRANT USAGE ON SCHEMA " + schema + " TO " + role);
        tx.exec("GRANT SELECT ON ALL TABLES IN SCHEMA " + schema + " TO " + role);
        tx.exec("GRANT SELECT ON ALL SEQUENCES IN SCHEMA " + schema + " TO " + role);
      }
    });
  }

  void unfreeze(const EnvironmentRequest& request) override {
    const EnvironmentNames names = environment_names(request.workspace_id, request.environment);
    on_environment(names, request.tenancy, [&](pqxx::work& tx) {
      // Ownership changes rewrite the privileges: the role is the owner again,
      // with all an owner's rights, and nothing of the keeper is left.
      if (role_exists(tx, keeper_of(names))) {
        tx.exec("REASSIGN OWNED BY " + tx.quote_name(keeper_of(names)) + " TO " + tx.quote_name(names.role));
      }
    });
  }

 private:
  static std::string keeper_of(const EnvironmentNames& names) { return names.role + "_frozen"; }
  static bool role_exists(pqxx::transaction_base& tx, const std::string& role) {
    return !tx.exec_params("SELECT 1 FROM pg_roles WHERE rolname = $1", role).empty();
  }
  static void create_role(pqxx::transaction_base& tx, const std::string& role) {
    tx.exec("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = " + tx.quote(role) +
            ") THEN CREATE ROLE " + tx.quote_name(role) + " NOLOGIN; END IF; END $$");
  }

  // Runs `f` in one transaction in the database that holds the environment's data.
  template <class F>
  void on_environment(const EnvironmentNames& names, Tenancy tenancy, F f) {
    if (tenancy == Tenancy::kSchema) {
      auto conn = pool_.acquire();
      pqxx::work tx(*conn);
      f(tx);
      tx.commit();
      return;
    }
    pqxx::connection conn(pg::dsn_with_database(dsn_, names.database));
    pqxx::work tx(conn);
    f(tx);
    tx.commit();
  }

  std::string dsn_;
  pg::ConnectionPool pool_;
};

struct Fault {
  std::string operation;
  std::string environment;
  bool hang = false;
  std::optional<std::chrono::milliseconds> hang_for;  // default: the double's
  bool once = false;                                  // only the first matching call (hang_once)
  std::shared_ptr<std::atomic<bool>> spent = std::make_shared<std::atomic<bool>>(false);
};

class FaultyProvisioner final : public EnvironmentProvisioner {
 public:
  FaultyProvisioner(std::unique_ptr<EnvironmentProvisioner> inner, std::vector<Fault> faults,
                    std::chrono::milliseconds hang_for)
      : inner_(std::move(inner)), faults_(std::move(faults)), hang_for_(hang_for) {}

  const char* kind() const override { return inner_->kind(); }
  nlohmann::json provision(const EnvironmentRequest& request) override {
    inject("provision", request.environment);
    return inner_->provision(request);
  }
  void deprovision(const EnvironmentRequest& request) override {
    inject("deprovision", request.environment);
    inner_->deprovision(request);
  }
  void freeze(const EnvironmentRequest& request) override {
    inject("freeze", request.environment);
    inner_->freeze(request);
  }
  void unfreeze(const EnvironmentRequest& request) override {
    inject("unfreeze", request.environment);
    inner_->unfreeze(request);
  }

 private:
  void inject(const std::string& operation, const std::string& environment) const {
    for (const Fault& f : faults_) {
      if (f.operation != operation || f.environment != environment) continue;
      if (f.once && f.spent->exchange(true)) continue;
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
  return {name, name, name};
}

Tenancy tenancy_from_string(const std::string& name) {
  if (name == "schema") return Tenancy::kSchema;
  if (name == "database") return Tenancy::kDatabase;
  throw std::invalid_argument("unknown tenancy model '" + name + "' (schema or database)");
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
    const bool once = parts.size() >= 3 && parts[2] == "hang_once";
    const bool hang = parts.size() >= 3 && (parts[2] == "hang" || once);
    std::optional<Millis> hang_for;
    if (parts.size() == 4 && hang) hang_for = try_parse_duration(parts[3]);
    if (parts.size() < 3 || parts.size() > 4 || !kOperations.count(parts[0]) || (parts[2] != "fail" && !hang) ||
        (parts.size() == 4 && !hang_for)) {
      throw std::invalid_argument("fault '" + item +
                                  "': expected operation:environment:fail or operation:environment:hang[:duration] "
                                  "(hang_once: only the first call), "
                                  "operation one of provision, deprovision, freeze, unfreeze");
    }
    faults.push_back({parts[0], parts[1], hang, hang_for, once});
  }
  return std::make_unique<FaultyProvisioner>(std::move(inner), std::move(faults), hang_for);
}

}  // namespace wsflow
