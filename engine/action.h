#pragma once
// What a step calls. An action is either asynchronous (it reports its result
// through a completion callback, from any thread, and may take as long as it
// likes: the engine abandons it at the attempt's timeout) or transactional (it
// runs inside the Postgres transaction that commits the step, so its database
// effect is exactly-once).
//
// Error contract: every failure carries a code and says whether it may be
// retried; the engine decides retry vs compensate from that and the step's
// retry policy alone. An exception thrown by an action counts as a retryable
// failure with code "exception".

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <nlohmann/json.hpp>
#include <pqxx/transaction>

namespace wsflow {

struct ActionError {
  std::string code;
  std::string message;
  bool retryable = true;
  // The service asked to be retried after this long (HTTP Retry-After): the
  // next attempt waits that long instead of the backoff, capped by the
  // retry policy's `max`.
  std::optional<std::chrono::milliseconds> retry_after;
};

// Thrown by a blocking action (or what it calls) to fail with a code and a
// retryable flag of its own; blocking_action turns it into the failure.
class ActionFailure : public std::runtime_error {
 public:
  explicit ActionFailure(ActionError error) : std::runtime_error(error.message), error_(std::move(error)) {}
  const ActionError& error() const { return error_; }

 private:
  ActionError error_;
};

struct ActionResult {
  bool ok = true;
  nlohmann::json output = nlohmann::json::object();           // stored with the step
  nlohmann::json context_updates = nlohmann::json::object();  // merged (top level) into the saga context
  ActionError error;
  // What operators see of the attempt, success or not, in its event (e.g.
  // an HTTP response's status and body). Never a secret.
  nlohmann::json detail = nlohmann::json::object();

  static ActionResult success(nlohmann::json output = nlohmann::json::object(),
                              nlohmann::json context_updates = nlohmann::json::object()) {
    return {true, std::move(output), std::move(context_updates), {}, nlohmann::json::object()};
  }
  static ActionResult failure(std::string code, std::string message, bool retryable = true) {
    return {false,
            nlohmann::json::object(),
            nlohmann::json::object(),
            {std::move(code), std::move(message), retryable, std::nullopt},
            nlohmann::json::object()};
  }
};

struct ActionCall {
  std::string saga_id;
  std::string saga_name;
  std::string step;
  std::string branch;                              // the for_each item, empty outside for_each
  std::string idempotency_key;                     // saga_id/step/branch; the action must be idempotent under it
  int attempt = 1;                                 // 1-based, counted durably across restarts
  bool compensating = false;                       // true when called as a compensation
  nlohmann::json input;                            // the step's static `input:` from the definition
  nlohmann::json saga_input;                       // the saga's input
  nlohmann::json context;                          // the saga context as committed before this attempt
  nlohmann::json step_output;                      // compensating: what the step (branch) recorded as output
  std::chrono::system_clock::time_point deadline;  // this attempt is abandoned past it
  boost::asio::any_io_executor executor;           // the engine's event loop, for timers and async I/O
  boost::asio::any_io_executor blocking_executor;  // a pool where blocking work may run
};

using Completion = std::function<void(ActionResult)>;

struct Action {
  // Exactly one of these is set.
  // Asynchronous: must call `done` once (later calls are ignored).
  std::function<void(const ActionCall&, Completion done)> run_async;
  // Transactional: runs inside the step's commit transaction; a failure
  // result rolls back everything it wrote.
  std::function<ActionResult(const ActionCall&, pqxx::work&)> run_in_transaction;
};

// An asynchronous action from a blocking function: it runs on the call's
// blocking_executor so it never stalls the event loop.
Action blocking_action(std::function<ActionResult(const ActionCall&)> fn);

}  // namespace wsflow
