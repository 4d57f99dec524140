#pragma once
// End-to-end test support: a `wsflow serve` of the real definitions/ (the
// hard-delete window shortened to 2 s) on a fresh test database, spoken to
// over HTTP with an operator key, and a webhook receiver that records
// deliveries and fails on demand. Header-only test code, shared by the
// *_proctest files that drive the API.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>
#include <pqxx/pqxx>
#include <regex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/text_file.h"
#include "tests/support/serve_fixture.h"
#include "tests/support/test_cluster.h"

namespace wsflow::testing {

using json = nlohmann::json;
using namespace std::chrono_literals;

inline int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// A webhook receiver that records deliveries and, on demand, fails the next
// deliveries of one event (other sagas' deliveries are not affected).
class HookReceiver {
 public:
  HookReceiver() : port_(free_port()) {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mutex_);
      deliveries_.push_back({req.get_header_value("X-Wsflow-Event"), req.get_header_value("X-Wsflow-Signature"),
                             req.get_header_value("X-Wsflow-Timestamp"), req.get_header_value("Idempotency-Key"),
                             req.body});
      if (fail_next_ > 0 && req.get_header_value("X-Wsflow-Event") == fail_event_) {
        --fail_next_;
        res.status = 503;
        return;
      }
      res.status = 204;
    });
    server_.bind_to_port("127.0.0.1", port_);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // A stop() before the listening loop starts would be lost, and the destructor would wait forever.
    while (!server_.is_running()) std::this_thread::sleep_for(1ms);
  }
  ~HookReceiver() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  void fail_next(int n, const std::string& event) {
    fail_event_ = event;
    std::lock_guard lock(mutex_);
    fail_next_ = n;
  }
  struct Delivery {
    std::string event, signature, timestamp, idempotency_key, body;
  };
  std::vector<Delivery> deliveries_for(const std::string& workspace_id) {
    std::lock_guard lock(mutex_);
    std::vector<Delivery> out;
    for (const auto& d : deliveries_) {
      if (d.body.find(workspace_id) != std::string::npos) out.push_back(d);
    }
    return out;
  }

 private:
  int port_;
  httplib::Server server_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<Delivery> deliveries_;
  int fail_next_ = 0;
  std::string fail_event_;
};

// How many environment schemas (ws_<workspace hex>_<env>) of the workspace
// the database at `dsn` holds.
inline long long environment_schemas(const std::string& dsn, const std::string& workspace_id) {
  std::string hex = workspace_id;
  hex.erase(std::remove(hex.begin(), hex.end(), '-'), hex.end());
  pqxx::connection conn(dsn);
  pqxx::nontransaction tx(conn);
  return tx.exec_params1("SELECT count(*) FROM pg_namespace WHERE nspname LIKE $1", "ws_" + hex + "_%")[0]
      .as<long long>();
}

// Whether an answer carries text only the server's insides would write:
// an exception's message, SQL or a database error. No answer may.
inline bool carries_internal_text(const std::string& text) {
  for (const char* marker :
       {"json.exception", "pqxx", "ERROR:  ", "syntax error", "std::", "what()", "terminate", "SQLSTATE"}) {
    if (text.find(marker) != std::string::npos) return true;
  }
  return false;
}

struct Response {
  int status = 0;
  json body;
  httplib::Headers headers;
};

