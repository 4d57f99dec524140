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

#include <boost/asio/awaitable.hpp>
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

struct Runtime {
  Runtime(Store& s, const ActionRegistry& a, EngineOptions o)
      : store(s),
        actions(a),
        options(std::move(o)),
        pool(static_cast<std::size_t>(options.blocking_threads)),
        action_pool(static_cast<std::size_t>(options.blocking_threads)) {}

  Store& store;
  const ActionRegistry& actions;
  EngineOptions options;
  asio::io_context io;
  asio::thread_pool pool;         // the engine's own database calls
  asio::thread_pool action_pool;  // blocking actions: a hung one must not stall the engine's commits
  bool stopping = false;
  std::set<asio::steady_timer*> sleepers;  // backoff sleeps, cut short by stop()
  std::mt19937_64 rng;
  std::map<std::string, std::shared_ptr<const SagaDefinition>> definitions;  // by hash
  std::function<void(Millis)> wake_after;  // ask the poller to look again after a delay

  // Runs `f` on the blocking pool and resumes the caller on the io thread with
  // its result, or rethrows its exception there.
  template <class F>
  asio::awaitable<std::invoke_result_t<F>> on_pool(F f) {
    using R = std::invoke_result_t<F>;
    static_assert(!std::is_void_v<R>, "on_pool needs a value-returning function");
    asio::steady_timer done(io, asio::steady_timer::time_point::max());
    std::optional<R> result;
    std::exception_ptr error;
    bool finished = false;  // touched on the io thread only
    asio::post(pool, [&] {
      try {
        result.emplace(f());
      } catch (...) {
        error = std::current_exception();
      }
      asio::post(io, [&] {
        finished = true;
        done.cancel();
      });
    });
    boost::system::error_code ec;
    while (!finished) co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (error) std::rethrow_exception(error);
    co_return std::move(*result);
  }

  // Sleeps on the io thread; returns false if stop() cut the sleep short.
  asio::awaitable<bool> sleep(Millis delay) {
    asio::steady_timer timer(io, delay);
    sleepers.insert(&timer);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    sleepers.erase(&timer);
    co_return !stopping;
  }
};

}  // namespace wsflow::detail
