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

const char* kWorkspaceDomain = R"SQL(
CREATE TABLE wsflow.workspaces (
  id              uuid PRIMARY KEY,
  slug            text UNIQUE,  -- NULL until reserved by the create saga, and after release
  name            text NOT NULL,
  plan            text NOT NULL DEFAULT 'free',
  status          text NOT NULL,
  active_saga_id  uuid,         -- the lifecycle saga in progress: at most one per workspace
  hard_delete_at  timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workspaces_created ON wsflow.workspaces (created_at, id);

CREATE TABLE wsflow.environments (
  workspace_id  uuid NOT NULL REFERENCES wsflow.workspaces(id) ON DELETE CASCADE,
  name          text NOT NULL,
  status        text NOT NULL,
  schema_name   text NOT NULL,
  role_name     text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, name)
);

CREATE TABLE wsflow.members (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id    uuid NOT NULL REFERENCES wsflow.workspaces(id) ON DELETE CASCADE,
  user_id         text NOT NULL,
  email           text NOT NULL,
  role            text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  last_active_at  timestamptz,
  request_count   bigint NOT NULL DEFAULT 0,
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (workspace_id, user_id)
);

CREATE TABLE wsflow.api_keys (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id  uuid REFERENCES wsflow.workspaces(id) ON DELETE CASCADE,  -- NULL: an operator key
  member_id     uuid REFERENCES wsflow.members(id) ON DELETE CASCADE,
  name          text NOT NULL,
  prefix        text NOT NULL,
  key_hash      text NOT NULL UNIQUE,  -- SHA-256 of the whole key; the key itself is never stored
  scopes        text[] NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz,
  revoked_at    timestamptz,
  CHECK ((workspace_id IS NULL) = (member_id IS NULL))
);

CREATE TABLE wsflow.audit_log (
  id            bigserial PRIMARY KEY,
  workspace_id  uuid NOT NULL REFERENCES wsflow.workspaces(id) ON DELETE CASCADE,
  actor         text NOT NULL,
  action        text NOT NULL,
  detail        jsonb NOT NULL DEFAULT '{}',
  at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_workspace ON wsflow.audit_log (workspace_id, id);

-- Append-only: rows change only when the workspace itself is erased (the
-- hard delete sets wsflow.erasing for its transaction).
CREATE FUNCTION wsflow.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(current_setting('wsflow.erasing', true), '') = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON wsflow.audit_log
  FOR EACH ROW EXECUTE FUNCTION wsflow.audit_log_append_only();

CREATE TABLE wsflow.exports (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id  uuid NOT NULL REFERENCES wsflow.workspaces(id) ON DELETE CASCADE,
  saga_id       uuid,
  status        text NOT NULL,  -- pending, completed, failed
  path          text,
  manifest      jsonb,
  error         text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  completed_at  timestamptz
);

-- Responses of POST requests that carried an Idempotency-Key, per API key.
CREATE TABLE wsflow.http_idempotency (
  api_key_id    uuid NOT NULL,
  key           text NOT NULL,
  fingerprint   text NOT NULL,  -- method, path and body hash of the first request
  status        integer,        -- NULL while the first request is in progress
  body          text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (api_key_id, key)
);
)SQL";

// Durable schedules (engine/scheduler.h): one row per schedule name.
const char* kSchedules = R"SQL(
ALTER TABLE wsflow.schedules RENAME COLUMN definition TO saga;
ALTER TABLE wsflow.schedules
  ADD COLUMN timing_hash     text NOT NULL DEFAULT '',
  ADD COLUMN spec            jsonb NOT NULL DEFAULT '{}',
  ADD COLUMN paused          boolean NOT NULL DEFAULT false,
  ADD COLUMN note            text NOT NULL DEFAULT '',
  ADD COLUMN last_due_at     timestamptz,
  ADD COLUMN last_saga_id    uuid,
  ADD COLUMN buffered_due_at timestamptz,
  ADD COLUMN skipped_count   bigint NOT NULL DEFAULT 0,
  ADD COLUMN created_at      timestamptz NOT NULL DEFAULT now();
CREATE INDEX schedules_due ON wsflow.schedules (next_due_at) WHERE NOT paused;
)SQL";

// The team model: plans, exactly one owner, invitations, keys that outlive
// their member (revoked) and say who minted them.
const char* kTeam = R"SQL(
ALTER TABLE wsflow.workspaces
  ADD CONSTRAINT workspaces_plan CHECK (plan IN ('free', 'starter', 'pro', 'byok', 'enterprise'));
