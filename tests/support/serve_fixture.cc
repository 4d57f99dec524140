#include "tests/support/serve_fixture.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace wsflow::testing {

TempDir::TempDir() {
  std::string t = (std::filesystem::temp_directory_path() / "wsflow-t-XXXXXX").string();
  if (!mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed");
  path_ = t;
  // Traversable by the unprivileged user an embedded cluster runs as under root.
  std::filesystem::permissions(path_, std::filesystem::perms::owner_all | std::filesystem::perms::group_exec |
                                          std::filesystem::perms::others_exec);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void TempDir::write(const std::string& name, const std::string& text) const { std::ofstream(path_ / name) << text; }

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(poll);
  }
  return condition();
}

std::unique_ptr<Process> start_serve(const std::string& dsn, const std::filesystem::path& definitions,
                                     const std::string& worker, const std::filesystem::path& log,
                                     std::vector<std::string> extra) {
  std::vector<std::string> argv = {WSFLOW_BINARY,        "--database-url", dsn,           "--definitions",
                                   definitions.string(), "serve",          "--worker-id", worker};
  argv.insert(argv.end(), extra.begin(), extra.end());
  // Several servers run at once in tests: each takes a free port unless told otherwise.
  if (std::find(extra.begin(), extra.end(), "--listen") == extra.end()) {
    argv.insert(argv.end(), {"--listen", "127.0.0.1:0"});
  }
  return std::make_unique<Process>(argv, log.string());
}

}  // namespace wsflow::testing
