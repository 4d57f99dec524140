#include "app/api_client.h"

#include <httplib.h>

namespace wsflow::app {
namespace {

int exit_code_for(int status) {
  if (status == 404) return kNotFound;
  if (status == 401 || status == 403) return kUnauthorized;
  if (status >= 500) return kUnreachable;
  return kRefused;
}

// "<message> (code; allowed actions: …)" from the API's {"error":{…}}.
std::string error_message(int status, const nlohmann::json& body) {
  if (!body.is_object() || !body.contains("error")) return "HTTP " + std::to_string(status);
  const nlohmann::json& e = body["error"];
  std::string message = e.value("message", "HTTP " + std::to_string(status));
  message += " (" + e.value("code", "error");
  if (e.contains("allowed_actions")) {
    std::string allowed;
    for (const auto& a : e["allowed_actions"]) allowed += (allowed.empty() ? "" : ", ") + a.get<std::string>();
    message += "; allowed actions: " + (allowed.empty() ? "none" : allowed);
  }
  if (e.contains("steps")) message += "; steps: " + e["steps"].dump();
  return message + ")";
}

}  // namespace

ApiClient::ApiClient(std::string url, std::string key) : url_(std::move(url)), key_(std::move(key)) {}

nlohmann::json ApiClient::request(const std::string& method, const std::string& path, const std::string& body) const {
  httplib::Client client(url_);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(60, 0);
  httplib::Headers headers;
  if (!key_.empty()) headers.emplace("Authorization", "Bearer " + key_);
  const httplib::Result r = method == "GET" ? client.Get(path.c_str(), headers)
                                            : client.Post(path.c_str(), headers, body, "application/json");
  if (!r) {
    throw CliError(kUnreachable, "cannot reach the wsflow API at " + url_ + " (" + httplib::to_string(r.error()) +
                                     "); is `wsflow serve` running? (--url, WSFLOW_URL)");
  }
  const nlohmann::json parsed = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status < 200 || r->status > 299) {
    std::string message = error_message(r->status, parsed);
    if (r->status == 401) message += "; set WSFLOW_API_KEY to an operator key (wsflow keys create)";
    throw CliError(exit_code_for(r->status), message);
  }
  if (parsed.is_discarded()) throw CliError(kUnreachable, "the API answered something that is not JSON");
  return parsed;
}

nlohmann::json ApiClient::get(const std::string& path_and_query) const { return request("GET", path_and_query, ""); }

nlohmann::json ApiClient::post(const std::string& path, const nlohmann::json& body) const {
  return request("POST", path, body.dump());
}

nlohmann::json ApiClient::get_all(const std::string& path, const std::string& query, std::size_t max_items) const {
  nlohmann::json items = nlohmann::json::array();
  std::string cursor;
  do {
    std::string q = query + (query.empty() ? "" : "&") + "limit=100";
    if (!cursor.empty()) q += "&cursor=" + url_encode(cursor);
    const nlohmann::json page = get(path + "?" + q);
    for (const auto& item : page["data"]) {
      if (items.size() >= max_items) return items;
      items.push_back(item);
    }
    cursor = page["next_cursor"].is_string() ? page["next_cursor"].get<std::string>() : "";
  } while (!cursor.empty());
  return items;
}

std::string url_encode(const std::string& text) { return httplib::detail::encode_query_param(text); }

}  // namespace wsflow::app
