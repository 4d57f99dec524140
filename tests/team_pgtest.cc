// The team rules (sagas/team.h) against a real Postgres, with a ManualClock
// moving the database's now: invitations expire at exactly 7 days, resend
// kills the old token, plan limits count pending invitations, one owner.

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "engine/clock.h"
#include "engine/sha256.h"
#include "sagas/team.h"
#include "tests/support/test_cluster.h"

namespace wsflow {
namespace {

using namespace std::chrono;
using json = nlohmann::json;

class TeamTest : public ::testing::Test {
 protected:
  std::string dsn_ = testing::fresh_database();
  pqxx::connection conn_{dsn_};
  ManualClock clock_;
  const sagas::Caller owner_{"user:owner", "owner", "owner"};

  // A workspace on `plan` with its owner; returns its id.
  std::string workspace(const std::string& plan, const std::string& status = "active") {
    pqxx::work tx(conn_);
    const std::string id = tx.exec("SELECT gen_random_uuid()::text")[0][0].as<std::string>();
    tx.exec_params("INSERT INTO wsflow.workspaces (id, name, plan, status) VALUES ($1::uuid, 'w', $2, $3)", id, plan,
                   status);
    tx.exec_params(
        "INSERT INTO wsflow.members (workspace_id, user_id, email, role) VALUES ($1::uuid, 'owner', "
        "'owner@example.com', 'owner')",
        id);
    tx.commit();
    return id;
  }

  // Runs `f` in a transaction that commits when it returns.
  template <class F>
  auto in_tx(F f) {
    pqxx::work tx(conn_);
    auto result = f(tx);
    tx.commit();
    return result;
  }

