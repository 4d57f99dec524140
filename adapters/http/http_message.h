#pragma once
// Plain HTTP request and response values, independent of the socket code
// (http_server.h) and of any route: what a route reads and what it returns.

#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace wsflow::http {

// Header names compare case-insensitively (RFC 9110).
struct CaseInsensitiveLess {
  bool operator()(const std::string& a, const std::string& b) const;
};

struct HttpRequest {
  std::string method;                              // as sent, e.g. "GET"
  std::string path;                                // percent-decoded, without the query string
  std::multimap<std::string, std::string> params;  // the query string, percent-decoded
  std::multimap<std::string, std::string, CaseInsensitiveLess> headers;
  std::string body;
  std::smatch matches;  // captures of the route pattern that matched `path` (refers into `path`)

  bool has_param(const std::string& name) const { return params.count(name) > 0; }
  // The first value of `name`, or "" when absent.
  std::string get_param_value(const std::string& name) const;
  bool has_header(const std::string& name) const { return headers.count(name) > 0; }
  // The first value of `name`, or "" when absent.
  std::string get_header_value(const std::string& name) const;
};

// A file sent as the response body, streamed from disk by the server, which
// honours a single-range `Range` request (206, or 416 when unsatisfiable).
struct FileBody {
  std::string path;
  std::string content_type;
  std::string etag;      // without quotes
  std::string filename;  // for Content-Disposition
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type and Content-Length
  std::string content_type = "application/json";             // empty: no Content-Type (a 304)
  std::string body;
  std::optional<FileBody> file;  // when set, sent instead of `body`

  void set_header(std::string name, std::string value) { headers.emplace_back(std::move(name), std::move(value)); }
};

// Splits a request target into its percent-decoded path and query
// parameters ('+' is a space in the query). A malformed escape is kept as
// it was written; the bytes are not checked for UTF-8 here.
void parse_target(const std::string& target, std::string& path, std::multimap<std::string, std::string>& params);

// The byte range [first, last] of a `Range: bytes=…` header for a body of
// `size` bytes. nullopt when the header asks for anything else (several
// ranges, another unit, nonsense), which means the whole body; a range
// starting past the end is {size, size}, which the server answers with 416.
std::optional<std::pair<std::uint64_t, std::uint64_t>> byte_range(const std::string& header, std::uint64_t size);

}  // namespace wsflow::http
