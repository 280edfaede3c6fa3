// libFuzzer target over WatchDecoder, the framing of a watch stream. The input is the stream,
// optionally followed by a NUL byte and chunk sizes, one byte each (what is left after the last
// size is the final chunk). The stream is decoded three ways: in one feed, in the chunks the
// input chooses, and one byte per feed. Besides crashes, leaks and undefined behaviour, it checks
// that framing does not depend on where the transport splits the bytes:
//   - when the whole feed succeeds, every chunking succeeds with the same events;
//   - when it fails, every chunking fails too, having returned only a prefix of the events that
//     precede the bad line (the stream read line by line with parseWatchEvent());
//   - the decoder never holds more than its limit of one line.
// The limit is small (kLimit), so long lines are reached.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "kube/client.h"
#include "kube/watch_decoder.h"
#include "test/fuzz/require.h"

namespace {

using picket::Result;
using picket::fuzz::require;
using picket::kube::WatchDecoder;
using picket::kube::WatchEvent;

constexpr std::size_t kLimit = 512;

// What one way of feeding the stream produced.
struct Outcome {
  std::vector<WatchEvent> events;
  bool failed = false;
};

bool sameEvents(const std::vector<WatchEvent>& a, const std::vector<WatchEvent>& b,
                std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    if (a[i].type != b[i].type || a[i].object != b[i].object) return false;
  }
  return true;
}

// Feeds `chunks` in order, then finishes; stops at the first error.
Outcome decode(const std::vector<std::string_view>& chunks) {
  WatchDecoder decoder(kLimit);
  Outcome outcome;
  auto take = [&](Result<std::vector<WatchEvent>> events) {
    if (!events) {
      require(!events.error().message.empty(), "a framing error says why");
      outcome.failed = true;
      return false;
    }
    for (WatchEvent& event : *events) outcome.events.push_back(std::move(event));
    require(decoder.bufferedBytes() <= kLimit, "the decoder holds at most one line's limit");
    return true;
  };
  for (std::string_view chunk : chunks) {
    if (!take(decoder.feed(chunk))) return outcome;
  }
  take(decoder.finish());
  return outcome;
}

// The events of the complete lines before the first bad one (all of them when none is bad), read
// without the decoder.
std::vector<WatchEvent> eventsBeforeBadLine(std::string_view stream) {
  std::vector<WatchEvent> events;
  std::size_t start = 0;
  for (;;) {
    std::size_t end = stream.find('\n', start);
    if (end == std::string_view::npos) return events;
    std::string_view line = stream.substr(start, end - start);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
      if (line.size() > kLimit) return events;
      Result<WatchEvent> event = picket::kube::parseWatchEvent(line);
      if (!event) return events;
      events.push_back(std::move(*event));
    }
    start = end + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t split = input.find('\0');
  const std::string_view stream = input.substr(0, split);
  const std::string_view sizes =
      split == std::string_view::npos ? std::string_view() : input.substr(split + 1);

  const Outcome whole = decode({stream});

  std::vector<std::string_view> chosen;
  std::size_t at = 0;
  for (char size_byte : sizes) {
    const std::size_t length =
        std::min<std::size_t>(static_cast<unsigned char>(size_byte), stream.size() - at);
    chosen.push_back(stream.substr(at, length));
    at += length;
  }
  chosen.push_back(stream.substr(at));

  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < stream.size(); ++i) bytes.push_back(stream.substr(i, 1));

  for (const std::vector<std::string_view>* chunks : {&chosen, &bytes}) {
    const Outcome split_outcome = decode(*chunks);
    require(split_outcome.failed == whole.failed, "chunking does not change whether it fails");
    if (!whole.failed) {
      require(split_outcome.events.size() == whole.events.size() &&
                  sameEvents(split_outcome.events, whole.events, whole.events.size()),
              "chunking does not change the events");
      continue;
    }
    const std::vector<WatchEvent> before = eventsBeforeBadLine(stream);
    require(split_outcome.events.size() <= before.size() &&
                sameEvents(split_outcome.events, before, split_outcome.events.size()),
            "before an error, the events are those of the lines before the bad one");
  }
  return 0;
}
