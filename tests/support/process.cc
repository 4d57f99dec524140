#include "tests/support/process.h"

#include "adapters/os/child_process.h"
#include "engine/text_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace wsflow::testing {

Process::Process(std::vector<std::string> argv, std::string log_path) : log_path_(std::move(log_path)) {
  pid_ = os::spawn_logged(std::move(argv), log_path_, /*append=*/false);
}

Process::~Process() {
  if (!status_) {
    kill(pid_, SIGKILL);
    wait(std::chrono::seconds(10));
  }
}

void Process::signal(int sig) {
  if (!status_) kill(pid_, sig);
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!status_) {
    status_ = os::wait_child(pid_, /*no_hang=*/true);
    if (status_) break;
    if (std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status_;
}

std::string Process::log() const { return read_text_file(log_path_).value_or(""); }

Output run_command(const std::vector<std::string>& argv) {
  char path[] = "/tmp/wsflow-cmd-XXXXXX";
  const int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  Process p(argv, path);
  const int status = p.wait(std::chrono::seconds(120)).value_or(-1);
  Output out{status, p.log()};
  unlink(path);
  return out;
}

}  // namespace wsflow::testing
