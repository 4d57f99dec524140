// Replays the fuzz targets' committed corpus (tests/fuzz/corpus/<target>/:
// seeds, and every input that once crashed a target) through the same target
// functions libFuzzer runs, in the normal build: a fixed crash stays fixed.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "tests/fuzz/fuzz_targets.h"

namespace wsflow {
namespace {

TEST(FuzzCorpus, EveryCommittedInputPassesItsTarget) {
  const std::map<std::string, std::function<void(std::string_view)>> targets = {{"definition", fuzz::definition},
                                                                                {"machine", fuzz::machine},
                                                                                {"schedule", fuzz::schedule},
                                                                                {"cron", fuzz::cron},
                                                                                {"json_body", fuzz::json_body}};
  const std::filesystem::path corpus = std::filesystem::path(WSFLOW_SOURCE_DIR) / "tests/fuzz/corpus";
  int replayed = 0;
  for (const auto& [name, run] : targets) {
    ASSERT_TRUE(std::filesystem::is_directory(corpus / name)) << corpus / name;
    for (const auto& entry : std::filesystem::directory_iterator(corpus / name)) {
      std::ifstream file(entry.path(), std::ios::binary);
      std::stringstream bytes;
      bytes << file.rdbuf();
      SCOPED_TRACE(entry.path().string());
      run(bytes.str());  // a broken promise aborts the test binary, naming it
      ++replayed;
    }
  }
  EXPECT_GT(replayed, 20);
}

}  // namespace
}  // namespace wsflow
