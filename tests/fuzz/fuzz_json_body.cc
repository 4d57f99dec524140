// libFuzzer entry point for wsflow::fuzz::json_body (tests/fuzz/fuzz_targets.h); built by scripts/fuzz.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  wsflow::fuzz::json_body({reinterpret_cast<const char*>(data), size});
  return 0;
}
