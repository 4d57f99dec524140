// wsflow_http_bench: how long a running `wsflow serve` takes to answer an
// ordinary client while hostile and busy clients hold connections to it:
// idle sockets, slowloris sockets trickling header lines, and kept-alive
// clients sending a request every second. Prints the probe's latency
// percentiles and what the server did with the hostile connections.
//
//   wsflow_http_bench --url http://127.0.0.1:8080 --key "$KEY"
//       --path /healthz --path /v1/workspaces/$ID --idle 500 --trickling 500 --keep-alive 200

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <regex>

#include "adapters/os/open_files.h"
#include "bench/hostile_clients.h"

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
