#pragma once
// What authenticated requests did to their key and member: the key's
// last_used_at, the member's last_active_at and request_count. Counted in
// memory and written every `interval` in one transaction, so that requests
// made with one key never queue on its row lock (and a request that only
// reads writes nothing). The figures lag by up to `interval`; a crash loses
// at most that much. Thread-safe.

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "adapters/postgres/connection_pool.h"

namespace wsflow::http {

class UsageRecorder {
 public:
  // `db` must outlive the recorder; its thread starts here.
  explicit UsageRecorder(pg::ConnectionPool& db, std::chrono::milliseconds interval = std::chrono::seconds(1));
  ~UsageRecorder();  // stop()
  UsageRecorder(const UsageRecorder&) = delete;
  UsageRecorder& operator=(const UsageRecorder&) = delete;

  // One request by key `key_id` of member `member_id` (empty: an operator key).
  void record(const std::string& key_id, const std::string& member_id);
  // Writes what is pending and stops the thread. Idempotent.
  void stop();

 private:
  void run();
  // Writes what is pending; on a database error keeps it for the next try.
  void flush();

  pg::ConnectionPool& db_;
  const std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<std::string, long long> keys_;     // key id -> requests since the last write
  std::map<std::string, long long> members_;  // member id -> requests since the last write
  std::thread thread_;
};

}  // namespace wsflow::http
