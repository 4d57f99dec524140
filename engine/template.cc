#include "engine/template.h"

#include <cctype>
#include <regex>

namespace wsflow {
namespace {

const std::regex kPath("[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*");
const std::regex kName("[A-Za-z_][A-Za-z0-9_]*");

// Parses what stands between ${ and }; nullopt with `why` set when malformed.
std::optional<TemplateRef> parse_reference(const std::string& text, std::string& why) {
  TemplateRef ref;
  ref.text = text;
  const std::size_t dot = text.find('.');
  const std::string root = text.substr(0, dot);
  const std::string rest = dot == std::string::npos ? "" : text.substr(dot + 1);
  struct Root {
    const char* name;
    RefRoot root;
    enum { kPathed, kNamed, kBare } kind;
  };
  static const Root kRoots[] = {
      {"input", RefRoot::kInput, Root::kPathed},   {"context", RefRoot::kContext, Root::kPathed},
      {"output", RefRoot::kOutput, Root::kPathed}, {"var", RefRoot::kVar, Root::kNamed},
      {"secret", RefRoot::kSecret, Root::kNamed},  {"step", RefRoot::kStep, Root::kBare},
      {"branch", RefRoot::kBranch, Root::kBare}};
  if (text == "saga.id") {
    ref.root = RefRoot::kSagaId;
    return ref;
  }
  for (const Root& r : kRoots) {
    if (root != r.name) continue;
    ref.root = r.root;
    if (r.kind == Root::kBare) {
      if (dot == std::string::npos) return ref;
      why = "${" + root + "} takes no path";
      return std::nullopt;
    }
    const std::regex& shape = r.kind == Root::kPathed ? kPath : kName;
    if (!std::regex_match(rest, shape)) {
      why = r.kind == Root::kPathed ? "expected ${" + root + ".a.b} (a dotted path of letters, digits, _ and -)"
                                    : "expected ${" + root + ".NAME} (letters, digits and _)";
      return std::nullopt;
    }
    ref.path = rest;
    return ref;
  }
  why =
      "unknown reference '${" + text + "}': expected input., context., output., saga.id, step, branch, var. or secret.";
  return std::nullopt;
}

const nlohmann::json* walk(const nlohmann::json* value, const std::string& path) {
  std::size_t start = 0;
  while (value) {
    const std::size_t dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    value = value->is_object() && value->contains(key) ? &(*value)[key] : nullptr;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return value;
}

std::string named(const std::map<std::string, std::string>* values, const TemplateRef& ref, const char* what) {
  if (values) {
    if (auto it = values->find(ref.path); it != values->end()) return it->second;
  }
  throw UnresolvedReference(std::string(what) + " '" + ref.path + "' is not configured");
}

}  // namespace

std::vector<TemplateRef> Template::references() const {
  std::vector<TemplateRef> refs;
  for (const TemplatePart& part : parts) {
    if (part.ref) refs.push_back(*part.ref);
  }
  return refs;
}

ParsedTemplate parse_template(std::string_view text) {
  ParsedTemplate parsed;
  Template t;
  std::string literal;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      literal += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      literal.push_back(text[i++]);
      continue;
    }
    const std::size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      parsed.error = {"'${' is not closed by '}' (write $${ for a literal ${)", i};
      return parsed;
    }
    std::string why;
    std::optional<TemplateRef> ref = parse_reference(std::string(text.substr(i + 2, close - i - 2)), why);
    if (!ref) {
      parsed.error = {why, i};
      return parsed;
    }
    t.parts.push_back({std::move(literal), std::move(ref)});
    literal.clear();
    i = close + 1;
  }
  if (!literal.empty() || t.parts.empty()) t.parts.push_back({std::move(literal), std::nullopt});
  parsed.value = std::move(t);
  return parsed;
}

nlohmann::json resolve(const TemplateRef& ref, const TemplateScope& scope) {
  auto from = [&](const nlohmann::json* document, const char* what) {
    const nlohmann::json* value = walk(document, ref.path);
    if (!value) throw UnresolvedReference("${" + ref.text + "} has no value: the " + what + " has no " + ref.path);
    return *value;
  };
  switch (ref.root) {
    case RefRoot::kInput:
      return from(scope.input, "saga input");
    case RefRoot::kContext:
      return from(scope.context, "saga context");
    case RefRoot::kOutput:
      return from(scope.output, "step's output");
    case RefRoot::kSagaId:
      return scope.saga_id;
    case RefRoot::kStep:
      return scope.step;
    case RefRoot::kBranch:
      return scope.branch;
    case RefRoot::kVar:
      return named(scope.vars, ref, "var");
    case RefRoot::kSecret:
      return named(scope.secrets, ref, "secret");
  }
  throw UnresolvedReference("${" + ref.text + "}: unknown reference");
}

std::string render(const Template& t, const TemplateScope& scope, Encoding encoding) {
  std::string out;
  for (const TemplatePart& part : t.parts) {
    out += part.literal;
    if (!part.ref) continue;
    const nlohmann::json value = resolve(*part.ref, scope);
    const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
    const bool encode = encoding == Encoding::kUrl && part.ref->root != RefRoot::kVar;
    out += encode ? percent_encode(text) : text;
  }
  return out;
}

nlohmann::json render_json(const nlohmann::json& value, const TemplateScope& scope) {
  if (value.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, item] : value.items()) out[key] = render_json(item, scope);
    return out;
  }
  if (value.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : value) out.push_back(render_json(item, scope));
    return out;
  }
  if (!value.is_string()) return value;
  ParsedTemplate parsed = parse_template(value.get<std::string>());
  if (!parsed.value) throw UnresolvedReference("malformed template: " + parsed.error.message);
  if (parsed.value->is_single_reference()) return resolve(*parsed.value->parts[0].ref, scope);
  return render(*parsed.value, scope);
}

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : text) {
    if (std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out.push_back(static_cast<char>(ch));
    } else {
      out.push_back('%');
      out.push_back(kHex[ch >> 4]);
      out.push_back(kHex[ch & 0xf]);
    }
  }
  return out;
}

}  // namespace wsflow
