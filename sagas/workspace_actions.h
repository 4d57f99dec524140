#pragma once
// The workspace domain's actions (what the steps in definitions/workspace.*
// name) and the lifecycle finish hook, registered into the engine's registry.
//
//   workspace.reserve_slug / release_slug   unique URL slug from the name (tx)
//   workspace.record_owner                  the owner member (tx)
//   workspace.remove_members                every member, and so their keys (tx)
//   workspace.revoke_keys                   every API key of the workspace (tx)
//   workspace.mark_offboarded               status offboarded, hard-delete time (tx)
//   workspace.hard_delete                   erases the workspace's rows and archives (tx)
//   workspace.set_plan                      the plan in the saga input, if the members fit it (tx)
//   invitations.expire                      every invitation past its 7 days, in batches (tx)
//   workspace.clear_offboarded              undoes mark_offboarded: the offboarding is over (tx)
//   environment.provision / deprovision     a schema + role per environment (provisioner); the
//                                           environment's row shows provisioning/active/failed,
//                                           deprovisioning/deleted as it happens
//   environment.freeze / unfreeze           the environment's data read-only / writable again
//   export.write                            one .tar.gz per export: metadata, a pg_dump per environment,
//                                           manifest.json with SHA-256s (blocking; streamed)
//   export.expire                           deletes one export's archive after its retention (tx)
//   export.remove_all                       every archive of the workspace (tx)
//   webhook.notify                          the lifecycle event to the webhooks
//
// Every action is idempotent under its step's idempotency key.

#include <filesystem>

#include "adapters/postgres/connection_pool.h"
#include "adapters/provisioner/environment_provisioner.h"
#include "adapters/webhook/webhook_notifier.h"
#include "engine/action_registry.h"
#include "engine/clock.h"
#include "sagas/machine.h"

namespace wsflow::sagas {

// Everything the actions reach. Must outlive the registry's use.
struct DomainServices {
  EnvironmentProvisioner& provisioner;
  pg::ConnectionPool& db;  // the wsflow database, for blocking actions' own writes
  const WebhookNotifier& webhooks;
  std::filesystem::path export_dir;
  std::string environments_dsn;  // the database holding the environments' schemas (dumped into exports)
  const Machine& machine;
  const Clock& clock;  // moves the database's now for time-based rules (invitation expiry)
};

void register_workspace_actions(ActionRegistry& registry, const DomainServices& services);

// The action names register_workspace_actions adds (for validating
// definitions without building the services).
const std::vector<std::string>& workspace_action_names();

// "Acme Corp!" -> "acme-corp"; never empty ("workspace" when nothing is left).
std::string slugify(const std::string& name);

}  // namespace wsflow::sagas
