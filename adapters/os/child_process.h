#pragma once
// Child processes with their output in a log file: the embedded cluster's
// initdb/pg_ctl and the tests' `wsflow` processes.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace wsflow::os {

// Starts argv[0] (looked up in PATH) with stdout and stderr going to
// `log_path` (appended to, or truncated first), stdin from /dev/null and no
// other inherited descriptors, and no blocked signals. Throws std::runtime_error if fork fails; a
// program that cannot be executed exits 127.
pid_t spawn_logged(std::vector<std::string> argv, const std::string& log_path, bool append);

// The exit status of a finished child (128 + signal number when killed);
// blocks until it finishes, or returns nullopt at once with `no_hang` if it
// has not.
std::optional<int> wait_child(pid_t pid, bool no_hang = false);

}  // namespace wsflow::os