CREATE UNIQUE INDEX members_one_owner ON wsflow.members (workspace_id) WHERE role = 'owner';
CREATE INDEX members_user ON wsflow.members (user_id);

ALTER TABLE wsflow.api_keys DROP CONSTRAINT api_keys_check;
ALTER TABLE wsflow.api_keys DROP CONSTRAINT api_keys_member_id_fkey;
ALTER TABLE wsflow.api_keys ADD CONSTRAINT api_keys_member_id_fkey
  FOREIGN KEY (member_id) REFERENCES wsflow.members(id) ON DELETE SET NULL;
ALTER TABLE wsflow.api_keys
  ADD COLUMN user_id     text,                    -- whose key it is (kept after the member leaves)
  ADD COLUMN created_by  text NOT NULL DEFAULT '', -- the actor that minted it
  ADD COLUMN mint_reason text;                    -- an operator's break-glass reason
UPDATE wsflow.api_keys k SET user_id = m.user_id FROM wsflow.members m WHERE m.id = k.member_id;
CREATE INDEX api_keys_workspace ON wsflow.api_keys (workspace_id, created_at) WHERE workspace_id IS NOT NULL;
CREATE INDEX api_keys_member ON wsflow.api_keys (member_id) WHERE member_id IS NOT NULL;

CREATE TABLE wsflow.invitations (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id  uuid NOT NULL REFERENCES wsflow.workspaces(id) ON DELETE CASCADE,
  email         text NOT NULL,
  role          text NOT NULL CHECK (role IN ('admin', 'member')),
  state         text NOT NULL CHECK (state IN ('pending', 'accepted', 'declined', 'expired', 'cancelled')),
  token_hash    text NOT NULL UNIQUE,  -- SHA-256 of the current token; the token itself is never stored
  invited_by    text NOT NULL,
  expires_at    timestamptz NOT NULL,
  accepted_by   text,                  -- the user_id that accepted
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX invitations_one_pending ON wsflow.invitations (workspace_id, lower(email)) WHERE state = 'pending';
CREATE INDEX invitations_due ON wsflow.invitations (expires_at) WHERE state = 'pending';
CREATE INDEX invitations_pending_email ON wsflow.invitations (lower(email)) WHERE state = 'pending';
CREATE INDEX invitations_workspace ON wsflow.invitations (workspace_id, created_at, id);
)SQL";

// Operators (issue "why a saga is stuck"): a paused state, the figures the
// stuck reasons are computed from, and the indexes that find them without
// scanning every saga.
const char* kOperators = R"SQL(
ALTER TABLE wsflow.sagas DROP CONSTRAINT sagas_state_check;
ALTER TABLE wsflow.sagas ADD CONSTRAINT sagas_state_check
  CHECK (state IN ('pending','running','waiting','compensating','completed','compensated','failed','cancelled',
                   'paused'));
ALTER TABLE wsflow.sagas
  ADD COLUMN progressed_at timestamptz,
  ADD COLUMN pause_requested boolean NOT NULL DEFAULT false,
  ADD COLUMN compensate_from integer,
  ADD COLUMN rerun_of uuid REFERENCES wsflow.sagas(id) ON DELETE SET NULL,
  ADD COLUMN rerun_from_step text;
UPDATE wsflow.sagas SET progressed_at = updated_at;
ALTER TABLE wsflow.sagas ALTER COLUMN progressed_at SET DEFAULT now(), ALTER COLUMN progressed_at SET NOT NULL;
ALTER TABLE wsflow.saga_steps
  ADD COLUMN attempt_deadline_at timestamptz,
  ADD COLUMN max_attempts integer;

CREATE INDEX sagas_created ON wsflow.sagas (created_at, id);
CREATE INDEX sagas_updated ON wsflow.sagas (updated_at);
CREATE INDEX sagas_definition ON wsflow.sagas (definition, created_at);
CREATE INDEX sagas_no_progress ON wsflow.sagas (progressed_at) WHERE state IN ('pending','running','compensating');
CREATE INDEX sagas_lease_until ON wsflow.sagas (lease_until) WHERE lease_token IS NOT NULL;
CREATE INDEX sagas_rerun_of ON wsflow.sagas (rerun_of) WHERE rerun_of IS NOT NULL;
CREATE INDEX saga_steps_attempt_deadline ON wsflow.saga_steps (attempt_deadline_at)
  WHERE state IN ('running','compensating') AND attempt_deadline_at IS NOT NULL;
-- The incident query: sagas by what they did and undid.
CREATE INDEX saga_steps_by_step ON wsflow.saga_steps (step, state, saga_id);

