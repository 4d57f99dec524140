#include "engine/http_step.h"

#include <algorithm>
#include <regex>

namespace wsflow {
namespace {

class CallParser {
 public:
  CallParser(YamlChecker& c, const TemplateRules& rules, std::vector<ConfigReference>& config)
      : c_(c), rules_(rules), config_(config) {}

  void fail(const YAML::Node& at, const std::string& field, const std::string& message) {
    c_.error(at, field, message);
  }

  // A template string: parsed, its references checked against the rules.
  std::optional<std::string> templated(const YAML::Node& node, const std::string& field) {
    if (!node.IsScalar()) {
      fail(node, field, "expected a string");
      return std::nullopt;
    }
    const std::string& text = node.Scalar();
    ParsedTemplate parsed = parse_template(text);
    if (!parsed.value) {
      c_.record(c_.place_in_scalar(node, parsed.error.offset, field, parsed.error.message));
      return std::nullopt;
    }
    std::size_t search_from = 0;
    for (const TemplateRef& ref : parsed.value->references()) {
      const std::size_t offset = text.find("${" + ref.text + "}", search_from);
      search_from = offset == std::string::npos ? search_from : offset + 1;
      check_reference(node, offset == std::string::npos ? 0 : offset, field, ref);
    }
    return text;
  }

  // Every string inside a JSON body is a template.
  nlohmann::json templated_json(const YAML::Node& node, const std::string& field) {
    if (node.IsMap()) {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) {
        out[kv.first.Scalar()] = templated_json(kv.second, YamlChecker::join(field, kv.first.Scalar()));
      }
      return out;
    }
    if (node.IsSequence()) {
      nlohmann::json out = nlohmann::json::array();
      for (std::size_t i = 0; i < node.size(); ++i) {
        out.push_back(templated_json(node[i], field + "[" + std::to_string(i) + "]"));
      }
      return out;
    }
    nlohmann::json value = yaml_to_json(node);
    if (value.is_string()) templated(node, field);
    return value;
  }

 private:
  void check_reference(const YAML::Node& node, std::size_t offset, const std::string& field, const TemplateRef& ref) {
    auto refuse = [&](const std::string& message) { c_.record(c_.place_in_scalar(node, offset, field, message)); };
    switch (ref.root) {
      case RefRoot::kInput: {
        const std::string top = ref.path.substr(0, ref.path.find('.'));
        if (!rules_.declared_input.count(top)) {
          refuse("${" + ref.text + "}: the saga does not declare '" + top +
                 "' in input.required (add it there, so a start without it is refused)");
        }
        break;
      }
      case RefRoot::kBranch:
        if (!rules_.in_for_each) refuse("${branch} is only set in a for_each step");
        break;
      case RefRoot::kOutput:
        if (!rules_.compensating) refuse("${" + ref.text + "}: output. is the step's own result, for compensate_http");
        break;
      case RefRoot::kVar:
      case RefRoot::kSecret:
        config_.push_back({ref.root, ref.path, c_.place_in_scalar(node, offset, field, "")});
        break;
      default:
        break;
    }
  }

