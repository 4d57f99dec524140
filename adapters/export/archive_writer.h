#pragma once
// Writes an export archive: a directory of named JSON files plus
// manifest.json listing each file's SHA-256 and size. The directory appears
// whole or not at all (written beside it, then renamed into place); writing
// the same archive again replaces it.

#include <filesystem>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace wsflow {

// `files` maps a file name to its contents. Returns the manifest written.
// Throws std::runtime_error (naming the path) when the files cannot be written.
nlohmann::json write_archive(const std::filesystem::path& directory, const std::map<std::string, std::string>& files);

}  // namespace wsflow