CREATE TABLE wsflow.bulk_actions (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  action      text NOT NULL,
  filter      jsonb NOT NULL,
  actor       text NOT NULL,
  reason      text NOT NULL DEFAULT '',
  touched     integer NOT NULL DEFAULT 0,
  refused     integer NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- The step a person looking at a saga wants to see: the one in flight,
-- retrying, or failed (the newest such), with its figures.
CREATE FUNCTION wsflow.saga_current_step(saga uuid) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
           'step', st.step, 'branch', st.branch, 'state', st.state,
           'compensating', st.state IN ('compensating', 'compensation_failed'),
           'attempt', CASE WHEN st.state IN ('compensating', 'compensation_failed')
                           THEN st.compensation_attempts ELSE st.attempts END,
           'max_attempts', st.max_attempts, 'last_error', st.error,
           'attempt_deadline_at', st.attempt_deadline_at,
           'next_retry_at', CASE WHEN st.attempt_deadline_at IS NULL AND st.error IS NOT NULL
                                  AND st.state IN ('retrying', 'compensating') THEN st.wake_at END)
  FROM wsflow.saga_steps st
  WHERE st.saga_id = saga
    AND st.state IN ('running', 'retrying', 'waiting', 'failed', 'compensating', 'compensation_failed')
  ORDER BY st.updated_at DESC LIMIT 1
$$;

-- Why a saga is stuck, or NULL: {reason, since, detail}. The first that
-- holds, most actionable first. `threshold` is how long without progress
-- counts as stuck; `grace` how long past a timeout, lease or due time.
CREATE FUNCTION wsflow.saga_stuck(s wsflow.sagas, threshold interval, grace interval) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  WITH overdue AS (
    SELECT st.step, st.branch, st.attempt_deadline_at,
           CASE WHEN st.state = 'compensating' THEN st.compensation_attempts ELSE st.attempts END AS attempt
    FROM wsflow.saga_steps st
    WHERE st.saga_id = s.id AND st.state IN ('running', 'compensating')
      AND st.attempt_deadline_at < now() - grace
    ORDER BY st.attempt_deadline_at LIMIT 1)
  SELECT CASE
    WHEN s.state = 'failed' THEN jsonb_build_object(
      'reason', 'failed', 'since', s.finished_at,
      'detail', coalesce(wsflow.saga_current_step(s.id), '{}'::jsonb) || jsonb_build_object('error', s.error))
    WHEN s.state IN ('completed', 'compensated', 'cancelled', 'paused') THEN NULL
    WHEN s.lease_token IS NOT NULL AND s.lease_until < now() - grace THEN jsonb_build_object(
      'reason', 'lease_expired', 'since', s.lease_until,
      'detail', coalesce(wsflow.saga_current_step(s.id), '{}'::jsonb)
                || jsonb_build_object('lease_owner', s.lease_owner))
    WHEN EXISTS (SELECT 1 FROM overdue) THEN (SELECT jsonb_build_object(
      'reason', 'attempt_overdue', 'since', o.attempt_deadline_at,
      'detail', jsonb_build_object('step', o.step, 'branch', o.branch, 'attempt', o.attempt,
                                   'attempt_deadline_at', o.attempt_deadline_at, 'lease_owner', s.lease_owner))
      FROM overdue o)
    WHEN s.lease_token IS NULL AND s.wake_at < now() - grace THEN jsonb_build_object(
      'reason', 'unclaimed', 'since', s.wake_at,
      'detail', jsonb_build_object('runnable_since', s.wake_at, 'state', s.state))
    WHEN s.state = 'compensating' AND s.progressed_at < now() - threshold THEN jsonb_build_object(
      'reason', 'compensation_unfinished', 'since', s.progressed_at,
      'detail', coalesce(wsflow.saga_current_step(s.id), '{}'::jsonb)
                || jsonb_build_object('compensating_because', s.error))
    WHEN s.state IN ('pending', 'running') AND s.progressed_at < now() - threshold THEN jsonb_build_object(
      'reason', 'no_progress', 'since', s.progressed_at,
      'detail', coalesce(wsflow.saga_current_step(s.id), '{}'::jsonb))
  END
$$;

)SQL";

