#pragma once
// A problem found while loading or validating a definition, with its place.

#include <string>
#include <vector>

namespace wsflow {

struct DefinitionError {
  std::string file;
  int line = 0;       // 1-based; 0 when the error has no place (e.g. unreadable file)
  int column = 0;     // 1-based
  std::string field;  // dotted path of the offending field, e.g. steps[2].retry.initial
  std::string message;

  // "file:line:column: field: message"
  std::string to_string() const;
};

using DefinitionErrors = std::vector<DefinitionError>;

}  // namespace wsflow
