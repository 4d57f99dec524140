#include "app/operator_cli.h"

#include <cstdlib>
#include <iostream>
#include <map>

#include "app/api_client.h"
#include "app/views.h"

namespace wsflow::app {

using json = nlohmann::json;

struct OperatorCli {
  std::string url = "http://127.0.0.1:8080";
  bool as_json = false;
  // filters (list, bulk)
  std::map<std::string, std::string> filter;
  bool stuck = false;
  int limit = 50;
  // one saga
  std::string id, step, branch, output = "{}", context = "{}", reason, from_step, evidence, input, step_input, action;
  bool confirm = false, dry_run = false;
  int canary_size = 0;  // 0: no canary
  double max_failure_rate = 0;
  std::string canary_wait;
  // which command; set by the callbacks
  std::string command;
};

namespace {

// Options every command takes; they may come before or after the command.
void common_options(CLI::App* sub, OperatorCli& o) {
  sub->add_option("--url", o.url, "the wsflow API (default: the local serve)")
      ->envname("WSFLOW_URL")
      ->capture_default_str();
  sub->add_flag("--json", o.as_json, "print the API's JSON instead of a table");
}

CLI::App* command(CLI::App* parent, const std::string& name, const std::string& help, OperatorCli& o,
                  const std::string& key) {
  CLI::App* sub = parent->add_subcommand(name, help);
  common_options(sub, o);
  sub->callback([&o, key] { o.command = key; });
  return sub;
}

void saga_id(CLI::App* sub, OperatorCli& o) { sub->add_option("id", o.id, "saga id")->required(); }
void reason(CLI::App* sub, OperatorCli& o) { sub->add_option("--reason", o.reason, "why (recorded with the action)"); }

void filters(CLI::App* sub, OperatorCli& o) {
  for (const auto& [flag, key, help] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"--state", "state", "only sagas in this state"},
           {"--definition", "definition", "only this saga definition"},
           {"--workspace", "workspace_id", "only sagas about this workspace"},
           {"--reason-stuck", "reason", "only sagas stuck for this reason (implies --stuck)"},
           {"--stuck-after", "stuck_after", "no progress for this long is stuck (default: the server's)"},
           {"--created-after", "created_after", "RFC 3339"},
           {"--created-before", "created_before", "RFC 3339"},
           {"--completed-step", "completed_step", "sagas whose STEP completed"},
           {"--compensated-step", "compensated_step", "sagas whose STEP was compensated"},
           {"--not-compensated-step", "not_compensated_step", "sagas whose STEP completed and was not compensated"},
           {"--not-completed-step", "not_completed_step", "sagas whose STEP never completed"}}) {
    sub->add_option_function<std::string>(
        flag, [&o, key = key](const std::string& value) { o.filter[key] = value; }, help);
  }
  sub->add_flag("--stuck", o.stuck, "only stuck sagas");
}

std::string query_of(const OperatorCli& o, bool include_stuck_after = true) {
  std::string q;
  for (const auto& [key, value] : o.filter) {
    if (key == "stuck_after" && !include_stuck_after) continue;
    q += (q.empty() ? "" : "&") + key + "=" + url_encode(value);
  }
  if (o.stuck) q += std::string(q.empty() ? "" : "&") + "stuck=true";
  return q;
}

json json_option(const std::string& text, const std::string& option) {
  const json value = json::parse(text, nullptr, false);
  if (value.is_discarded() || !value.is_object()) throw CliError(kRefused, option + ": expected a JSON object");
  return value;
}

json repair_body(const OperatorCli& o) {
  json body = json::object();
  if (!o.reason.empty()) body["reason"] = o.reason;
  if (o.confirm) body["confirm"] = true;
  return body;
}

int print(const OperatorCli& o, const json& body, const std::string& human) {
  std::cout << (o.as_json ? body.dump(2) + "\n" : human);
  return kOk;
}

