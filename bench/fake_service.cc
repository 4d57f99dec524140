#include "bench/fake_service.h"

#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace wsflow::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct FakeService::Impl {
  struct Route {
    std::string method, prefix;
    Handler handler;
  };
  struct Scripted {
    std::string method, prefix;
    int times;
    FakeReply reply;
  };

  Impl(const std::string& host, unsigned short port)
      : acceptor(io, tcp::endpoint(asio::ip::make_address(host), port)) {}

  asio::io_context io;
  tcp::acceptor acceptor;
  std::thread thread;
  mutable std::mutex mutex;
  std::vector<Route> routes;
  std::vector<Scripted> scripted;
  std::vector<FakeRequest> seen;
  std::function<void(const FakeRequest&, const FakeReply&)> observer;

  static bool matches(const std::string& method, const std::string& prefix, const FakeRequest& r) {
    return method == r.method && r.target.rfind(prefix, 0) == 0;
  }

  FakeReply answer(const FakeRequest& request) {
    FakeReply reply = choose(request);
    std::function<void(const FakeRequest&, const FakeReply&)> observe;
    {
      std::lock_guard lock(mutex);
      observe = observer;
    }
    if (observe) observe(request, reply);
    return reply;
  }

  FakeReply choose(const FakeRequest& request) {
    Handler handler;
    {
      std::lock_guard lock(mutex);
      seen.push_back(request);
      for (Scripted& s : scripted) {
        if (s.times > 0 && matches(s.method, s.prefix, request)) {
          --s.times;
          return s.reply;
        }
      }
      std::size_t best = 0;
      for (const Route& route : routes) {
        if (matches(route.method, route.prefix, request) && (!handler || route.prefix.size() > best)) {
          handler = route.handler;
          best = route.prefix.size();
        }
      }
    }
    if (!handler) return FakeReply::json(404, {{"error", "no such route"}});
    return handler(request);
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    beast::flat_buffer buffer;
    boost::system::error_code ec;
    for (;;) {
      http::request<http::string_body> message;
      co_await http::async_read(socket, buffer, message, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      FakeRequest request{std::string(message.method_string()),
                          std::string(message.target()),
                          {},
                          message.body(),
                          std::chrono::steady_clock::now()};
      for (const auto& field : message) {
        std::string name(field.name_string());
        for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        request.headers[name] = std::string(field.value());
      }
      const FakeReply reply = answer(request);
      if (reply.delay.count() > 0) {
        asio::steady_timer timer(io, reply.delay);
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      if (reply.drop) co_return;  // the socket closes unanswered
      http::response<http::string_body> response{static_cast<http::status>(reply.status), 11};
      response.set(http::field::content_type, "application/json");
      for (const auto& [name, value] : reply.headers) response.set(name, value);
      response.body() = reply.body;
      response.keep_alive(message.keep_alive());
      response.prepare_payload();
      co_await http::async_write(socket, response, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !message.keep_alive()) co_return;
    }
  }

  asio::awaitable<void> accept() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted) co_return;
      if (ec) continue;
      asio::co_spawn(io, serve(std::move(socket)), asio::detached);
    }
  }
};

FakeService::FakeService(const std::string& host, unsigned short port) : impl_(std::make_unique<Impl>(host, port)) {
  impl_->acceptor.listen(4096);
  asio::co_spawn(impl_->io, impl_->accept(), asio::detached);
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

FakeService::~FakeService() {
  impl_->io.stop();
  impl_->thread.join();
}

std::string FakeService::url() const {
  const auto endpoint = impl_->acceptor.local_endpoint();
  return "http://" + endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

void FakeService::on(const std::string& method, const std::string& prefix, Handler handler) {
  std::lock_guard lock(impl_->mutex);
  impl_->routes.push_back({method, prefix, std::move(handler)});
}

void FakeService::observe(std::function<void(const FakeRequest&, const FakeReply&)> observer) {
  std::lock_guard lock(impl_->mutex);
  impl_->observer = std::move(observer);
}

void FakeService::fail_next(const std::string& method, const std::string& prefix, int times, FakeReply reply) {
  std::lock_guard lock(impl_->mutex);
  impl_->scripted.push_back({method, prefix, times, std::move(reply)});
}

std::vector<FakeRequest> FakeService::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->seen;
}

std::vector<FakeRequest> FakeService::requests(const std::string& method, const std::string& prefix) const {
  std::vector<FakeRequest> out;
  for (FakeRequest& r : requests()) {
    if (Impl::matches(method, prefix, r)) out.push_back(std::move(r));
  }
  return out;
}

}  // namespace wsflow::testing
