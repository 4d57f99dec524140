#pragma once
// An HTTP/1.1 server (Boost.Beast on its own Asio event loop) that a slow or
// idle client cannot stop for the others.
//
// One network thread owns every socket: reading, deadlines and writing are
// asynchronous, so an idle, trickling or slow-reading connection costs a
// socket and a buffer, never a thread. A complete request runs on one of
// `workers` threads (handlers may block on the database), and its response
// goes back to the network thread. Keep-alive is on; requests on one
// connection are answered in order.
//
// What a client may hold and for how long (HttpLimits): at most
// `max_connections` open connections (the next is answered 503 with
// Retry-After and closed); `idle_timeout` between requests on a kept-alive
// connection; `header_timeout` from a request's first byte to the end of
// its headers (408 then close), `body_timeout` for the body after that;
// `write_timeout` for each write of a response; headers up to
// `max_header_bytes` (431), bodies up to `max_body_bytes` (413).
// Malformed requests get 400. Every error the server answers by itself has
// the body `HttpHandlers::error` makes.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "adapters/http/http_message.h"

namespace wsflow::http {

struct HttpLimits {
  std::size_t max_connections = 4096;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 64 * 1024;
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds header_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds body_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds write_timeout{std::chrono::seconds(10)};
  std::size_t workers = 8;
};

// What the server does with a request once it is read: send `now`, or
// run `on_worker` on a worker thread and send what it returns.
struct Routed {
  std::optional<HttpResponse> now;
  std::function<HttpResponse()> on_worker;
};

struct HttpHandlers {
  // On the network thread, once per request: its answer when that needs no
  // blocking work (health, static files, a refusal), else the work to run
  // on a worker, which may refer to the request (it lives until the work
  // has run). Must not block or throw. An exception the work lets out is
  // answered 500 with the `error` body; its text is not sent.
  std::function<Routed(HttpRequest&)> route;
  // The response for an error the server answers itself.
  std::function<HttpResponse(int status, const std::string& code, const std::string& message)> error;
};

class HttpServer {
 public:
  HttpServer(HttpLimits limits, HttpHandlers handlers);
  ~HttpServer();  // stops and joins
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port (0: any free port) and starts serving on background
  // threads. Returns the bound port; throws std::runtime_error if the
  // address cannot be bound.
  int start(const std::string& host, int port);
  // Stops accepting, closes every connection and waits for running handlers.
  void stop();

  // Open connections now (for metrics and tests).
  std::size_t connections() const;

  struct Impl;  // the event loop, the workers and the connections (http_server.cc)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace wsflow::http
