#pragma once
// An asynchronous HTTP/1.1 client (Boost.Beast) for the requests steps make
// to other services: it runs on the caller's Asio executor, so a request in
// flight holds no thread, only a socket. `https` uses OpenSSL with the
// system's trust store (plus an optional CA file), verifies the certificate
// chain and the host name, and sends SNI.
//
// One connection per request, closed after the answer: requests from steps
// are seconds apart and go to many hosts, so pooling would buy little and
// would add stale-connection retries.
//
// Never throws from send(): every failure is an OutboundResult.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

namespace boost::asio::ssl {
class context;
}

namespace wsflow {

struct OutboundRequest {
  std::string method = "GET";  // GET, POST, PUT, PATCH, DELETE, HEAD
  std::string url;             // http(s)://host[:port]/path?query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{10'000};  // for the whole exchange, name resolution included
};

struct OutboundResponse {
  int status = 0;
  std::string content_type;
  std::string body;
  // Retry-After, as seconds or an HTTP date, relative to now (never negative).
  std::optional<std::chrono::milliseconds> retry_after;
};

enum class OutboundFailure {
  kNone,      // a response arrived (whatever its status)
  kBadUrl,    // not http(s)://host[:port]/...
  kConnect,   // resolving, connecting, or the connection broke before an answer
  kTimeout,   // no complete answer within the timeout
  kTls,       // handshake or certificate verification failed
  kProtocol,  // not HTTP, or a body larger than the limit
};

struct OutboundResult {
  OutboundFailure failure = OutboundFailure::kNone;
  std::optional<OutboundResponse> response;  // set exactly when failure is kNone
  std::string error;                         // what went wrong, otherwise
};

struct HttpClientOptions {
  std::string ca_file;                 // extra trust anchors (PEM); the system store is always used
  std::size_t max_body = 1024 * 1024;  // a longer response body is a kProtocol failure
};

struct ParsedUrl {
  bool https = false;
  std::string host;    // without brackets for IPv6
  std::string port;    // always set (80/443 by default)
  std::string target;  // path and query, at least "/"
};
// nullopt for anything but http(s)://host[:port][/path][?query].
std::optional<ParsedUrl> parse_url(const std::string& url);

class HttpClient {
 public:
  // Throws std::runtime_error when the TLS context cannot be set up (an
  // unreadable ca_file).
  explicit HttpClient(HttpClientOptions options = {});

  // Starts the exchange on `executor`; `done` is called exactly once, from
  // that executor. The client must outlive the call.
  void send(boost::asio::any_io_executor executor, OutboundRequest request,
            std::function<void(OutboundResult)> done) const;

  // The same, for callers that may block: runs the exchange on a private
  // event loop in the calling thread.
  OutboundResult send_blocking(OutboundRequest request) const;

 private:
  HttpClientOptions options_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
};

}  // namespace wsflow
