#pragma once
// Helpers for tests that run `wsflow serve` processes against a test database.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace wsflow::testing {

// A temporary directory removed with the object.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const;

 private:
  std::filesystem::path path_;
};

// Polls `condition` every `poll` until it holds (true) or `timeout` passes
// (false, after one last look).
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = std::chrono::seconds(30),
                std::chrono::milliseconds poll = std::chrono::milliseconds(50));

// Starts `wsflow --database-url DSN --definitions DEFS serve --worker-id NAME` plus `extra`.
std::unique_ptr<Process> start_serve(const std::string& dsn, const std::filesystem::path& definitions,
                                     const std::string& worker, const std::filesystem::path& log,
                                     std::vector<std::string> extra = {});

}  // namespace wsflow::testing
