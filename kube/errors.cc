#include "kube/errors.h"

#include <charconv>
#include <limits>
#include <optional>

namespace picket::kube {
namespace {

using nlohmann::json;

std::string stringField(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

// Reads an integer field, clamped to int; anything else (absent, a string, a fraction) reads as
// 0, which every caller treats as "not given".
int intField(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer()) return 0;
  const auto value = it->get<std::int64_t>();
  if (value > std::numeric_limits<int>::max()) return std::numeric_limits<int>::max();
  if (value < 0) return 0;
  return static_cast<int>(value);
}

// The reasons metav1 defines (k8s.io/apimachinery/pkg/apis/meta/v1/types.go). A reason is more
// specific than the HTTP status (409 is both AlreadyExists and Conflict), so it is asked first.
std::optional<ErrorCode> codeForReason(std::string_view reason) {
  if (reason == "NotFound") return ErrorCode::kNotFound;
  if (reason == "AlreadyExists") return ErrorCode::kAlreadyExists;
  if (reason == "Conflict") return ErrorCode::kConflict;
  if (reason == "Gone" || reason == "Expired") return ErrorCode::kGone;
  if (reason == "Forbidden") return ErrorCode::kForbidden;
  if (reason == "Unauthorized") return ErrorCode::kUnauthorized;
  if (reason == "Invalid" || reason == "BadRequest") return ErrorCode::kInvalid;
  if (reason == "TooManyRequests") return ErrorCode::kTooManyRequests;
  if (reason == "Timeout" || reason == "ServerTimeout") return ErrorCode::kTimeout;
  if (reason == "ServiceUnavailable" || reason == "InternalError") return ErrorCode::kUnavailable;
  return std::nullopt;
}

ErrorCode codeForHttpStatus(int status) {
  switch (status) {
    case 400:
    case 422:
      return ErrorCode::kInvalid;
    case 401:
      return ErrorCode::kUnauthorized;
    case 403:
      return ErrorCode::kForbidden;
    case 404:
      return ErrorCode::kNotFound;
    case 409:
      return ErrorCode::kConflict;
    case 410:
      return ErrorCode::kGone;
    case 429:
      return ErrorCode::kTooManyRequests;
    case 504:
      return ErrorCode::kTimeout;
    default:
      break;
  }
  if (status >= 500 && status <= 599) return ErrorCode::kUnavailable;
  return ErrorCode::kInternal;
}

// Retry-After is either delta-seconds or an HTTP date. The API server only sends seconds; a date
// reads as "no delay given" rather than being guessed at.
int parseRetryAfter(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  int seconds = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc() || end != value.data() + value.size() || seconds < 0) return 0;
  return seconds;
}

}  // namespace

Error errorFromStatus(const json& status) {
  Error error;
  if (!status.is_object()) {
    error.code = ErrorCode::kInternal;
    error.message = "the server sent a malformed Status: " +
                    quoteExcerpt(status.dump(-1, ' ', false, json::error_handler_t::replace));
    return error;
  }
  const int http_status = intField(status, "code");
  const std::string reason = stringField(status, "reason");
  error.code = codeForReason(reason).value_or(codeForHttpStatus(http_status));
  error.http_status = http_status;
  error.message = stringField(status, "message");
  if (error.message.empty()) {
    error.message = (reason.empty() ? std::string("request failed") : reason) + " (HTTP " +
                    std::to_string(http_status) + ")";
  }
  auto details = status.find("details");
  if (details != status.end() && details->is_object()) {
    error.retry_after_seconds = intField(*details, "retryAfterSeconds");
    auto causes = details->find("causes");
    if (causes != details->end() && causes->is_array()) {
      for (const auto& cause : *causes) {
        if (!cause.is_object()) continue;
        error.causes.push_back(ErrorCause{stringField(cause, "reason"),
                                          stringField(cause, "message"),
                                          stringField(cause, "field")});
      }
    }
  }
  return error;
}

Error errorFromResponse(const HttpResponse& response) {
  Error error;
  // parse() with exceptions off yields a "discarded" value for anything that is not JSON (an
  // HTML page from a proxy, plain text from a load balancer).
  json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_object() && stringField(body, "kind") == "Status") {
    // A Status normally repeats the HTTP status in `code`; when it does not, the HTTP status
    // still decides the category.
    if (intField(body, "code") == 0) body["code"] = response.status;
    error = errorFromStatus(body);
  } else {
    error.code = codeForHttpStatus(response.status);
    error.http_status = response.status;
    if (response.body.empty()) {
      error.message = "HTTP " + std::to_string(response.status) + " with an empty body";
    } else {
      error.message =
          "HTTP " + std::to_string(response.status) + ": " + quoteExcerpt(response.body);
    }
  }
  if (error.retry_after_seconds == 0) {
    auto header = response.headers.find("retry-after");
    if (header != response.headers.end())
      error.retry_after_seconds = parseRetryAfter(header->second);
  }
  return error;
}

std::string quoteExcerpt(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  std::size_t cut = max_bytes;
  // Step back over UTF-8 continuation bytes (10xxxxxx) so the excerpt stays valid text.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "... (" + std::to_string(text.size() - cut) +
         " more bytes)";
}

}  // namespace picket::kube
