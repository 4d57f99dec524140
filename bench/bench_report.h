#pragma once
// The figures of one wsflow_bench run: a readable table, and JSON for
// tooling. Each figure may name a reference (a pgbench figure of the same
// run) and a target: the table shows the ratio and whether it is met.

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace wsflow::bench {

struct Figure {
  std::string name;  // e.g. "steps/s, group commit"
  double value = 0;
  std::string unit;  // "steps/s", "ms", "MB", "count"
  // value / reference, compared with the target ratio (higher is better
  // unless lower_is_better).
  std::optional<double> reference;
  std::string reference_name;
  std::optional<double> target;  // a ratio when reference is set, else an absolute bound
  bool lower_is_better = false;
  std::string note;

  std::optional<double> ratio() const;
  std::optional<bool> met() const;
};

class Report {
 public:
  void add(Figure figure) { figures_.push_back(std::move(figure)); }
  void set_info(const std::string& key, nlohmann::json value) { info_[key] = std::move(value); }
  std::string table() const;
  nlohmann::json json() const;

 private:
  std::vector<Figure> figures_;
  nlohmann::json info_ = nlohmann::json::object();
};

}  // namespace wsflow::bench
