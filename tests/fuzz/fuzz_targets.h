#pragma once
// The fuzz targets: each feeds arbitrary bytes to one parser of untrusted
// input and checks what it promises (never a crash, never an exception it
// does not document, errors or a result but not both, errors that point at a
// line of the input). A broken promise aborts with a message, which libFuzzer
// reports as a crash. Used by the libFuzzer mains (scripts/fuzz, clang) and by
// fuzz_corpus_test, which replays the committed corpus in the normal build.

#include <string_view>

namespace wsflow::fuzz {

void definition(std::string_view input);  // a saga definition (engine/definition_loader.h)
void machine(std::string_view input);     // the workspace state machine (sagas/machine.h)
void schedule(std::string_view input);    // a schedule file (engine/schedule_loader.h)
void cron(std::string_view input);        // a cron expression, and its next firings
void json_body(std::string_view input);   // an API request body (adapters/http/json_body.h)

}  // namespace wsflow::fuzz
