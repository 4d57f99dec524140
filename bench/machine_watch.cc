#include "bench/machine_watch.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace wsflow::bench {
namespace {

using Steady = std::chrono::steady_clock;

double ms_since(Steady::time_point from) {
  return std::chrono::duration<double, std::milli>(Steady::now() - from).count();
}

// Empty when /proc/stat cannot be read.
std::optional<CpuTimes> read_cpu_times() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  CpuTimes times;
  // user nice system idle iowait irq softirq steal
  unsigned long long field[8] = {};
  if (!(stat >> cpu) || cpu != "cpu") return std::nullopt;
  for (unsigned long long& f : field) {
    if (!(stat >> f)) return std::nullopt;
    times.total += f;
  }
  times.idle = field[3] + field[4];
  return times;
}

}  // namespace

std::string machine_note(const MachineStalls& m) {
  char buffer[128];
  std::snprintf(buffer, sizeof buffer, "machine: longest oversleep %.1f ms, fdatasync %.1f ms", m.longest_oversleep_ms,
                m.longest_flush_ms);
  std::string note = buffer;
  if (m.busy_percent >= 0) {
    std::snprintf(buffer, sizeof buffer, ", cores %.0f%% busy", m.busy_percent);
    note += buffer;
  }
  return note;
}

MachineWatch::MachineWatch(const std::filesystem::path& directory)
    : file_(directory / ("wsflow-bench-watch-" + std::to_string(getpid()) + "-" +
                         std::to_string(Steady::now().time_since_epoch().count()))) {
  fd_ = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0) throw std::runtime_error("cannot create " + file_.string());
  cpu_at_start_ = read_cpu_times();
  sleeper_ = std::thread([this] {
    constexpr auto kNap = std::chrono::milliseconds(1);
    while (!stopping_.load()) {
      const auto before = Steady::now();
      std::this_thread::sleep_for(kNap);
      stalls_.longest_oversleep_ms = std::max(stalls_.longest_oversleep_ms, ms_since(before + kNap));
    }
  });
  flusher_ = std::thread([this] {
    const std::vector<char> block(8192, 'w');
    while (!stopping_.load()) {
      const auto before = Steady::now();
      if (::pwrite(fd_, block.data(), block.size(), 0) != static_cast<ssize_t>(block.size()) || ::fdatasync(fd_) != 0)
        return;  // the figure stays what it was; the watch is an aid, not the scenario
      stalls_.longest_flush_ms = std::max(stalls_.longest_flush_ms, ms_since(before));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
}

MachineWatch::~MachineWatch() { stop(); }

MachineStalls MachineWatch::stop() {
  stopping_.store(true);
  if (sleeper_.joinable()) sleeper_.join();
  if (flusher_.joinable()) flusher_.join();
  if (fd_ >= 0) {  // the first stop()
    const std::optional<CpuTimes> now = read_cpu_times();
    if (cpu_at_start_ && now && now->total > cpu_at_start_->total) {
      const double idle = static_cast<double>(now->idle - cpu_at_start_->idle);
      stalls_.busy_percent = 100.0 * (1.0 - idle / static_cast<double>(now->total - cpu_at_start_->total));
    }
    ::close(fd_);
    fd_ = -1;
    std::error_code ignored;
    std::filesystem::remove(file_, ignored);
  }
  return stalls_;
}

}  // namespace wsflow::bench
