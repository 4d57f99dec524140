#include "tests/chaos/tcp_proxy.h"

#include <atomic>
#include <boost/asio.hpp>
#include <list>
#include <regex>
#include <thread>

namespace wsflow::testing {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using unix_socket = asio::local::stream_protocol;

constexpr auto kStallPoll = std::chrono::milliseconds(20);

struct Settings {
  std::atomic<long> delay_ms{0};
  std::atomic<bool> stalled{false};
};

// One client connection and its connection to the server; two pumps.
class Pair : public std::enable_shared_from_this<Pair> {
 public:
  Pair(tcp::socket client, asio::io_context& io, const Settings& settings)
      : client_(std::move(client)), server_(io), settings_(settings) {}

  void start(const std::filesystem::path& target) {
    boost::system::error_code ec;
    server_.connect(unix_socket::endpoint(target.string()), ec);
    if (ec) return close();
    pump(client_, server_, std::make_shared<Chunk>(client_.get_executor()));
    pump(server_, client_, std::make_shared<Chunk>(client_.get_executor()));
  }

  void close() {
    boost::system::error_code ignored;
    client_.close(ignored);
    server_.close(ignored);
  }

 private:
  struct Chunk {
    explicit Chunk(const asio::any_io_executor& executor) : wait(executor) {}
    std::array<char, 16384> bytes;
    std::size_t size = 0;
    asio::steady_timer wait;
  };

  template <class From, class To>
  void pump(From& from, To& to, std::shared_ptr<Chunk> chunk) {
    from.async_read_some(asio::buffer(chunk->bytes),
                         [self = shared_from_this(), &from, &to, chunk](boost::system::error_code ec, std::size_t n) {
                           if (ec) return self->close();
                           chunk->size = n;
                           self->forward(from, to, chunk);
                         });
  }

  template <class From, class To>
  void forward(From& from, To& to, std::shared_ptr<Chunk> chunk) {
    const long delay = settings_.delay_ms.load();
    if (settings_.stalled.load() || delay > 0) {
      chunk->wait.expires_after(settings_.stalled.load() ? kStallPoll : std::chrono::milliseconds(delay));
      chunk->wait.async_wait([self = shared_from_this(), &from, &to, chunk, delay](boost::system::error_code ec) {
        if (ec) return self->close();
        if (self->settings_.stalled.load()) return self->forward(from, to, chunk);
        self->write(from, to, chunk);
      });
      return;
    }
    write(from, to, chunk);
  }

  template <class From, class To>
  void write(From& from, To& to, std::shared_ptr<Chunk> chunk) {
    asio::async_write(to, asio::buffer(chunk->bytes.data(), chunk->size),
                      [self = shared_from_this(), &from, &to, chunk](boost::system::error_code ec, std::size_t) {
                        if (ec) return self->close();
                        self->pump(from, to, chunk);
                      });
  }

  tcp::socket client_;
  unix_socket::socket server_;
  const Settings& settings_;
};

}  // namespace

struct TcpProxy::Impl {
  explicit Impl(std::filesystem::path target) : target(std::move(target)) {
    acceptor.open(tcp::v4());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor.listen();
    accept();
    thread = std::thread([this] { io.run(); });
  }

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;
      auto pair = std::make_shared<Pair>(std::move(socket), io, settings);
      pairs.push_back(pair);
      pair->start(target);
      accept();
    });
  }

  std::filesystem::path target;
  Settings settings;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::list<std::weak_ptr<Pair>> pairs;  // touched only on the io thread
  std::atomic<long> cut_count{0};
  std::thread thread;
};

TcpProxy::TcpProxy(std::filesystem::path target) : impl_(std::make_unique<Impl>(std::move(target))) {}

TcpProxy::~TcpProxy() {
  impl_->io.stop();
  impl_->thread.join();
}

int TcpProxy::port() const { return impl_->acceptor.local_endpoint().port(); }

void TcpProxy::delay(std::chrono::milliseconds d) { impl_->settings.delay_ms = d.count(); }

void TcpProxy::stall() { impl_->settings.stalled = true; }

void TcpProxy::resume() {
  impl_->settings.stalled = false;
  impl_->settings.delay_ms = 0;
}

void TcpProxy::cut() {
  asio::post(impl_->io, [impl = impl_.get()] {
    for (auto& weak : impl->pairs) {
      if (auto pair = weak.lock()) {
        pair->close();
        ++impl->cut_count;
      }
    }
    impl->pairs.clear();
  });
}

long TcpProxy::connections_cut() const { return impl_->cut_count.load(); }

std::filesystem::path unix_socket_of(const std::string& dsn) {
  std::smatch host, port;
  std::regex_search(dsn, host, std::regex(R"(host=(\S+))"));
  std::regex_search(dsn, port, std::regex(R"(port=(\d+))"));
  return std::filesystem::path(host[1].str()) / (".s.PGSQL." + port[1].str());
}

std::string dsn_through(const std::string& dsn, int proxy_port) {
  std::string out = std::regex_replace(dsn, std::regex(R"(host=\S+)"), "host=127.0.0.1");
  return std::regex_replace(out, std::regex(R"(port=\d+)"), "port=" + std::to_string(proxy_port));
}

}  // namespace wsflow::testing
