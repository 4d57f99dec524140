#pragma once
// `${...}` references in the strings of an HTTP step: parsed (and so
// validated) when a definition loads, rendered for each attempt.
//
//   ${input.a.b}    the saga's input (dotted path)
//   ${context.a.b}  the saga context as committed before the attempt
//   ${output.a}     the step's own mapped output (compensations only)
//   ${saga.id}      the saga's id
//   ${step}         the step's name
//   ${branch}       the for_each item (for_each steps only)
//   ${var.NAME}     a configuration value (serve --var NAME=VALUE, WSFLOW_VAR_NAME)
//   ${secret.NAME}  a secret (WSFLOW_SECRET_NAME, or the file NAME in --secrets-dir)
//
// `$${` is a literal `${`. Everything else is literal text.

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace wsflow {

enum class RefRoot { kInput, kContext, kOutput, kSagaId, kStep, kBranch, kVar, kSecret };

struct TemplateRef {
  RefRoot root = RefRoot::kInput;
  std::string path;  // the dotted path (input, context, output) or NAME (var, secret); empty otherwise
  std::string text;  // as written between ${ and }, for messages
};

struct TemplatePart {
  std::string literal;             // text before `ref` (or the whole tail)
  std::optional<TemplateRef> ref;  // none for the trailing literal
};

struct Template {
  std::vector<TemplatePart> parts;

  // True when the text is exactly one reference: in a JSON body it then
  // renders as the referenced JSON value itself (a number stays a number).
  bool is_single_reference() const { return parts.size() == 1 && parts[0].literal.empty() && parts[0].ref.has_value(); }
  std::vector<TemplateRef> references() const;
};

// A malformed template: `offset` is where, in the text, the problem starts.
struct TemplateSyntaxError {
  std::string message;
  std::size_t offset = 0;
};

// Never throws: returns the parsed template or what is wrong with it.
struct ParsedTemplate {
  std::optional<Template> value;
  TemplateSyntaxError error;
};
ParsedTemplate parse_template(std::string_view text);

// Values a reference resolves to when an attempt runs. Pointers are borrowed.
struct TemplateScope {
  const nlohmann::json* input = nullptr;
  const nlohmann::json* context = nullptr;
  const nlohmann::json* output = nullptr;
  std::string saga_id;
  std::string step;
  std::string branch;
  const std::map<std::string, std::string>* vars = nullptr;
  const std::map<std::string, std::string>* secrets = nullptr;
};

// A reference with no value when rendering (a context path a step never
// wrote, a var the configuration lacks).
class UnresolvedReference : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How substituted values are written into the text. In a URL every value
// except a var's is percent-encoded, so a value cannot change the path or
// add a query (a var holds a base URL and is trusted configuration).
enum class Encoding { kPlain, kUrl };

// Throws UnresolvedReference. Strings substitute as they are; other JSON
// values as their JSON text.
std::string render(const Template& t, const TemplateScope& scope, Encoding encoding = Encoding::kPlain);

// The JSON value a reference names (a string for var, secret, saga.id, step,
// branch). Throws UnresolvedReference.
nlohmann::json resolve(const TemplateRef& ref, const TemplateScope& scope);

// Renders every string of a JSON document (object keys are left as they
// are). A string that is a single reference becomes the referenced value.
// Throws UnresolvedReference; the strings were validated at load time, and a
// string that no longer parses also throws it.
nlohmann::json render_json(const nlohmann::json& value, const TemplateScope& scope);

// Percent-encodes everything but RFC 3986's unreserved characters.
std::string percent_encode(std::string_view text);

}  // namespace wsflow
