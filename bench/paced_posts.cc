#include "bench/paced_posts.h"

#include <httplib.h>

#include <algorithm>
#include <mutex>
#include <thread>

namespace wsflow::bench {

PacedResult paced_posts(const std::string& host, int port, const PacedLoad& load) {
  using Clock = std::chrono::steady_clock;
  PacedResult result;
  std::mutex mutex;
  const auto interval = std::chrono::duration<double>(load.connections / load.per_second);
  const long per_connection = static_cast<long>(load.per_second * load.seconds / load.connections);
  const auto begin = Clock::now() + std::chrono::milliseconds(100);
  std::vector<std::thread> threads;
  for (int c = 0; c < load.connections; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client client(host, port);
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);  // as curl and most HTTP clients do: no delayed-ACK wait between header and body
      client.set_read_timeout(10, 0);
      const httplib::Headers headers = {{"Authorization", "Bearer " + load.key}};
      // Connections start staggered, so requests are spread evenly in time.
      const auto first = begin + std::chrono::duration_cast<Clock::duration>(interval * c / load.connections);
      for (long i = 0; i < per_connection; ++i) {
        const auto due = first + std::chrono::duration_cast<Clock::duration>(interval * i);
        std::this_thread::sleep_until(due);
        const long n = i * load.connections + c;
        const auto response = client.Post(load.path, headers, load.body(n), "application/json");
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - due).count();
        std::lock_guard lock(mutex);
        ++result.sent;
        if (response && response->status == load.expected_status) {
          result.latencies.millis.push_back(ms);
        } else {
          ++result.latencies.failures;
        }
        if (!response || response->get_header_value("Connection") == "close") ++result.reconnects;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::sort(result.latencies.millis.begin(), result.latencies.millis.end());
  return result;
}

}  // namespace wsflow::bench
