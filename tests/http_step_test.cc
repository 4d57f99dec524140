// Templates and the `http:` step block: parsing, every validation error with
// its place, and rendering (with URL encoding and typed JSON values).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "adapters/outbound/redactor.h"
#include "adapters/outbound/runtime_values.h"
#include "engine/definition_loader.h"
#include "engine/template.h"

namespace wsflow {
namespace {

LoadResult load(const std::string& yaml) {
  return load_definition(yaml, "billing.yaml", [](const std::string&) { return false; });
}

std::string errors_of(const std::string& yaml) {
  std::string text;
  for (const auto& e : load(yaml).errors) text += e.to_string() + "\n";
  return text;
}

const char* kBilling = R"(saga: billing.create
version: 1
input: { required: [workspace_id, name] }
steps:
  - name: create_customer
    http:
      request:
        method: POST
        url: "${var.billing_url}/customers"
        headers: { Authorization: "Bearer ${secret.billing_token}" }
        json: { workspace: "${input.workspace_id}", name: "${input.name}", seats: "${input.name.seats}" }
      success: [200, 201, 409]
      output: { customer_id: /id }
      timeout: 10s
    compensate_http:
      request: { method: DELETE, url: "${var.billing_url}/customers/${context.customer_id}" }
      success: [200, 204, 404]
  - name: namespaces
    for_each: [dev, prod]
    timeout: 20s
    http:
      request: { method: PUT, url: "${var.k8s_url}/ns/${input.workspace_id}-${branch}", body: "env=${branch}" }
      output: { ns: /metadata/name }
    compensate_http:
      request: { method: DELETE, url: "${var.k8s_url}/ns/${output.ns}" }
)";

TEST(HttpStep, LoadsIntoTheHttpActionWithNormalizedRequests) {
  LoadResult r = load(kBilling);
  ASSERT_TRUE(r.errors.empty()) << r.errors.front().to_string();
  const Step& customer = r.definition->steps[0];
  EXPECT_EQ(customer.action, "http");
  EXPECT_EQ(customer.compensate, "http");
  EXPECT_TRUE(customer.is_http());
  EXPECT_EQ(customer.timeout, Millis(10'000));  // the request's timeout is the attempt's
  EXPECT_EQ(customer.input["http"]["method"], "POST");
  EXPECT_EQ(customer.input["http"]["success"], nlohmann::json::array({200, 201, 409}));
  EXPECT_EQ(customer.input["http"]["output"]["customer_id"], "/id");
  EXPECT_EQ(customer.input["compensate_http"]["timeout_ms"], 10'000);
  const Step& ns = r.definition->steps[1];
  EXPECT_EQ(ns.timeout, Millis(20'000));
  EXPECT_EQ(ns.input["http"]["timeout_ms"], 20'000);
  EXPECT_TRUE(ns.input["http"]["success"].empty());  // any 2xx
  EXPECT_EQ(ns.input["http"]["body"], "env=${branch}");
  // Every var and secret, with its place, for serve to check.
  const auto& refs = r.definition->config_references;
  ASSERT_EQ(refs.size(), 5u);
  EXPECT_EQ(refs[0].name, "billing_url");
  EXPECT_EQ(refs[1].root, RefRoot::kSecret);
  EXPECT_EQ(refs[1].name, "billing_token");
  EXPECT_EQ(refs[1].place.to_string(), "billing.yaml:10:43: steps[0].http.request.headers.Authorization: ");
}

TEST(HttpStep, ReportsEveryMistakeWithItsPlace) {
  const std::string errors = errors_of(R"(saga: bad.http
version: 1
input: { required: [id] }
steps:
  - name: a
    action: testing.succeed
    http:
      request:
        method: FETCH
        url: "ftp://x/${input.missing}"
        headers: { Idempotency-Key: "x", "Bad Header": "y" }
        json: { env: "${branch}", who: "${context.user", what: "${nope.x}" }
      success: [200, 99]
      output: { id: "no-slash" }
  - name: b
    compensate_http: { request: { method: GET, url: "http://x/${output.y}" } }
    action: testing.succeed
  - name: c
    http:
      request: { method: GET, url: "http://x/${output.y}", body: "x", json: {} }
  - name: d
    timeout: 1s
    http:
      request: { method: GET, url: "http://x/" }
      timeout: 5s
)");
  for (const char* expected : {
           "billing.yaml:6:13: steps[0].action: an http step takes no action",
           "billing.yaml:9:17: steps[0].http.request.method: expected GET, POST, PUT, PATCH, DELETE or HEAD, got "
           "'FETCH'",
           "billing.yaml:10:23: steps[0].http.request.url: ${input.missing}: the saga does not declare 'missing'",
           "billing.yaml:10:14: steps[0].http.request.url: expected an http:// or https:// URL",
           "steps[0].http.request.headers.Idempotency-Key: set by wsflow itself",
           "steps[0].http.request.headers.Bad Header: not a valid header name",
           "billing.yaml:12:23: steps[0].http.request.json.env: ${branch} is only set in a for_each step",
           "billing.yaml:12:41: steps[0].http.request.json.who: '${' is not closed by '}'",
           "steps[0].http.request.json.what: unknown reference '${nope.x}'",
           "billing.yaml:13:22: steps[0].http.success[1]: expected an HTTP status (100-599)",
           "steps[0].http.output.id: expected a JSON pointer",
           "billing.yaml:25:16: steps[3].http.timeout: longer than the step's timeout (1s)",
           "steps[1].compensate_http: goes with http:",
           "steps[2].http.request.url: ${output.y}: output. is the step's own result, for compensate_http",
           "steps[2].http.request: use either json or body, not both",
       }) {
    EXPECT_NE(errors.find(expected), std::string::npos) << "missing: " << expected << "\nin:\n" << errors;
  }
}

TEST(Template, ParsesReferencesAndEscapes) {
  ParsedTemplate t = parse_template("a $${x} ${input.a.b} ${saga.id}${step}/${branch} ${var.u_1} ${secret.T}");
  ASSERT_TRUE(t.value);
  const auto refs = t.value->references();
  ASSERT_EQ(refs.size(), 6u);
  EXPECT_EQ(refs[0].root, RefRoot::kInput);
  EXPECT_EQ(refs[0].path, "a.b");
  EXPECT_EQ(refs[5].root, RefRoot::kSecret);
  EXPECT_EQ(refs[5].path, "T");
  EXPECT_EQ(t.value->parts[0].literal, "a ${x} ");
  EXPECT_FALSE(parse_template("${}").value);
  EXPECT_FALSE(parse_template("${step.x}").value);
  EXPECT_FALSE(parse_template("${var.a-b}").value);
  EXPECT_FALSE(parse_template("${input.}").value);
  EXPECT_EQ(parse_template("x ${input").error.offset, 2u);
}

TEST(Template, RendersValuesEncodingUrlsButNotVars) {
  const nlohmann::json input = {{"id", "a/b c"}, {"seats", 3}, {"tags", {"x", "y"}}};
  const nlohmann::json context = {{"customer", {{"id", "cus_1"}}}};
  const nlohmann::json output = nlohmann::json::object();
  const std::map<std::string, std::string> vars = {{"base", "http://h:1/api"}};
  const std::map<std::string, std::string> secrets = {{"token", "s3cr3t!"}};
  const TemplateScope scope{&input, &context, &output, "saga-1", "charge", "dev", &vars, &secrets};
  auto render_text = [&](const std::string& text, Encoding encoding) {
    return render(*parse_template(text).value, scope, encoding);
  };
  EXPECT_EQ(render_text("${var.base}/ws/${input.id}?b=${branch}", Encoding::kUrl), "http://h:1/api/ws/a%2Fb%20c?b=dev");
  EXPECT_EQ(render_text("${saga.id}/${step}: ${input.seats} ${context.customer.id}", Encoding::kPlain),
            "saga-1/charge: 3 cus_1");
  EXPECT_EQ(render_json({{"n", "${input.seats}"}, {"tags", "${input.tags}"}, {"s", "n=${input.seats}"}}, scope),
            (nlohmann::json{{"n", 3}, {"tags", {"x", "y"}}, {"s", "n=3"}}));
  EXPECT_THROW(render_text("${context.missing}", Encoding::kPlain), UnresolvedReference);
  EXPECT_THROW(render_text("${var.nope}", Encoding::kPlain), UnresolvedReference);
  EXPECT_THROW(render_text("${output.x}", Encoding::kPlain), UnresolvedReference);
}

TEST(Redactor, HidesEverySecretPlainAndPercentEncoded) {
  const Redactor redact({{"token", "s3cr3t!"}, {"empty", ""}});
  EXPECT_EQ(redact("a s3cr3t! b s3cr3t%21 c"), "a [secret:token] b [secret:token] c");
  EXPECT_EQ(redact.json({{"s3cr3t!", {"x s3cr3t!"}}}), (nlohmann::json{{"[secret:token]", {"x [secret:token]"}}}));
}

TEST(RuntimeValues, ComeFromTheEnvironmentFlagsAndSecretFiles) {
  std::string var = "WSFLOW_VAR_billing_url=http://env", secret = "WSFLOW_SECRET_token=from-env", other = "PATH=/bin";
  char* environment[] = {var.data(), secret.data(), other.data(), nullptr};
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "wsflow_secrets_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "token") << "from-file\n";
  const RuntimeValues values = load_runtime_values(environment, {"region=eu", "billing_url=http://flag"}, dir.string());
  std::filesystem::remove_all(dir);
  EXPECT_EQ(values.vars.at("billing_url"), "http://flag");  // a flag wins over the environment
  EXPECT_EQ(values.vars.at("region"), "eu");
  EXPECT_EQ(values.secrets.at("token"), "from-file");  // a file wins over the environment
  EXPECT_EQ(values.vars.count("PATH"), 0u);
  EXPECT_THROW(load_runtime_values(environment, {"no-equals"}, ""), std::invalid_argument);

  // serve refuses to start when a definition names a value it lacks, at the reference's place.
  std::map<std::string, SagaDefinition> definitions;
  definitions["billing.create"] = *load(kBilling).definition;
  const DefinitionErrors missing = missing_values(definitions, values);
  ASSERT_EQ(missing.size(), 3u);  // billing_token (set as "token"), and k8s_url twice
  EXPECT_EQ(missing[0].to_string(),
            "billing.yaml:10:43: steps[0].http.request.headers.Authorization: secret 'billing_token' is not "
            "configured (set WSFLOW_SECRET_billing_token or the file billing_token in --secrets-dir)");
  EXPECT_EQ(missing[1].to_string(),
            "billing.yaml:22:37: steps[1].http.request.url: var 'k8s_url' is not configured (set WSFLOW_VAR_k8s_url "
            "or serve --var k8s_url=VALUE)");
}

}  // namespace
}  // namespace wsflow
