#include "bench/hostile_clients.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <stdexcept>

namespace wsflow::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kSlowRequestLine = "GET /v1/workspaces HTTP/1.1\r\nHost: slow\r\n";

int connect_to(const std::string& host, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed: out of file descriptors?");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    throw std::runtime_error("cannot connect to " + host + ":" + std::to_string(port));
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

void send_text(int fd, const std::string& text) {
  [[maybe_unused]] const auto sent = send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

// What the server sent (or that it closed) without waiting: -1 nothing
// yet, 0 closed, otherwise bytes read.
long read_ready(int fd) {
  char buffer[4096];
  long total = 0;
  for (;;) {
    const ssize_t n = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n == 0) return 0;
    if (n < 0) return total > 0 ? total : -1;
    total += n;
  }
}

bool closed_or_answered(int fd) {
  char byte;
  const ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n >= 0;  // 0: closed; > 0: the server answered (a 408) instead of waiting
}

}  // namespace

HostileClients::HostileClients(const std::string& host, int port, const HostileLoad& load)
    : host_(host), port_(port), load_(load) {
  auto open = [&](int n, std::vector<int>& into) {
    for (int i = 0; i < n; ++i) into.push_back(connect_to(host, port));
  };
  try {
    open(load.idle, idle_);
    open(load.trickling, trickling_);
    open(load.keep_alive, keep_alive_);
  } catch (...) {
    for (auto* fds : {&idle_, &trickling_, &keep_alive_}) {
      for (int fd : *fds) close(fd);
    }
    throw;
  }
  keep_alive_closed_.assign(keep_alive_.size(), false);
  for (int fd : trickling_) send_text(fd, kSlowRequestLine);
  ticker_ = std::thread([this] {
    while (!stop_) {
      const auto next = Clock::now() + load_.tick;
      tick();
      while (!stop_ && Clock::now() < next) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
}

HostileClients::~HostileClients() {
  stop_ = true;
  if (ticker_.joinable()) ticker_.join();
  for (auto* fds : {&idle_, &trickling_, &keep_alive_}) {
    for (int fd : *fds) {
      if (fd >= 0) close(fd);
    }
  }
}

void HostileClients::reopen_closed(std::vector<int>& fds, bool trickle) {
  for (int& fd : fds) {
    if (fd >= 0 && !closed_or_answered(fd)) continue;
    if (fd >= 0) {
      close(fd);
      ++reopened_;
    }
    try {
      fd = connect_to(host_, port_);
      if (trickle) send_text(fd, kSlowRequestLine);
    } catch (const std::runtime_error&) {
      fd = -1;  // try again next tick
    }
  }
}

void HostileClients::tick() {
  reopen_closed(idle_, false);
  reopen_closed(trickling_, true);
  for (int fd : trickling_) {
    if (fd >= 0) send_text(fd, "X-Slow: " + std::to_string(Clock::now().time_since_epoch().count()) + "\r\n");
  }
  const std::string request = "GET " + load_.keep_alive_path + " HTTP/1.1\r\nHost: busy\r\n\r\n";
  for (std::size_t i = 0; i < keep_alive_.size(); ++i) {
    if (keep_alive_closed_[i]) continue;
    const long got = read_ready(keep_alive_[i]);  // the answer to the last tick's request
    if (got == 0) {
      keep_alive_closed_[i] = true;
      ++keep_alive_closed_count_;
      continue;
    }
    if (got > 0) ++keep_alive_responses_;
    send_text(keep_alive_[i], request);
  }
}

double Latencies::quantile(double q) const {
  if (millis.empty()) return 0;
  const auto index = static_cast<std::size_t>(q * static_cast<double>(millis.size() - 1) + 0.5);
  return millis[std::min(index, millis.size() - 1)];
}

Latencies probe(const std::string& host, int port, const std::vector<std::string>& paths, const std::string& key,
                int count, int expected_status, std::chrono::seconds timeout) {
  Latencies out;
  httplib::Headers headers;
  if (!key.empty()) headers.emplace("Authorization", "Bearer " + key);
  for (int i = 0; i < count; ++i) {
    httplib::Client client(host, port);
    client.set_connection_timeout(timeout);
    client.set_read_timeout(timeout);
    const auto start = Clock::now();
    const httplib::Result r = client.Get(paths[static_cast<std::size_t>(i) % paths.size()].c_str(), headers);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (r && r->status == expected_status) {
      out.millis.push_back(ms);
    } else {
      ++out.failures;
    }
  }
  std::sort(out.millis.begin(), out.millis.end());
  return out;
}

}  // namespace wsflow::bench
