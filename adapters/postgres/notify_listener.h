#pragma once
// Listens on a Postgres NOTIFY channel on its own connection and thread and
// calls `on_notify` for each notification (from that thread). Reconnects
// after a lost connection; the engine's polling covers the gap.

#include <atomic>
#include <functional>
#include <string>
#include <thread>

namespace wsflow::pg {

class NotifyListener {
 public:
  NotifyListener(std::string dsn, std::string channel, std::function<void()> on_notify);
  ~NotifyListener();  // stops and joins the thread
  NotifyListener(const NotifyListener&) = delete;
  NotifyListener& operator=(const NotifyListener&) = delete;

 private:
  void loop();

  std::string dsn_;
  std::string channel_;
  std::function<void()> on_notify_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace wsflow::pg
