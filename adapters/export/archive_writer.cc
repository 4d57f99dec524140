#include "adapters/export/archive_writer.h"

#include <fstream>
#include <stdexcept>

#include "engine/sha256.h"

namespace wsflow {
namespace fs = std::filesystem;

nlohmann::json write_archive(const fs::path& directory, const std::map<std::string, std::string>& files) {
  const fs::path staging = directory.string() + ".partial";
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging);
  nlohmann::json manifest = {{"algorithm", "sha256"}, {"files", nlohmann::json::object()}};
  auto write = [&](const std::string& name, const std::string& contents) {
    std::ofstream out(staging / name, std::ios::binary | std::ios::trunc);
    out << contents;
    out.close();
    if (!out) throw std::runtime_error("cannot write " + (staging / name).string());
  };
  for (const auto& [name, contents] : files) {
    write(name, contents);
    manifest["files"][name] = {{"sha256", sha256_hex(contents)}, {"bytes", contents.size()}};
  }
  write("manifest.json", manifest.dump(2));
  fs::remove_all(directory, ec);
  fs::rename(staging, directory);
  return manifest;
}

}  // namespace wsflow
