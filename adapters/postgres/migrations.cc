#include "adapters/postgres/migrations.h"

#include <pqxx/pqxx>

namespace wsflow::pg {
namespace {

// Arbitrary, fixed: identifies the wsflow migration lock among advisory locks.
constexpr long long kMigrationLock = 0x777366'6c6f77;  // "wsflow"

const char* kInitialSchema = R"SQL(
CREATE TABLE wsflow.definitions (
  hash        text PRIMARY KEY,
  name        text NOT NULL,
  version     integer NOT NULL,
  source      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE wsflow.sagas (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  definition       text NOT NULL,
  version          integer NOT NULL,
  definition_hash  text NOT NULL REFERENCES wsflow.definitions(hash),
  workspace_id     uuid,
  state            text NOT NULL CHECK (state IN ('pending','running','waiting','compensating',
                                                  'completed','compensated','failed','cancelled')),
  input            jsonb NOT NULL DEFAULT '{}',
  context          jsonb NOT NULL DEFAULT '{}',
  idempotency_key  text UNIQUE,
  deadline_at      timestamptz,
  wake_at          timestamptz,
  lease_owner      text,
  lease_token      uuid,
  lease_until      timestamptz,
  cancel_requested boolean NOT NULL DEFAULT false,
  error            text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz
);
-- The claim query: runnable sagas by due time.
CREATE INDEX sagas_runnable ON wsflow.sagas (wake_at)
  WHERE state IN ('pending','running','waiting','compensating');
-- Stuck sagas (non-terminal, not progressing) and operator views.
CREATE INDEX sagas_state_updated ON wsflow.sagas (state, updated_at);
CREATE INDEX sagas_workspace ON wsflow.sagas (workspace_id, created_at) WHERE workspace_id IS NOT NULL;
CREATE INDEX sagas_lease_owner ON wsflow.sagas (lease_owner) WHERE lease_owner IS NOT NULL;

CREATE SEQUENCE wsflow.step_completion_seq;

CREATE TABLE wsflow.saga_steps (
  saga_id               uuid NOT NULL REFERENCES wsflow.sagas(id) ON DELETE CASCADE,
  step                  text NOT NULL,
  branch                text NOT NULL DEFAULT '',
  step_index            integer NOT NULL,
  state                 text NOT NULL,
  attempts              integer NOT NULL DEFAULT 0,
  compensation_attempts integer NOT NULL DEFAULT 0,
  output                jsonb,
  error                 text,
  wake_at               timestamptz,
  completed_seq         bigint,
  started_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  finished_at           timestamptz,
  PRIMARY KEY (saga_id, step, branch)
);

CREATE TABLE wsflow.saga_events (
  id       bigserial PRIMARY KEY,
  saga_id  uuid NOT NULL REFERENCES wsflow.sagas(id) ON DELETE CASCADE,
  at       timestamptz NOT NULL DEFAULT now(),
  kind     text NOT NULL,
  step     text NOT NULL DEFAULT '',
  branch   text NOT NULL DEFAULT '',
  detail   jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX saga_events_saga ON wsflow.saga_events (saga_id, id);

CREATE TABLE wsflow.signals (
  id           bigserial PRIMARY KEY,
  saga_id      uuid NOT NULL REFERENCES wsflow.sagas(id) ON DELETE CASCADE,
  name         text NOT NULL,
  payload      jsonb NOT NULL DEFAULT '{}',
  received_at  timestamptz NOT NULL DEFAULT now(),
  consumed_at  timestamptz
);
CREATE INDEX signals_pending ON wsflow.signals (saga_id, name, id) WHERE consumed_at IS NULL;

CREATE TABLE wsflow.schedules (
  name         text PRIMARY KEY,
  definition   text NOT NULL,
  next_due_at  timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Written by the testing.effect action inside step transactions; tests count
-- rows per idempotency key to prove exactly-once. Deliberately no unique key.
CREATE TABLE wsflow.test_effects (
  id               bigserial PRIMARY KEY,
  idempotency_key  text NOT NULL,
  saga_id          uuid NOT NULL,
  step             text NOT NULL,
  branch           text NOT NULL,
  compensating     boolean NOT NULL,
  at               timestamptz NOT NULL DEFAULT now()
);
)SQL";

}  // namespace

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> all = {
      {1, "initial schema", kInitialSchema},
  };
  return all;
}

static void advisory(pqxx::connection& conn, const char* function) {
  pqxx::nontransaction tx(conn);
  tx.exec_params(std::string("SELECT ") + function + "($1)", kMigrationLock);
}

std::vector<int> migrate(pqxx::connection& conn) {
  std::vector<int> applied;
  advisory(conn, "pg_advisory_lock");
  try {
    {
      pqxx::work tx(conn);
      tx.exec("CREATE SCHEMA IF NOT EXISTS wsflow");
      tx.exec(
          "CREATE TABLE IF NOT EXISTS wsflow.schema_migrations ("
          " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
      tx.commit();
    }
    for (const Migration& m : migrations()) {
      pqxx::work tx(conn);
      if (!tx.exec_params("SELECT 1 FROM wsflow.schema_migrations WHERE version = $1", m.version).empty()) continue;
      tx.exec(m.sql);
      tx.exec_params("INSERT INTO wsflow.schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name);
      tx.commit();
      applied.push_back(m.version);
    }
  } catch (...) {
    advisory(conn, "pg_advisory_unlock");
    throw;
  }
  advisory(conn, "pg_advisory_unlock");
  return applied;
}

}  // namespace wsflow::pg