  YamlChecker& c_;
  const TemplateRules& rules_;
  std::vector<ConfigReference>& config_;
};

void parse_request(YamlChecker& c, CallParser& p, const YAML::Node& request, const std::string& f,
                   nlohmann::json& call) {
  if (!c.map(request, f, {"method", "url", "headers", "json", "body"})) return;
  static const std::set<std::string> kMethods = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
  if (auto method = c.string(request, f, "method", true)) {
    if (!kMethods.count(*method)) {
      p.fail(request["method"], YamlChecker::join(f, "method"),
             "expected GET, POST, PUT, PATCH, DELETE or HEAD, got '" + *method + "'");
    }
    call["method"] = *method;
  }
  if (!request["url"]) {
    p.fail(request, YamlChecker::join(f, "url"), "required field is missing");
  } else if (auto url = p.templated(request["url"], YamlChecker::join(f, "url"))) {
    // A URL that starts with literal text must start with its scheme.
    const bool literal_start = url->rfind("${", 0) != 0;
    if (literal_start && url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0) {
      p.fail(request["url"], YamlChecker::join(f, "url"), "expected an http:// or https:// URL (or ${var.NAME}/...)");
    }
    call["url"] = *url;
  }
  call["headers"] = nlohmann::json::object();
  if (const YAML::Node headers = request["headers"]) {
    const std::string hf = YamlChecker::join(f, "headers");
    if (!headers.IsMap()) {
      p.fail(headers, hf, "expected a mapping of header names to strings");
    } else {
      static const std::regex kToken("[!#$%&'*+.^_`|~0-9A-Za-z-]+");
      for (const auto& kv : headers) {
        const std::string name = kv.first.Scalar();
        const std::string field = YamlChecker::join(hf, name);
        if (!std::regex_match(name, kToken)) p.fail(kv.first, field, "not a valid header name");
        std::string lower = name;
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
        if (lower == "idempotency-key" || lower == "content-length" || lower == "host") {
          p.fail(kv.first, field, "set by wsflow itself");
        }
        if (auto value = p.templated(kv.second, field)) call["headers"][name] = *value;
      }
    }
  }
  if (request["json"] && request["body"]) {
    p.fail(request, f, "use either json or body, not both");
  } else if (request["json"]) {
    call["json"] = p.templated_json(request["json"], YamlChecker::join(f, "json"));
  } else if (request["body"]) {
    if (auto body = p.templated(request["body"], YamlChecker::join(f, "body"))) call["body"] = *body;
  }
}

}  // namespace

std::optional<nlohmann::json> parse_http_call(YamlChecker& c, const YAML::Node& parent, const std::string& field,
                                              const char* key, const TemplateRules& rules,
                                              std::vector<ConfigReference>& config) {
  const YAML::Node node = parent[key];
  const std::string f = YamlChecker::join(field, key);
  if (!c.map(node, f, {"request", "success", "output", "timeout"})) return std::nullopt;
  const std::size_t errors_before = c.error_count();
  CallParser p(c, rules, config);
  nlohmann::json call = nlohmann::json::object();
  if (!node["request"]) {
    p.fail(node, YamlChecker::join(f, "request"), "required field is missing");
  } else {
    parse_request(c, p, node["request"], YamlChecker::join(f, "request"), call);
  }
  call["success"] = nlohmann::json::array();
  if (const YAML::Node success = node["success"]) {
    const std::string sf = YamlChecker::join(f, "success");
    if (!success.IsSequence() || success.size() == 0) p.fail(success, sf, "expected a non-empty list of HTTP statuses");
    for (std::size_t i = 0; success.IsSequence() && i < success.size(); ++i) {
      int status = 0;
      if (!success[i].IsScalar() || !YAML::convert<int>::decode(success[i], status) || status < 100 || status > 599) {
        p.fail(success[i], sf + "[" + std::to_string(i) + "]", "expected an HTTP status (100-599)");
        continue;
      }
      call["success"].push_back(status);
    }
  }
  call["output"] = nlohmann::json::object();
  if (const YAML::Node output = node["output"]) {
    const std::string of = YamlChecker::join(f, "output");
    if (!output.IsMap()) p.fail(output, of, "expected a mapping of names to JSON pointers (e.g. id: /id)");
    static const std::regex kName("[A-Za-z_][A-Za-z0-9_]*");
    for (const auto& kv : output.IsMap() ? output : YAML::Node()) {
      const std::string name = kv.first.Scalar();
      const std::string field = YamlChecker::join(of, name);
      if (!std::regex_match(name, kName)) p.fail(kv.first, field, "output names are letters, digits and _");
      const std::string pointer = kv.second.IsScalar() ? kv.second.Scalar() : "";
      try {
        (void)nlohmann::json::json_pointer(pointer);
        call["output"][name] = pointer;
      } catch (const nlohmann::json::exception&) {
        p.fail(kv.second, field, "expected a JSON pointer into the response body, such as /id or /data/0/name");
      }
    }
  }
  if (auto timeout = c.duration(node, f, "timeout", false)) call["timeout_ms"] = timeout->count();
  if (c.error_count() != errors_before) return std::nullopt;
  return call;
}

}  // namespace wsflow
