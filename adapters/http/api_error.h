#pragma once
// An error the API answers with {"error":{"code","message","field"}} and the
// given HTTP status.

#include <stdexcept>
#include <string>

namespace wsflow::http {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string code, const std::string& message, std::string field = "")
      : std::runtime_error(message), status(status), code(std::move(code)), field(std::move(field)) {}
  int status;
  std::string code;
  std::string field;  // the offending request field, when there is one
};

}  // namespace wsflow::http
