#pragma once
// A TCP proxy in front of a Postgres unix socket, for chaos tests: the
// engine's database connections go through it, and the test degrades them
// on demand. Runs its own Asio event loop on a background thread.
//
//   delay(d)  every chunk, either way, waits d before it is forwarded
//   stall()   nothing is forwarded (connections stay open, silent) until resume()
//   cut()     closes every connection now (new ones are still accepted)

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

namespace wsflow::testing {

class TcpProxy {
 public:
  // Listens on 127.0.0.1 (a free port) and forwards to the unix socket `target`.
  explicit TcpProxy(std::filesystem::path target);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const;
  void delay(std::chrono::milliseconds d);
  void stall();
  void resume();  // no delay, no stall
  void cut();
  long connections_cut() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The unix socket a libpq DSN "host=DIR port=PORT …" points at, and the same
// DSN through 127.0.0.1:proxy_port instead.
std::filesystem::path unix_socket_of(const std::string& dsn);
std::string dsn_through(const std::string& dsn, int proxy_port);

}  // namespace wsflow::testing
