#pragma once
// Internal to the engine: the state one process's executor shares between its
// poller and the sagas it drives, and the two awaitable primitives everything
// is built from. Threading: the io_context runs on exactly one thread, so
// everything here except `pool` work is touched by that thread only.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <utility>

#include <algorithm>
#include <boost/asio/awaitable.hpp>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <type_traits>

#include "engine/action_registry.h"
#include "engine/definition.h"
#include "engine/engine_options.h"
#include "engine/store.h"

namespace wsflow::detail {

namespace asio = boost::asio;

// Something that happens once, on the io thread: the coroutines there that
// wait() for it go on once set() is called (io thread only), and a wait()
// after that returns at once. The waiters must not outlive it.
class IoEvent {
 public:
  explicit IoEvent(asio::io_context& io) : timer_(io, asio::steady_timer::time_point::max()) {}
  void set() {
    set_ = true;
    timer_.cancel();
  }
  asio::awaitable<void> wait() {
    boost::system::error_code ec;
    while (!set_) co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

 private:
  asio::steady_timer timer_;  // never expires: set() cancels its waits
  bool set_ = false;
};

struct Runtime {
  Runtime(Store& s, const ActionRegistry& a, EngineOptions o)
      : store(s),
        actions(a),
        options(std::move(o)),
        pool(static_cast<std::size_t>(options.blocking_threads)),
        action_pool(static_cast<std::size_t>(options.blocking_threads)) {
    if (!options.group_commit) commit_pool.emplace(static_cast<std::size_t>(options.commit_threads));
  }

  Store& store;
  const ActionRegistry& actions;
  EngineOptions options;
  // Sagas' actions that have run a few milliseconds, and retry sleeps
  // (ParkedSaga): what the engine drives that waits on neither a commit nor
  // the engine. Before `io`, whose destruction ends the coroutines that
  // count it.
  int parked = 0;
  std::function<void()> on_parked;  // the count just grew
  asio::io_context io;
  asio::thread_pool pool;         // the engine's own database calls
  asio::thread_pool action_pool;  // blocking actions: a hung one must not stall the engine's commits
  // Group commit off only: the transitions' own commits (EngineOptions::commit_threads).
  std::optional<asio::thread_pool> commit_pool;
  bool stopping = false;
  // This engine's share of the database's commit batches (io thread only;
  // EngineOptions::commit_batches until the engine has counted the others).
  int commit_window = options.commit_batches;
  std::set<asio::steady_timer*> sleepers;  // backoff sleeps, cut short by stop()
  std::mt19937_64 rng;
  std::map<std::string, std::shared_ptr<const SagaDefinition>> definitions;  // by hash
  // A stored definition version being read and parsed (saga_run.cc,
  // definition_for): the sagas that need it meanwhile wait for this one read
  // rather than each making its own.
  struct DefinitionLoad {
    explicit DefinitionLoad(asio::io_context& io) : done(io) {}
    IoEvent done;
    std::shared_ptr<const SagaDefinition> definition;  // when done without error
    std::exception_ptr error;
  };
  std::map<std::string, std::shared_ptr<DefinitionLoad>> definitions_loading;  // by hash
  // Asks the poller to look again at this time: a saga released to wake later
  // aims it at its own due time.
  std::function<void(std::chrono::steady_clock::time_point)> wake_at;

  // Runs `f` on the blocking pool and resumes the caller on the io thread with
  // its result, or rethrows its exception there.
  template <class F>
  asio::awaitable<std::invoke_result_t<F>> on_pool(F f) {
    return on(pool, std::move(f));
  }

  // The same on the given pool.
  template <class F>
  asio::awaitable<std::invoke_result_t<F>> on(asio::thread_pool& threads, F f) {
    using R = std::invoke_result_t<F>;
    static_assert(!std::is_void_v<R>, "on() needs a value-returning function");
    IoEvent done(io);
    std::optional<R> result;
    std::exception_ptr error;
    asio::post(threads, [&] {
      try {
        result.emplace(f());
      } catch (...) {
        error = std::current_exception();
      }
      asio::post(io, [&] { done.set(); });
    });
    co_await done.wait();
    if (error) std::rethrow_exception(error);
    co_return std::move(*result);
  }

