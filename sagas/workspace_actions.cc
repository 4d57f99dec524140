#include "sagas/workspace_actions.h"

#include <pqxx/pqxx>

#include "adapters/export/archive_writer.h"
#include "adapters/export/schema_dump.h"
#include "adapters/postgres/cached_statement.h"
#include "adapters/postgres/dsn.h"
#include "sagas/audit.h"
#include "sagas/lifecycle.h"
#include "sagas/team.h"

namespace wsflow::sagas {
namespace {

constexpr const char* kActor = "wsflow";

const std::string& workspace_of(const ActionCall& call) {
  return call.saga_input.at("workspace_id").get_ref<const std::string&>();
}

Action transactional(std::function<ActionResult(const ActionCall&, pqxx::work&)> fn) {
  return Action{{}, std::move(fn)};
}

// Rows of a query as a JSON array of objects (via Postgres' own JSON).
nlohmann::json rows_json(pqxx::transaction_base& tx, const std::string& select, const std::string& workspace_id) {
  return nlohmann::json::parse(
      tx.exec_params("SELECT coalesce(json_agg(r), '[]'::json)::text FROM (" + select + ") r", workspace_id)[0][0]
          .as<std::string>());
}

ActionResult reserve_slug(const ActionCall& call, pqxx::work& tx) {
  const std::string& id = workspace_of(call);
  auto row = pg::exec_cached(tx, "SELECT coalesce(slug, ''), name FROM wsflow.workspaces WHERE id = $1::uuid", id);
  if (row.empty()) return ActionResult::failure("invalid_input", "workspace " + id + " does not exist", false);
  if (!row[0][0].as<std::string>().empty()) return ActionResult::success({{"slug", row[0][0].as<std::string>()}});
  const std::string base = slugify(row[0][1].as<std::string>());
  for (int n = 1; n < 1000; ++n) {
    const std::string candidate = n == 1 ? base : base + "-" + std::to_string(n);
    if (!pg::exec_cached(tx, "SELECT 1 FROM wsflow.workspaces WHERE slug = $1", candidate).empty()) continue;
    pg::exec_cached(tx, "UPDATE wsflow.workspaces SET slug = $2, updated_at = now() WHERE id = $1::uuid", id,
                    candidate);
    audit(tx, id, kActor, "workspace.slug_reserved", {{"slug", candidate}});
    return ActionResult::success({{"slug", candidate}});
  }
  return ActionResult::failure("slug_exhausted", "no free slug for '" + base + "'", false);
}

ActionResult release_slug(const ActionCall& call, pqxx::work& tx) {
  const std::string& id = workspace_of(call);
  pg::exec_cached(tx, "UPDATE wsflow.workspaces SET slug = NULL, updated_at = now() WHERE id = $1::uuid", id);
  audit(tx, id, kActor, "workspace.slug_released");
  return ActionResult::success();
}

ActionResult record_owner(const ActionCall& call, pqxx::work& tx) {
  const std::string& id = workspace_of(call);
  pg::exec_cached(tx,
                  "INSERT INTO wsflow.members (workspace_id, user_id, email, role) VALUES ($1::uuid, $2, $3, 'owner') "
                  "ON CONFLICT (workspace_id, user_id) DO NOTHING",
                  id, call.saga_input.at("owner_user_id").get<std::string>(),
                  call.saga_input.at("owner_email").get<std::string>());
  audit(tx, id, kActor, "member.added", {{"user_id", call.saga_input["owner_user_id"]}, {"role", "owner"}});
  return ActionResult::success();
}

ActionResult remove_members(const ActionCall& call, pqxx::work& tx) {
  const std::string& id = workspace_of(call);
  pg::exec_cached(
      tx, "UPDATE wsflow.api_keys SET revoked_at = now() WHERE workspace_id = $1::uuid AND revoked_at IS NULL", id);
  const auto removed =
      pg::exec_cached(tx, "DELETE FROM wsflow.members WHERE workspace_id = $1::uuid", id).affected_rows();
  audit(tx, id, kActor, "members.removed", {{"count", removed}});
  return ActionResult::success({{"removed", removed}});
}

ActionResult revoke_keys(const ActionCall& call, pqxx::work& tx) {
  const std::string& id = workspace_of(call);
  const auto revoked = pg::exec_cached(tx,
                                       "UPDATE wsflow.api_keys SET revoked_at = now() WHERE workspace_id = $1::uuid "
                                       "AND revoked_at IS NULL",
                                       id)
                           .affected_rows();
  audit(tx, id, kActor, "api_keys.revoked", {{"count", revoked}});
  return ActionResult::success({{"revoked", revoked}});
}

ActionResult mark_offboarded(const ActionCall& call, pqxx::work& tx) {
  const std::string& id = workspace_of(call);
  const Millis window = parse_duration(call.input.value("window", "30d"));
  pg::exec_cached(tx,
                  "UPDATE wsflow.workspaces SET status = 'offboarded', hard_delete_at = now() + $2::bigint * "
                  "interval '1 ms', updated_at = now() WHERE id = $1::uuid",
                  id, static_cast<long long>(window.count()));
  audit(tx, id, kActor, "workspace.offboarded", {{"hard_delete_in", format_duration(window)}});
  return ActionResult::success();
}

ActionResult set_plan(const ActionCall& call, pqxx::work& tx) {
  const std::string& id = workspace_of(call);
  const std::string plan = call.saga_input.at("plan").get<std::string>();
  try {
    check_plan_change(tx, id, plan, Millis(0));
  } catch (const DomainError& e) {
    return ActionResult::failure(e.code, e.what(), false);
  }
  const std::string from =
      pg::exec_cached(tx, "SELECT plan FROM wsflow.workspaces WHERE id = $1::uuid FOR UPDATE", id)[0][0]
          .as<std::string>();
  pg::exec_cached(tx, "UPDATE wsflow.workspaces SET plan = $2, updated_at = now() WHERE id = $1::uuid", id, plan);
  audit(tx, id, kActor, "workspace.plan_changed", {{"from", from}, {"to", plan}});
  return ActionResult::success({{"from", from}, {"to", plan}});
}

// At most this many expired invitations are listed in the saga context (and
// so in the webhook event); the count is always exact.
constexpr std::size_t kExpiredListed = 100;

ActionResult expire_invitations(const Clock& clock, const ActionCall& call, pqxx::work& tx) {
  const int batch = call.input.value("batch", 500);
  const std::vector<ExpiredInvitation> expired = expire_due_invitations(tx, batch, offset_from_system(clock));
  nlohmann::json listed = nlohmann::json::array();
  for (std::size_t i = 0; i < expired.size() && i < kExpiredListed; ++i) {
    listed.push_back({{"id", expired[i].id}, {"workspace_id", expired[i].workspace_id}, {"email", expired[i].email}});
  }
  return ActionResult::success({{"expired", expired.size()}},
                               {{"expired_count", expired.size()}, {"expired", std::move(listed)}});
}

// One provisioner operation on a for_each branch's environment, shown on the
// environment's row: `during` while it runs (with the saga's id), `done` once
// it succeeded (audited when that changed the status), and on failure the
// error with `failed_status`; the step then retries or fails as its policy
// says. A null status leaves the status as it is.
struct EnvironmentOperation {
  const char* during;
  const char* done;
  const char* failed_status;
  const char* audit_action;
  // Returns what the environment's row shows about it (null: leave as is).
  std::function<nlohmann::json(EnvironmentProvisioner&, const EnvironmentRequest&)> run;
};

// The workspace's tenancy model (schema when the workspace is gone).
Tenancy tenancy_of(pg::ConnectionPool& db, const std::string& workspace_id) {
  auto conn = db.acquire();
  pqxx::read_transaction tx(*conn);
  auto row = pg::exec_cached(tx, "SELECT tenancy_model FROM wsflow.workspaces WHERE id = $1::uuid", workspace_id);
  return row.empty() ? Tenancy::kSchema : tenancy_from_string(row[0][0].as<std::string>());
}

// What an environment's row records of one provisioner operation.
struct EnvironmentRecord {
  const char* status;  // null: keep the status
  std::string saga_id;
  std::string error;
  nlohmann::json details;  // null: keep the details
  const char* audit_action;
};

void record_environment(pg::ConnectionPool& db, const EnvironmentProvisioner& provisioner,
                        const EnvironmentRequest& request, const EnvironmentRecord& record) {
  // Postgres environments are named objects; a service's are what it answered.
  const bool postgres = std::string(provisioner.kind()) == "postgres";
  const EnvironmentNames names = environment_names(request.workspace_id, request.environment);
  const bool own_database = postgres && request.tenancy == Tenancy::kDatabase;
  const std::string schema = !postgres ? "" : own_database ? "public" : names.schema;
  auto conn = db.acquire();
  pqxx::work tx(*conn);
  const auto changed = pg::exec_cached(
      tx,
      "INSERT INTO wsflow.environments AS e (workspace_id, name, status, schema_name, role_name, database_name, "
      "saga_id, error, provisioner, details) VALUES ($1::uuid, $2, coalesce($3, 'active'), NULLIF($4, ''), "
      "NULLIF($5, ''), NULLIF($8, ''), $6::uuid, NULLIF($7, ''), $9, $10::jsonb) "
      "ON CONFLICT (workspace_id, name) DO UPDATE SET status = coalesce($3, e.status), saga_id = EXCLUDED.saga_id, "
      "error = EXCLUDED.error, details = coalesce(EXCLUDED.details, e.details), updated_at = now() "
      "WHERE e.status IS DISTINCT FROM coalesce($3, e.status) OR e.error IS DISTINCT FROM EXCLUDED.error "
      "OR e.saga_id IS DISTINCT FROM EXCLUDED.saga_id "
      "OR e.details IS DISTINCT FROM coalesce(EXCLUDED.details, e.details) RETURNING 1",
      request.workspace_id, request.environment, record.status, schema, postgres ? names.role : "", record.saga_id,
      record.error, own_database ? names.database : "", provisioner.kind(),
      record.details.is_null() ? std::optional<std::string>() : record.details.dump());
  if (record.audit_action && !changed.empty()) {
    audit(tx, request.workspace_id, kActor, record.audit_action, {{"environment", request.environment}});
  }
  tx.commit();
}

ActionResult run_environment_operation(EnvironmentProvisioner& provisioner, pg::ConnectionPool& db,
                                       const EnvironmentOperation& operation, const ActionCall& call) {
  const std::string& id = workspace_of(call);
  const EnvironmentRequest request{id, call.branch, tenancy_of(db, id),
                                   call.idempotency_key + (call.compensating ? "/compensate" : "")};
  if (operation.during) record_environment(db, provisioner, request, {operation.during, call.saga_id, "", {}, nullptr});
  nlohmann::json details;
  try {
    details = operation.run(provisioner, request);
  } catch (const std::exception& e) {
    record_environment(db, provisioner, request, {operation.failed_status, call.saga_id, e.what(), {}, nullptr});
    throw;
  }
  record_environment(db, provisioner, request, {operation.done, call.saga_id, "", details, operation.audit_action});
  return ActionResult::success();
}

ActionResult clear_offboarded(const ActionCall& call, pqxx::work& tx) {
  const std::string& id = workspace_of(call);
  pg::exec_cached(tx, "UPDATE wsflow.workspaces SET hard_delete_at = NULL, updated_at = now() WHERE id = $1::uuid", id);
  audit(tx, id, kActor, "workspace.offboarding_undone");
  return ActionResult::success();
}

// Deletes every export archive of the workspace (idempotent).
ActionResult remove_archives(const std::filesystem::path& export_dir, const std::string& workspace_id) {
  std::error_code ec;
  std::filesystem::remove_all(export_dir / workspace_id, ec);
  if (ec) return ActionResult::failure("storage", "cannot remove archives: " + ec.message());
  return ActionResult::success();
}

// The archive's metadata files: each the JSON rows of one query ($1 = the workspace).
void export_files(pqxx::transaction_base& tx, const std::string& id, std::vector<ArchiveEntry>& files) {
  static const std::pair<const char*, const char*> kFiles[] = {
      {"members.json",
       "SELECT id, user_id, email, role, last_active_at, request_count, created_at FROM wsflow.members "
       "WHERE workspace_id = $1::uuid ORDER BY created_at"},
      {"environments.json",
       "SELECT name, status, provisioner, schema_name, database_name, details, created_at FROM wsflow.environments "
       "WHERE workspace_id = $1::uuid ORDER BY name"},
      {"audit.json",
       "SELECT id, actor, action, detail, at FROM wsflow.audit_log WHERE workspace_id = $1::uuid ORDER BY id"},
      // Key metadata only: the hash never leaves the database.
      {"api_keys.json",
       "SELECT id, name, prefix, scopes, user_id, created_by, mint_reason, created_at, last_used_at, revoked_at "
       "FROM wsflow.api_keys WHERE workspace_id = $1::uuid ORDER BY created_at"},
      // Who was invited, never the token (only its hash is stored, and that stays too).
      {"invitations.json",
       "SELECT id, email, role, state, invited_by, expires_at, accepted_by, created_at FROM wsflow.invitations "
       "WHERE workspace_id = $1::uuid ORDER BY created_at"},
  };
  files.push_back(
      {"workspace.json",
       rows_json(tx, "SELECT id, slug, name, plan, status, created_at FROM wsflow.workspaces WHERE id = $1::uuid", id)
           .at(0)
           .dump(2),
       {}});
  for (const auto& [file, select] : kFiles) files.push_back({file, rows_json(tx, select, id).dump(2), {}});
}

// Writes the export's archive: the metadata (read in one snapshot) and a
// pg_dump of each environment that has data, staged in a work directory
// beside the archive and streamed into it.
ActionResult write_export(const DomainServices& services, const ActionCall& call) {
  const std::string& id = workspace_of(call);
  const std::string export_id = call.saga_input.at("export_id").get<std::string>();
  const Millis retention = parse_duration(call.input.value("retention", "7d"));
  const std::filesystem::path archive = services.export_dir / id / (export_id + ".tar.gz");
  const std::filesystem::path work = services.export_dir / id / (export_id + ".work");
  std::filesystem::create_directories(work);
  std::vector<ArchiveEntry> entries;
  struct Dumped {
    std::string name;
    std::string schema;    // empty: the whole database
    std::string database;  // empty: the environments database itself
  };
  std::vector<Dumped> environments;
  {
    auto conn = services.db.acquire();
    pqxx::work tx(*conn, "export");
    tx.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY");
    export_files(tx, id, entries);
    for (const auto& r : pg::exec_cached(tx,
                                         "SELECT name, schema_name, coalesce(database_name, '') FROM "
                                         "wsflow.environments WHERE workspace_id = $1::uuid AND status IN "
                                         "('active', 'frozen') AND provisioner = 'postgres' ORDER BY name",
                                         id)) {
      const std::string database = r[2].as<std::string>();
      environments.push_back({r[0].as<std::string>(), database.empty() ? r[1].as<std::string>() : "", database});
    }
    tx.commit();
  }
  WrittenArchive written;
  try {
    for (const Dumped& env : environments) {
      const std::filesystem::path dump = work / (env.name + ".sql");
      dump_environment(env.database.empty() ? services.environments_dsn
                                            : pg::dsn_with_database(services.environments_dsn, env.database),
                       env.schema, dump);
      entries.push_back({"environments/" + env.name + ".sql", "", dump});
    }
    written = write_archive(archive, entries);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove_all(work, ec);  // the dumps are staging only
    throw;
  }
  std::error_code ec;
  std::filesystem::remove_all(work, ec);
  auto conn = services.db.acquire();
  pqxx::work tx(*conn);
  pg::exec_cached(
      tx,
      "UPDATE wsflow.exports SET status = 'completed', path = $2, manifest = $3::jsonb, sha256 = $4, bytes = $5, "
      "expires_at = now() + $6::bigint * interval '1 ms', completed_at = now() WHERE id = $1::uuid",
      export_id, archive.string(), written.manifest.dump(), written.sha256, static_cast<long long>(written.bytes),
      static_cast<long long>(retention.count()));
  audit(tx, id, kActor, "workspace.exported", {{"export_id", export_id}, {"sha256", written.sha256}});
  tx.commit();
  return ActionResult::success({{"sha256", written.sha256}, {"bytes", written.bytes}});
}

// After its retention an export's archive is deleted; its record stays, `expired`.
ActionResult expire_export(const ActionCall& call, pqxx::work& tx) {
  const std::string export_id = call.saga_input.at("export_id").get<std::string>();
  auto row = pg::exec_cached(
      tx, "SELECT workspace_id::text, coalesce(path, '') FROM wsflow.exports WHERE id = $1::uuid", export_id);
  if (row.empty()) return ActionResult::success();  // erased with its workspace
  std::error_code ec;
  if (!row[0][1].as<std::string>().empty()) std::filesystem::remove(row[0][1].as<std::string>(), ec);
  if (ec) return ActionResult::failure("storage", "cannot remove the archive: " + ec.message());
  pg::exec_cached(tx, "UPDATE wsflow.exports SET status = 'expired', path = NULL WHERE id = $1::uuid", export_id);
  audit(tx, row[0][0].as<std::string>(), kActor, "export.expired", {{"export_id", export_id}});
  return ActionResult::success();
}

}  // namespace

std::string slugify(const std::string& name) {
  std::string slug;
  for (unsigned char ch : name) {
    if (std::isalnum(ch)) {
      slug.push_back(static_cast<char>(std::tolower(ch)));
    } else if (!slug.empty() && slug.back() != '-') {
      slug.push_back('-');
    }
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  if (slug.size() > 48) slug.resize(48);
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return slug.empty() ? "workspace" : slug;
}

const std::vector<std::string>& workspace_action_names() {
  static const std::vector<std::string> names = {"workspace.reserve_slug",     "workspace.release_slug",
                                                 "workspace.record_owner",     "workspace.remove_members",
                                                 "workspace.revoke_keys",      "workspace.mark_offboarded",
                                                 "workspace.hard_delete",      "environment.provision",
                                                 "environment.deprovision",    "environment.freeze",
                                                 "environment.unfreeze",       "export.write",
                                                 "export.remove_all",          "webhook.notify",
                                                 "workspace.set_plan",         "invitations.expire",
                                                 "workspace.clear_offboarded", "export.expire"};
  return names;
}

void register_workspace_actions(ActionRegistry& registry, const DomainServices& services) {
  registry.add("workspace.reserve_slug", transactional(reserve_slug));
  registry.add("workspace.release_slug", transactional(release_slug));
  registry.add("workspace.record_owner", transactional(record_owner));
  registry.add("workspace.remove_members", transactional(remove_members));
  registry.add("workspace.revoke_keys", transactional(revoke_keys));
  registry.add("workspace.mark_offboarded", transactional(mark_offboarded));
  registry.add("workspace.clear_offboarded", transactional(clear_offboarded));
  registry.add("workspace.set_plan", transactional(set_plan));
  const Clock* clock = &services.clock;
  registry.add("invitations.expire", transactional([clock](const ActionCall& call, pqxx::work& tx) {
                 return expire_invitations(*clock, call, tx);
               }));

  const std::filesystem::path export_dir = services.export_dir;
  registry.add("workspace.hard_delete", transactional([export_dir](const ActionCall& call, pqxx::work& tx) {
                 const std::string& id = workspace_of(call);
                 tx.exec("SET LOCAL wsflow.erasing = 'on'");
                 pg::exec_cached(tx, "DELETE FROM wsflow.workspaces WHERE id = $1::uuid", id);
                 return remove_archives(export_dir, id);
               }));

  registry.add("export.write",
               blocking_action([services](const ActionCall& call) { return write_export(services, call); }));
  registry.add("export.expire", transactional(expire_export));

  registry.add("export.remove_all", transactional([export_dir](const ActionCall& call, pqxx::work& tx) {
                 const std::string& id = workspace_of(call);
                 if (ActionResult removed = remove_archives(export_dir, id); !removed.ok) return removed;
                 pg::exec_cached(
                     tx, "UPDATE wsflow.exports SET status = 'deleted', path = NULL WHERE workspace_id = $1::uuid", id);
                 audit(tx, id, kActor, "storage.removed");
                 return ActionResult::success();
               }));

  EnvironmentProvisioner* provisioner = &services.provisioner;
  pg::ConnectionPool* db = &services.db;
  const auto environment_action = [provisioner, db](EnvironmentOperation operation) {
    return blocking_action([provisioner, db, operation](const ActionCall& call) {
      return run_environment_operation(*provisioner, *db, operation, call);
    });
  };
  using Request = const EnvironmentRequest&;
  registry.add("environment.provision",
               environment_action({"provisioning", "active", "failed", "environment.provisioned",
                                   [](EnvironmentProvisioner& p, Request r) { return p.provision(r); }}));
  registry.add("environment.deprovision",
               environment_action({"deprovisioning", "deleted", "deprovisioning", "environment.deleted",
                                   [](EnvironmentProvisioner& p, Request r) {
                                     p.deprovision(r);
                                     return nlohmann::json();
                                   }}));
  registry.add("environment.freeze", environment_action({nullptr, "frozen", nullptr, "environment.frozen",
                                                         [](EnvironmentProvisioner& p, Request r) {
                                                           p.freeze(r);
                                                           return nlohmann::json();
                                                         }}));
  registry.add("environment.unfreeze", environment_action({nullptr, "active", nullptr, "environment.unfrozen",
                                                           [](EnvironmentProvisioner& p, Request r) {
                                                             p.unfreeze(r);
                                                             return nlohmann::json();
                                                           }}));

  const WebhookNotifier* webhooks = &services.webhooks;
  Action notify;
  notify.run_async = [webhooks](const ActionCall& call, Completion done) {
    const std::string event = call.input.value("event", call.saga_name);
    nlohmann::json payload = {{"saga_id", call.saga_id}};
    if (call.saga_input.contains("workspace_id")) payload["workspace_id"] = workspace_of(call);
    // `data: NAME` adds the saga context's NAME (e.g. the invitations a run expired).
    if (call.input.contains("data")) {
      const std::string field = call.input["data"].get<std::string>();
      payload["data"] = call.context.value(field, nlohmann::json());
    }
    webhooks->deliver(call.executor, event, payload, call.idempotency_key, std::move(done));
  };
  registry.add("webhook.notify", std::move(notify));

  const Machine* machine = &services.machine;
  registry.set_finish_hook([machine](const SagaOutcome& outcome, pqxx::work& tx) {
    apply_outcome(tx, *machine, outcome);
    if (outcome.saga_name == "workspace.export" && outcome.state != SagaState::kCompleted &&
        outcome.input.contains("export_id")) {
      pg::exec_cached(tx, "UPDATE wsflow.exports SET status = 'failed', error = $2 WHERE id = $1::uuid",
                      outcome.input["export_id"].get<std::string>(), outcome.error);
    }
  });
}

}  // namespace wsflow::sagas
