#include "adapters/http/usage_recorder.h"

#include <pqxx/pqxx>

#include "adapters/postgres/pg_store.h"
#include "engine/log.h"

namespace wsflow::http {
namespace {

std::string ids_of(const std::map<std::string, long long>& counts) {
  std::vector<std::string> ids;
  for (const auto& entry : counts) ids.push_back(entry.first);
  return pg::text_array(ids);
}

std::string counts_of(const std::map<std::string, long long>& counts) {
  std::vector<std::string> values;
  for (const auto& entry : counts) values.push_back(std::to_string(entry.second));
  return pg::text_array(values);
}

}  // namespace

UsageRecorder::UsageRecorder(pg::ConnectionPool& db, std::chrono::milliseconds interval)
    : db_(db), interval_(interval), thread_([this] { run(); }) {}

UsageRecorder::~UsageRecorder() { stop(); }

void UsageRecorder::record(const std::string& key_id, const std::string& member_id) {
  std::lock_guard lock(mutex_);
  ++keys_[key_id];
  if (!member_id.empty()) ++members_[member_id];
}

void UsageRecorder::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  flush();
}

void UsageRecorder::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    flush();
    lock.lock();
  }
}

void UsageRecorder::flush() {
  std::map<std::string, long long> keys, members;
  {
    std::lock_guard lock(mutex_);
    keys.swap(keys_);
    members.swap(members_);
  }
  if (keys.empty() && members.empty()) return;
  try {
    auto conn = db_.acquire();
    pqxx::work tx(*conn);
    tx.exec_params("UPDATE wsflow.api_keys SET last_used_at = now() WHERE id = ANY($1::uuid[])", ids_of(keys));
    if (!members.empty()) {
      tx.exec_params(
          "UPDATE wsflow.members m SET last_active_at = now(), request_count = m.request_count + u.n "
          "FROM unnest($1::uuid[], $2::bigint[]) AS u(id, n) WHERE m.id = u.id",
          ids_of(members), counts_of(members));
    }
    tx.commit();
  } catch (const std::exception& e) {
    log_warn(std::string("recording API key usage failed (kept for the next try): ") + e.what());
    std::lock_guard lock(mutex_);
    for (const auto& [id, n] : keys) keys_[id] += n;
    for (const auto& [id, n] : members) members_[id] += n;
  }
}

}  // namespace wsflow::http
