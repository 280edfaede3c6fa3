// picket-e2e-echo: "the app" of the e2e tests' pods. It listens on every --port, answers each
// HTTP request with a JSON description of what it received (its pod name, the port, the peer
// address, method, target and headers), and writes the same description as one line to its
// standard output, which the harness keeps as the container's log. GET /healthz answers "ok",
// for probes.
//
// Usage: picket-e2e-echo --name=NAME --port=PORT [--port=PORT ...]

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace picket::e2e {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using nlohmann::json;

std::mutex output_mutex;

struct Options {
  std::string name;
  std::vector<int> ports;
};

bool parseOptions(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.rfind("--name=", 0) == 0) {
      options.name = arg.substr(7);
    } else if (arg.rfind("--port=", 0) == 0) {
      char* end = nullptr;
      const long port = std::strtol(argv[i] + 7, &end, 10);
      if (end == argv[i] + 7 || *end != '\0' || port < 1 || port > 65535) {
        std::cerr << "picket-e2e-echo: --port needs a number from 1 to 65535, got \""
                  << arg.substr(7) << "\"\n";
        return false;
      }
      options.ports.push_back(static_cast<int>(port));
    } else {
      std::cerr << "picket-e2e-echo: unknown argument \"" << arg
                << "\" (usage: picket-e2e-echo --name=NAME --port=PORT [--port=PORT ...])\n";
      return false;
    }
  }
  if (options.name.empty() || options.ports.empty()) {
    std::cerr << "picket-e2e-echo: --name and at least one --port are required\n";
    return false;
  }
  return true;
}

std::string peerOf(int fd) {
  sockaddr_in peer{};
  socklen_t size = sizeof(peer);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &size) != 0) return "";
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &peer.sin_addr, text, sizeof(text));
  return std::string(text) + ":" + std::to_string(ntohs(peer.sin_port));
}

// Serves one connection until the client closes it or asks to.
void serve(int fd, const std::string& name, int port) {
  asio::io_context context;
  asio::ip::tcp::socket socket(context);
  boost::system::error_code error;
  socket.assign(asio::ip::tcp::v4(), fd, error);
  if (error) {
    ::close(fd);
    return;
  }
  const std::string peer = peerOf(fd);
  boost::beast::flat_buffer buffer;
  while (true) {
    http::request<http::string_body> request;
    http::read(socket, buffer, request, error);
    if (error) return;
    http::response<http::string_body> response;
    response.version(request.version());
    response.keep_alive(request.keep_alive());
    if (request.target() == "/healthz") {
      response.result(http::status::ok);
      response.set(http::field::content_type, "text/plain");
      response.body() = "ok\n";
    } else {
      json headers = json::object();
      for (const auto& field : request) {
        std::string key(field.name_string());
        for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        headers[key] = std::string(field.value());
      }
      json seen = {{"pod", name},
                   {"port", port},
                   {"peer", peer},
                   {"method", std::string(request.method_string())},
                   {"target", std::string(request.target())},
                   {"headers", headers}};
      std::string line = seen.dump();
      {
        std::lock_guard lock(output_mutex);
        std::fwrite(line.data(), 1, line.size(), stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);
      }
      response.result(http::status::ok);
      response.set(http::field::content_type, "application/json");
      response.body() = std::move(line);
    }
    response.prepare_payload();
    http::write(socket, response, error);
    if (error || !response.keep_alive()) return;
  }
}

int listenOn(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(fd, 128) != 0) {
    std::cerr << "picket-e2e-echo: listening on port " << port << ": " << std::strerror(errno)
              << "\n";
    ::close(fd);
    return -1;
  }
  return fd;
}

void acceptLoop(int listener, const std::string& name, int port) {
  while (true) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      std::cerr << "picket-e2e-echo: accept on port " << port << ": " << std::strerror(errno)
                << "\n";
      std::exit(1);
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::thread(serve, fd, name, port).detach();
  }
}

}  // namespace
}  // namespace picket::e2e

int main(int argc, char** argv) {
  picket::e2e::Options options;
  if (!picket::e2e::parseOptions(argc, argv, options)) return 2;
  std::vector<int> listeners;
  for (int port : options.ports) {
    const int fd = picket::e2e::listenOn(port);
    if (fd < 0) return 1;
    listeners.push_back(fd);
  }
  std::cout << "picket-e2e-echo " << options.name << " listening" << std::endl;
  std::vector<std::thread> threads;
  for (size_t i = 1; i < listeners.size(); ++i) {
    threads.emplace_back(picket::e2e::acceptLoop, listeners[i], options.name, options.ports[i]);
  }
  picket::e2e::acceptLoop(listeners[0], options.name, options.ports[0]);
}
