#include "adapters/http/http_server.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "engine/log.h"

namespace wsflow::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr std::size_t kFileChunk = 64 * 1024;
constexpr auto kRejectDeadline = std::chrono::seconds(1);
constexpr auto kLingerDeadline = std::chrono::seconds(1);

}  // namespace

struct HttpServer::Impl {
  Impl(HttpLimits limits, HttpHandlers handlers) : limits(limits), handlers(std::move(handlers)) {}

  void accept();

  const HttpLimits limits;
  const HttpHandlers handlers;
  std::atomic<std::size_t> connections{0};
  // Declared after what sessions use, so that sessions still queued in it
  // are destroyed first.
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_pause{io};
  std::unique_ptr<asio::thread_pool> workers;
  std::thread network_thread;
  bool stopped = false;
};

namespace {

// One connection, from accept to close. Every member function runs on the
// network thread; only `run_on_worker` runs on a worker.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl& server)
      : stream_(std::move(socket)), deadline_(stream_.get_executor()), server_(server) {
    ++server_.connections;
    beast::error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
  }
  ~Session() { --server_.connections; }

  void start() { wait_for_request(); }

  // Too many connections: a 503, then close.
  void reject() {
    HttpResponse response =
        server_.handlers.error(503, "too_many_connections", "the server has too many open connections; retry shortly");
    response.set_header("Retry-After", "1");
    send(std::move(response), false, kRejectDeadline);
  }

 private:
  const HttpLimits& limits() const { return server_.limits; }

  // The deadline of the operation about to start: when it passes, the
  // socket's operations are cancelled (not the socket closed, so that a
  // 408 can still be written) and `timed_out_` says why.
  void arm(std::chrono::steady_clock::duration after) {
    timed_out_ = false;
    deadline_.expires_after(after);
    deadline_.async_wait([self = shared_from_this(), generation = ++generation_](beast::error_code ec) {
      if (ec || generation != self->generation_) return;
      self->timed_out_ = true;
      beast::error_code ignored;
      self->stream_.socket().cancel(ignored);
    });
  }

  void disarm() {
    ++generation_;
    deadline_.cancel();
  }

