#pragma once
// Files compiled into the binary, so `wsflow serve` needs nothing beside it:
// the OpenAPI document (openapi.yaml) and the web console (console/…),
// kept in the repository as source and embedded at build time.

#include <string_view>

namespace wsflow::http {

// The file's text by its path under adapters/http (e.g. "console/index.html");
// empty when there is no such file.
std::string_view embedded_file(std::string_view name);

}  // namespace wsflow::http
