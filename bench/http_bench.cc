// wsflow_http_bench: how long a running `wsflow serve` takes to answer an
// ordinary client while hostile and busy clients hold connections to it:
// idle sockets, slowloris sockets trickling header lines, and kept-alive
// clients sending a request every second. Prints the probe's latency
// percentiles and what the server did with the hostile connections.
//
//   wsflow_http_bench --url http://127.0.0.1:8080 --key "$KEY"
//       --path /healthz --path /v1/workspaces/$ID --idle 500 --trickling 500 --keep-alive 200
//
// With --post-rate, instead: POST /v1/workspaces (an operator key) at that
// rate over kept-alive connections, each request's latency from when it was
// due, and the machine's own stalls meanwhile (scripts/bench runs this
// against a fresh serve):
//   wsflow_http_bench --url http://127.0.0.1:8080 --key "$KEY" --post-rate 200 --seconds 10

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <regex>

#include "adapters/os/open_files.h"
#include "bench/hostile_clients.h"
#include "bench/machine_watch.h"
#include "bench/paced_posts.h"

int main(int argc, char** argv) {
  using namespace wsflow::bench;
  CLI::App cli{"HTTP latency under hostile load, against a running wsflow serve"};
  std::string url = "http://127.0.0.1:8080";
  std::string key;
  std::vector<std::string> paths;
  HostileLoad load{500, 500, 200};
  int probes = 200;
  int warmup_seconds = 3;
  cli.add_option("--url", url, "the server")->capture_default_str();
  cli.add_option("--key", key, "API key for the probed paths (default: $WSFLOW_API_KEY)");
  cli.add_option("--path", paths, "GET paths to probe, in turn (default /healthz)");
  cli.add_option("--idle", load.idle, "connections that send nothing")->capture_default_str();
  cli.add_option("--trickling", load.trickling, "connections trickling a header line per second")
      ->capture_default_str();
  cli.add_option("--keep-alive", load.keep_alive, "kept-alive connections sending a GET /healthz per second")
      ->capture_default_str();
  cli.add_option("--probes", probes, "requests measured")->capture_default_str();
  cli.add_option("--warmup", warmup_seconds, "seconds between opening the load and probing")->capture_default_str();
  double post_rate = 0;
  int seconds = 10, connections = 8;
  cli.add_option("--post-rate", post_rate, "POST /v1/workspaces per second over kept-alive connections (instead)");
  cli.add_option("--seconds", seconds, "how long --post-rate runs")->capture_default_str()->check(CLI::Range(1, 3600));
  cli.add_option("--connections", connections, "kept-alive connections of --post-rate")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  CLI11_PARSE(cli, argc, argv);
  if (key.empty() && std::getenv("WSFLOW_API_KEY")) key = std::getenv("WSFLOW_API_KEY");
  if (paths.empty()) paths = {"/healthz"};
  std::smatch m;
  if (!std::regex_match(url, m, std::regex(R"(http://([0-9.]+):([0-9]+)/?)"))) {
    std::cerr << "--url must look like http://127.0.0.1:8080\n";
    return 2;
  }
  const std::string host = m[1];
  const int port = std::stoi(m[2]);
  if (post_rate > 0) {
    const std::string run = std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000007);
    PacedLoad paced{"/v1/workspaces",
                    key,
                    [&](long n) {
                      const std::string name = "Bench " + run + " " + std::to_string(n);
                      return R"({"name":")" + name + R"(","owner":{"user_id":"u-)" + run + "-" + std::to_string(n) +
                             R"(","email":"o)" + std::to_string(n) + R"(@example.com"}})";
                    },
                    post_rate,
                    seconds,
                    connections,
                    202};
    MachineWatch watch;
    const PacedResult posted = paced_posts(host, port, paced);
    const MachineStalls machine = watch.stop();
    std::printf("wsflow_http_bench: POST /v1/workspaces at %.0f/s for %d s over %d kept-alive connections\n", post_rate,
                seconds, connections);
    std::printf("  latency ms (from when due) : p50 %.1f  p99 %.1f  max %.1f  (%ld sent, %d failed, %ld reconnects)\n",
                posted.latencies.quantile(0.5), posted.latencies.quantile(0.99), posted.latencies.quantile(1.0),
                posted.sent, posted.latencies.failures, posted.reconnects);
    std::printf("  %s\n", machine_note(machine).c_str());
    return posted.latencies.failures == 0 ? 0 : 1;
  }
  wsflow::os::raise_open_file_limit(load.idle + load.trickling + load.keep_alive + 256);

  HostileClients hostile(host, port, load);
  std::this_thread::sleep_for(std::chrono::seconds(warmup_seconds));
  const Latencies latencies = probe(host, port, paths, key, probes, 200, std::chrono::seconds(10));
  std::printf("wsflow_http_bench: %d idle + %d trickling + %d keep-alive connections, %d probes of %zu path(s)\n",
              load.idle, load.trickling, load.keep_alive, probes, paths.size());
  std::printf("  probe latency ms : p50 %.1f  p99 %.1f  max %.1f  (%d failed or timed out after 10 s)\n",
              latencies.quantile(0.5), latencies.quantile(0.99), latencies.quantile(1.0), latencies.failures);
  std::printf("  keep-alive       : %ld responses, %d connections closed by the server\n",
              hostile.keep_alive_responses(), hostile.keep_alive_closed());
  std::printf("  idle/trickling   : %ld closed by the server (header or idle deadline) and reopened\n",
              hostile.idle_or_trickling_closed());
  return latencies.failures == 0 ? 0 : 1;
}
