#pragma once
// The CLI's side of the HTTP API: JSON requests with the operator's key,
// and the API's errors turned into messages and exit codes scripts can use.

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace wsflow::app {

// Exit codes of the `wsflow sagas|workspaces` commands.
enum ExitCode {
  kOk = 0,
  kRefused = 1,       // the API refused the request (400, 409, …): the message says why
  kNotFound = 3,      // no such saga or workspace
  kUnauthorized = 4,  // no key, a wrong key, or a key without the scope
  kUnreachable = 5,   // no server at --url, or it failed (5xx)
};

// A request that did not succeed: what to print and which code to exit with.
class CliError : public std::runtime_error {
 public:
  CliError(int exit_code, const std::string& message) : std::runtime_error(message), exit_code(exit_code) {}
  int exit_code;
};

class ApiClient {
 public:
  // `url` like http://127.0.0.1:8080; `key` the bearer key (may be empty:
  // the server then answers 401, reported as such).
  ApiClient(std::string url, std::string key);

  // The response body of a 2xx; throws CliError otherwise.
  nlohmann::json get(const std::string& path_and_query) const;
  nlohmann::json post(const std::string& path, const nlohmann::json& body) const;

  // Every item of a paginated list (following next_cursor), up to `max_items`.
  nlohmann::json get_all(const std::string& path, const std::string& query, std::size_t max_items) const;

 private:
  nlohmann::json request(const std::string& method, const std::string& path, const std::string& body) const;

  std::string url_;
  std::string key_;
};

// `text` percent-encoded for a path segment or a query value (cpp-httplib's encoder).
std::string url_encode(const std::string& text);

}  // namespace wsflow::app