// One running `wsflow serve` and an operator key for it.
class Server {
 public:
  // `window` replaces the 30-day hard-delete window of the offboard saga,
  // `retention` the 7-day retention of exports.
  // `extra_args` are passed to `wsflow serve` as well.
  // `dsn`: the database to serve (default: a fresh one of the test cluster).
  explicit Server(const std::string& faults, const std::string& webhook_url, const std::string& window = "2s",
                  const std::string& retention = "7d", const std::vector<std::string>& extra_args = {},
                  const std::string& dsn = "")
      : dsn_(dsn.empty() ? fresh_database() : dsn) {
    // The real definitions, with the hard-delete window shortened for tests.
    const std::filesystem::path source = std::filesystem::path(WSFLOW_SOURCE_DIR) / "definitions";
    for (const auto& entry : std::filesystem::directory_iterator(source)) {
      if (!entry.is_regular_file()) continue;
      std::string text = read_text_file(entry.path()).value();
      text = std::regex_replace(text, std::regex("30d"), window);
      text = std::regex_replace(text, std::regex("retention: &retention 7d"), "retention: &retention " + retention);
      dir_.write(entry.path().filename().string(), text);
    }
    port_ = free_port();
    if (!faults.empty()) setenv("WSFLOW_TEST_FAULTS", faults.c_str(), 1);
    std::vector<std::string> args = {"--listen",         "127.0.0.1:" + std::to_string(port_),
                                     "--poll",           "100ms",
                                     "--log-format",     "json",
                                     "--export-dir",     (dir_.path() / "exports").string(),
                                     "--webhook-url",    webhook_url,
                                     "--webhook-secret", "s3cret"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    process_ = start_serve(dsn_, dir_.path(), "api", dir_.path() / "serve.log", args);
    unsetenv("WSFLOW_TEST_FAULTS");
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_read_timeout(30, 0);
    for (int i = 0; i < 300 && get("/healthz", "").status != 200; ++i) std::this_thread::sleep_for(50ms);
    const auto key = run_command({WSFLOW_BINARY, "--database-url", dsn_, "keys", "create", "--name", "ops"});
    operator_key_ = key.text.substr(0, key.text.find('\n'));
  }
  ~Server() {
    process_->signal(SIGTERM);
    process_->wait(20s);
  }

  Response request(const std::string& method, const std::string& path, const std::string& key,
                   const std::string& body = "", const std::string& idempotency_key = "") {
    httplib::Headers headers;
    if (!key.empty()) headers.emplace("Authorization", "Bearer " + key);
    if (!idempotency_key.empty()) headers.emplace("Idempotency-Key", idempotency_key);
    httplib::Result r = method == "GET"     ? client_->Get(path.c_str(), headers)
                        : method == "POST"  ? client_->Post(path.c_str(), headers, body, "application/json")
                        : method == "PATCH" ? client_->Patch(path.c_str(), headers, body, "application/json")
                                            : client_->Delete(path.c_str(), headers, body, "application/json");
    Response out;
    if (!r) return out;
    out.status = r->status;
    out.headers = r->headers;
    out.body = r->body.empty() ? json() : json::parse(r->body, nullptr, false);
    return out;
  }
  Response get(const std::string& path, const std::string& key) { return request("GET", path, key); }
  Response post(const std::string& path, const std::string& key, const std::string& body = "{}",
                const std::string& idempotency_key = "") {
    return request("POST", path, key, body, idempotency_key);
  }

  // Creates a workspace and waits for the create saga to finish; returns its id.
  std::string create_workspace(const std::string& name, const std::string& owner = "owner-1") {
    const Response r =
        post("/v1/workspaces", operator_key_,
             json{{"name", name}, {"plan", "pro"}, {"owner", {{"user_id", owner}, {"email", owner + "@example.com"}}}}
                 .dump());
    EXPECT_EQ(r.status, 202) << r.body.dump();
    const std::string id = r.body.value("workspace_id", "");
    owner_keys_[id] = r.body.contains("owner_key") ? r.body["owner_key"].value("key", "") : "";
    wait_status(id, {"active", "deleted", "failed"});
    return id;
  }

  // Polls the workspace until its status is one of `statuses`; returns the last seen.
  std::string wait_status(const std::string& id, const std::set<std::string>& statuses,
                          std::chrono::milliseconds timeout = 30s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    std::string status;
    while (std::chrono::steady_clock::now() < until) {
      const Response r = get("/v1/workspaces/" + id, operator_key_);
      status = r.status == 404 ? "<gone>" : r.body.value("status", "");
      if (statuses.count(status)) return status;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "workspace " << id << " stuck in '" << status << "'\n" << process_->log();
    return status;
  }

  // A key for `user_id` (a member of the workspace) with `scopes`, minted by
  // the operator (break-glass, audited).
  std::string member_key(const std::string& workspace, const std::string& user_id,
                         const json& scopes = json::array({"read", "write"})) {
    const Response r = post("/v1/workspaces/" + workspace + "/keys", operator_key_,
                            json{{"on_behalf_of", user_id}, {"reason", "test fixture"}, {"scopes", scopes}}.dump());
    EXPECT_EQ(r.status, 201) << r.body.dump();
    return r.body.value("key", "");
  }
  void add_member(const std::string& workspace, const std::string& user_id, const std::string& role) {
    const Response r = post("/v1/workspaces/" + workspace + "/members", operator_key_,
                            json{{"user_id", user_id}, {"email", user_id + "@example.com"}, {"role", role}}.dump());
    EXPECT_EQ(r.status, 201) << r.body.dump();
  }

  long long scalar(const std::string& sql) {
    pqxx::connection conn(dsn_);
    pqxx::work tx(conn);
    const long long value = tx.exec(sql)[0][0].as<long long>();
    tx.commit();
    return value;
  }
  long long schemas_of(const std::string& workspace_id) { return environment_schemas(dsn_, workspace_id); }

  // Starts an export with `key`, waits for its archive, downloads and
  // unpacks it into `into`; returns the export record. Fails the test (and
  // returns what it has) when a step does not work.
  json take_export(const std::string& workspace, const std::string& key, const std::filesystem::path& into) {
    const Response started = post("/v1/workspaces/" + workspace + "/export", key);
    EXPECT_EQ(started.status, 202) << started.body.dump();
    const std::string path = "/v1/workspaces/" + workspace + "/exports/" + started.body.value("export_id", "");
    Response record;
    for (int i = 0; i < 600; ++i) {
      record = get(path, key);
      if (record.body.value("status", "") == "completed") break;
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(record.body.value("status", ""), "completed") << record.body.dump() << log();
    httplib::Client raw = raw_client();
    const auto archive = raw.Get((path + "/download").c_str(), {{"Authorization", "Bearer " + key}});
    EXPECT_TRUE(archive && archive->status == 200);
    if (!archive) return record.body;
    std::filesystem::create_directories(into);
    std::ofstream(into / "export.tar.gz", std::ios::binary) << archive->body;
    const Output untar = run_command({"tar", "-xzf", (into / "export.tar.gz").string(), "-C", into.string()});
    EXPECT_EQ(untar.status, 0) << untar.text;
    return record.body;
  }

  // The owner's first key, from the create response of create_workspace.
  std::string owner_key(const std::string& workspace) const { return owner_keys_.at(workspace); }
  const std::string& operator_key() const { return operator_key_; }
  const std::string& dsn() const { return dsn_; }
  httplib::Client raw_client() const { return httplib::Client("127.0.0.1", port_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return process_->log(); }

 private:
  TempDir dir_;
  std::string dsn_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
  std::unique_ptr<httplib::Client> client_;
  std::string operator_key_;
  std::map<std::string, std::string> owner_keys_;
};

// A test suite whose tests share one server and webhook receiver, started
// before its first test and stopped after its last. `Settings` gives the
// offboarding window (`static constexpr const char* kWindow`).
template <class Settings>
class SharedServerSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    hooks_ = new HookReceiver();
    server_ = new Server("", hooks_->url(), Settings::kWindow);
  }
  static void TearDownTestSuite() {
    delete server_;
    delete hooks_;
  }
  Server& api() { return *server_; }
  const std::string& ops() { return server_->operator_key(); }

  static inline HookReceiver* hooks_ = nullptr;
  static inline Server* server_ = nullptr;
};

// The window most suites use: short, so hard deletes happen within a test.
struct ShortWindow {
  static constexpr const char* kWindow = "2s";
};

}  // namespace wsflow::testing
