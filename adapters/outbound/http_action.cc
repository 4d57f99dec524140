#include "adapters/outbound/http_action.h"

#include <algorithm>
#include <cctype>

#include "adapters/outbound/http_outcome.h"
#include "adapters/outbound/redactor.h"
#include "adapters/outbound/signing.h"
#include "engine/template.h"
#include "engine/utf8.h"

namespace wsflow {
namespace {

// A rendered request that must not be sent (a header value with a line break).
class InvalidRequest : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Shared {
  const HttpClient* client;
  RuntimeValues values;
  Redactor redact;
};

// Renders one template string of a validated call.
std::string rendered(const std::string& text, const TemplateScope& scope, Encoding encoding = Encoding::kPlain) {
  ParsedTemplate parsed = parse_template(text);
  if (!parsed.value) throw UnresolvedReference("malformed template: " + parsed.error.message);
  return render(*parsed.value, scope, encoding);
}

OutboundRequest build_request(const nlohmann::json& spec, const ActionCall& call, const TemplateScope& scope,
                              const Shared& shared) {
  OutboundRequest request;
  request.method = spec.at("method").get<std::string>();
  request.url = rendered(spec.at("url").get<std::string>(), scope, Encoding::kUrl);
  bool has_content_type = false;
  for (const auto& [name, value] : spec.at("headers").items()) {
    std::string text = rendered(value.get<std::string>(), scope);
    // A value from the saga's input must not add headers of its own.
    if (text.find_first_of("\r\n", 0) != std::string::npos || text.find('\0') != std::string::npos) {
      throw InvalidRequest("header " + name + ": its value holds a line break");
    }
    request.headers.emplace_back(name, std::move(text));
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
    has_content_type = has_content_type || lower == "content-type";
  }
  if (spec.contains("json")) {
    request.body = render_json(spec["json"], scope).dump();
    if (!has_content_type) request.headers.emplace_back("Content-Type", "application/json");
  } else if (spec.contains("body")) {
    request.body = rendered(spec["body"].get<std::string>(), scope);
  }
  // The forward call and its compensation are different operations to the
  // service, so they carry different keys; each is the same on every attempt.
  request.headers.emplace_back("Idempotency-Key", call.idempotency_key + (call.compensating ? "/compensate" : ""));
  request.headers.emplace_back("X-Wsflow-Saga", call.saga_id);
  request.headers.emplace_back("X-Wsflow-Attempt", std::to_string(call.attempt));
  if (auto key = shared.values.secrets.find(kSigningSecret); key != shared.values.secrets.end()) {
    add_signature_headers(request.headers, key->second, request.body, std::chrono::system_clock::now());
  }
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(call.deadline - std::chrono::system_clock::now());
  request.timeout = std::max(std::chrono::milliseconds(1),
                             std::min(std::chrono::milliseconds(spec.at("timeout_ms").get<long long>()), left));
  return request;
}

bool is_success(const nlohmann::json& spec, int status) {
  const nlohmann::json& success = spec.at("success");
  if (success.empty()) return status >= 200 && status < 300;
  return std::find(success.begin(), success.end(), status) != success.end();
}

// The step's outputs: each `output` pointer looked up in the JSON body;
// `to_context` also merges them into the saga context.
ActionResult mapped_outputs(const nlohmann::json& spec, const OutboundResponse& response, bool to_context,
                            const Redactor& redact) {
  const nlohmann::json& pointers = spec.at("output");
  nlohmann::json output = nlohmann::json::object();
  if (!pointers.empty()) {
    const nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
    if (body.is_discarded()) {
      return ActionResult::failure("bad_response", "the response body is not JSON, so output cannot be read from it",
                                   false);
    }
    for (const auto& [name, pointer] : pointers.items()) {
      const nlohmann::json::json_pointer at(pointer.get<std::string>());
      if (!body.contains(at)) {
        return ActionResult::failure(
            "output_missing",
            "the response body has nothing at " + pointer.get<std::string>() + " (output " + name + ")", false);
      }
      output[name] = body.at(at);
    }
  }
  output = redact.json(output);
  return ActionResult::success(output, to_context ? output : nlohmann::json::object());
}

// `request_line` is "METHOD url", the URL already redacted.
ActionResult outcome(const nlohmann::json& spec, const std::string& request_line, OutboundResult result,
                     bool to_context, const Redactor& redact) {
  nlohmann::json detail = {{"request", request_line}};
  if (result.response) {
    const OutboundResponse& response = *result.response;
    detail["response"] = {{"status", response.status},
                          {"body", redact(utf8_prefix(response.body, kKeptResponseBytes))},
                          {"truncated", response.body.size() > kKeptResponseBytes}};
  }
  ActionResult answer;
  if (result.response && is_success(spec, result.response->status)) {
    answer = mapped_outputs(spec, *result.response, to_context, redact);
  } else {
    result.error = redact(result.error);
    answer.ok = false;
    answer.error = http_failure(result, request_line);
  }
  answer.detail = std::move(detail);
  return answer;
}

}  // namespace

Action make_http_action(const HttpClient& client, RuntimeValues values) {
  auto shared = std::make_shared<const Shared>(Shared{&client, values, Redactor(values.secrets)});
  Action action;
  action.run_async = [shared](const ActionCall& call, Completion done) {
    const nlohmann::json& spec = call.input.at(call.compensating ? "compensate_http" : "http");
    const TemplateScope scope{&call.saga_input, &call.context, &call.step_output,    call.saga_id,
                              call.step,        call.branch,   &shared->values.vars, &shared->values.secrets};
    OutboundRequest request;
    try {
      request = build_request(spec, call, scope, *shared);
    } catch (const UnresolvedReference& e) {
      done(ActionResult::failure("unresolved_reference", shared->redact(e.what()), false));
      return;
    } catch (const InvalidRequest& e) {
      done(ActionResult::failure("invalid_request", shared->redact(e.what()), false));
      return;
    }
    // A for_each step's branches would overwrite each other's fields in the
    // context: their outputs stay with each branch (${output.X} in compensate_http).
    const bool to_context = call.branch.empty() && !call.compensating;
    std::string request_line = request.method + " " + shared->redact(request.url);
    shared->client->send(call.executor, std::move(request),
                         [shared, spec, to_context, request_line = std::move(request_line),
                          done = std::move(done)](OutboundResult result) {
                           done(outcome(spec, request_line, std::move(result), to_context, shared->redact));
                         });
  };
  return action;
}

}  // namespace wsflow