int run(const OperatorCli& o) {
  const char* key = std::getenv("WSFLOW_API_KEY");
  const ApiClient api(o.url, key ? key : "");
  const Style style = style_for_stdout();
  const std::string saga_path = "/v1/sagas/" + url_encode(o.id);
  if (o.command == "sagas list") {
    const json sagas = api.get_all("/v1/sagas", query_of(o), static_cast<std::size_t>(o.limit));
    return print(o, sagas, saga_table(sagas, style));
  }
  if (o.command == "sagas show") {
    const std::string stuck_after = o.filter.count("stuck_after") ? "?stuck_after=" + url_encode(o.filter.at("stuck_after")) : "";
    const json saga = api.get(saga_path + stuck_after);
    const json events = api.get_all(saga_path + "/events", "", 10'000);
    return print(o, {{"saga", saga}, {"events", events}}, saga_report(saga, events, style));
  }
  if (o.command == "sagas pause" || o.command == "sagas resume" || o.command == "sagas retry") {
    const std::string verb = o.command.substr(6);
    const json r = api.post(saga_path + "/" + verb, repair_body(o));
    std::string human = verb + ": saga " + o.id + " is " + r.value("state", "");
    if (r.value("pause", "") == "requested") human = "pause requested: saga " + o.id + " pauses after its current step";
    if (r.contains("retried_steps")) human += "; fresh attempts for " + r["retried_steps"].dump();
    return print(o, r, human + "\n");
  }
  if (o.command == "sagas skip") {
    json body = repair_body(o);
    body["step"] = o.step;
    if (!o.branch.empty()) body["branch"] = o.branch;
    body["output"] = json_option(o.output, "--output");
    body["context"] = json_option(o.context, "--context");
    const json r = api.post(saga_path + "/skip", body);
    return print(o, r, "skipped " + o.step + " of saga " + o.id + " (done by hand); it continues\n");
  }
  if (o.command == "sagas cancel") {
    json body = repair_body(o);
    if (!o.from_step.empty()) body["from_step"] = o.from_step;
    if (o.dry_run) body["dry_run"] = true;
    const json r = api.post(saga_path + "/cancel", body);
    std::string human = o.dry_run ? "a cancel would run these compensations, in order:\n"
                                  : "cancel requested; compensations to run, in order:\n";
    int n = 0;
    for (const auto& c : r["compensations"]) {
      const std::string branch = c["branch"].get<std::string>();
      human += "  " + std::to_string(++n) + ". " + c["compensate"].get<std::string>() + " for " +
               c["step"].get<std::string>() + (branch.empty() ? "" : "[" + branch + "]") + "  input " +
               c["input"].dump() + (c.value("in_doubt", false) ? "  (in doubt)" : "") + "\n";
    }
    if (n == 0) human += "  none\n";
    return print(o, r, human);
  }
  if (o.command == "sagas resolve") {
    json body = repair_body(o);
    if (!o.evidence.empty()) body["evidence"] = o.evidence;
    const json r = api.post(saga_path + "/resolve", body);
    return print(o, r, "resolved by hand: " + r["resolved_steps"].dump() + "; saga " + o.id + " compensates on\n");
  }
  if (o.command == "sagas rerun-from") {
    json body = repair_body(o);
    body["step"] = o.step;
    if (!o.input.empty()) body["input"] = json_option(o.input, "--input");
    if (!o.step_input.empty()) body["step_input"] = json_option(o.step_input, "--step-input");
    const json r = api.post(saga_path + "/rerun", body);
    return print(o, r, r["saga_id"].get<std::string>() + "\n");
  }
  if (o.command == "sagas bulk") {
    json filter = json::object();
    for (const auto& [k, v] : o.filter) filter[k] = v;
    if (o.stuck) filter["stuck"] = "true";
    json body = repair_body(o);
    body["action"] = o.action;
    body["filter"] = filter;
    body["limit"] = o.limit;
    if (o.dry_run) body["dry_run"] = true;
    if (o.canary_size > 0) {
      body["canary"] = {{"size", o.canary_size}, {"max_failure_rate", o.max_failure_rate}};
      if (!o.canary_wait.empty()) body["canary"]["wait"] = o.canary_wait;
    }
    const json r = api.post("/v1/sagas/bulk", body);
    std::string human;
    if (o.dry_run) {
      for (const auto& s : r["would_touch"]) {
        human += s["id"].get<std::string>() + "  " + s["state"].get<std::string>() +
                 (s["allowed"].get<bool>() ? "" : "  (would be refused)") + "\n";
      }
      if (human.empty()) human = "no sagas match\n";
    } else {
      human = "bulk " + r["bulk_id"].get<std::string>() + ": " + std::to_string(r["touched"].get<int>()) +
              " applied, " + std::to_string(r["refused"].get<int>()) + " refused\n";
      if (r.contains("canary")) {
        human += "canary: the rest (" + std::to_string(r["canary"]["remaining"].size()) +
                 ") follow once the cohort has finished within the failure rate; follow it with "
                 "`wsflow sagas show " + r["canary"]["saga_id"].get<std::string>() + "`\n";
      }
      for (const auto& s : r["results"]) {
        if (s["outcome"] == "refused") human += "  " + s["saga_id"].get<std::string>() + ": " + s["message"].get<std::string>() + "\n";
      }
    }
    return print(o, r, human);
  }
  if (o.command == "workspaces list") {
    const json workspaces = api.get_all("/v1/workspaces", "", static_cast<std::size_t>(o.limit));
    return print(o, workspaces, workspace_table(workspaces, style));
  }
  if (o.command == "workspaces show") {
    const std::string path = "/v1/workspaces/" + url_encode(o.id);
    const json workspace = api.get(path);
    const json audit = api.get(path + "/audit?order=desc&limit=20")["data"];
    return print(o, {{"workspace", workspace}, {"audit", audit}}, workspace_report(workspace, audit, style));
  }
  throw CliError(kRefused, "unknown command " + o.command);
}

}  // namespace

