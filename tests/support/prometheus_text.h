#pragma once
// A strict parser of the Prometheus text exposition format (0.0.4), for
// tests that scrape /metrics: every line must be a comment (# HELP, # TYPE)
// or a sample `name{label="value",…} number`, a sample's family must have
// been TYPEd before it, and label values must be properly escaped.

#include <map>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>

namespace wsflow::testing {

struct Exposition {
  std::map<std::string, std::string> types;  // family -> counter|gauge|histogram|summary|untyped
  // "name{a=\"x\",b=\"y\"}" (labels as written) -> value
  std::map<std::string, double> samples;

  // The value of `name` with exactly these labels (in the order exposed), or -1.
  double value(const std::string& series) const {
    auto it = samples.find(series);
    return it == samples.end() ? -1 : it->second;
  }
  // The sum over every sample of `name` whose labels contain `fragment`.
  double sum(const std::string& name, const std::string& fragment = "") const {
    double total = 0;
    for (const auto& [series, v] : samples) {
      if (series.rfind(name + "{", 0) == 0 || series == name) {
        if (series.find(fragment) != std::string::npos) total += v;
      }
    }
    return total;
  }
};

inline Exposition parse_exposition(const std::string& text) {
  static const std::regex kType(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*)");
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*)?\})? ([-+]?([0-9.]+([eE][-+]?[0-9]+)?|Inf|NaN))( [0-9]+)?)");
  Exposition out;
  std::istringstream lines(text);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    std::smatch m;
    if (line.empty() || std::regex_match(line, kHelp)) continue;
    if (std::regex_match(line, m, kType)) {
      out.types[m[1]] = m[2];
      continue;
    }
    if (!std::regex_match(line, m, kSample)) {
      throw std::runtime_error("line " + std::to_string(number) + " is not valid exposition: " + line);
    }
    std::string family = m[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (!out.types.count(family) && family.size() > s.size() &&
          family.compare(family.size() - s.size(), s.size(), s) == 0) {
        family = family.substr(0, family.size() - s.size());
      }
    }
    if (!out.types.count(family)) throw std::runtime_error("sample before its # TYPE: " + line);
    out.samples[m[1].str() + m[2].str()] = std::stod(m[8].str() == "+Inf" ? "inf" : m[8].str());
  }
  return out;
}

}  // namespace wsflow::testing
