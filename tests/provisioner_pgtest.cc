// The environment provisioner against a real Postgres, and its failing double.

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "adapters/provisioner/environment_provisioner.h"
#include "tests/support/test_cluster.h"

namespace wsflow {
namespace {

const std::string kWorkspace = "0b8d3c1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e";

long long scalar(const std::string& dsn, const std::string& sql) {
  pqxx::connection conn(dsn);
  pqxx::read_transaction tx(conn);
  return tx.exec(sql)[0][0].as<long long>();
}

TEST(Provisioner, CreatesAnIsolatedSchemaAndRoleIdempotentlyAndDropsThem) {
  const std::string dsn = testing::fresh_unmigrated_database();
  auto provisioner = make_pg_provisioner(dsn, 2);
  const EnvironmentNames names = provisioner->provision(kWorkspace, "prod");
  EXPECT_EQ(names.schema, "ws_0b8d3c1e5f6a4b7c8d9e0f1a2b3c4d5e_prod");
  EXPECT_NO_THROW(provisioner->provision(kWorkspace, "prod"));  // again: no error, nothing more
  EXPECT_EQ(scalar(dsn,
                   "SELECT count(*) FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner "
                   "WHERE n.nspname = '" +
                       names.schema + "' AND r.rolname = '" + names.role + "'"),
            1);
  provisioner->deprovision(kWorkspace, "prod");
  EXPECT_NO_THROW(provisioner->deprovision(kWorkspace, "prod"));
  EXPECT_EQ(scalar(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname = '" + names.schema + "'"), 0);
  EXPECT_EQ(scalar(dsn, "SELECT count(*) FROM pg_roles WHERE rolname = '" + names.role + "'"), 0);
}

TEST(Provisioner, RefusesNamesThatCouldEscapeQuoting) {
  EXPECT_THROW(environment_names("not-a-uuid", "dev"), std::invalid_argument);
  EXPECT_THROW(environment_names(kWorkspace, "dev\"; DROP"), std::invalid_argument);
  EXPECT_THROW(environment_names(kWorkspace, ""), std::invalid_argument);
}

TEST(FaultyProvisioner, FailsOrHangsOnlyAtTheChosenEnvironment) {
  const std::string dsn = testing::fresh_unmigrated_database();
  auto faulty = make_faulty_provisioner(make_pg_provisioner(dsn, 2), "provision:prod:fail,deprovision:dev:hang",
                                        std::chrono::milliseconds(300));
  EXPECT_NO_THROW(faulty->provision(kWorkspace, "dev"));
  EXPECT_THROW(faulty->provision(kWorkspace, "prod"), std::runtime_error);
  EXPECT_EQ(scalar(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'ws_%_prod'"), 0);
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_THROW(faulty->deprovision(kWorkspace, "dev"), std::runtime_error);
  EXPECT_GE(std::chrono::steady_clock::now() - begin, std::chrono::milliseconds(300));
  EXPECT_THROW(make_faulty_provisioner(make_pg_provisioner(dsn, 1), "provision:prod", std::chrono::seconds(1)),
               std::invalid_argument);
}

}  // namespace
}  // namespace wsflow