  void wait_for_request() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(limits().max_header_bytes));
    parser_->body_limit(limits().max_body_bytes);
    if (buffer_.size() > 0) {  // the next request arrived with the last one
      read_header();
      return;
    }
    // Idle between requests: the header deadline starts with the first byte.
    arm(limits().idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      if (ec) return self->close();
      self->buffer_.commit(n);
      self->read_header();
    });
  }

  void read_header() {
    arm(limits().header_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, std::size_t) {
                               if (ec) return self->refuse(ec, "headers");
                               self->read_body();
                             });
  }

  void read_body() {
    if (parser_->is_done()) return dispatch();
    auto after_continue = [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->arm(self->limits().body_timeout);
      bhttp::async_read(self->stream_, self->buffer_, *self->parser_, [self](beast::error_code read_ec, std::size_t) {
        if (read_ec) return self->refuse(read_ec, "body");
        self->dispatch();
      });
    };
    if (beast::iequals(parser_->get()[bhttp::field::expect], "100-continue")) {
      continue_ =
          std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, parser_->get().version());
      arm(limits().write_timeout);
      bhttp::async_write(stream_, *continue_, std::move(after_continue));
      return;
    }
    after_continue({}, 0);
  }

  // A request that could not be read: answered when the client may still
  // be listening, otherwise just closed.
  void refuse(beast::error_code ec, const char* part) {
    if (timed_out_) {
      return send_error(408, "request_timeout", std::string("the request's ") + part + " took too long to arrive");
    }
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || ec == bhttp::error::partial_message) {
      return close();
    }
    if (ec == bhttp::error::header_limit) {
      return send_error(431, "headers_too_large",
                        "request headers larger than " + std::to_string(limits().max_header_bytes) + " bytes");
    }
    if (ec == bhttp::error::body_limit) {
      return send_error(413, "payload_too_large",
                        "request body larger than " + std::to_string(limits().max_body_bytes) + " bytes");
    }
    // The parser's message names what is wrong ("bad method", "bad Content-Length").
    send_error(400, "bad_request", "malformed HTTP request: " + ec.message());
  }

  void send_error(int status, const std::string& code, const std::string& message) {
    send(server_.handlers.error(status, code, message), false, limits().write_timeout);
  }

  void dispatch() {
    disarm();
    auto message = parser_->release();
    auto request = std::make_shared<HttpRequest>();
    request->method = std::string(message.method_string());
    parse_target(std::string(message.target()), request->path, request->params);
    for (const auto& field : message) request->headers.emplace(std::string(field.name_string()), field.value());
    request->body = std::move(message.body());
    keep_alive_ = message.keep_alive();
    range_ = std::string(message[bhttp::field::range]);
    Routed routed = server_.handlers.route(*request);
    if (!routed.on_worker) return send(std::move(*routed.now), keep_alive_, limits().write_timeout);
    asio::post(*server_.workers, [self = shared_from_this(), request, work = std::move(routed.on_worker)] {
      self->run_on_worker(*request, work);
    });
  }

  // On a worker thread: `work` answers `request`.
  void run_on_worker(const HttpRequest& request, const std::function<HttpResponse()>& work) {
    HttpResponse response;
    try {
      response = work();
    } catch (const std::exception& e) {
      log_error("HTTP " + request.method + " " + request.path + " escaped its handler: " + e.what());
      response = server_.handlers.error(500, "internal", "internal error");
    }
    asio::post(stream_.get_executor(), [self = shared_from_this(), response = std::move(response)]() mutable {
      self->send(std::move(response), self->keep_alive_, self->limits().write_timeout);
    });
  }

  void send(HttpResponse response, bool keep_alive, std::chrono::steady_clock::duration deadline) {
    if (response.file) return send_file(std::move(response), keep_alive);
    auto message = std::make_shared<bhttp::response<bhttp::string_body>>();
    message->result(static_cast<unsigned>(response.status));
    message->version(11);
    for (auto& [name, value] : response.headers) message->insert(name, value);
    if (!response.content_type.empty()) message->set(bhttp::field::content_type, response.content_type);
    message->body() = std::move(response.body);
    message->keep_alive(keep_alive);
    message->prepare_payload();
    arm(deadline);
    bhttp::async_write(stream_, *message,
                       [self = shared_from_this(), message, keep_alive](beast::error_code ec, std::size_t) {
                         if (ec || !keep_alive) return self->close();
                         self->wait_for_request();
                       });
  }

  void send_file(HttpResponse response, bool keep_alive) {
    const FileBody& file = *response.file;
    auto in = std::make_shared<std::ifstream>(file.path, std::ios::binary);
    std::error_code size_error;
    const std::uint64_t size = std::filesystem::file_size(file.path, size_error);
    if (!*in || size_error) return send_error(410, "file_gone", "the file is no longer available");
    std::uint64_t first = 0;
    std::uint64_t length = size;
    auto header = std::make_shared<bhttp::response<bhttp::empty_body>>();
    header->result(bhttp::status::ok);
    if (const auto range = byte_range(range_, size)) {
      if (range->first >= size) {
        HttpResponse unsatisfiable =
            server_.handlers.error(416, "range_not_satisfiable", "the requested range is outside the file");
        unsatisfiable.set_header("Content-Range", "bytes */" + std::to_string(size));
        return send(std::move(unsatisfiable), keep_alive, limits().write_timeout);
      }
      first = range->first;
      length = range->second - range->first + 1;
      header->result(bhttp::status::partial_content);
      header->set(bhttp::field::content_range, "bytes " + std::to_string(range->first) + "-" +
                                                   std::to_string(range->second) + "/" + std::to_string(size));
    }
    header->version(11);
    for (auto& [name, value] : response.headers) header->insert(name, value);
    header->set(bhttp::field::content_type, file.content_type);
    header->set(bhttp::field::content_disposition, "attachment; filename=\"" + file.filename + "\"");
    header->set(bhttp::field::accept_ranges, "bytes");
    header->set(bhttp::field::content_length, std::to_string(length));
    header->keep_alive(keep_alive);
    in->seekg(static_cast<std::streamoff>(first));
    auto serializer = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*header);
    arm(limits().write_timeout);
    bhttp::async_write_header(
        stream_, *serializer,
        [self = shared_from_this(), header, serializer, in, length, keep_alive](beast::error_code ec, std::size_t) {
          if (ec) return self->close();
          self->send_chunks(in, length, keep_alive);
        });
  }

  // The file's bytes after its header, `remaining` more, one chunk per
  // write so that the write deadline applies to each.
  void send_chunks(std::shared_ptr<std::ifstream> in, std::uint64_t remaining, bool keep_alive) {
    if (remaining == 0) {
      if (!keep_alive) return close();
      return wait_for_request();
    }
    chunk_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(remaining, kFileChunk)));
    in->read(chunk_.data(), static_cast<std::streamsize>(chunk_.size()));
    if (in->gcount() != static_cast<std::streamsize>(chunk_.size())) return close();  // shrank under us
    arm(limits().write_timeout);
    asio::async_write(stream_, asio::buffer(chunk_),
                      [self = shared_from_this(), in, remaining, keep_alive](beast::error_code ec, std::size_t n) {
                        if (ec) return self->close();
                        self->send_chunks(in, remaining - n, keep_alive);
                      });
  }

  // Stops sending, then reads (and drops) what the client still sends for a
  // moment before closing: closing with unread bytes would reset the
  // connection and could destroy the response before the client reads it.
  void close() {
    if (closing_) return;
    closing_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    arm(kLingerDeadline);
    chunk_.resize(4096);
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(chunk_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) {
        self->disarm();
        return self->stream_.close();
      }
      self->drain();
    });
  }

  beast::tcp_stream stream_;
  asio::steady_timer deadline_;
  std::uint64_t generation_ = 0;  // of the armed deadline; a stale expiry is ignored
  bool timed_out_ = false;
  HttpServer::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::shared_ptr<bhttp::response<bhttp::empty_body>> continue_;
  std::string chunk_;
  std::string range_;
  bool keep_alive_ = false;
  bool closing_ = false;
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || stopped) return;
    if (ec) {
      // Out of file descriptors, most likely: pause rather than spin.
      log_warn("HTTP accept failed: " + ec.message());
      accept_pause.expires_after(std::chrono::milliseconds(100));
      accept_pause.async_wait([this](beast::error_code) {
        if (!stopped) accept();
      });
      return;
    }
    const bool over_limit = connections.load() >= limits.max_connections;
    auto session = std::make_shared<Session>(std::move(socket), *this);
    if (over_limit) {
      session->reject();
    } else {
      session->start();
    }
    accept();
  });
}

HttpServer::HttpServer(HttpLimits limits, HttpHandlers handlers)
    : impl_(std::make_unique<Impl>(limits, std::move(handlers))) {}

HttpServer::~HttpServer() { stop(); }

int HttpServer::start(const std::string& host, int port) {
  beast::error_code ec;
  const tcp::endpoint endpoint(asio::ip::make_address(host, ec), static_cast<unsigned short>(port));
  if (ec) throw std::runtime_error("cannot listen on " + host + ": not an IP address");
  tcp::acceptor& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  impl_->workers = std::make_unique<asio::thread_pool>(impl_->limits.workers);
  impl_->accept();
  impl_->network_thread = std::thread([this] { impl_->io.run(); });
  return acceptor.local_endpoint().port();
}

void HttpServer::stop() {
  if (!impl_->network_thread.joinable()) return;
  asio::post(impl_->io, [this] {
    impl_->stopped = true;
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->accept_pause.cancel();
  });
  // Handlers running now finish; their responses are not sent.
  impl_->workers->join();
  impl_->io.stop();
  impl_->network_thread.join();
}

std::size_t HttpServer::connections() const { return impl_->connections.load(); }

}  // namespace wsflow::http
