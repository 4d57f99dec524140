#pragma once
// Writes an export archive: one gzip-compressed tar holding the given
// entries and, last, manifest.json with each entry's SHA-256 and size.
// Entries come from memory (metadata) or from files (database dumps), which
// are streamed in chunks and never held whole in memory. The archive appears
// whole or not at all (written beside it, then renamed into place); writing
// the same archive again replaces it.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace wsflow {

struct ArchiveEntry {
  std::string name;            // path inside the archive, e.g. "environments/dev.sql"
  std::string contents;        // used when `file` is empty
  std::filesystem::path file;  // streamed from here when set
};

struct WrittenArchive {
  nlohmann::json manifest;  // {"algorithm":"sha256","files":{name:{sha256,bytes}}}
  std::string sha256;       // of the archive file itself
  std::uintmax_t bytes = 0;
};

// Throws std::runtime_error (naming the path) when an entry cannot be read or
// the archive cannot be written.
WrittenArchive write_archive(const std::filesystem::path& archive, const std::vector<ArchiveEntry>& entries);

// The SHA-256 of a file, read in chunks. Throws std::runtime_error if unreadable.
std::string sha256_of_file(const std::filesystem::path& file);

}  // namespace wsflow
