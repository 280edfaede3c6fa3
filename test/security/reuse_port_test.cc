// The opt-in that lets webhook replicas share a port (the failover test's endpoint): off, a
// second server on a bound port is refused; on, both listen, and picket-webhook's --reuse-port
// turns it on.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/http_server.h"
#include "webhook/server.h"

namespace picket::http {
namespace {

using ::testing::HasSubstr;

ServerOptions loopback(std::uint16_t port, bool reuse_port) {
  ServerOptions options;
  options.bind_address = "127.0.0.1";
  options.port = port;
  options.threads = 1;
  options.reuse_port = reuse_port;
  return options;
}

// Tests that without reuse_port a second server on a bound port fails with an error naming the
// bind, as before the option existed.
TEST(ReusePortTest, RefusesSecondServerOnBoundPortByDefault) {
  Router router;
  auto first = Server::start(loopback(0, false), router);
  ASSERT_TRUE(first) << first.error().describe();
  auto second = Server::start(loopback((*first)->port(), false), router);
  ASSERT_FALSE(second);
  EXPECT_THAT(second.error().message, HasSubstr("cannot bind"));
  EXPECT_EQ(second.error().field, "port");
}

// Tests that two servers that both ask for reuse_port listen on one port.
TEST(ReusePortTest, LetsTwoServersShareAPort) {
  Router router;
  auto first = Server::start(loopback(0, true), router);
  ASSERT_TRUE(first) << first.error().describe();
  auto second = Server::start(loopback((*first)->port(), true), router);
  ASSERT_TRUE(second) << second.error().describe();
  EXPECT_EQ((*second)->port(), (*first)->port());
}

// Tests picket-webhook's --reuse-port flag: off by default, on when given, and refused with a
// value.
TEST(ReusePortTest, WebhookFlagTurnsItOn) {
  const std::vector<std::string> required = {"--config", "c", "--tls-cert", "t", "--tls-key", "k"};
  auto plain = webhook::parseFlags(required);
  ASSERT_TRUE(plain) << plain.error().describe();
  EXPECT_FALSE(plain->reuse_port);

  std::vector<std::string> args = required;
  args.push_back("--reuse-port");
  auto on = webhook::parseFlags(args);
  ASSERT_TRUE(on) << on.error().describe();
  EXPECT_TRUE(on->reuse_port);

  args.back() = "--reuse-port=true";
  auto valued = webhook::parseFlags(args);
  ASSERT_FALSE(valued);
  EXPECT_EQ(valued.error().message, "--reuse-port takes no value");
  EXPECT_EQ(valued.error().field, "--reuse-port");
  EXPECT_THAT(webhook::usage(), HasSubstr("--reuse-port"));
}

}  // namespace
}  // namespace picket::http
