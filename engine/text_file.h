#pragma once
// Reading whole text files and listing definition files.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace wsflow {

// The whole file, or nullopt when it cannot be opened or read.
std::optional<std::string> read_text_file(const std::filesystem::path& file);

// The regular *.yaml / *.yml files directly in `dir`, sorted by name; empty
// when `dir` is not a readable directory.
std::vector<std::filesystem::path> yaml_files_in(const std::filesystem::path& dir);

}  // namespace wsflow
