#include "engine/action_registry.h"

#include <boost/asio/post.hpp>
#include <stdexcept>

namespace wsflow {

void ActionRegistry::add(const std::string& name, Action action) {
  if (static_cast<bool>(action.run_async) == static_cast<bool>(action.run_in_transaction)) {
    throw std::invalid_argument("action '" + name + "' must set exactly one of run_async and run_in_transaction");
  }
  if (!actions_.emplace(name, std::move(action)).second) {
    throw std::invalid_argument("action '" + name + "' is already registered");
  }
}

const Action* ActionRegistry::find(const std::string& name) const {
  auto it = actions_.find(name);
  return it == actions_.end() ? nullptr : &it->second;
}

std::vector<std::string> ActionRegistry::names() const {
  std::vector<std::string> result;
  for (const auto& [name, action] : actions_) result.push_back(name);
  return result;
}

Action blocking_action(std::function<ActionResult(const ActionCall&)> fn) {
  Action action;
  action.run_async = [fn = std::move(fn)](const ActionCall& call, Completion done) {
    boost::asio::post(call.blocking_executor, [fn, call, done = std::move(done)] {
      ActionResult result;
      try {
        result = fn(call);
      } catch (const ActionFailure& e) {
        result = ActionResult::failure(e.error().code, e.error().message, e.error().retryable);
        result.error.retry_after = e.error().retry_after;
      } catch (const std::exception& e) {
        result = ActionResult::failure("exception", e.what());
      }
      done(std::move(result));
    });
  };
  return action;
}

}  // namespace wsflow