  // Group commit: commits without an in-transaction action queue here and are
  // written in batches (Store::commit_batch), so that when several sagas are
  // ready at once they share one database transaction. A batch starts as soon
  // as a pool thread is free; whatever queued meanwhile goes into the next.
  // A high-priority saga's commits go first, and never wait for a batch in
  // flight: when every batch slot is taken, they start one more batch of
  // their own (on the pool thread otherwise kept for claims), so a backlog's
  // large batches do not delay the sagas a user waits on.
  asio::awaitable<CommitResult> group_commit(const Claim& claim, Transition transition, Priority priority) {
    QueuedCommit queued{{claim, std::move(transition)}, {}, {}, IoEvent(io)};
    (priority == Priority::kHigh ? urgent_queue : commit_queue).push_back(&queued);
    start_batches();
    co_await queued.done.wait();
    if (queued.error) std::rethrow_exception(queued.error);
    co_return queued.result;
  }

  // Batches this engine sends at once: its share, less the pool thread kept
  // for claims, loads and in-transaction commits.
  int batch_slots() const { return std::max(1, std::min(commit_window, options.blocking_threads - 1)); }

  // Sleeps on the io thread, the saga counted as parked meanwhile; returns
  // false if stop() cut the sleep short.
  asio::awaitable<bool> sleep_until(std::chrono::steady_clock::time_point at);
  asio::awaitable<bool> sleep(Millis delay) { return sleep_until(std::chrono::steady_clock::now() + delay); }

 private:
  struct QueuedCommit {
    Store::BatchItem item;
    CommitResult result;
    std::exception_ptr error;
    IoEvent done;  // set once result or error is
  };
  static constexpr std::size_t kMaxBatch = 128;

  void start_batches() {
    // An urgent batch may borrow the pool thread batch_slots() leaves.
    const int max_in_flight = batch_slots();
    for (;;) {
      const bool room = batches_in_flight < max_in_flight;
      const bool urgent_room = !urgent_queue.empty() && batches_in_flight <= max_in_flight;
      if (!urgent_room && !(room && !commit_queue.empty())) return;
      auto batch = std::make_shared<std::vector<QueuedCommit*>>();
      auto items = std::make_shared<std::vector<Store::BatchItem>>();
      take_into(urgent_queue, *batch, *items);
      if (room) take_into(commit_queue, *batch, *items);
      ++batches_in_flight;
      asio::post(pool, [this, batch, items] {
        std::vector<Store::BatchOutcome> outcomes;
        try {
          outcomes = store.commit_batch(*items);
        } catch (...) {
          outcomes.assign(items->size(), Store::BatchOutcome{{}, std::current_exception()});
        }
        asio::post(io, [this, batch, outcomes = std::move(outcomes)] {
          for (std::size_t i = 0; i < batch->size(); ++i) {
            QueuedCommit& queued = *(*batch)[i];
            queued.result = outcomes[i].result;
            queued.error = outcomes[i].error;
            queued.done.set();
          }
          --batches_in_flight;
          start_batches();
        });
      });
    }
  }

  // Moves queued commits into a batch, oldest first, up to kMaxBatch in all;
  // the item is the batch's to read from here on.
  static void take_into(std::deque<QueuedCommit*>& queue, std::vector<QueuedCommit*>& batch,
                        std::vector<Store::BatchItem>& items) {
    while (!queue.empty() && batch.size() < kMaxBatch) {
      batch.push_back(queue.front());
      items.push_back(std::move(queue.front()->item));
      queue.pop_front();
    }
  }

  // io thread only
  std::deque<QueuedCommit*> urgent_queue;  // high-priority sagas' commits
  std::deque<QueuedCommit*> commit_queue;  // the others'
  int batches_in_flight = 0;
};

// Counts a saga as parked (Runtime::parked) for its lifetime: held across a
// retry's sleep, and across an action's await once the action has run a few
// milliseconds (saga_run.cc, kParkAfter).
class ParkedSaga {
 public:
  explicit ParkedSaga(Runtime& rt) : rt_(rt) {
    ++rt_.parked;
    if (rt_.on_parked) rt_.on_parked();
  }
  ~ParkedSaga() { --rt_.parked; }
  ParkedSaga(const ParkedSaga&) = delete;
  ParkedSaga& operator=(const ParkedSaga&) = delete;

 private:
  Runtime& rt_;
};

inline asio::awaitable<bool> Runtime::sleep_until(std::chrono::steady_clock::time_point at) {
  if (stopping) co_return false;  // stop() cancels only the sleeps it finds
  ParkedSaga parked(*this);
  asio::steady_timer timer(io, at);
  sleepers.insert(&timer);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  sleepers.erase(&timer);
  co_return !stopping;
}

}  // namespace wsflow::detail
