#include "kube/watch_decoder.h"

#include <utility>

#include "kube/errors.h"

namespace picket::kube {
namespace {

// Event lines can be megabytes long; an error message quotes only their start.
constexpr std::size_t kQuotedLineBytes = 200;

bool isBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

std::optional<WatchEventType> parseWatchEventType(std::string_view text) {
  if (text == "ADDED") return WatchEventType::kAdded;
  if (text == "MODIFIED") return WatchEventType::kModified;
  if (text == "DELETED") return WatchEventType::kDeleted;
  if (text == "BOOKMARK") return WatchEventType::kBookmark;
  if (text == "ERROR") return WatchEventType::kError;
  return std::nullopt;
}

const char* watchEventTypeName(WatchEventType type) {
  switch (type) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
    case WatchEventType::kBookmark:
      return "BOOKMARK";
    case WatchEventType::kError:
      return "ERROR";
  }
  return "UNKNOWN";
}

Result<WatchEvent> parseWatchEvent(std::string_view line) {
  auto malformed = [&](std::string_view why) {
    return makeError(ErrorCode::kParse, "malformed watch event (" + std::string(why) +
                                            "): " + quoteExcerpt(line, kQuotedLineBytes));
  };
  json parsed = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return malformed("not JSON");
  if (!parsed.is_object()) return malformed("not a JSON object");
  auto type = parsed.find("type");
  if (type == parsed.end() || !type->is_string()) return malformed("no string field \"type\"");
  auto event_type = parseWatchEventType(type->get_ref<const std::string&>());
  if (!event_type) return malformed("unknown type \"" + type->get<std::string>() + "\"");
  auto object = parsed.find("object");
  if (object == parsed.end() || !object->is_object()) {
    return malformed("no object field \"object\"");
  }
  return WatchEvent{*event_type, std::move(*object)};
}

WatchDecoder::WatchDecoder(std::size_t max_event_bytes) : max_event_bytes_(max_event_bytes) {}

Result<std::vector<WatchEvent>> WatchDecoder::fail(Error error) {
  failure_ = error;
  buffer_.clear();
  scan_from_ = 0;
  return makeError(std::move(error));
}

Result<std::vector<WatchEvent>> WatchDecoder::feed(std::string_view chunk) {
  if (failure_) return makeError(*failure_);
  buffer_.append(chunk);
  std::vector<WatchEvent> events;
  std::size_t line_start = 0;
  for (;;) {
    const std::size_t line_end = buffer_.find('\n', scan_from_);
    if (line_end == std::string::npos) break;
    const std::string_view line(buffer_.data() + line_start, line_end - line_start);
    if (line.size() > max_event_bytes_) {
      return fail(Error{ErrorCode::kParse,
                        "a watch event line of " + std::to_string(line.size()) +
                            " bytes exceeds the limit of " + std::to_string(max_event_bytes_),
                        {},
                        0,
                        0,
                        {}});
    }
    if (!isBlank(line)) {
      auto event = parseWatchEvent(line);
      if (!event) return fail(std::move(event.error()));
      events.push_back(std::move(*event));
    }
    line_start = line_end + 1;
    scan_from_ = line_start;
  }
  // Drop the consumed lines once per chunk rather than once per line.
  buffer_.erase(0, line_start);
  scan_from_ = buffer_.size();
  if (buffer_.size() > max_event_bytes_) {
    return fail(Error{ErrorCode::kParse,
                      "a watch event line exceeds the limit of " +
                          std::to_string(max_event_bytes_) + " bytes (" +
                          std::to_string(buffer_.size()) + " bytes without a line end)",
                      {},
                      0,
                      0,
                      {}});
  }
  return events;
}

Result<std::vector<WatchEvent>> WatchDecoder::finish() {
  if (failure_) return makeError(*failure_);
  std::string rest = std::move(buffer_);
  buffer_.clear();
  scan_from_ = 0;
  std::vector<WatchEvent> events;
  if (isBlank(rest)) return events;
  auto event = parseWatchEvent(rest);
  if (!event) {
    return fail(
        Error{ErrorCode::kParse,
              "the watch stream ended inside an event: " + quoteExcerpt(rest, kQuotedLineBytes),
              {},
              0,
              0,
              {}});
  }
  events.push_back(std::move(*event));
  return events;
}

}  // namespace picket::kube
