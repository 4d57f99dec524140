#include "adapters/outbound/runtime_values.h"

#include <filesystem>
#include <regex>
#include <stdexcept>

#include "engine/text_file.h"

namespace wsflow {
namespace {

const std::regex kName("[A-Za-z_][A-Za-z0-9_]*");

// NAME -> value of every `prefix`NAME environment variable.
std::map<std::string, std::string> with_prefix(char** environment, const std::string& prefix) {
  std::map<std::string, std::string> values;
  for (char** entry = environment; entry && *entry; ++entry) {
    const std::string text = *entry;
    const std::size_t eq = text.find('=');
    if (eq == std::string::npos || text.rfind(prefix, 0) != 0) continue;
    values[text.substr(prefix.size(), eq - prefix.size())] = text.substr(eq + 1);
  }
  return values;
}

}  // namespace

RuntimeValues load_runtime_values(char** environment, const std::vector<std::string>& var_flags,
                                  const std::string& secrets_dir) {
  RuntimeValues values;
  values.vars = with_prefix(environment, "WSFLOW_VAR_");
  values.secrets = with_prefix(environment, "WSFLOW_SECRET_");
  for (const std::string& flag : var_flags) {
    const std::size_t eq = flag.find('=');
    const std::string name = flag.substr(0, eq);
    if (eq == std::string::npos || !std::regex_match(name, kName)) {
      throw std::invalid_argument("--var " + flag + ": expected NAME=VALUE (NAME: letters, digits and _)");
    }
    values.vars[name] = flag.substr(eq + 1);
  }
  if (!secrets_dir.empty()) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(secrets_dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (!entry.is_regular_file() || !std::regex_match(name, kName)) continue;
      std::optional<std::string> value = read_text_file(entry.path());
      if (!value) throw std::invalid_argument("cannot read the secret file " + entry.path().string());
      if (!value->empty() && value->back() == '\n') value->pop_back();
      if (!value->empty() && value->back() == '\r') value->pop_back();
      values.secrets[name] = *value;
    }
    if (ec) throw std::invalid_argument("cannot read --secrets-dir " + secrets_dir + ": " + ec.message());
  }
  return values;
}

DefinitionErrors missing_values(const std::map<std::string, SagaDefinition>& definitions, const RuntimeValues& values) {
  DefinitionErrors errors;
  for (const auto& [name, def] : definitions) {
    for (const ConfigReference& ref : def.config_references) {
      const bool is_var = ref.root == RefRoot::kVar;
      const auto& known = is_var ? values.vars : values.secrets;
      if (known.count(ref.name)) continue;
      DefinitionError error = ref.place;
      error.message = std::string(is_var ? "var" : "secret") + " '" + ref.name + "' is not configured (set " +
                      (is_var ? "WSFLOW_VAR_" + ref.name + " or serve --var " + ref.name + "=VALUE"
                              : "WSFLOW_SECRET_" + ref.name + " or the file " + ref.name + " in --secrets-dir");
      error.message += ")";
      errors.push_back(std::move(error));
    }
  }
  return errors;
}

}  // namespace wsflow
