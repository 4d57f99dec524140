#include "adapters/postgres/notify_listener.h"

#include <chrono>
#include <pqxx/pqxx>

#include "engine/log.h"

namespace wsflow::pg {
namespace {

class Receiver : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, const std::string& channel, std::function<void()>& callback)
      : pqxx::notification_receiver(conn, channel), callback_(callback) {}
  void operator()(const std::string&, int) override { callback_(); }

 private:
  std::function<void()>& callback_;
};

}  // namespace

NotifyListener::NotifyListener(std::string dsn, std::string channel, std::function<void()> on_notify)
    : dsn_(std::move(dsn)), channel_(std::move(channel)), on_notify_(std::move(on_notify)) {
  thread_ = std::thread([this] { loop(); });
}

NotifyListener::~NotifyListener() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void NotifyListener::loop() {
  while (!stop_) {
    try {
      pqxx::connection conn(dsn_);
      Receiver receiver(conn, channel_, on_notify_);
      // Anything that became runnable while we were not listening.
      on_notify_();
      while (!stop_) conn.await_notification(0, 200'000);
    } catch (const std::exception& e) {
      if (stop_) break;
      log_warn(std::string("LISTEN connection lost, reconnecting: ") + e.what());
      for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace wsflow::pg
