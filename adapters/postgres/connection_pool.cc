#include "adapters/postgres/connection_pool.h"

namespace wsflow::pg {

ConnectionPool::ConnectionPool(std::string dsn, int size, std::function<void(pqxx::connection&)> prepare)
    : dsn_(std::move(dsn)), size_(size), prepare_(std::move(prepare)) {
  for (int i = 0; i < size; ++i) idle_.push_back(nullptr);
}

int ConnectionPool::in_use() {
  std::lock_guard lock(mutex_);
  return size_ - static_cast<int>(idle_.size());
}

ConnectionPool::Lease ConnectionPool::acquire() {
  std::unique_ptr<pqxx::connection> conn;
  {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [&] { return !idle_.empty(); });
    conn = std::move(idle_.back());
    idle_.pop_back();
  }
  try {
    if (!conn || !conn->is_open()) {
      conn = std::make_unique<pqxx::connection>(dsn_);
      if (prepare_) prepare_(*conn);
    }
  } catch (...) {
    give_back(nullptr);
    throw;
  }
  return Lease(*this, std::move(conn));
}

void ConnectionPool::open_all() {
  std::vector<Lease> leases;
  leases.reserve(static_cast<std::size_t>(size_));
  for (int i = 0; i < size_; ++i) leases.push_back(acquire());
}

void ConnectionPool::give_back(std::unique_ptr<pqxx::connection> conn) {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(conn && conn->is_open() ? std::move(conn) : nullptr);
  }
  available_.notify_one();
}

}  // namespace wsflow::pg
