#include "engine/engine.h"

#include <unistd.h>

#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include "engine/log.h"
#include "engine/runtime.h"
#include "engine/saga_run.h"

namespace wsflow {

namespace asio = boost::asio;

struct Engine::Impl {
  static constexpr int kClaimChunk = 64;  // sagas per claim, at most

  Impl(Store& store, const ActionRegistry& actions, EngineOptions options)
      : rt(store, actions, std::move(options)),
        poll_timer(rt.io),
        local_wake_timer(rt.io),
        heartbeat_timer(rt.io),
        share_timer(rt.io),
        grace_timer(rt.io) {
    if (rt.options.owner.empty()) {
      char host[256] = {0};
      gethostname(host, sizeof host - 1);
      rt.options.owner =
          std::string(host) + "/" + std::to_string(getpid()) + "/" + std::to_string(std::random_device{}() & 0xffffff);
    }
    rt.rng.seed(rt.options.seed ? rt.options.seed : std::random_device{}());
    rt.wake_at = [this](std::chrono::steady_clock::time_point at) { wake_at(at); };
    rt.on_parked = [this] { wake_if_refilled(); };
  }

  detail::Runtime rt;
  asio::steady_timer poll_timer;  // the poller sleeps on it; wake() cancels it
  // The earliest wake-up a saga released by this process asked for. One
  // timer, however many sagas wait: when it fires, the poller finds the next
  // due time in the database.
  asio::steady_timer local_wake_timer;
  std::optional<std::chrono::steady_clock::time_point> local_wake_at;
  asio::steady_timer heartbeat_timer;
  asio::steady_timer share_timer;
  asio::steady_timer grace_timer;  // bounds shutdown
  bool poll_requested = false;
  bool claim_in_flight = false;
  bool finished = false;
  // A lease this engine holds, and when it last started or was renewed (on
  // this process's clock, before the claim or renewal was sent, so never
  // later than the database's start of it).
  struct HeldLease {
    std::string saga_id;
    std::chrono::steady_clock::time_point since;
  };
  std::map<std::string, HeldLease> active;  // lease token -> lease, for sagas being driven
  int active_below_high = 0;                // of them, sagas of normal or low priority

  void wake_now() {
    poll_requested = true;
    poll_timer.cancel();
  }

