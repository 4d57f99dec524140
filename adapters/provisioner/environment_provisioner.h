#pragma once
// Environments (dev, staging, prod) of a workspace as real isolated
// PostgreSQL objects, each owned by its own role, in a target cluster: by the
// workspace's tenancy model a schema in the target database, or a database
// of its own (CONNECT revoked from PUBLIC, granted to its role).
//
// Freezing an environment makes its data read-only for its role: every
// object the role owns passes to a keeper role (`<role>_frozen`, NOLOGIN) and
// the role keeps USAGE and SELECT only, so INSERT, UPDATE, DELETE, TRUNCATE
// and DDL fail for it (and for any login role acting as it). Unfreezing hands
// everything back, which restores the owner's full rights.
//
// Every operation is idempotent: calling it again after success (or after a
// crash half-way, each being one transaction) is safe. All block; all throw
// std::runtime_error (or a pqxx error, or an ActionFailure with its own code
// and retryable flag) on failure.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace wsflow {

enum class Tenancy {
  kSchema,    // a schema per environment in a shared database
  kDatabase,  // a database per environment
};
// "schema" / "database"; throws std::invalid_argument for anything else.
Tenancy tenancy_from_string(const std::string& name);

struct EnvironmentNames {
  std::string schema;    // ws_<32 hex of the workspace UUID>_<env>
  std::string role;      // same as the schema
  std::string database;  // same again: the environment's database under Tenancy::kDatabase
};
// Throws std::invalid_argument for a malformed workspace id or environment name.
EnvironmentNames environment_names(const std::string& workspace_id, const std::string& environment);

// One operation on one environment.
struct EnvironmentRequest {
  std::string workspace_id;
  std::string environment;
  Tenancy tenancy = Tenancy::kSchema;
  std::string idempotency_key;  // the calling step's; what the HTTP provisioner sends
};

// Two implementations: Postgres objects (below) and a service of the user's
// own (http_provisioner.h); plus a test double that fails on demand.
class EnvironmentProvisioner {
 public:
  virtual ~EnvironmentProvisioner() = default;
  // "postgres" or "http", stored on the environment's row.
  virtual const char* kind() const = 0;
  // Returns what the environment's row shows about it (null: nothing more
  // than its names).
  virtual nlohmann::json provision(const EnvironmentRequest& request) = 0;
  virtual void deprovision(const EnvironmentRequest& request) = 0;
  virtual void freeze(const EnvironmentRequest& request) = 0;
  virtual void unfreeze(const EnvironmentRequest& request) = 0;
};

// The real one: a NOLOGIN role and a schema in the database at `dsn`, or a
// database in the cluster `dsn` points to.
std::unique_ptr<EnvironmentProvisioner> make_pg_provisioner(const std::string& dsn, int connections);

// A test double that forwards to `inner` except for the chosen environments,
// where the chosen operation fails or hangs. Spec: comma-separated
// `operation:environment:mode`, e.g. "provision:prod:fail" or
// "deprovision:dev:hang" (a hang blocks for `hang_for`, then fails;
// "provision:prod:hang:2s" for two seconds; "provision:prod:hang_once:20s"
// hangs only the first call, as a fault an operator works around). Operations: provision,
// deprovision, freeze, unfreeze. Throws std::invalid_argument for a
// malformed spec.
std::unique_ptr<EnvironmentProvisioner> make_faulty_provisioner(std::unique_ptr<EnvironmentProvisioner> inner,
                                                                const std::string& spec,
                                                                std::chrono::milliseconds hang_for);

}  // namespace wsflow
