#include "adapters/os/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace wsflow::os {

pid_t spawn_logged(std::vector<std::string> argv, const std::string& log_path, bool append) {
  // Everything the child needs is built before fork(): after it, in a
  // multi-threaded parent, only async-signal-safe calls are allowed.
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const int flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    const int log = open(log_path.c_str(), flags, 0644);
    if (log >= 0) {
      dup2(log, STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
    }
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    // A server started from here must not hold our sockets or a test runner's pipes.
    for (int fd = 3; fd < 1024; ++fd) close(fd);
    // Nor inherit the signals a parent blocks to wait for them on one thread
    // (serve, wsflow_bench): a child must stop on SIGTERM.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

std::optional<int> wait_child(pid_t pid, bool no_hang) {
  int status = 0;
  pid_t done;
  while ((done = waitpid(pid, &status, no_hang ? WNOHANG : 0)) < 0 && errno == EINTR) {
  }
  if (done != pid) return std::nullopt;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace wsflow::os
