#pragma once
// A fixed-size pool of libpqxx connections to one database. Connections are
// opened lazily (or all at once by open_all), each with the store's prepared
// statements, and a connection that broke is replaced on its next use.
// Thread-safe.

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/connection>

namespace wsflow::pg {

class ConnectionPool {
 public:
  // `prepare` runs on every new connection (to register prepared statements).
  ConnectionPool(std::string dsn, int size, std::function<void(pqxx::connection&)> prepare = nullptr);
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // A connection for the caller's exclusive use until the Lease is destroyed.
  // Blocks while all are in use. Throws pqxx::broken_connection if the
  // database cannot be reached.
  class Lease {
   public:
    Lease(ConnectionPool& pool, std::unique_ptr<pqxx::connection> conn) : pool_(&pool), conn_(std::move(conn)) {}
    Lease(Lease&& other) noexcept : pool_(std::exchange(other.pool_, nullptr)), conn_(std::move(other.conn_)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_) pool_->give_back(std::move(conn_));
    }
    pqxx::connection& operator*() { return *conn_; }
    pqxx::connection* operator->() { return conn_.get(); }

   private:
    ConnectionPool* pool_;  // null once moved from
    std::unique_ptr<pqxx::connection> conn_;
  };
  Lease acquire();

  // Opens every connection the pool has not opened yet, now rather than on
  // first use: a process that opens them at start-up neither makes its first
  // burst of work wait for connections nor finds a database it cannot use
  // only then. Throws like acquire(). Call it while the pool is not shared
  // yet: it holds all the connections at once until it returns.
  void open_all();

  const std::string& dsn() const { return dsn_; }
  int size() const { return size_; }
  // Connections leased out right now.
  int in_use();

 private:
  void give_back(std::unique_ptr<pqxx::connection> conn);

  std::string dsn_;
  int size_;
  std::function<void(pqxx::connection&)> prepare_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;  // open or null (not yet opened)
};

}  // namespace wsflow::pg