std::shared_ptr<OperatorCli> add_operator_commands(CLI::App& cli) {
  auto o = std::make_shared<OperatorCli>();
  OperatorCli& a = *o;
  CLI::App* sagas = cli.add_subcommand("sagas", "find, inspect and repair sagas (through the HTTP API)");
  sagas->require_subcommand(1);
  CLI::App* list = command(sagas, "list", "sagas by filter, with why each is stuck", a, "sagas list");
  filters(list, a);
  list->add_option("--limit", a.limit, "at most this many")->capture_default_str()->check(CLI::Range(1, 100000));
  saga_id(command(sagas, "show", "a saga: steps, attempts, errors, and its timeline", a, "sagas show"), a);
  for (const char* verb : {"pause", "resume", "retry"}) {
    const std::map<std::string, std::string> help = {
        {"pause", "hold a saga between steps"},
        {"resume", "let a paused saga go on"},
        {"retry", "retry a failed compensation, or give the step in flight a fresh attempt budget"}};
    CLI::App* sub = command(sagas, verb, help.at(verb), a, std::string("sagas ") + verb);
    saga_id(sub, a);
    reason(sub, a);
    if (std::string(verb) == "retry") sub->add_flag("--confirm", a.confirm, "run an idempotent: false step again");
  }
  CLI::App* skip = command(sagas, "skip", "mark a step done by hand; the saga continues", a, "sagas skip");
  saga_id(skip, a);
  skip->add_option("--step", a.step, "the step")->required();
  skip->add_option("--branch", a.branch, "one for_each branch (default: all unfinished)");
  skip->add_option("--output", a.output, "the step's output, a JSON object")->capture_default_str();
  skip->add_option("--context", a.context, "merged into the saga context, a JSON object")->capture_default_str();
  reason(skip, a);
  CLI::App* cancel = command(sagas, "cancel", "cancel: compensate and end cancelled", a, "sagas cancel");
  saga_id(cancel, a);
  cancel->add_option("--from-step", a.from_step, "undo only this step and later ones");
  cancel->add_flag("--dry-run", a.dry_run, "list the compensations that would run, change nothing");
  reason(cancel, a);
  CLI::App* resolve =
      command(sagas, "resolve", "a failed compensation was done by hand: record it and finish", a, "sagas resolve");
  saga_id(resolve, a);
  resolve->add_option("--reason", a.reason, "why it is done (required)")->required();
  resolve->add_option("--evidence", a.evidence, "a link to the proof (ticket, log)");
  CLI::App* rerun = command(sagas, "rerun-from", "run a finished saga again from a step, as a new saga", a,
                            "sagas rerun-from");
  saga_id(rerun, a);
  rerun->add_option("step", a.step, "the first step to run again")->required();
  rerun->add_option("--input", a.input, "a replacement input, a JSON object");
  rerun->add_option("--step-input", a.step_input, "a replacement of the step's own input:, a JSON object");
  rerun->add_flag("--confirm", a.confirm, "run idempotent: false steps again");
  reason(rerun, a);
  CLI::App* bulk = command(sagas, "bulk", "one repair over every saga a filter selects", a, "sagas bulk");
  bulk->add_option("action", a.action, "retry, cancel, pause or resume")
      ->required()
      ->check(CLI::IsMember({"retry", "cancel", "pause", "resume"}));
  filters(bulk, a);
  bulk->add_option("--limit", a.limit, "at most this many (1..1000)")->capture_default_str()->check(CLI::Range(1, 1000));
  bulk->add_flag("--dry-run", a.dry_run, "list what would be touched, change nothing");
  bulk->add_flag("--confirm", a.confirm, "run idempotent: false steps again");
  bulk->add_option("--canary", a.canary_size, "repair a first cohort of this many; the rest follow if it goes well")
      ->check(CLI::Range(1, 1000));
  bulk->add_option("--max-failure-rate", a.max_failure_rate, "a canary stops when more of its cohort fails (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  bulk->add_option("--canary-wait", a.canary_wait, "how long to wait for the cohort (default 1h)");
  reason(bulk, a);

  CLI::App* workspaces = cli.add_subcommand("workspaces", "look at workspaces (through the HTTP API)");
  workspaces->require_subcommand(1);
  CLI::App* wlist = command(workspaces, "list", "every workspace", a, "workspaces list");
  wlist->add_option("--limit", a.limit, "at most this many")->capture_default_str();
  CLI::App* wshow = command(workspaces, "show", "a workspace, its environments and recent audit feed", a,
                            "workspaces show");
  wshow->add_option("id", a.id, "workspace id or slug")->required();
  return o;
}

std::optional<int> run_operator_command(const OperatorCli& parsed) {
  if (parsed.command.empty()) return std::nullopt;
  try {
    return run(parsed);
  } catch (const CliError& e) {
    std::cerr << "wsflow: " << e.what() << "\n";
    return e.exit_code;
  }
}

}  // namespace wsflow::app
