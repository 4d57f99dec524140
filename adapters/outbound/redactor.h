#pragma once
// Keeps secrets' values out of everything wsflow stores or prints about a
// request (errors, response bodies, outputs): each value, as written and
// percent-encoded, becomes `[secret:NAME]`. Immutable once built, so shared
// across threads freely.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace wsflow {

class Redactor {
 public:
  explicit Redactor(const std::map<std::string, std::string>& secrets);

  std::string operator()(std::string text) const;
  // Every string of a JSON document (object keys included).
  nlohmann::json json(const nlohmann::json& value) const;

 private:
  std::vector<std::pair<std::string, std::string>> replacements_;  // value -> [secret:NAME], longest first
};

}  // namespace wsflow
