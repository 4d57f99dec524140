// The HTTP server's limits, against a real `wsflow serve`: slow, idle and
// busy clients cannot stop it answering others; deadlines close connections
// that never finish a request; a connection cap answers 503; keep-alive,
// pipelining and Expect: 100-continue work. Latency figures are the bench's
// (bench/http_bench.cc); here, a request that gets no answer within 5 s fails.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>

#include "adapters/os/open_files.h"
#include "bench/hostile_clients.h"
#include "tests/support/live_server.h"

namespace wsflow::testing {
namespace {

class Socket {
 public:
  explicit Socket(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval timeout{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~Socket() { close(fd_); }
  bool connected() const { return connected_; }
  void send_text(const std::string& text) {
    [[maybe_unused]] const auto n = send(fd_, text.data(), text.size(), MSG_NOSIGNAL);
  }
  // Reads until `needle` has arrived (true) or the server closes or 10 s pass (false).
  bool read_until(const std::string& needle) {
    return read_while([&] { return received_.find(needle) == std::string::npos; });
  }
  // Reads until `status_line` has arrived `n` times.
  bool read_count(const std::string& status_line, int n) {
    return read_while([&] { return responses(status_line) < n; });
  }
  // Reads until the server closes; true when it did within 10 s.
  bool read_to_close() {
    return !read_while([] { return true; }) && closed_;
  }
  const std::string& received() const { return received_; }
  int responses(const std::string& status_line) const {
    int n = 0;
    for (auto at = received_.find(status_line); at != std::string::npos; at = received_.find(status_line, at + 1)) ++n;
    return n;
  }

 private:
  int fd_;
  bool connected_ = false;
  // Reads while `more()`: true once it is false, false when the server
  // closed (closed_) or 10 s passed first.
  bool read_while(const std::function<bool()>& more) {
    char buffer[4096];
    while (more()) {
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      closed_ = n == 0;
      if (n <= 0) return false;
      received_.append(buffer, static_cast<std::size_t>(n));
    }
    return true;
  }

  std::string received_;
  bool closed_ = false;
};

int port_of(Server& server) { return std::stoi(server.url().substr(server.url().rfind(':') + 1)); }

TEST(HttpLimits, SlowIdleAndBusyClientsDoNotStopOthers) {
  ASSERT_GE(os::raise_open_file_limit(2000), 1500) << "this test needs 1500 open files";
  HookReceiver hooks;
  Server server("", hooks.url());
  const std::string workspace = server.create_workspace("Busy");
  // 1,000 connections that never finish a request and 200 kept-alive clients asking every second.
  bench::HostileClients hostile("127.0.0.1", port_of(server), {500, 500, 200});
  std::this_thread::sleep_for(2s);
  const bench::Latencies answered =
      bench::probe("127.0.0.1", port_of(server), {"/healthz", "/v1/workspaces/" + workspace}, server.operator_key(),
                   100, 200, std::chrono::seconds(5));
  std::cout << "probe latency under 1,000 slow + 200 keep-alive connections: p50 " << answered.quantile(0.5)
            << " ms, p99 " << answered.quantile(0.99) << " ms, max " << answered.quantile(1.0) << " ms\n";
  EXPECT_EQ(answered.failures, 0) << "requests unanswered within 5 s while slow clients held connections";
  EXPECT_GT(hostile.keep_alive_responses(), 200) << "the kept-alive clients were not served";
  EXPECT_EQ(hostile.keep_alive_closed(), 0) << "the server closed kept-alive connections in use";
  EXPECT_EQ(server.get("/healthz", "").status, 200);
}

TEST(HttpLimits, DeadlinesCloseRequestsThatNeverFinish) {
  Server server("", "http://127.0.0.1:9/unused", "2s", "7d",
                {"--header-timeout", "1s", "--body-timeout", "1s", "--idle-timeout", "2s"});
  const int port = port_of(server);
  Socket trickler(port), half_body(port), idle(port);
  ASSERT_TRUE(trickler.connected() && half_body.connected() && idle.connected());

  const auto start = std::chrono::steady_clock::now();
  trickler.send_text("GET /v1/workspaces HTTP/1.1\r\nHost: x\r\n");
  half_body.send_text("POST /v1/workspaces HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"name\":");
  for (int i = 0; i < 8; ++i) {  // a header line every 250 ms: each read is quick, the whole is not
    trickler.send_text("X-Slow: " + std::to_string(i) + "\r\n");
    std::this_thread::sleep_for(250ms);
  }
  ASSERT_TRUE(trickler.read_to_close());
  EXPECT_EQ(trickler.received().rfind("HTTP/1.1 408", 0), 0u) << trickler.received();
  EXPECT_NE(trickler.received().find("\"request_timeout\""), std::string::npos) << trickler.received();
  ASSERT_TRUE(half_body.read_to_close());
  EXPECT_EQ(half_body.received().rfind("HTTP/1.1 408", 0), 0u) << half_body.received();
  // An idle connection is closed without a word once the idle deadline passes.
  ASSERT_TRUE(idle.read_to_close());
  EXPECT_EQ(idle.received(), "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 6s);
  // A kept-alive connection that keeps asking (every 1.2 s, the idle deadline is 2 s) stays open.
  Socket kept(port);
  kept.send_text("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(kept.read_count("HTTP/1.1 200", 1)) << kept.received();
  for (int i = 2; i <= 4; ++i) {
    std::this_thread::sleep_for(1200ms);
    kept.send_text("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(kept.read_count("HTTP/1.1 200", i)) << kept.received();
  }
  EXPECT_EQ(server.get("/healthz", "").status, 200);
}

TEST(HttpLimits, ConnectionsPastTheCapGet503AndTheServerRecovers) {
  Server server("", "http://127.0.0.1:9/unused", "2s", "7d", {"--max-connections", "20"});
  const int port = port_of(server);
  std::vector<std::unique_ptr<Socket>> held;
  for (int i = 0; i < 20; ++i) held.push_back(std::make_unique<Socket>(port));
  std::this_thread::sleep_for(300ms);  // accepted and counted
  Socket extra(port);
  extra.send_text("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(extra.read_to_close());
  EXPECT_EQ(extra.received().rfind("HTTP/1.1 503", 0), 0u) << extra.received();
  EXPECT_NE(extra.received().find("Retry-After: 1"), std::string::npos) << extra.received();
  EXPECT_NE(extra.received().find("\"too_many_connections\""), std::string::npos) << extra.received();
  held.clear();
  Response healthy;
  for (int i = 0; i < 50 && healthy.status != 200; ++i) {
    std::this_thread::sleep_for(100ms);
    healthy = server.get("/healthz", "");
  }
  EXPECT_EQ(healthy.status, 200);
}

TEST(HttpLimits, KeepAlivePipeliningAndExpectContinue) {
  HookReceiver hooks;
  Server server("", hooks.url());
  const int port = port_of(server);
  const std::string auth = "Authorization: Bearer " + server.operator_key() + "\r\n";

  // Two requests in one write, one kept-alive connection: two answers, in order.
  Socket pipelined(port);
  pipelined.send_text("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/nothing-here HTTP/1.1\r\nHost: x\r\n" + auth +
                      "Connection: close\r\n\r\n");
  ASSERT_TRUE(pipelined.read_to_close());
  const std::string& both = pipelined.received();
  EXPECT_EQ(both.rfind("HTTP/1.1 200", 0), 0u) << both;
  EXPECT_NE(both.find("HTTP/1.1 404"), std::string::npos) << both;
  EXPECT_LT(both.find("HTTP/1.1 200"), both.find("HTTP/1.1 404"));

  // A wrong method on a known path: 405 naming the allowed ones.
  Socket wrong_method(port);
  wrong_method.send_text("PUT /v1/workspaces HTTP/1.1\r\nHost: x\r\n" + auth +
                         "Content-Length: 0\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(wrong_method.read_to_close());
  EXPECT_EQ(wrong_method.received().rfind("HTTP/1.1 405", 0), 0u) << wrong_method.received();
  EXPECT_NE(wrong_method.received().find("Allow: "), std::string::npos) << wrong_method.received();

  // Expect: 100-continue: the server invites the body, then answers the request.
  const std::string body = R"({"name":"Continued","owner":{"user_id":"u-1","email":"u-1@example.com"}})";
  Socket expecting(port);
  expecting.send_text("POST /v1/workspaces HTTP/1.1\r\nHost: x\r\n" + auth +
                      "Content-Type: application/json\r\nExpect: 100-continue\r\nConnection: close\r\n"
                      "Content-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n");
  ASSERT_TRUE(expecting.read_until("HTTP/1.1 100 Continue\r\n\r\n")) << expecting.received();
  expecting.send_text(body);
  ASSERT_TRUE(expecting.read_to_close());
  EXPECT_NE(expecting.received().find("HTTP/1.1 202"), std::string::npos) << expecting.received();

  // Headers past the limit: 431, not a hang or a reset.
  Socket huge(port);
  huge.send_text("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
  ASSERT_TRUE(huge.read_to_close());
  EXPECT_EQ(huge.received().rfind("HTTP/1.1 431", 0), 0u) << huge.received().substr(0, 200);
}

}  // namespace
}  // namespace wsflow::testing
