// The API contract (adapters/http/openapi.yaml, served at /openapi.json)
// against the server's route table: every route documented, every documented
// route served; and the document linted by Redocly's CLI (from npm,
// installed by scripts/setup into .tools/).

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "adapters/http/api_server.h"
#include "adapters/http/embedded_files.h"
#include "tests/support/process.h"

namespace wsflow {
namespace {

const std::filesystem::path kSource = WSFLOW_SOURCE_DIR;

struct Documented {
  std::string method;  // upper case
  std::string path;    // as documented, e.g. /v1/sagas/{saga}
  std::string sample;  // a concrete path it stands for
};

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// Path parameters are replaced by values their schema allows: each value of
// an enum, else one plain value.
std::vector<std::string> samples_of(const std::string& path, const YAML::Node& parameters, const YAML::Node& shared) {
  static const std::regex kParam(R"(\{([a-z_]+)\})");
  std::smatch m;
  if (!std::regex_search(path, m, kParam)) return {path};
  std::vector<std::string> values = {"sample1"};
  for (const auto& p : parameters) {
    const YAML::Node resolved =
        p["$ref"] ? shared[p["$ref"].as<std::string>().substr(std::string("#/components/parameters/").size())] : p;
    if (resolved["name"].as<std::string>() == m[1].str() && resolved["schema"]["enum"]) {
      values = resolved["schema"]["enum"].as<std::vector<std::string>>();
    }
  }
  std::vector<std::string> out;
  for (const std::string& value : values) {
    std::string sample = path;
    sample.replace(m.position(0), m.length(0), value);
    for (const std::string& rest : samples_of(sample, parameters, shared)) out.push_back(rest);
  }
  return out;
}

std::vector<Documented> documented() {
  const YAML::Node doc = YAML::LoadFile((kSource / "adapters/http/openapi.yaml").string());
  std::vector<Documented> out;
  for (const auto& path : doc["paths"]) {
    const std::string name = path.first.as<std::string>();
    for (const auto& op : path.second) {
      const std::string method = op.first.as<std::string>();
      if (method == "parameters") continue;
      YAML::Node parameters(YAML::NodeType::Sequence);
      for (const auto& p : path.second["parameters"]) parameters.push_back(p);
      for (const auto& p : op.second["parameters"]) parameters.push_back(p);
      for (const std::string& sample : samples_of(name, parameters, doc["components"]["parameters"])) {
        out.push_back({upper(method), name, sample});
      }
    }
  }
  return out;
}

TEST(OpenApi, EveryRouteIsDocumentedAndEveryDocumentedRouteIsServed) {
  const auto routes = http::route_table();
  const auto docs = documented();
  ASSERT_GT(docs.size(), 40u);
  for (const auto& [method, pattern] : routes) {
    const std::regex re(pattern);
    const bool found = std::any_of(docs.begin(), docs.end(), [&](const Documented& d) {
      return d.method == method && std::regex_match(d.sample, re);
    });
    EXPECT_TRUE(found) << method << " " << pattern << " is served but not documented in openapi.yaml";
  }
  for (const Documented& d : docs) {
    const bool served = std::any_of(routes.begin(), routes.end(), [&](const auto& route) {
      return route.first == d.method && std::regex_match(d.sample, std::regex(route.second));
    });
    EXPECT_TRUE(served) << d.method << " " << d.path << " is documented but not served";
  }
}

TEST(OpenApi, TheServedDocumentIsTheRepositorysFile) {
  std::ifstream file(kSource / "adapters/http/openapi.yaml");
  const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  EXPECT_EQ(std::string(http::embedded_file("openapi.yaml")), text) << "rebuild: the embedded copy is stale";
}

TEST(OpenApi, RedoclyLintsItClean) {
  const std::filesystem::path redocly = kSource / ".tools/node_modules/.bin/redocly";
  ASSERT_TRUE(std::filesystem::exists(redocly))
      << redocly << " is missing: run scripts/setup (it installs the npm tools)";
  const testing::Output out =
      testing::run_command({redocly.string(), "lint", (kSource / "adapters/http/openapi.yaml").string(), "--config",
                            (kSource / "adapters/http/redocly.yaml").string(), "--format=stylish"});
  EXPECT_EQ(out.status, 0) << out.text;
  EXPECT_FALSE(std::regex_search(out.text, std::regex(R"(\d+:\d+\s+warning)"))) << out.text;
}

}  // namespace
}  // namespace wsflow
