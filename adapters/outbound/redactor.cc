#include "adapters/outbound/redactor.h"

#include <algorithm>

#include "engine/template.h"

namespace wsflow {

Redactor::Redactor(const std::map<std::string, std::string>& secrets) {
  for (const auto& [name, value] : secrets) {
    if (value.empty()) continue;
    replacements_.emplace_back(value, "[secret:" + name + "]");
    if (std::string encoded = percent_encode(value); encoded != value) {
      replacements_.emplace_back(std::move(encoded), "[secret:" + name + "]");
    }
  }
  // A secret that contains another is replaced whole first.
  std::sort(replacements_.begin(), replacements_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

std::string Redactor::operator()(std::string text) const {
  for (const auto& [value, mask] : replacements_) {
    for (std::size_t at = text.find(value); at != std::string::npos; at = text.find(value, at + mask.size())) {
      text.replace(at, value.size(), mask);
    }
  }
  return text;
}

nlohmann::json Redactor::json(const nlohmann::json& value) const {
  if (value.is_string()) return (*this)(value.get<std::string>());
  if (value.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : value) out.push_back(json(item));
    return out;
  }
  if (value.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, item] : value.items()) out[(*this)(key)] = json(item);
    return out;
  }
  return value;
}

}  // namespace wsflow
