#pragma once
// Child processes for tests that run the wsflow binary: spawn with output to
// a log file, signal, wait with a timeout. A Process still running when
// destroyed is killed with SIGKILL.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace wsflow::testing {

class Process {
 public:
  Process(std::vector<std::string> argv, std::string log_path);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  void signal(int sig);
  // The exit status (128+signal when killed), or nullopt if still running after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string log_path_;
};

struct Output {
  int status;
  std::string text;  // stdout and stderr together
};
// Runs a command to completion.
Output run_command(const std::vector<std::string>& argv);

}  // namespace wsflow::testing
