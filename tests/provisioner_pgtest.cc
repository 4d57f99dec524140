// The environment provisioner against a real Postgres, and its failing double.

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "adapters/postgres/dsn.h"
#include "adapters/provisioner/environment_provisioner.h"
#include "tests/support/test_cluster.h"

namespace wsflow {
namespace {

const std::string kWorkspace = "0b8d3c1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e";

using testing::scalar;

TEST(Provisioner, CreatesAnIsolatedSchemaAndRoleIdempotentlyAndDropsThem) {
  const std::string dsn = testing::fresh_unmigrated_database();
  auto provisioner = make_pg_provisioner(dsn, 2);
  EXPECT_TRUE(provisioner->provision({kWorkspace, "prod", Tenancy::kSchema, "key"}).is_null());  // nothing more to show
  const EnvironmentNames names = environment_names(kWorkspace, "prod");
  EXPECT_EQ(names.schema, "ws_0b8d3c1e5f6a4b7c8d9e0f1a2b3c4d5e_prod");
  EXPECT_NO_THROW(
      provisioner->provision({kWorkspace, "prod", Tenancy::kSchema, "key"}));  // again: no error, nothing more
  EXPECT_EQ(scalar(dsn,
                   "SELECT count(*) FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner "
                   "WHERE n.nspname = '" +
                       names.schema + "' AND r.rolname = '" + names.role + "'"),
            1);
  provisioner->deprovision({kWorkspace, "prod", Tenancy::kSchema, "key"});
  EXPECT_NO_THROW(provisioner->deprovision({kWorkspace, "prod", Tenancy::kSchema, "key"}));
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
  EXPECT_NO_THROW(faulty->provision({kWorkspace, "dev", Tenancy::kSchema, "key"}));
  EXPECT_THROW(faulty->provision({kWorkspace, "prod", Tenancy::kSchema, "key"}), std::runtime_error);
  EXPECT_EQ(scalar(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'ws_%_prod'"), 0);
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_THROW(faulty->deprovision({kWorkspace, "dev", Tenancy::kSchema, "key"}), std::runtime_error);
  EXPECT_GE(std::chrono::steady_clock::now() - begin, std::chrono::milliseconds(300));
  EXPECT_THROW(make_faulty_provisioner(make_pg_provisioner(dsn, 1), "provision:prod", std::chrono::seconds(1)),
               std::invalid_argument);
}

}  // namespace
}  // namespace wsflow

namespace wsflow {
namespace {

using testing::as_role;

TEST(Provisioner, FreezeMakesTheDataReadOnlyForItsRoleAndUnfreezeRestoresIt) {
  const std::string dsn = testing::fresh_unmigrated_database();
  auto provisioner = make_pg_provisioner(dsn, 2);
  EXPECT_TRUE(provisioner->provision({kWorkspace, "dev", Tenancy::kSchema, "key"}).is_null());  // nothing more to show
  const EnvironmentNames env = environment_names(kWorkspace, "dev");
  const std::string table = env.schema + ".notes";
  ASSERT_EQ(as_role(dsn, env.role, "CREATE TABLE " + table + " (id serial PRIMARY KEY, body text)"), "ok");
  ASSERT_EQ(as_role(dsn, env.role, "INSERT INTO " + table + " (body) VALUES ('before')"), "ok");

  provisioner->freeze({kWorkspace, "dev", Tenancy::kSchema, "key"});
  EXPECT_NO_THROW(provisioner->freeze({kWorkspace, "dev", Tenancy::kSchema, "key"}));  // idempotent
  EXPECT_EQ(as_role(dsn, env.role, "SELECT count(*) FROM " + table), "ok");            // reads and export keep working
  EXPECT_EQ(as_role(dsn, env.role, "INSERT INTO " + table + " (body) VALUES ('during')"), "denied");
  EXPECT_EQ(as_role(dsn, env.role, "UPDATE " + table + " SET body = 'x'"), "denied");
  EXPECT_EQ(as_role(dsn, env.role, "DELETE FROM " + table), "denied");
  EXPECT_EQ(as_role(dsn, env.role, "TRUNCATE " + table), "denied");
  EXPECT_EQ(as_role(dsn, env.role, "CREATE TABLE " + env.schema + ".more (id int)"), "denied");
  EXPECT_EQ(as_role(dsn, env.role, "DROP TABLE " + table), "denied");
  // No self-service: Postgres only warns that nothing was granted, and writes stay refused.
  as_role(dsn, env.role, "GRANT INSERT ON " + table + " TO " + env.role);
  EXPECT_EQ(as_role(dsn, env.role, "INSERT INTO " + table + " (body) VALUES ('sneaky')"), "denied");

  provisioner->unfreeze({kWorkspace, "dev", Tenancy::kSchema, "key"});
  EXPECT_NO_THROW(provisioner->unfreeze({kWorkspace, "dev", Tenancy::kSchema, "key"}));
  EXPECT_EQ(as_role(dsn, env.role, "INSERT INTO " + table + " (body) VALUES ('after')"), "ok");
  EXPECT_EQ(as_role(dsn, env.role, "CREATE TABLE " + env.schema + ".more (id int)"), "ok");
  EXPECT_EQ(scalar(dsn, "SELECT count(*) FROM " + table), 2);
  // The role owns its schema and tables again, exactly as before the freeze.
  EXPECT_EQ(scalar(dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = '" + env.schema + "' AND tableowner <> '" +
                            env.role + "'"),
            0);
  provisioner->freeze({kWorkspace, "dev", Tenancy::kSchema, "key"});
  provisioner->deprovision({kWorkspace, "dev", Tenancy::kSchema, "key"});  // a frozen environment is torn down too
  EXPECT_EQ(scalar(dsn, "SELECT count(*) FROM pg_roles WHERE rolname LIKE '" + env.role + "%'"), 0);
}

TEST(FaultyProvisioner, HangsForTheDurationTheSpecGives) {
  const std::string dsn = testing::fresh_unmigrated_database();
  auto faulty = make_faulty_provisioner(make_pg_provisioner(dsn, 1), "freeze:dev:hang:200ms", std::chrono::hours(1));
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_THROW(faulty->freeze({kWorkspace, "dev", Tenancy::kSchema, "key"}), std::runtime_error);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(5));
  EXPECT_THROW(make_faulty_provisioner(make_pg_provisioner(dsn, 1), "freeze:dev:hang:soon", std::chrono::seconds(1)),
               std::invalid_argument);
}

TEST(Provisioner, DatabaseTenancyGivesEachEnvironmentItsOwnDatabaseFrozenAndDroppedLikeASchema) {
  const std::string dsn = testing::fresh_unmigrated_database();
  auto provisioner = make_pg_provisioner(dsn, 2);
  EXPECT_TRUE(
      provisioner->provision({kWorkspace, "staging", Tenancy::kDatabase, "key"}).is_null());  // nothing more to show
  const EnvironmentNames env = environment_names(kWorkspace, "staging");
  EXPECT_NO_THROW(provisioner->provision({kWorkspace, "staging", Tenancy::kDatabase, "key"}));  // idempotent
  EXPECT_EQ(scalar(dsn, "SELECT count(*) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = '" +
                            env.database + "' AND r.rolname = '" + env.role + "'"),
            1);
  EXPECT_EQ(scalar(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname = '" + env.schema + "'"), 0);  // no schema
  // Only its own role may connect.
  EXPECT_EQ(scalar(dsn, "SELECT has_database_privilege('pg_monitor', '" + env.database + "', 'CONNECT')::int"), 0);
  const std::string env_dsn = pg::dsn_with_database(dsn, env.database);
  ASSERT_EQ(as_role(env_dsn, env.role, "CREATE TABLE items (id int); INSERT INTO items VALUES (1)"), "ok");

  provisioner->freeze({kWorkspace, "staging", Tenancy::kDatabase, "key"});
  EXPECT_EQ(as_role(env_dsn, env.role, "SELECT * FROM items"), "ok");
  EXPECT_EQ(as_role(env_dsn, env.role, "INSERT INTO items VALUES (2)"), "denied");
  EXPECT_EQ(as_role(env_dsn, env.role, "CREATE TABLE more (id int)"), "denied");
  EXPECT_EQ(as_role(env_dsn, env.role, "CREATE SCHEMA elsewhere"), "denied");
  provisioner->unfreeze({kWorkspace, "staging", Tenancy::kDatabase, "key"});
  EXPECT_EQ(as_role(env_dsn, env.role, "INSERT INTO items VALUES (2)"), "ok");
  EXPECT_EQ(scalar(dsn, "SELECT count(*) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = '" +
                            env.database + "' AND r.rolname = '" + env.role + "'"),
            1);  // the database is the role's again

  provisioner->freeze({kWorkspace, "staging", Tenancy::kDatabase, "key"});
  provisioner->deprovision({kWorkspace, "staging", Tenancy::kDatabase, "key"});
  EXPECT_NO_THROW(provisioner->deprovision({kWorkspace, "staging", Tenancy::kDatabase, "key"}));
  EXPECT_EQ(scalar(dsn, "SELECT count(*) FROM pg_database WHERE datname = '" + env.database + "'"), 0);
  EXPECT_EQ(scalar(dsn, "SELECT count(*) FROM pg_roles WHERE rolname LIKE '" + env.role + "%'"), 0);
  EXPECT_EQ(pg::dsn_with_database("postgresql://u@h:5/a?sslmode=disable", "b").find("dbname='b'") != std::string::npos,
            true);
}

}  // namespace
}  // namespace wsflow
