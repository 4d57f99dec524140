#pragma once
// Watches the machine under a latency scenario, so that a late figure can be
// told apart from a stall of the machine itself: one thread sleeps 1 ms at a
// time (how far past its time it woke: the process was not run, say while
// the VM was paused), another writes 8 KB to a file in `directory` and
// flushes it (fdatasync) every 20 ms (how long the flush took: while the disk
// stalls, every durable commit waits). Each is the longest seen between
// construction and stop(). The flushes add about fifty small writes a second
// to the scenario's load. It also tells how busy the machine's cores were
// meanwhile (/proc/stat), so that a figure "under load" says how much.

#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

namespace wsflow::bench {

// All cores' time since boot, in clock ticks (/proc/stat's first line).
struct CpuTimes {
  unsigned long long idle = 0;  // idle and waiting on I/O
  unsigned long long total = 0;
};
struct MachineStalls {
  double longest_oversleep_ms = 0;  // of a 1 ms sleep
  double longest_flush_ms = 0;      // of an 8 KB write and fdatasync
  double busy_percent = -1;         // of all cores' time, not idle nor waiting on I/O; -1 when unknown
};

// The stalls as a figure's note ("machine: longest oversleep 1.2 ms, ..."):
// a tail as long as one of them is the machine's, not what was measured.
std::string machine_note(const MachineStalls& m);

class MachineWatch {
 public:
  // Throws std::runtime_error if the file cannot be created.
  explicit MachineWatch(const std::filesystem::path& directory = std::filesystem::temp_directory_path());
  ~MachineWatch();
  MachineWatch(const MachineWatch&) = delete;
  MachineWatch& operator=(const MachineWatch&) = delete;

  // Ends the watch (once; later calls return the same figures).
  MachineStalls stop();

 private:
  std::filesystem::path file_;
  int fd_ = -1;
  std::optional<CpuTimes> cpu_at_start_;
  std::atomic<bool> stopping_{false};
  MachineStalls stalls_;  // each written by its own thread until stop() joins them
  std::thread sleeper_, flusher_;
};

}  // namespace wsflow::bench