// Candidates for saga_stuck, each found through an index (see the EXPLAIN
// test); saga_stuck decides. `unclaimed` narrows the branch of sagas due for
// longer than the grace (migration 20 makes it match the runnable index).
std::string stuck_candidates_function(const std::string& create, const std::string& unclaimed) {
  return create + R"SQL( FUNCTION wsflow.stuck_candidates(threshold interval, grace interval) RETURNS SETOF uuid
LANGUAGE sql STABLE AS $$
  SELECT id FROM wsflow.sagas WHERE state = 'failed'
  UNION SELECT id FROM wsflow.sagas WHERE lease_token IS NOT NULL AND lease_until < now() - grace
  UNION SELECT saga_id FROM wsflow.saga_steps
        WHERE state IN ('running', 'compensating') AND attempt_deadline_at IS NOT NULL
          AND attempt_deadline_at < now() - grace
  UNION SELECT id FROM wsflow.sagas
        WHERE state IN ('pending', 'running', 'waiting', 'compensating') AND wake_at < now() - grace)SQL" +
         unclaimed + R"SQL(
  UNION SELECT id FROM wsflow.sagas
        WHERE state IN ('pending', 'running', 'compensating') AND progressed_at < now() - threshold
$$;
)SQL";
}

// A leased saga stays due (its wake_at passed) until its lease is released,
// so the runnable index held every saga in flight, and a claim read through
// them all, in every process, before the first it could take. The index now
// holds only sagas nobody holds; claims find expired leases through
// sagas_lease_until. The stuck query's "unclaimed" branch asks the same.
const std::string kRunnableUnleased =
    "DROP INDEX wsflow.sagas_runnable; "
    "CREATE INDEX sagas_runnable ON wsflow.sagas (priority, wake_at) "
    "WHERE state IN ('pending','running','waiting','compensating') AND lease_token IS NULL; " +
    stuck_candidates_function("CREATE OR REPLACE", " AND lease_token IS NULL");

// Saga ids in the order sagas are created (the layout of UUID version 7: the
// first 48 bits the creation time in milliseconds, the rest random, 74 bits
// of it). A saga's step and event rows are keyed by its id, so with random
// ids every saga in flight wrote into a leaf page of its own in each of those
// indexes, spread over the whole index: once the indexes outgrew the
// database's cache, about one write in three first read its page back from
// the disk cache (pg_statio, 330,000 sagas). Ids that follow time keep the
// sagas in flight on a few pages near each index's end, however many are in
// flight and however big the history. The ids stay unguessable (74 random
// bits) and tell no more than the saga's created_at, which the API shows.
const char* kTimeOrderedSagaIds = R"SQL(
CREATE FUNCTION wsflow.time_ordered_uuid() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
      PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
      FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;
