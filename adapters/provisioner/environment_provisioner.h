#pragma once
// Environments (dev, staging, prod) of a workspace as real isolated
// PostgreSQL schemas, each owned by its own role, in a target database.
//
// Freezing an environment makes its data read-only for its role: every
// object the role owns passes to a keeper role (`<role>_frozen`, NOLOGIN) and
// the role keeps USAGE and SELECT only, so INSERT, UPDATE, DELETE, TRUNCATE
// and DDL fail for it (and for any login role acting as it). Unfreezing hands
// everything back, which restores the owner's full rights.
//
// Every operation is idempotent: calling it again after success (or after a
// crash half-way, each being one transaction) is safe. All block; all throw
// std::runtime_error (or a pqxx error) on failure.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace wsflow {

struct EnvironmentNames {
  std::string schema;  // ws_<32 hex of the workspace UUID>_<env>
  std::string role;    // same as the schema
};
// Throws std::invalid_argument for a malformed workspace id or environment name.
EnvironmentNames environment_names(const std::string& workspace_id, const std::string& environment);

class EnvironmentProvisioner {
 public:
  virtual ~EnvironmentProvisioner() = default;
  virtual EnvironmentNames provision(const std::string& workspace_id, const std::string& environment) = 0;
  virtual void deprovision(const std::string& workspace_id, const std::string& environment) = 0;
  virtual void freeze(const std::string& workspace_id, const std::string& environment) = 0;
  virtual void unfreeze(const std::string& workspace_id, const std::string& environment) = 0;
};

// The real one: a schema and a NOLOGIN role in the database at `dsn`.
std::unique_ptr<EnvironmentProvisioner> make_pg_provisioner(const std::string& dsn, int connections);

// A test double that forwards to `inner` except for the chosen environments,
// where the chosen operation fails or hangs. Spec: comma-separated
// `operation:environment:mode`, e.g. "provision:prod:fail" or
// "deprovision:dev:hang" (a hang blocks for `hang_for`, then fails;
// "provision:prod:hang:2s" for two seconds). Operations: provision,
// deprovision, freeze, unfreeze. Throws std::invalid_argument for a
// malformed spec.
std::unique_ptr<EnvironmentProvisioner> make_faulty_provisioner(std::unique_ptr<EnvironmentProvisioner> inner,
                                                                const std::string& spec,
                                                                std::chrono::milliseconds hang_for);

}  // namespace wsflow
