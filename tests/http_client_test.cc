// The outbound HTTP client: URLs, Retry-After, the mapping of answers to
// step failures, and https verifying the certificate chain and the host name
// against a real TLS server (openssl s_server with a certificate made here).

#include "adapters/outbound/http_client.h"

#include <gtest/gtest.h>

#include <thread>

#include "adapters/outbound/http_outcome.h"
#include "bench/fake_service.h"
#include "tests/support/live_server.h"
#include "tests/support/process.h"
#include "tests/support/serve_fixture.h"

namespace wsflow {
namespace {

using namespace std::chrono_literals;
using testing::FakeReply;
using testing::FakeRequest;

TEST(HttpClient, ParsesHttpAndHttpsUrlsOnly) {
  const auto plain = parse_url("http://billing.internal:8080/v1/customers?x=1");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->https);
  EXPECT_EQ(plain->host, "billing.internal");
  EXPECT_EQ(plain->port, "8080");
  EXPECT_EQ(plain->target, "/v1/customers?x=1");
  const auto tls = parse_url("https://[::1]");
  ASSERT_TRUE(tls);
  EXPECT_EQ(tls->host, "::1");
  EXPECT_EQ(tls->port, "443");
  EXPECT_EQ(tls->target, "/");
  for (const char* bad : {"ftp://x/", "http://", "http://a b/", "http://x:99999/", "billing/customers"}) {
    EXPECT_FALSE(parse_url(bad)) << bad;
  }
}

TEST(HttpClient, ReadsRetryAfterAndMapsAnswersToFailures) {
  testing::FakeService service;
  service.on("GET", "/seconds", [](const FakeRequest&) {
    return FakeReply{429, "", {{"Retry-After", "7"}}, {}, false};
  });
  service.on("GET", "/date", [](const FakeRequest&) {
    return FakeReply{503, "", {{"Retry-After", "Fri, 31 Dec 2100 23:59:59 GMT"}}, {}, false};
  });
  service.on("GET", "/gone", [](const FakeRequest&) { return FakeReply{410, "", {}, {}, false}; });
  const HttpClient client;
  auto get = [&](const std::string& path) { return client.send_blocking({"GET", service.url() + path, {}, "", 2s}); };

  const OutboundResult seconds = get("/seconds");
  ASSERT_TRUE(seconds.response);
  EXPECT_EQ(seconds.response->retry_after, std::chrono::milliseconds(7000));
  const ActionError throttled = http_failure(seconds, "GET /seconds");
  EXPECT_EQ(throttled.code, "http_429");
  EXPECT_TRUE(throttled.retryable);
  EXPECT_EQ(throttled.retry_after, std::chrono::milliseconds(7000));
  EXPECT_GT(get("/date").response->retry_after.value(), std::chrono::hours(24 * 365));

  const ActionError gone = http_failure(get("/gone"), "GET /gone");
  EXPECT_EQ(gone.code, "http_410");
  EXPECT_FALSE(gone.retryable);
  EXPECT_EQ(gone.message, "GET /gone answered 410");

  const OutboundResult refused = client.send_blocking({"GET", "http://127.0.0.1:1/", {}, "", 2s});
  EXPECT_EQ(refused.failure, OutboundFailure::kConnect);
  EXPECT_EQ(http_failure(refused, "GET x").code, "connection_failed");
  EXPECT_EQ(client.send_blocking({"GET", "gopher://x/", {}, "", 2s}).failure, OutboundFailure::kBadUrl);
}

// An `openssl s_server -www` with a certificate for `host`, signed by itself.
class TlsServer {
 public:
  TlsServer(const testing::TempDir& dir, const std::string& name, const std::string& host) {
    cert_ = (dir.path() / (name + ".pem")).string();
    const std::string key = (dir.path() / (name + ".key")).string();
    const auto made =
        testing::run_command({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                              "/CN=" + host, "-addext", "subjectAltName=DNS:" + host, "-keyout", key, "-out", cert_});
    EXPECT_EQ(made.status, 0) << made.text;
    port_ = testing::free_port();
    server_ = std::make_unique<testing::Process>(
        std::vector<std::string>{"openssl", "s_server", "-accept", std::to_string(port_), "-cert", cert_, "-key", key,
                                 "-www", "-quiet"},
        (dir.path() / (name + ".log")).string());
    const HttpClient probe;
    testing::eventually([&] {
      return probe.send_blocking({"GET", url(), {}, "", 1s}).failure != OutboundFailure::kConnect;
    });
  }
  std::string url() const { return "https://localhost:" + std::to_string(port_) + "/"; }
  const std::string& cert() const { return cert_; }

 private:
  std::string cert_;
  int port_ = 0;
  std::unique_ptr<testing::Process> server_;
};

TEST(HttpClient, HttpsVerifiesTheChainAndTheHostName) {
  testing::TempDir dir;
  const TlsServer right(dir, "right", "localhost");
  // Not in the system's trust store: refused.
  const OutboundResult untrusted = HttpClient().send_blocking({"GET", right.url(), {}, "", 5s});
  EXPECT_EQ(untrusted.failure, OutboundFailure::kTls) << untrusted.error;
  EXPECT_EQ(http_failure(untrusted, "GET").code, "tls_failed");
  // Trusted through --ca-file: the exchange works.
  const OutboundResult trusted = HttpClient({right.cert()}).send_blocking({"GET", right.url(), {}, "", 5s});
  ASSERT_EQ(trusted.failure, OutboundFailure::kNone) << trusted.error;
  EXPECT_EQ(trusted.response->status, 200);

  // A trusted certificate for another name: refused.
  const TlsServer wrong(dir, "wrong", "billing.example.com");
  const OutboundResult mismatch = HttpClient({wrong.cert()}).send_blocking({"GET", wrong.url(), {}, "", 5s});
  EXPECT_EQ(mismatch.failure, OutboundFailure::kTls) << mismatch.error;

  EXPECT_THROW(HttpClient({(dir.path() / "missing.pem").string()}), std::runtime_error);
}

}  // namespace
}  // namespace wsflow
