#pragma once
// A refusal by a rule (a domain rule, an operator command the lifecycle
// forbids), which the API turns into an HTTP error:
// {"error":{"code","message","field", …details}} with `status`.

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace wsflow {

class DomainError : public std::runtime_error {
 public:
  DomainError(int status, std::string code, const std::string& message, std::string field = "",
              nlohmann::json details = nlohmann::json::object())
      : std::runtime_error(message),
        status(status),
        code(std::move(code)),
        field(std::move(field)),
        details(std::move(details)) {}
  int status;              // 400, 403, 404, 409, 410
  std::string code;        // e.g. plan_limit, invitation_expired, invalid_transition
  std::string field;       // the request field at fault, when there is one
  nlohmann::json details;  // figures the client can act on (plan_limit: plan, limit, count)
};

}  // namespace wsflow
