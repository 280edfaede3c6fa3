#include "test/fakes/fake_transport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <utility>

namespace picket::kube {
namespace {

std::pair<std::string_view, std::string_view> splitQuery(std::string_view path) {
  const auto question = path.find('?');
  if (question == std::string_view::npos) return {path, {}};
  return {path.substr(0, question), path.substr(question + 1)};
}

std::vector<std::string_view> queryParameters(std::string_view query) {
  std::vector<std::string_view> parameters;
  while (!query.empty()) {
    const auto amp = query.find('&');
    parameters.push_back(query.substr(0, amp));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return parameters;
}

bool isSuccess(int status) { return status >= 200 && status <= 299; }

}  // namespace

bool RequestMatcher::matches(const HttpRequest& request) const {
  if (request.method != method) return false;
  if (!allow_extra_query) return request.path == path;
  const auto [want_path, want_query] = splitQuery(path);
  const auto [got_path, got_query] = splitQuery(request.path);
  if (want_path != got_path) return false;
  const auto got = queryParameters(got_query);
  for (std::string_view parameter : queryParameters(want_query)) {
    if (std::find(got.begin(), got.end(), parameter) == got.end()) return false;
  }
  return true;
}

std::string RequestMatcher::describe() const {
  return method + " " + path + (allow_extra_query ? " (and any other query parameters)" : "");
}

void FakeStream::push(std::string chunk) {
  std::lock_guard lock(mutex_);
  chunks_.push_back(std::move(chunk));
  changed_.notify_all();
}

void FakeStream::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  changed_.notify_all();
}

void FakeStream::fail(Error error) {
  std::lock_guard lock(mutex_);
  failure_ = std::move(error);
  closed_ = true;
  changed_.notify_all();
}

bool FakeStream::waitUntilOpened(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [this] { return opened_; });
}

bool FakeStream::readerStopped() const {
  std::lock_guard lock(mutex_);
  return reader_stopped_;
}

bool FakeStream::waitUntilFinished(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [this] { return finished_; });
}

Result<HttpResponse> FakeStream::serve(const std::function<bool(std::string_view)>& on_data,
                                       std::chrono::milliseconds stall_timeout,
                                       std::stop_token stop) {
  // Wakes the wait below on a stop. Registered before taking the lock: the callback runs at once,
  // on this thread, when the stop was already requested.
  std::stop_callback wake(stop, [this] {
    std::lock_guard guard(mutex_);
    changed_.notify_all();
  });
  std::unique_lock lock(mutex_);
  opened_ = true;
  changed_.notify_all();
  auto finish = [&](Result<HttpResponse> result) {
    finished_ = true;
    changed_.notify_all();
    return result;
  };
  for (;;) {
    const bool ready = changed_.wait_for(
        lock, stall_timeout, [&] { return !chunks_.empty() || closed_ || stop.stop_requested(); });
    if (stop.stop_requested()) return finish(HttpResponse{200, {}, {}});
    if (!ready) {
      return finish(
          makeError(ErrorCode::kTimeout,
                    "fake stream: no data for " + std::to_string(stall_timeout.count()) + " ms"));
    }
    if (chunks_.empty()) {
      if (failure_) return finish(makeError(*failure_));
      return finish(HttpResponse{200, {}, {}});
    }
    std::string chunk = std::move(chunks_.front());
    chunks_.pop_front();
    // The reader runs without the lock so that it may push to this stream or wait on others.
    lock.unlock();
    const bool more = on_data(chunk);
    lock.lock();
    if (!more) {
      reader_stopped_ = true;
      return finish(HttpResponse{200, {}, {}});
    }
  }
}

FakeTransport::~FakeTransport() { closeStreams(); }

void FakeTransport::expect(RequestMatcher match, HttpResponse response) {
  std::lock_guard lock(mutex_);
  exchanges_.push_back(Exchange{std::move(match), std::move(response), {}, {}, ok(), {}});
}

void FakeTransport::expectError(RequestMatcher match, Error error) {
  std::lock_guard lock(mutex_);
  exchanges_.push_back(Exchange{std::move(match), {}, std::move(error), {}, ok(), {}});
}

