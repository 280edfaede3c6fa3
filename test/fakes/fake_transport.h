#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "kube/transport.h"

namespace picket::kube {

// Which request a scripted exchange answers.
struct RequestMatcher {
  std::string method = "GET";
  // Path and query, as the client sends them ("/api/v1/namespaces/a/pods?limit=500"). Compared
  // exactly, unless `allow_extra_query` is set: then the part before '?' must be equal and each
  // query parameter named here must appear in the request with the same (encoded) value, while
  // the request may carry more (for randomised values such as timeoutSeconds).
  std::string path;
  bool allow_extra_query = false;

  // Whether `request` is one this matcher answers.
  bool matches(const HttpRequest& request) const;
  // "GET /path" for messages.
  std::string describe() const;
};

// A streamed answer that stays open while the test feeds it, for code that watches on another
// thread (informers). Chunks pushed before the client opens the stream are queued. The stream
// ends when the test calls close() (the server ended it) or fail() (a transport error), when the
// reader's on_data returns false or a stop is requested on the request's stop token (a 200
// answer), or with kTimeout when nothing is pushed for the reader's stall timeout, as
// CurlTransport does. Thread-safe.
class FakeStream {
 public:
  // Sends `chunk` to the reader; chunks follow no framing, as on the wire.
  void push(std::string chunk);
  // Ends the stream as a server does at the end of a watch: after the queued chunks, stream()
  // returns a 200 answer.
  void close();
  // Ends the stream with `error` after the queued chunks (e.g. kUnavailable for a dropped
  // connection).
  void fail(Error error);
  // Whether a reader has opened the stream; blocks up to `timeout` for it.
  bool waitUntilOpened(std::chrono::milliseconds timeout) const;
  // Whether the reader ended the stream by returning false from on_data.
  bool readerStopped() const;
  // Whether the stream is over for any reason (the reader returned from stream()).
  bool waitUntilFinished(std::chrono::milliseconds timeout) const;

 private:
  friend class FakeTransport;
  // Runs the reader's side of stream().
  Result<HttpResponse> serve(const std::function<bool(std::string_view)>& on_data,
                             std::chrono::milliseconds stall_timeout, std::stop_token stop);

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::deque<std::string> chunks_;
  bool opened_ = false;
  bool closed_ = false;
  bool reader_stopped_ = false;
  bool finished_ = false;
  std::optional<Error> failure_;
};

// A request as FakeTransport saw it.
struct RecordedRequest : HttpRequest {
  // Whether it came through stream() rather than send().
  bool streamed = false;
  // The stall timeout stream() was given; zero for send().
  std::chrono::milliseconds stall_timeout{0};
};

// A scripted Transport for tests of anything built on the Kubernetes client. Script the answers
// with expect*(); each request takes the first queued exchange that matches it, so requests of
// different kinds may arrive in any order while equal requests get their answers in the order
// scripted. Every request is recorded for assertions. A request that matches nothing fails the
// running test (ADD_FAILURE) and gets a kInternal error. Thread-safe.
//
//   auto fake = std::make_shared<FakeTransport>();
//   fake->expect({"GET", "/api/v1/namespaces/a/pods/p"}, {200, R"({"kind":"Pod"})", {}});
//   fake->expectStream({"GET", "/api/v1/pods?watch=1&resourceVersion=5", true},
//                      {R"({"type":"ADD)", R"(ED","object":{}})" "\n"});
//   Client client(fake);
//   ...
//   EXPECT_EQ(fake->pendingExpectations(), 0u);
class FakeTransport : public Transport {
 public:
  ~FakeTransport() override;

  // Answers a matching request with `response`. Through stream(), a 2xx answer's body is handed
  // to on_data as one chunk; any other answer is returned whole.
  void expect(RequestMatcher match, HttpResponse response);
  // Answers a matching request with a transport error (no HTTP answer at all).
  void expectError(RequestMatcher match, Error error);
  // Answers a matching stream() with 200 and `chunks` in order, then `end`: ok() for a server
  // that ended the stream, an error (kTimeout for a stall) otherwise. A stop requested on the
  // request's stop token ends it before the next chunk with a 200 answer. Through send(), the
  // chunks joined are the body of a 200 answer.
  void expectStream(RequestMatcher match, std::vector<std::string> chunks, Status end = ok());
  // Answers a matching stream() with 200 and a stream the test keeps feeding (see FakeStream).
  std::shared_ptr<FakeStream> expectOpenStream(RequestMatcher match);

  // Every request so far, in arrival order.
  std::vector<RecordedRequest> requests() const;
  // Scripted exchanges no request has taken yet.
  std::size_t pendingExpectations() const;
  // Blocks until at least `count` requests arrived or `timeout` passed; returns whether they did.
  bool waitForRequests(std::size_t count, std::chrono::milliseconds timeout) const;
  // Ends every open stream (as close() does), so threads reading them return.
  void closeStreams();

  Result<HttpResponse> send(const HttpRequest& request) override;
  Result<HttpResponse> stream(const HttpRequest& request,
                              const std::function<bool(std::string_view)>& on_data,
                              std::chrono::milliseconds stall_timeout) override;

 private:
  struct Exchange {
    RequestMatcher match;
    std::optional<HttpResponse> response;
    std::optional<Error> error;
    std::optional<std::vector<std::string>> chunks;
    Status end;
    std::shared_ptr<FakeStream> open_stream;
  };

  // Records `request` and takes the first exchange that matches it.
  std::optional<Exchange> take(const HttpRequest& request, bool streamed,
                               std::chrono::milliseconds stall_timeout);

  mutable std::mutex mutex_;
  mutable std::condition_variable request_arrived_;
  std::deque<Exchange> exchanges_;
  std::vector<RecordedRequest> requests_;
  std::vector<std::shared_ptr<FakeStream>> streams_;
};

}  // namespace picket::kube
