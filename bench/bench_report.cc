#include "bench/bench_report.h"

#include <cstdio>

namespace wsflow::bench {

std::optional<double> Figure::ratio() const {
  if (!reference || *reference == 0) return std::nullopt;
  return value / *reference;
}

std::optional<bool> Figure::met() const {
  if (!target) return std::nullopt;
  const double measured = reference ? ratio().value_or(0) : value;
  return lower_is_better ? measured <= *target : measured >= *target;
}

namespace {

std::string format(const char* pattern, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, pattern, value);
  return buffer;
}

std::string number(double value) { return format(value >= 100 ? "%.0f" : value >= 10 ? "%.1f" : "%.2f", value); }

}  // namespace

std::string Report::table() const {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-44s %12s %-8s %-34s %8s %-10s %s\n", "figure", "value", "unit", "reference",
                "ratio", "target", "met");
  out += line;
  for (const Figure& f : figures_) {
    const std::string reference = f.reference ? f.reference_name + " " + number(*f.reference) : "";
    const std::string ratio = f.ratio() ? format("%.2fx", *f.ratio()) : "";
    std::string target;
    if (f.target) {
      target = std::string(f.lower_is_better ? "<= " : ">= ") + number(*f.target) + (f.reference ? "x" : "");
    }
    const std::string met = f.met() ? (*f.met() ? "yes" : "NO") : "";
    std::snprintf(line, sizeof line, "%-44s %12s %-8s %-34s %8s %-10s %s", f.name.c_str(), number(f.value).c_str(),
                  f.unit.c_str(), reference.c_str(), ratio.c_str(), target.c_str(), met.c_str());
    out += line;
    if (!f.note.empty()) out += "  (" + f.note + ")";
    out += "\n";
  }
  return out;
}

nlohmann::json Report::json() const {
  nlohmann::json figures = nlohmann::json::array();
  for (const Figure& f : figures_) {
    nlohmann::json j = {{"name", f.name}, {"value", f.value}, {"unit", f.unit}};
    if (f.reference) {
      j["reference"] = {{"name", f.reference_name}, {"value", *f.reference}};
      j["ratio"] = *f.ratio();
    }
    if (f.target) j["target"] = {{"value", *f.target}, {"lower_is_better", f.lower_is_better}, {"met", *f.met()}};
    if (!f.note.empty()) j["note"] = f.note;
    figures.push_back(std::move(j));
  }
  return {{"info", info_}, {"figures", figures}};
}

}  // namespace wsflow::bench