  // The poller looks again when `at`, a saga's wake time, is claim_ahead away.
  void wake_at(std::chrono::steady_clock::time_point due) {
    const auto at = due - rt.options.claim_ahead;
    if (local_wake_at && *local_wake_at <= at) return;  // an earlier wake-up will find this one's time
    local_wake_at = at;
    local_wake_timer.expires_at(at);  // a later wait it replaces ends with operation_aborted
    local_wake_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      local_wake_at.reset();
      if (!rt.stopping) wake_now();
    });
  }

  void count_error(const std::string& what) {
    if (rt.options.events.engine_error) rt.options.events.engine_error(what);
  }
  void report_error(const std::string& what) {
    log_warn(what);
    count_error(what);
  }

  // Claims what is due while there is room, then sleeps until the earliest
  // due time the database knows of (another process's timers and retries
  // included), at most a poll, or until woken (NOTIFY, a local timer, a
  // saga finishing when the engine, or its room for sagas below high
  // priority, was full).
  asio::awaitable<void> poller() {
    while (!rt.stopping) {
      // At most kClaimChunk at a time: a claim (and the reads of what it
      // leased) grows with its size, and a high-priority saga that arrives
      // meanwhile waits for it; a cold start before a large backlog would
      // otherwise make it wait for hundreds of sagas' reads.
      const int free = std::min(room(), kClaimChunk);
      const int free_below_high = std::clamp(room_for_normal(), 0, std::max(free, 0));
      Millis sleep = rt.options.poll_interval;
      if (free > 0) {
        try {
          claim_in_flight = true;
          const auto asked_at = std::chrono::steady_clock::now();
          ClaimResult found = co_await rt.on_pool([&] { return rt.store.claim(claim_request(free, free_below_high)); });
          claim_in_flight = false;
          if (rt.options.events.claim_ran) {
            rt.options.events.claim_ran({free, free_below_high, static_cast<int>(found.sagas.size())});
          }
          if (active.empty() && !found.sagas.empty()) share_timer.expires_after(kShareAfterStart);
          int found_below_high = 0;
          for (ClaimedSaga& claimed : found.sagas) {
            active.emplace(claimed.claim.lease_token, HeldLease{claimed.claim.saga_id, asked_at});
            if (claimed.priority != Priority::kHigh) {
              ++found_below_high;
              ++active_below_high;
            }
            asio::co_spawn(rt.io, drive(std::move(claimed)), asio::detached);
          }
          // Maybe more are due: all the room asked for was taken. High
          // priority sagas are claimed again at once; the rest once a
          // refill's worth of room is free (claim_refill): the saga ending
          // or parking that frees it wakes the poller, as does a NOTIFY,
          // and the poll interval bounds the wait. Claiming each few sagas
          // as they end would cost the database a claim's fixed work per few
          // sagas (measured: a claim every 33 to 42 sagas at saturation).
          const int found_high = static_cast<int>(found.sagas.size()) - found_below_high;
          const bool full = static_cast<int>(found.sagas.size()) == free;
          // Normal sagas may still be due when the claim took all it asked of
          // them, or asked none (no room then; room freed while it ran wakes
          // nobody, see wake_if_refilled).
          const bool normal_may_be_due = found_below_high == free_below_high;
          if ((full && found_high > 0) || ((full || normal_may_be_due) && room_for_normal() >= claim_refill())) {
            continue;
          }
          if (found.next_wake_in) sleep = std::clamp(*found.next_wake_in, Millis(0), sleep);
        } catch (const std::exception& e) {
          claim_in_flight = false;
          report_error(std::string("claiming runnable sagas failed: ") + e.what());
        }
      }
      if (poll_requested) {  // a wake-up came while the database answered
        poll_requested = false;
        continue;
      }
      poll_timer.expires_after(sleep);
      boost::system::error_code ec;
      co_await poll_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      poll_requested = false;
    }
  }

  ClaimRequest claim_request(int limit, int below_high) const {
    return {rt.options.owner, rt.options.lease, limit, below_high, rt.options.claim_ahead};
  }

  // How many sagas of normal or low priority may run at once.
  int below_high_capacity() const {
    const int max = rt.options.max_active_sagas;
    return max - std::clamp(rt.options.high_priority_slots, 0, max / 2);
  }
  int room() const { return rt.options.max_active_sagas - static_cast<int>(active.size()); }
  int room_below_high() const { return below_high_capacity() - active_below_high; }
  // Sagas the commit pipeline may take on (EngineOptions::pipeline_per_batch):
  // those driven less those parked in actions and retry sleeps (a saga with
  // several branches in actions counts each: the pipeline is then thought
  // emptier than it is, and max_active_sagas still bounds the claims).
  static constexpr int kNoLimit = 1 << 20;
  int pipeline_capacity() const {
    if (!rt.options.group_commit || rt.options.pipeline_per_batch <= 0) return kNoLimit;
    return (rt.batch_slots() + 1) * rt.options.pipeline_per_batch;
  }
  int pipeline_room() const {
    const int driven = static_cast<int>(active.size());
    return pipeline_capacity() - (driven - std::min(rt.parked, driven));
  }
  // How many sagas below high priority a claim may take.
  int room_for_normal() const { return std::min(room_below_high(), pipeline_room()); }
  // The room a full engine waits for before it claims again: a sixteenth of
  // its sagas (32 of the default 512), or a quarter of its commit pipeline
  // if that is less, at most half a claim, at least one.
  int claim_refill() const {
    return std::clamp(std::min(rt.options.max_active_sagas / 16, pipeline_capacity() / 4), 1, kClaimChunk / 2);
  }
  // A full engine's room just grew to the refill the poller waits for: counted
  // as it crosses (room grows by one saga at a time), so one wake-up. Not
  // while a claim is in flight: the poller looks at the room when it returns,
  // and a wake-up would make it claim again at once, whatever the room.
  void wake_if_refilled() {
    if (rt.stopping || claim_in_flight) return;
    if (room() == claim_refill() || room_for_normal() == claim_refill()) wake_now();
  }

  asio::awaitable<void> drive(ClaimedSaga claimed) {
    const Claim claim = claimed.claim;
    const bool below_high = claimed.priority != Priority::kHigh;
    const std::string token = claim.lease_token;
    const std::string saga_id = claim.saga_id;
    bool give_back = false;  // co_await is not allowed inside a handler
    std::string error;
    try {
      co_await detail::drive_saga(rt, std::move(claimed));
    } catch (const LeaseLost& e) {
      log_warn(e.what(), {saga_id, "", "", "", 0});
    } catch (const std::exception& e) {
      error = e.what();
      count_error("saga " + saga_id + ": " + error);
      log_error("saga " + saga_id + ": " + error + "; will retry in " + format_duration(rt.options.error_backoff),
                {saga_id, "", "", "", 0});
      give_back = true;
    }
    if (give_back) co_await give_back_after_error(claim, error);
    active.erase(token);
    if (below_high) --active_below_high;
    if (rt.stopping) {
      if (active.empty()) co_await finish();
    } else {
      wake_if_refilled();
    }
  }

  // After an unexpected error the saga is released to run again later, with
  // the error recorded for operators; if even that fails (database down), the
  // lease simply expires.
  asio::awaitable<void> give_back_after_error(const Claim& claim, const std::string& error) {
    try {
      Transition t;
      t.saga_error = "engine error (retrying): " + error;
      t.release = true;
      t.release_wake_in = rt.options.error_backoff;
      co_await rt.on_pool([&] { return rt.store.commit(claim, t, nullptr, std::nullopt); });
    } catch (const std::exception& e) {
      log_warn(std::string("could not release saga: ") + e.what(), {claim.saga_id, "", "", "", 0});
    }
  }

  // Every lease/3, the heartbeat renews the leases that would otherwise have
  // half their length or less left by the next one: those that started or
  // were last renewed lease/6 ago or more. A lease so never runs below half
  // its length (it did not below two thirds when every heartbeat renewed
  // every lease), and a saga done within lease/6 of its claim, as nearly all
  // are under load, is never rewritten by a heartbeat: each renewal writes a
  // new version of the saga's row, with an entry in each of its indexes.
  asio::awaitable<void> heartbeat() {
    while (!finished) {
      heartbeat_timer.expires_after(rt.options.lease / 3);
      boost::system::error_code ec;
      co_await heartbeat_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (finished) continue;
      const auto now = std::chrono::steady_clock::now();
      std::vector<Claim> due;
      for (const auto& [token, lease] : active) {
        if (now - lease.since >= rt.options.lease / 6) due.push_back({lease.saga_id, token});
      }
      if (!due.empty()) {
        try {
          const int renewed = co_await rt.on_pool([&] { return rt.store.renew_leases(due, rt.options.lease); });
          for (const Claim& c : due) {
            // A saga that finished meanwhile is gone from `active`.
            if (const auto it = active.find(c.lease_token); it != active.end()) it->second.since = now;
          }
          if (rt.options.events.leases_renewed) rt.options.events.leases_renewed(renewed);
        } catch (const std::exception& e) {
          report_error(std::string("renewing leases failed: ") + e.what());
        }
      }
      co_await refresh_statistics();
    }
  }

  // Every second while it drives sagas, and soon after it starts to, the
  // engine takes its share of the database's commit batches among the
  // engines that hold leases on it.
  static constexpr Millis kShareEvery{1'000};
  static constexpr Millis kShareAfterStart{100};  // the others' claims in a burst have landed by then
  asio::awaitable<void> share_commits() {
    while (!finished) {
      boost::system::error_code ec;
      co_await share_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (finished) break;
      if (ec == asio::error::operation_aborted) continue;  // set to an earlier time
      share_timer.expires_after(kShareEvery);
      if (active.empty()) continue;
      try {
        const int engines = co_await rt.on_pool([&] { return rt.store.engines_holding_leases(); });
        const int share = commit_share(rt.options.commit_batches, engines);
        if (share != rt.commit_window) {
          log_info(std::to_string(engines) + " engine(s) drive sagas on the database: this one now sends " +
                   std::to_string(share) + " of their " + std::to_string(rt.options.commit_batches) +
                   " commit batches at once");
        }
        const bool grew = share > rt.commit_window;
        rt.commit_window = share;
        if (grew && room_for_normal() >= claim_refill()) wake_now();  // a bigger share, a bigger pipeline
      } catch (const std::exception& e) {
        log_warn(std::string("could not count the engines sharing the database: ") + e.what());
      }
    }
  }

  asio::awaitable<void> refresh_statistics() {
    try {
      const auto tables = co_await rt.on_pool([&] { return rt.store.refresh_statistics(); });
      for (const std::string& table : tables) log_info("refreshed the planner statistics of " + table);
    } catch (const std::exception& e) {
      log_warn(std::string("could not refresh planner statistics: ") + e.what(), {});
    }
  }

  void begin_stop() {
    if (rt.stopping) return;
    rt.stopping = true;
    log_info("stopping: " + std::to_string(active.size()) + " saga(s) in flight");
    poll_timer.cancel();
    for (auto* sleeper : rt.sleepers) sleeper->cancel();
    if (active.empty()) {
      asio::co_spawn(rt.io, finish(), asio::detached);
      return;
    }
    grace_timer.expires_after(rt.options.shutdown_grace);
    grace_timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) asio::co_spawn(rt.io, finish(), asio::detached);
    });
  }

  // Database work still running references coroutine frames: it must finish
  // before those frames are destroyed with the io_context. Blocking actions
  // only hold their own copies (and a completion that posts to a stopped
  // io_context), but are joined too so no thread outlives the engine.
  void join_pools() {
    rt.pool.stop();
    rt.pool.join();
    rt.action_pool.stop();
    rt.action_pool.join();
    if (rt.commit_pool) {
      rt.commit_pool->stop();
      rt.commit_pool->join();
    }
  }

  // Gives up every lease still held (so others take over at once) and ends run().
  asio::awaitable<void> finish() {
    if (finished) co_return;
    finished = true;
    grace_timer.cancel();
    heartbeat_timer.cancel();
    share_timer.cancel();
    try {
      co_await rt.on_pool([&] {
        rt.store.release_all(rt.options.owner);
        return true;
      });
    } catch (const std::exception& e) {
      log_warn(std::string("releasing leases at shutdown failed: ") + e.what());
    }
    rt.io.stop();
  }
};

Engine::Engine(Store& store, const ActionRegistry& actions, EngineOptions options)
    : impl_(std::make_unique<Impl>(store, actions, std::move(options))) {}

Engine::~Engine() {
  impl_->rt.io.stop();
  impl_->join_pools();
}

void Engine::run() {
  auto guard = asio::make_work_guard(impl_->rt.io);
  asio::co_spawn(impl_->rt.io, impl_->poller(), asio::detached);
  asio::co_spawn(impl_->rt.io, impl_->heartbeat(), asio::detached);
  impl_->share_timer.expires_after(Impl::kShareEvery);
  asio::co_spawn(impl_->rt.io, impl_->share_commits(), asio::detached);
  log_info("engine " + impl_->rt.options.owner + " running");
  impl_->rt.io.run();
  impl_->join_pools();
  log_info("engine " + impl_->rt.options.owner + " stopped");
}

void Engine::stop() {
  asio::post(impl_->rt.io, [impl = impl_.get()] { impl->begin_stop(); });
}

void Engine::wake() {
  asio::post(impl_->rt.io, [impl = impl_.get()] { impl->wake_now(); });
}

const std::string& Engine::owner() const { return impl_->rt.options.owner; }

}  // namespace wsflow