ALTER TABLE wsflow.sagas ALTER COLUMN id SET DEFAULT wsflow.time_ordered_uuid();
)SQL";

}  // namespace

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> all = {
      {1, "initial schema", kInitialSchema},
      {2, "workspace domain", kWorkspaceDomain},
      {3, "lease token index",
       "CREATE INDEX sagas_lease_token ON wsflow.sagas (lease_token) WHERE lease_token IS NOT NULL"},
      {4, "schedules", kSchedules},
      {5, "team model", kTeam},
      {6, "environment status", "ALTER TABLE wsflow.environments ADD COLUMN saga_id uuid, ADD COLUMN error text"},
      {7, "downloadable exports",
       "ALTER TABLE wsflow.exports ADD COLUMN sha256 text, ADD COLUMN bytes bigint, ADD COLUMN expires_at timestamptz"},
      {8, "workspace record",
       "ALTER TABLE wsflow.workspaces ADD COLUMN description text NOT NULL DEFAULT '', "
       "ADD COLUMN region text NOT NULL DEFAULT 'local', ADD COLUMN tenancy_model text NOT NULL DEFAULT 'schema' "
       "CHECK (tenancy_model IN ('schema', 'database')); "
       "ALTER TABLE wsflow.environments ADD COLUMN database_name text; "
       "CREATE INDEX audit_log_workspace_action ON wsflow.audit_log (workspace_id, action, id)"},
      {9, "operators", kOperators + stuck_candidates_function("CREATE", "")},
      {10, "canary bulk repairs",
       "ALTER TABLE wsflow.bulk_actions ADD COLUMN status text NOT NULL DEFAULT 'applied' "
       "CHECK (status IN ('applied', 'canary', 'stopped', 'completed')), "
       "ADD COLUMN cohort uuid[] NOT NULL DEFAULT '{}', ADD COLUMN remaining uuid[] NOT NULL DEFAULT '{}', "
       "ADD COLUMN max_failure_rate double precision, ADD COLUMN wait_ms bigint NOT NULL DEFAULT 0, "
       "ADD COLUMN failure_rate double precision, ADD COLUMN note text, ADD COLUMN canary_saga_id uuid"},
      {11, "operator step inputs", "ALTER TABLE wsflow.sagas ADD COLUMN step_inputs jsonb NOT NULL DEFAULT '{}'"},
      // The testing.* actions' table belongs to test databases: the actions
      // create it on first use (engine/testing_actions.h), tests up front.
      {12, "test-only table out of production", "DROP TABLE IF EXISTS wsflow.test_effects"},
      // Environments on the user's own services (--provisioner http) have no
      // schema or role, and keep what the service answered.
      {13, "environments on other provisioners",
       "ALTER TABLE wsflow.environments ADD COLUMN provisioner text NOT NULL DEFAULT 'postgres', "
       "ADD COLUMN details jsonb, ALTER COLUMN schema_name DROP NOT NULL, ALTER COLUMN role_name DROP NOT NULL"},
      // A definition's priority (engine/definition.h): due sagas are claimed
      // highest priority first, each priority by due time.
      {14, "saga priority",
       "ALTER TABLE wsflow.sagas ADD COLUMN priority smallint NOT NULL DEFAULT 1 CHECK (priority BETWEEN 0 AND 2); "
       "DROP INDEX wsflow.sagas_runnable; "
       "CREATE INDEX sagas_runnable ON wsflow.sagas (priority, wake_at) "
       "WHERE state IN ('pending','running','waiting','compensating')"},
      // Retention (adapters/postgres/retention.h): finished sagas keep their
      // row (state, error, idempotency key) and lose their steps, events and
      // signals after the retention period.
      {15, "retention",
       "ALTER TABLE wsflow.sagas ADD COLUMN pruned_at timestamptz; "
       "CREATE INDEX sagas_prunable ON wsflow.sagas (finished_at) WHERE finished_at IS NOT NULL AND pruned_at IS NULL"},
      // A saga's steps and events are written only by the store, under the
      // saga's row lock (its fence), and sagas are never deleted (retention
      // deletes their history, not them): the foreign keys guarded nothing
      // that could happen, and their checks, one per row written, were a
      // seventh of the database's work at saturation.
      {16, "history without per-row foreign key checks",
       "ALTER TABLE wsflow.saga_steps DROP CONSTRAINT saga_steps_saga_id_fkey; "
       "ALTER TABLE wsflow.saga_events DROP CONSTRAINT saga_events_saga_id_fkey"},
      // Every new version of a saga row (its claim, its first step, its end)
      // is written into each of its indexes. These served no query a
      // remaining index does not: leases are renewed by saga id and released
      // at shutdown through sagas_lease_until (every leased row), a time
      // range of updated_at comes with a state or with the created_at order,
      // and sagas without an idempotency key need no entry in its index.
      {17, "fewer saga indexes",
       "DROP INDEX wsflow.sagas_lease_owner; DROP INDEX wsflow.sagas_lease_token; DROP INDEX wsflow.sagas_updated; "
       "ALTER TABLE wsflow.sagas DROP CONSTRAINT sagas_idempotency_key_key; "
       "CREATE UNIQUE INDEX sagas_idempotency_key ON wsflow.sagas (idempotency_key) "
       "WHERE idempotency_key IS NOT NULL"},
      // The id of the last signal delivered to a saga, written with the
      // signal under the saga's row lock. A commit releasing a saga reads it
      // from the row's latest version to see a signal that arrived while the
      // saga was leased (its statement's snapshot may predate the signal).
      {18, "last signal id",
       "ALTER TABLE wsflow.sagas ADD COLUMN last_signal_id bigint NOT NULL DEFAULT 0; "
       "UPDATE wsflow.sagas s SET last_signal_id = g.last FROM "
       "(SELECT saga_id, max(id) AS last FROM wsflow.signals GROUP BY saga_id) g WHERE s.id = g.saga_id"},
      // Every read of the history is one saga's, in order (its page's cursor
      // is an id within the saga), and ids come from one sequence: the index
      // on the id alone served no query, and cost an entry per event written,
      // the most written row there is. Rebuilds the index once, at upgrade.
      {19, "history keyed by saga",
       "ALTER TABLE wsflow.saga_events DROP CONSTRAINT saga_events_pkey; "
       "DROP INDEX wsflow.saga_events_saga; "
       "ALTER TABLE wsflow.saga_events ADD CONSTRAINT saga_events_pkey PRIMARY KEY (saga_id, id)"},
      {20, "runnable index without leased sagas", kRunnableUnleased},
      {21, "time-ordered saga ids", kTimeOrderedSagaIds},
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
