// wsflow_demo_service: a small local service to try HTTP steps against by
// hand (the README's walkthrough). Every POST, PUT or PATCH creates a
// resource, idempotently by Idempotency-Key (a repeat gets the first answer),
// and answers 201 {"id": ..., "received": <the JSON body>}; DELETE answers
// 204; GET 200 with what was created. Each request is printed with its key.
//
//   wsflow_demo_service --listen 127.0.0.1:9090 [--delay 1s] [--fail-next 2]

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>
#include <map>
#include <mutex>

#include "bench/fake_service.h"
#include "engine/duration.h"
#include "engine/sha256.h"

namespace {

using namespace wsflow;
using testing::FakeReply;
using testing::FakeRequest;

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"A small local service for trying wsflow's HTTP steps"};
  std::string listen = "127.0.0.1:9090", delay = "0ms";
  int fail_next = 0;
  cli.add_option("--listen", listen, "host:port")->capture_default_str();
  cli.add_option("--delay", delay, "answer every request after this long")->capture_default_str();
  cli.add_option("--fail-next", fail_next, "answer the first N POSTs 503 with Retry-After: 1");
  CLI11_PARSE(cli, argc, argv);
  const auto colon = listen.rfind(':');
  const std::optional<Millis> wait = try_parse_duration(delay);
  if (colon == std::string::npos || !wait) {
    std::cerr << "wsflow_demo_service: expected --listen host:port and a duration such as 1s\n";
    return 2;
  }
  // Blocked before the service's thread starts, so that only sigwait sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  testing::FakeService service(listen.substr(0, colon),
                               static_cast<unsigned short>(std::stoi(listen.substr(colon + 1))));
  std::mutex mutex;
  std::map<std::string, nlohmann::json> created;  // idempotency key -> first answer
  service.observe([&](const FakeRequest& r, const FakeReply& reply) {
    std::lock_guard lock(mutex);
    std::cout << r.method << " " << r.target << " Idempotency-Key: " << r.header("idempotency-key") << " -> "
              << reply.status << std::endl;
  });
  auto create = [&](const FakeRequest& r) {
    nlohmann::json answer;
    {
      std::lock_guard lock(mutex);
      const std::string key = r.header("idempotency-key");
      auto it = created.find(key);
      if (it == created.end()) {
        const std::string id = sha256_hex(key.empty() ? r.target + r.body : key).substr(0, 12);
        it = created.emplace(key, nlohmann::json{{"id", id}, {"received", r.json()}}).first;
      }
      answer = it->second;
    }
    FakeReply reply = FakeReply::json(201, answer);
    reply.delay = *wait;
    return reply;
  };
  for (const char* method : {"POST", "PUT", "PATCH"}) service.on(method, "/", create);
  service.on("DELETE", "/", [&](const FakeRequest&) { return FakeReply{204, "", {}, *wait, false}; });
  service.on("GET", "/", [&](const FakeRequest&) {
    std::lock_guard lock(mutex);
    nlohmann::json all = nlohmann::json::array();
    for (const auto& [key, answer] : created) all.push_back(answer);
    return FakeReply::json(200, all);
  });
  if (fail_next > 0)
    service.fail_next("POST", "/", fail_next, {503, R"({"error":"warming up"})", {{"Retry-After", "1"}}, {}, false});
  std::cout << "wsflow_demo_service listening on " << service.url() << std::endl;
  int received = 0;
  sigwait(&signals, &received);
  return 0;
}
