#pragma once
// Where the values of ${var.NAME} and ${secret.NAME} come from, and the
// check that a configuration has every one the definitions name.
//
//   vars     WSFLOW_VAR_NAME environment variables; `serve --var NAME=VALUE`
//            overrides them
//   secrets  WSFLOW_SECRET_NAME environment variables, and the files of
//            `--secrets-dir` (the file named NAME holds the value; one
//            trailing newline is dropped), which override them
//
// NAME is case-sensitive: ${var.billing_url} reads WSFLOW_VAR_billing_url.

#include <map>
#include <string>
#include <vector>

#include "engine/definition.h"

namespace wsflow {

struct RuntimeValues {
  std::map<std::string, std::string> vars;
  std::map<std::string, std::string> secrets;
};

// Throws std::invalid_argument for a `--var` that is not NAME=VALUE (or a
// bad NAME) and for a secrets directory that cannot be read.
RuntimeValues load_runtime_values(char** environment, const std::vector<std::string>& var_flags,
                                  const std::string& secrets_dir);

// One error, at the reference's place, for every var or secret the
// definitions name and `values` lacks.
DefinitionErrors missing_values(const std::map<std::string, SagaDefinition>& definitions, const RuntimeValues& values);

}  // namespace wsflow
