#include "adapters/provisioner/environment_provisioner.h"

#include <pqxx/pqxx>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "adapters/postgres/connection_pool.h"

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
    tx.exec("DROP ROLE IF EXISTS " + tx.quote_name(names.role));
    tx.commit();
  }

 private:
  pg::ConnectionPool pool_;
};

struct Fault {
  std::string operation;
  std::string environment;
  bool hang = false;
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

 private:
  void inject(const std::string& operation, const std::string& environment) const {
    for (const Fault& f : faults_) {
      if (f.operation != operation || f.environment != environment) continue;
      if (f.hang) std::this_thread::sleep_for(hang_for_);
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
    const auto first = item.find(':');
    const auto second = item.find(':', first == std::string::npos ? first : first + 1);
    if (first == std::string::npos || second == std::string::npos) {
      throw std::invalid_argument("fault '" + item + "': expected operation:environment:mode");
    }
    Fault f{item.substr(0, first), item.substr(first + 1, second - first - 1), false};
    const std::string mode = item.substr(second + 1);
    if ((f.operation != "provision" && f.operation != "deprovision") || (mode != "fail" && mode != "hang")) {
      throw std::invalid_argument("fault '" + item + "': operation is provision|deprovision, mode is fail|hang");
    }
    f.hang = mode == "hang";
    faults.push_back(std::move(f));
  }
  return std::make_unique<FaultyProvisioner>(std::move(inner), std::move(faults), hang_for);
}

}  // namespace wsflow
