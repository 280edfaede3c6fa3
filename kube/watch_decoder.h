#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "kube/client.h"

namespace picket::kube {

// Parses one watch event line, `{"type": "ADDED", "object": {...}}`, into a WatchEvent. Errors
// (kParse) quote the line, cut short.
Result<WatchEvent> parseWatchEvent(std::string_view line);

// Incremental framing of a watch stream: the API server writes one JSON event per line, and the
// transport hands the bytes over in chunks that follow no framing. Feed every chunk in order;
// each call returns the events the chunk completed. Blank lines are skipped. Not thread-safe: one
// decoder per stream.
class WatchDecoder {
 public:
  // The default limit of one event line. The API server caps request bodies at 3 MiB and etcd
  // values at 1.5 MiB by default, so 16 MiB leaves room and still bounds memory.
  static constexpr std::size_t kDefaultMaxEventBytes = std::size_t{16} << 20;

  explicit WatchDecoder(std::size_t max_event_bytes = kDefaultMaxEventBytes);

  // Adds `chunk` and returns every event it completed, in stream order. A malformed line or a line
  // longer than the limit is a kParse error; the stream cannot be resynchronised after one, so the
  // decoder keeps returning that error.
  Result<std::vector<WatchEvent>> feed(std::string_view chunk);

  // The stream ended. Returns the last event when the server closed right after it without a
  // line end; an unterminated line that is not a complete event is a kParse error.
  Result<std::vector<WatchEvent>> finish();

  // Bytes held while waiting for the end of the current line.
  std::size_t bufferedBytes() const { return buffer_.size(); }

 private:
  Result<std::vector<WatchEvent>> fail(Error error);

  std::size_t max_event_bytes_;
  std::string buffer_;
  // Where the search for the next line end resumes, so each byte is scanned once however finely
  // the stream is chunked.
  std::size_t scan_from_ = 0;
  std::optional<Error> failure_;
};

}  // namespace picket::kube
