#include "adapters/outbound/http_client.h"

#include <openssl/ssl.h>

#include <ctime>
#include <iomanip>
#include <regex>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace wsflow {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

OutboundResult failed(OutboundFailure failure, std::string error) { return {failure, std::nullopt, std::move(error)}; }

std::optional<std::chrono::milliseconds> parse_retry_after(const std::string& value) {
  if (value.empty()) return std::nullopt;
  if (value.find_first_not_of("0123456789") == std::string::npos) {
    if (value.size() > 9) return std::chrono::hours(24 * 365);
    return std::chrono::seconds(std::stoll(value));
  }
  std::tm tm{};
  std::istringstream in(value);
  in.imbue(std::locale::classic());
  in >> std::get_time(&tm, "%a, %d %b %Y %H:%M:%S GMT");
  if (in.fail()) return std::nullopt;
  const auto at = std::chrono::system_clock::from_time_t(timegm(&tm));
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(at - std::chrono::system_clock::now()));
}

OutboundFailure failure_of(const error_code& ec) {
  if (ec == beast::error::timeout || ec == asio::error::operation_aborted) return OutboundFailure::kTimeout;
  // The service closed the connection before (or while) answering.
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return OutboundFailure::kConnect;
  if (ec == http::error::body_limit || ec.category() == http::make_error_code(http::error::end_of_stream).category()) {
    return OutboundFailure::kProtocol;
  }
  if (ec.category() == asio::error::get_ssl_category() || ec.category() == asio::ssl::error::get_stream_category()) {
    return OutboundFailure::kTls;
  }
  return OutboundFailure::kConnect;
}

OutboundResult failed(const error_code& ec, const char* during) {
  std::string message = std::string(during) + ": " + ec.message();
  if (ec == http::error::body_limit) message = "the response body is larger than the limit";
  return failed(failure_of(ec), std::move(message));
}

// Writes the request and reads the answer on a connected (and, for https,
// shaken-hands) stream, within the deadline set on its lowest layer.
template <class Stream>
asio::awaitable<OutboundResult> exchange(Stream& stream, const http::request<http::string_body>& request,
                                         std::size_t max_body) {
  error_code ec;
  co_await http::async_write(stream, request, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return failed(ec, "sending the request");
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_body);
  parser.header_limit(64 * 1024);
  if (request.method() == http::verb::head) parser.skip(true);
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return failed(ec, "reading the response");
  const auto& message = parser.get();
  OutboundResponse response;
  response.status = static_cast<int>(message.result_int());
  response.content_type = std::string(message[http::field::content_type]);
  response.body = message.body();
  response.retry_after = parse_retry_after(std::string(message[http::field::retry_after]));
  co_return OutboundResult{OutboundFailure::kNone, std::move(response), {}};
}