void FakeTransport::expectStream(RequestMatcher match, std::vector<std::string> chunks,
                                 Status end) {
  std::lock_guard lock(mutex_);
  exchanges_.push_back(Exchange{std::move(match), {}, {}, std::move(chunks), std::move(end), {}});
}

std::shared_ptr<FakeStream> FakeTransport::expectOpenStream(RequestMatcher match) {
  auto open = std::make_shared<FakeStream>();
  std::lock_guard lock(mutex_);
  exchanges_.push_back(Exchange{std::move(match), {}, {}, {}, ok(), open});
  streams_.push_back(open);
  return open;
}

std::vector<RecordedRequest> FakeTransport::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::size_t FakeTransport::pendingExpectations() const {
  std::lock_guard lock(mutex_);
  return exchanges_.size();
}

bool FakeTransport::waitForRequests(std::size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return request_arrived_.wait_for(lock, timeout, [&] { return requests_.size() >= count; });
}

void FakeTransport::closeStreams() {
  std::vector<std::shared_ptr<FakeStream>> streams;
  {
    std::lock_guard lock(mutex_);
    streams = streams_;
  }
  for (auto& open : streams) open->close();
}

std::optional<FakeTransport::Exchange> FakeTransport::take(
    const HttpRequest& request, bool streamed, std::chrono::milliseconds stall_timeout) {
  std::lock_guard lock(mutex_);
  RecordedRequest recorded;
  static_cast<HttpRequest&>(recorded) = request;
  recorded.streamed = streamed;
  recorded.stall_timeout = stall_timeout;
  requests_.push_back(std::move(recorded));
  request_arrived_.notify_all();
  auto it = std::find_if(exchanges_.begin(), exchanges_.end(),
                         [&](const Exchange& exchange) { return exchange.match.matches(request); });
  if (it == exchanges_.end()) {
    std::string scripted;
    for (const auto& exchange : exchanges_) scripted += "\n  " + exchange.match.describe();
    ADD_FAILURE() << "FakeTransport: unexpected request " << request.method << " " << request.path
                  << "; scripted:" << (scripted.empty() ? " nothing" : scripted);
    return std::nullopt;
  }
  Exchange exchange = std::move(*it);
  exchanges_.erase(it);
  return exchange;
}

Result<HttpResponse> FakeTransport::send(const HttpRequest& request) {
  auto exchange = take(request, /*streamed=*/false, std::chrono::milliseconds(0));
  if (!exchange) {
    return makeError(ErrorCode::kInternal,
                     "FakeTransport: unexpected request " + request.method + " " + request.path);
  }
  if (exchange->error) return makeError(*exchange->error);
  if (exchange->response) return *exchange->response;
  if (exchange->open_stream) {
    ADD_FAILURE() << "FakeTransport: " << exchange->match.describe()
                  << " was scripted as an open stream but sent with send()";
    return makeError(ErrorCode::kInternal, "FakeTransport: open stream requested with send()");
  }
  HttpResponse response{200, {}, {}};
  for (const auto& chunk : *exchange->chunks) response.body += chunk;
  if (!exchange->end) return makeError(exchange->end.error());
  return response;
}

Result<HttpResponse> FakeTransport::stream(const HttpRequest& request,
                                           const std::function<bool(std::string_view)>& on_data,
                                           std::chrono::milliseconds stall_timeout) {
  auto exchange = take(request, /*streamed=*/true, stall_timeout);
  if (!exchange) {
    return makeError(ErrorCode::kInternal,
                     "FakeTransport: unexpected request " + request.method + " " + request.path);
  }
  if (exchange->error) return makeError(*exchange->error);
  if (exchange->open_stream) {
    return exchange->open_stream->serve(on_data, stall_timeout, request.stop);
  }
  if (exchange->response) {
    HttpResponse response = std::move(*exchange->response);
    if (!isSuccess(response.status)) return response;
    if (!response.body.empty()) on_data(response.body);
    response.body.clear();
    return response;
  }
  for (const auto& chunk : *exchange->chunks) {
    if (request.stop.stop_requested() || !on_data(chunk)) return HttpResponse{200, {}, {}};
  }
  if (!exchange->end) return makeError(exchange->end.error());
  return HttpResponse{200, {}, {}};
}

}  // namespace picket::kube