  sagas::IssuedInvitation invite(const std::string& ws, const std::string& email, const std::string& plan = "pro") {
    return in_tx([&](pqxx::work& tx) { return sagas::invite(tx, ws, plan, email, "member", owner_, clock_.offset()); });
  }
  sagas::AcceptedInvitation accept(const std::string& token, const std::string& user) {
    return in_tx([&](pqxx::work& tx) { return sagas::accept_invitation(tx, token, user, clock_.offset()); });
  }
  int expire() {
    return static_cast<int>(
        in_tx([&](pqxx::work& tx) { return sagas::expire_due_invitations(tx, 3, clock_.offset()); }).size());
  }
  std::string state_of(const std::string& invitation_id) {
    pqxx::read_transaction tx(conn_);
    return tx.exec_params("SELECT state FROM wsflow.invitations WHERE id = $1::uuid", invitation_id)[0][0]
        .as<std::string>();
  }
  long long scalar(const std::string& sql) {
    pqxx::read_transaction tx(conn_);
    return tx.exec(sql)[0][0].as<long long>();
  }
  // The DomainError code `f` throws ("" when it does not throw).
  template <class F>
  std::string refusal(F f) {
    try {
      in_tx([&](pqxx::work& tx) {
        f(tx);
        return 0;
      });
    } catch (const sagas::DomainError& e) {
      return std::to_string(e.status) + " " + e.code;
    }
    return "";
  }
};

TEST_F(TeamTest, InvitationExpiresAtExactlySevenDays) {
  const std::string ws = workspace("pro");
  const auto invitation = invite(ws, "ada@example.com");
  EXPECT_EQ(invitation.invitation["state"], "pending");
  EXPECT_EQ(invitation.token.rfind("wsi_", 0), 0u);
  EXPECT_EQ(scalar("SELECT count(*) FROM wsflow.invitations WHERE token_hash = '" + sha256_hex(invitation.token) + "'"),
            1);  // stored as its hash only
  EXPECT_EQ(scalar("SELECT count(*) FROM wsflow.invitations WHERE token_hash = '" + invitation.token + "'"), 0);

  clock_.advance(duration_cast<Millis>(sagas::kInvitationValidity) - seconds(2));
  EXPECT_EQ(expire(), 0);
  EXPECT_EQ(state_of(invitation.id), "pending");
  clock_.advance(seconds(3));
  EXPECT_EQ(expire(), 1);
  EXPECT_EQ(state_of(invitation.id), "expired");
  EXPECT_EQ(expire(), 0);  // once
  EXPECT_EQ(scalar("SELECT count(*) FROM wsflow.audit_log WHERE action = 'invitation.expired'"), 1);
  EXPECT_EQ(refusal([&](pqxx::work& tx) { sagas::accept_invitation(tx, invitation.token, "ada", clock_.offset()); }),
            "410 invitation_expired");
}

TEST_F(TeamTest, AnInvitationPastItsTimeCannotBeAcceptedBeforeTheJobRuns) {
  const std::string ws = workspace("pro");
  const auto invitation = invite(ws, "late@example.com");
  clock_.advance(duration_cast<Millis>(sagas::kInvitationValidity) + seconds(1));
  EXPECT_EQ(refusal([&](pqxx::work& tx) { sagas::accept_invitation(tx, invitation.token, "late", clock_.offset()); }),
            "410 invitation_expired");
  EXPECT_EQ(scalar("SELECT count(*) FROM wsflow.members WHERE user_id = 'late'"), 0);
}

TEST_F(TeamTest, ExpiryWorksInBatchesAndLeavesOthersAlone) {
  const std::string ws = workspace("enterprise");
  for (int i = 0; i < 10; ++i) invite(ws, "user" + std::to_string(i) + "@example.com");
  clock_.advance(hours(24));
  const auto fresh = invite(ws, "fresh@example.com");
  clock_.advance(duration_cast<Millis>(sagas::kInvitationValidity) - hours(12));
  EXPECT_EQ(expire(), 10);  // batches of 3, all in one call
  EXPECT_EQ(state_of(fresh.id), "pending");
  EXPECT_EQ(scalar("SELECT count(*) FROM wsflow.audit_log WHERE action = 'invitation.expired'"), 10);
}

TEST_F(TeamTest, ResendIssuesANewTokenAndKillsTheOldOne) {
  const std::string ws = workspace("pro");
  const auto first = invite(ws, "bo@example.com");
  clock_.advance(hours(24 * 6));
  const auto resent =
      in_tx([&](pqxx::work& tx) { return sagas::resend_invitation(tx, ws, "pro", first.id, owner_, clock_.offset()); });
  EXPECT_EQ(resent.id, first.id);
  EXPECT_NE(resent.token, first.token);
  EXPECT_EQ(refusal([&](pqxx::work& tx) { sagas::accept_invitation(tx, first.token, "bo", clock_.offset()); }),
            "404 invitation_not_found");
  clock_.advance(hours(24 * 6));  // 12 days after the first send, 6 after the resend
  EXPECT_EQ(expire(), 0);
  const auto accepted = accept(resent.token, "bo");
  EXPECT_EQ(accepted.member["role"], "member");
  EXPECT_EQ(state_of(first.id), "accepted");
  EXPECT_EQ(refusal([&](pqxx::work& tx) { sagas::accept_invitation(tx, resent.token, "bo2", clock_.offset()); }),
            "409 invitation_not_pending");  // single use
}

TEST_F(TeamTest, ResendRevivesAnExpiredInvitation) {
  const std::string ws = workspace("pro");
  const auto first = invite(ws, "cy@example.com");
  clock_.advance(duration_cast<Millis>(sagas::kInvitationValidity) + minutes(1));
  expire();
  const auto resent =
      in_tx([&](pqxx::work& tx) { return sagas::resend_invitation(tx, ws, "pro", first.id, owner_, clock_.offset()); });
  EXPECT_EQ(resent.invitation["state"], "pending");
  accept(resent.token, "cy");
  EXPECT_EQ(
      refusal([&](pqxx::work& tx) { sagas::resend_invitation(tx, ws, "pro", first.id, owner_, clock_.offset()); }),
      "409 invitation_not_resendable");
}

TEST_F(TeamTest, DeclineAndCancelEndAnInvitationForGood) {
  const std::string ws = workspace("pro");
  const auto declined = invite(ws, "no@example.com");
  in_tx([&](pqxx::work& tx) { return sagas::decline_invitation(tx, declined.token, clock_.offset()); });
  EXPECT_EQ(state_of(declined.id), "declined");
  EXPECT_EQ(refusal([&](pqxx::work& tx) { sagas::accept_invitation(tx, declined.token, "no", clock_.offset()); }),
            "409 invitation_not_pending");
  const auto cancelled = invite(ws, "gone@example.com");
  in_tx([&](pqxx::work& tx) { return sagas::cancel_invitation(tx, ws, cancelled.id, owner_); });
  EXPECT_EQ(refusal([&](pqxx::work& tx) { sagas::accept_invitation(tx, cancelled.token, "gone", clock_.offset()); }),
            "409 invitation_not_pending");
  EXPECT_EQ(scalar("SELECT count(*) FROM wsflow.members"), 1);  // only the owner, never a member
}

TEST_F(TeamTest, PlanLimitsCountPendingInvitations) {
  const std::string free_ws = workspace("free");
  EXPECT_EQ(refusal([&](pqxx::work& tx) {
              sagas::invite(tx, free_ws, "free", "a@example.com", "member", owner_, clock_.offset());
            }),
            "409 plan_limit");  // free: the owner only
  const std::string ws = workspace("starter");
  std::vector<sagas::IssuedInvitation> pending;
  for (int i = 0; i < 4; ++i) pending.push_back(invite(ws, "s" + std::to_string(i) + "@example.com", "starter"));
  try {
    in_tx([&](pqxx::work& tx) {
      return sagas::invite(tx, ws, "starter", "sixth@example.com", "member", owner_, clock_.offset());
    });
    ADD_FAILURE() << "a sixth seat on starter";
  } catch (const sagas::DomainError& e) {
    EXPECT_EQ(e.code, "plan_limit");
    EXPECT_EQ(e.details, (json{{"plan", "starter"}, {"limit", 5}, {"count", 5}}));
  }
  // A downgrade below the seats taken is refused with the figures; cancelling frees a seat.
  EXPECT_EQ(refusal([&](pqxx::work& tx) { sagas::check_plan_change(tx, ws, "free", clock_.offset()); }),
            "409 plan_limit");
  in_tx([&](pqxx::work& tx) { return sagas::cancel_invitation(tx, ws, pending[0].id, owner_); });
  invite(ws, "sixth@example.com", "starter");
  // An invitation past its time holds no seat.
  clock_.advance(duration_cast<Millis>(sagas::kInvitationValidity) + seconds(1));
  EXPECT_EQ(refusal([&](pqxx::work& tx) { sagas::check_plan_change(tx, ws, "free", clock_.offset()); }), "");
}

TEST_F(TeamTest, ExactlyOneOwnerThroughTransfer) {
  const std::string ws = workspace("pro");
  accept(invite(ws, "admin@example.com").token, "admin");
  const json owner = in_tx([&](pqxx::work& tx) { return sagas::transfer_ownership(tx, ws, "admin", owner_); });
  EXPECT_EQ(owner["user_id"], "admin");
  EXPECT_EQ(scalar("SELECT count(*) FROM wsflow.members WHERE role = 'owner' AND workspace_id = '" + ws + "'"), 1);
  EXPECT_EQ(scalar("SELECT count(*) FROM wsflow.members WHERE role = 'admin' AND user_id = 'owner'"), 1);
  // The database itself refuses a second owner.
  EXPECT_THROW(in_tx([&](pqxx::work& tx) {
                 return tx.exec_params("UPDATE wsflow.members SET role = 'owner' WHERE user_id = 'owner'").size();
               }),
               pqxx::unique_violation);
}

TEST_F(TeamTest, RolesAndRemovalFollowTheMatrix) {
  const std::string ws = workspace("pro");
  accept(invite(ws, "adm@example.com").token, "adm");
  in_tx([&](pqxx::work& tx) { return sagas::change_role(tx, ws, "adm", "admin", owner_); });
  const sagas::Caller as_admin{"user:adm", "adm", "admin"};
  EXPECT_EQ(refusal([&](pqxx::work& tx) { sagas::change_role(tx, ws, "owner", "member", as_admin); }), "403 forbidden");
  EXPECT_EQ(refusal([&](pqxx::work& tx) { sagas::change_role(tx, ws, "adm", "owner", owner_); }), "403 forbidden");
  EXPECT_EQ(refusal([&](pqxx::work& tx) { sagas::change_role(tx, ws, "owner", "admin", owner_); }), "409 owner_role");
  EXPECT_EQ(refusal([&](pqxx::work& tx) { sagas::remove_member(tx, ws, "owner", as_admin); }), "403 forbidden");
  EXPECT_EQ(refusal([&](pqxx::work& tx) { sagas::remove_member(tx, ws, "owner", owner_); }), "409 owner_cannot_leave");
  EXPECT_EQ(refusal([&](pqxx::work& tx) { sagas::remove_member(tx, ws, "nobody", owner_); }), "404 member_not_found");
}

}  // namespace
}  // namespace wsflow
