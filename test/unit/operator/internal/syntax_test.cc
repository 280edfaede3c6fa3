#include "operator/internal/syntax.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace picket::op::internal {
namespace {

using ::testing::HasSubstr;

struct Case {
  std::string value;
  bool valid;
  std::string message;  // a part of the error when invalid
};

void expectCases(const std::vector<Case>& cases, Status (*check)(std::string_view)) {
  for (const auto& c : cases) {
    auto status = check(c.value);
    EXPECT_EQ(status.has_value(), c.valid) << "'" << c.value << "'";
    if (!status) {
      EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
      EXPECT_THAT(status.error().message, HasSubstr(c.message)) << "'" << c.value << "'";
    }
  }
}

// Tests DNS-1123 labels: lower-case alphanumerics and '-', alphanumeric ends, 63 at most.
TEST(SyntaxTest, ChecksDns1123Labels) {
  expectCases(
      {
          {"account", true, ""},
          {"a", true, ""},
          {"0ledger-2", true, ""},
          {std::string(63, 'a'), true, ""},
          {"", false, "must not be empty"},
          {std::string(64, 'a'), false, "longer than 63"},
          {"Account", false, "not a DNS-1123 label"},
          {"my_service", false, "not a DNS-1123 label"},
          {"a.b", false, "not a DNS-1123 label"},
          {"-a", false, "start and end"},
          {"a-", false, "start and end"},
      },
      checkDns1123Label);
}

// Tests DNS-1123 subdomains: dot-separated labels, 253 at most.
TEST(SyntaxTest, ChecksDns1123Subdomains) {
  expectCases(
      {
          {"account", true, ""},
          {"account.v2", true, ""},
          {"a.b.c", true, ""},
          {std::string(253, 'a'), false, "not a DNS-1123 subdomain"},
          {"", false, "must not be empty"},
          {std::string(254, 'a'), false, "longer than 253"},
          {"a..b", false, "not a DNS-1123 subdomain"},
          {".a", false, "not a DNS-1123 subdomain"},
          {"a.", false, "not a DNS-1123 subdomain"},
          {"A.b", false, "not a DNS-1123 subdomain"},
      },
      checkDns1123Subdomain);
}

// Tests label keys: optional subdomain prefix, a name of [A-Za-z0-9_.-] with alphanumeric ends.
TEST(SyntaxTest, ChecksLabelKeys) {
  expectCases(
      {
          {"team", true, ""},
          {"app.kubernetes.io/name", true, ""},
          {"projectcalico.org/name", true, ""},
          {"Team_Name.v-2", true, ""},
          {"example.com/" + std::string(63, 'a'), true, ""},
          {"", false, "must not be empty"},
          {"-team", false, "must consist of letters"},
          {"team-", false, "must consist of letters"},
          {"te am", false, "must consist of letters"},
          {"te'am", false, "must consist of letters"},
          {"example.com/", false, "must consist of letters"},
          {"Example.com/team", false, "DNS-1123 subdomain"},
          {"/team", false, "DNS-1123 subdomain"},
          {"a/b/c", false, "must consist of letters"},
          {std::string(64, 'a'), false, "longer than 63"},
      },
      checkLabelKey);
}

// Tests label values: empty, or up to 63 of [A-Za-z0-9_.-] with alphanumeric ends.
TEST(SyntaxTest, ChecksLabelValues) {
  expectCases(
      {
          {"", true, ""},
          {"observability", true, ""},
          {"Team_1.a-b", true, ""},
          {std::string(63, 'v'), true, ""},
          {std::string(64, 'v'), false, "longer than 63"},
          {"-v", false, "not a valid label value"},
          {"v'", false, "not a valid label value"},
          {"a b", false, "not a valid label value"},
          {"a/b", false, "not a valid label value"},
      },
      checkLabelValue);
}

// Tests named ports (IANA_SVC_NAME): 15 at most, a letter, no leading/trailing/double '-'.
TEST(SyntaxTest, ChecksPortNames) {
  expectCases(
      {
          {"http", true, ""},
          {"h2c-web", true, ""},
          {"grpc-9090", true, ""},
          {"a", true, ""},
          {std::string(15, 'p'), true, ""},
          {"", false, "must not be empty"},
          {std::string(16, 'p'), false, "longer than 15"},
          {"8080", false, "at least one letter"},
          {"HTTP", false, "lower-case"},
          {"my_port", false, "lower-case"},
          {"-http", false, "'-' may not start or end it"},
          {"http-", false, "'-' may not start or end it"},
          {"h--p", false, "nor appear twice in a row"},
      },
      checkPortName);
}

}  // namespace
}  // namespace picket::op::internal
