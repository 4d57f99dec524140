#include "adapters/export/archive_writer.h"

#include <archive.h>
#include <archive_entry.h>

#include <ctime>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "engine/sha256.h"

namespace wsflow {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kChunk = 64 * 1024;

// Calls `consume` with each chunk of `file`.
template <class F>
void for_each_chunk(const fs::path& file, F consume) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::string buffer(kChunk, '\0');
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() > 0) consume(std::string_view(buffer.data(), static_cast<std::size_t>(in.gcount())));
  }
  if (in.bad()) throw std::runtime_error("cannot read " + file.string());
}

class TarGzWriter {
 public:
  explicit TarGzWriter(const fs::path& path) : path_(path), archive_(archive_write_new()) {
    if (!archive_ || archive_write_add_filter_gzip(archive_) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(archive_) != ARCHIVE_OK ||
        archive_write_open_filename(archive_, path.c_str()) != ARCHIVE_OK) {
      fail("cannot create");
    }
  }
  ~TarGzWriter() {
    if (archive_) archive_write_free(archive_);
  }
  TarGzWriter(const TarGzWriter&) = delete;
  TarGzWriter& operator=(const TarGzWriter&) = delete;

  // Adds a regular file of `size` bytes whose data `produce` writes through `write`.
  template <class Produce>
  void add(const std::string& name, std::uintmax_t size, Produce produce) {
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> entry(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(entry.get(), name.c_str());
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(size));
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_mtime(entry.get(), std::time(nullptr), 0);
    if (archive_write_header(archive_, entry.get()) != ARCHIVE_OK) fail("cannot add " + name + " to");
    produce([&](std::string_view data) {
      if (archive_write_data(archive_, data.data(), data.size()) < 0) fail("cannot write " + name + " into");
    });
  }

  void close() {
    if (archive_write_close(archive_) != ARCHIVE_OK) fail("cannot finish");
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    const char* reason = archive_ ? archive_error_string(archive_) : nullptr;
    throw std::runtime_error(what + " archive " + path_.string() + (reason ? std::string(": ") + reason : ""));
  }

  fs::path path_;
  struct archive* archive_;
};

}  // namespace

std::string sha256_of_file(const fs::path& file) {
  Sha256 digest;
  for_each_chunk(file, [&](std::string_view chunk) { digest.update(chunk); });
  return digest.hex_digest();
}

WrittenArchive write_archive(const fs::path& archive, const std::vector<ArchiveEntry>& entries) {
  const fs::path staging = archive.string() + ".partial";
  fs::create_directories(archive.parent_path());
  WrittenArchive written;
  written.manifest = {{"algorithm", "sha256"}, {"files", nlohmann::json::object()}};
  try {
    TarGzWriter tar(staging);
    for (const ArchiveEntry& entry : entries) {
      Sha256 digest;
      std::uintmax_t size = entry.contents.size();
      if (!entry.file.empty()) {
        std::error_code ec;
        size = fs::file_size(entry.file, ec);
        if (ec) throw std::runtime_error("cannot read " + entry.file.string());
      }
      tar.add(entry.name, size, [&](const auto& write) {
        const auto pass = [&](std::string_view chunk) {
          digest.update(chunk);
          write(chunk);
        };
        if (entry.file.empty()) {
          pass(entry.contents);
        } else {
          for_each_chunk(entry.file, pass);
        }
      });
      written.manifest["files"][entry.name] = {{"sha256", digest.hex_digest()}, {"bytes", size}};
    }
    const std::string manifest = written.manifest.dump(2);
    tar.add("manifest.json", manifest.size(), [&](const auto& write) { write(manifest); });
    tar.close();
  } catch (...) {
    std::error_code ec;
    fs::remove(staging, ec);  // nothing half-written is left behind
    throw;
  }
  fs::rename(staging, archive);
  written.sha256 = sha256_of_file(archive);
  written.bytes = fs::file_size(archive);
  return written;
}

}  // namespace wsflow
