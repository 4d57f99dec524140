#include "app/batch_start.h"

#include <chrono>
#include <fstream>
#include <ostream>
#include <stdexcept>

#include "adapters/postgres/pg_store.h"

namespace wsflow::app {
namespace {

std::string string_or_empty(const nlohmann::json& line, const char* field, const std::string& where) {
  if (!line.contains(field)) return "";
  if (!line[field].is_string()) throw std::runtime_error(where + field + ": expected a string");
  return line[field].get<std::string>();
}

}  // namespace

std::vector<StartRequest> read_batch_file(const std::string& path, const SagaDefinition& definition) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error(path + ": cannot be read");
  std::vector<StartRequest> requests;
  std::string text;
  for (int number = 1; std::getline(file, text); ++number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    nlohmann::json line;
    try {
      line = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw std::runtime_error(where + "not valid JSON (" + std::string(e.what()).substr(0, 200) + ")");
    }
    if (!line.is_object()) throw std::runtime_error(where + "expected a JSON object");
    for (const auto& [field, value] : line.items()) {
      if (field != "input" && field != "workspace_id" && field != "idempotency_key") {
        throw std::runtime_error(where + field + ": unknown field (input, workspace_id, idempotency_key)");
      }
    }
    StartRequest request;
    request.input = line.value("input", nlohmann::json::object());
    request.options.workspace_id = string_or_empty(line, "workspace_id", where);
    request.options.idempotency_key = string_or_empty(line, "idempotency_key", where);
    try {
      pg::check_start(definition, request.input, request.options);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(where + e.what());
    }
    requests.push_back(std::move(request));
  }
  return requests;
}

BatchStartSummary start_batch(Store& store, const SagaDefinition& definition, const std::vector<StartRequest>& requests,
                              std::ostream& ids) {
  BatchStartSummary summary;
  const auto begin = std::chrono::steady_clock::now();
  for (std::size_t from = 0; from < requests.size(); from += kBatchStartChunk) {
    const auto end = requests.begin() + static_cast<std::ptrdiff_t>(std::min(requests.size(), from + kBatchStartChunk));
    const std::vector<StartRequest> chunk(requests.begin() + static_cast<std::ptrdiff_t>(from), end);
    for (const StartResult& result : store.start_sagas(definition, chunk)) {
      ids << result.saga_id << "\n";
      ++(result.created ? summary.created : summary.existing);
    }
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  return summary;
}

}  // namespace wsflow::app