asio::awaitable<OutboundResult> fetch(OutboundRequest request, ParsedUrl url, std::shared_ptr<asio::ssl::context> tls,
                                      std::size_t max_body) {
  const auto executor = co_await asio::this_coro::executor;
  const Clock::time_point deadline = Clock::now() + request.timeout;
  const auto verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown) co_return failed(OutboundFailure::kBadUrl, "unknown method " + request.method);

  http::request<http::string_body> message{verb, url.target, 11};
  const bool default_port = url.port == (url.https ? "443" : "80");
  const std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  message.set(http::field::host, default_port ? host : host + ":" + url.port);
  message.set(http::field::user_agent, "wsflow");
  message.set(http::field::connection, "close");
  for (const auto& [name, value] : request.headers) message.set(name, value);
  if (!request.body.empty() || verb == http::verb::post || verb == http::verb::put || verb == http::verb::patch) {
    message.body() = std::move(request.body);
  }
  message.prepare_payload();

  // Name resolution has no deadline of its own: a timer cancels it.
  auto resolver = std::make_shared<tcp::resolver>(executor);
  asio::steady_timer resolve_deadline(executor, deadline);
  resolve_deadline.async_wait([resolver](error_code ec) {
    if (!ec) resolver->cancel();
  });
  error_code ec;
  const auto endpoints =
      co_await resolver->async_resolve(url.host, url.port, asio::redirect_error(asio::use_awaitable, ec));
  resolve_deadline.cancel();
  if (ec == asio::error::operation_aborted)
    co_return failed(OutboundFailure::kTimeout, "resolving " + url.host + ": timed out");
  if (ec) co_return failed(OutboundFailure::kConnect, "resolving " + url.host + ": " + ec.message());

  if (!url.https) {
    beast::tcp_stream stream(executor);
    stream.expires_at(deadline);
    co_await stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return failed(ec, "connecting");
    stream.socket().set_option(tcp::no_delay(true), ec);
    OutboundResult result = co_await exchange(stream, message, max_body);
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    co_return result;
  }
  beast::ssl_stream<beast::tcp_stream> stream(executor, *tls);
  beast::get_lowest_layer(stream).expires_at(deadline);
  if (!SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str())) {
    co_return failed(OutboundFailure::kTls, "cannot set the TLS server name");
  }
  stream.set_verify_callback(asio::ssl::host_name_verification(url.host));
  co_await beast::get_lowest_layer(stream).async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return failed(ec, "connecting");
  co_await stream.async_handshake(asio::ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return failed(OutboundFailure::kTls, "TLS handshake with " + url.host + ": " + ec.message());
  OutboundResult result = co_await exchange(stream, message, max_body);
  beast::get_lowest_layer(stream).close();
  co_return result;
}

}  // namespace

std::optional<ParsedUrl> parse_url(const std::string& url) {
  static const std::regex kUrl(R"((https?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(:([0-9]{1,5}))?([/?][^\s#]*)?)");
  std::smatch m;
  if (!std::regex_match(url, m, kUrl)) return std::nullopt;
  ParsedUrl parsed;
  parsed.https = m[1] == "https";
  parsed.host = m[2].str();
  if (parsed.host.front() == '[') parsed.host = parsed.host.substr(1, parsed.host.size() - 2);
  parsed.port = m[4].matched ? m[4].str() : (parsed.https ? "443" : "80");
  if (std::stoi(parsed.port) == 0 || std::stoi(parsed.port) > 65535) return std::nullopt;
  parsed.target = m[5].matched ? m[5].str() : "/";
  if (parsed.target.front() == '?') parsed.target = "/" + parsed.target;
  return parsed;
}

HttpClient::HttpClient(HttpClientOptions options)
    : options_(std::move(options)), tls_(std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client)) {
  tls_->set_default_verify_paths();
  if (!options_.ca_file.empty()) {
    error_code ec;
    tls_->load_verify_file(options_.ca_file, ec);
    if (ec) throw std::runtime_error("cannot read the CA file " + options_.ca_file + ": " + ec.message());
  }
  tls_->set_verify_mode(asio::ssl::verify_peer);
}

void HttpClient::send(asio::any_io_executor executor, OutboundRequest request,
                      std::function<void(OutboundResult)> done) const {
  std::optional<ParsedUrl> url = parse_url(request.url);
  if (!url) {
    asio::post(executor, [done = std::move(done)] {
      done(failed(OutboundFailure::kBadUrl, "not an http(s)://host[:port]/path URL"));
    });
    return;
  }
  asio::co_spawn(executor, fetch(std::move(request), std::move(*url), tls_, options_.max_body),
                 [done = std::move(done)](std::exception_ptr error, OutboundResult result) {
                   if (error) {
                     try {
                       std::rethrow_exception(error);
                     } catch (const std::exception& e) {
                       result = failed(OutboundFailure::kConnect, e.what());
                     }
                   }
                   done(std::move(result));
                 });
}

OutboundResult HttpClient::send_blocking(OutboundRequest request) const {
  asio::io_context io;
  OutboundResult result;
  send(io.get_executor(), std::move(request), [&result](OutboundResult r) { result = std::move(r); });
  io.run();
  return result;
}

}  // namespace wsflow
