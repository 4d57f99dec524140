#pragma once
// A stand-in for a user's own HTTP service, which HTTP steps, the HTTP
// provisioner and the bench call: it records every request and answers
// through handlers the test installs, and fails on demand (a status, a
// Retry-After, a hang, a dropped connection) for the next N requests to a
// route. Asynchronous on one Asio thread, so thousands of slow answers in
// flight cost sockets, not threads.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace wsflow::testing {

struct FakeRequest {
  std::string method;
  std::string target;                          // path and query
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::chrono::steady_clock::time_point at;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

struct FakeReply {
  int status = 200;
  std::string body;  // sent as application/json
  std::map<std::string, std::string> headers;
  std::chrono::milliseconds delay{0};  // answer after this long (a hang: hours)
  bool drop = false;                   // close the connection instead of answering

  static FakeReply json(int status, const nlohmann::json& body) { return {status, body.dump(), {}, {}, false}; }
};

class FakeService {
 public:
  using Handler = std::function<FakeReply(const FakeRequest&)>;

  // Listens on `host`:`port` (default: 127.0.0.1, a free port); requests
  // nobody handles get 404. Throws boost::system::system_error when it cannot.
  explicit FakeService(const std::string& host = "127.0.0.1", unsigned short port = 0);
  ~FakeService();
  FakeService(const FakeService&) = delete;
  FakeService& operator=(const FakeService&) = delete;

  std::string url() const;  // http://HOST:PORT

  // Requests whose method is `method` and whose path starts with `prefix`
  // are answered by `handler` (the longest matching prefix wins).
  void on(const std::string& method, const std::string& prefix, Handler handler);
  // The next `times` such requests get `reply` instead, before the handler.
  void fail_next(const std::string& method, const std::string& prefix, int times, FakeReply reply);

  // Called with every request and what it was answered (a dropped one too),
  // from the service's thread.
  void observe(std::function<void(const FakeRequest&, const FakeReply&)> observer);

  std::vector<FakeRequest> requests() const;
  std::vector<FakeRequest> requests(const std::string& method, const std::string& prefix) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wsflow::testing
