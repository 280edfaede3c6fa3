#include "operator/internal/calico_selector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace picket::op::internal {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Tests that the forms Picket writes parse and count as optimised.
TEST(CalicoSelectorTest, AcceptsOptimisedForms) {
  const std::vector<std::string> selectors = {
      "app.kubernetes.io/name == 'account'",
      "app == \"account\"",
      "has(team)",
      "has( team )",
      "tier in {'a', 'b'}",
      "tier in{'a',\"b\",}",
      "tier in {}",
      "app == 'account' && has(team) && tier in {'x'}",
      "(app == 'a') && ((b == 'c'))",
      "projectcalico.org/name == 'core'",
      "\tapp\t==\t''\t",
      "a_b.c/d-e == 'v'",
  };
  for (const auto& selector : selectors) {
    auto report = checkCalicoSelector(selector);
    ASSERT_TRUE(report) << selector << ": " << report.error().message;
    EXPECT_TRUE(report->optimised()) << selector;
    EXPECT_THAT(report->unoptimised, IsEmpty()) << selector;
  }
}

// Tests that each construct Calico cannot index is named once, in order of first appearance.
TEST(CalicoSelectorTest, NamesEachUnoptimisedConstruct) {
  struct Case {
    std::string selector;
    std::vector<std::string> unoptimised;
  };
  const std::vector<Case> cases = {
      {"a != 'b'", {"!="}},
      {"!has(a)", {"!"}},
      {"!!has(a)", {"!"}},
      {"a not in {'x'}", {"not in"}},
      {"a not   in {'x'}", {"not in"}},
      {"a == 'b' || c == 'd'", {"||"}},
      {"all()", {"all()"}},
      {"all( )", {"all()"}},
      {"global()", {"global()"}},
      {"a contains 'x'", {"contains"}},
      {"a starts with 'x'", {"starts with"}},
      {"a ends with 'x'", {"ends with"}},
      {"", {"empty selector"}},
      {"  ", {"empty selector"}},
      {"!a == 'b' || !c == 'd' || e != 'f'", {"!", "||", "!="}},
      {"has(a) && (b == 'c' || d == 'e')", {"||"}},
  };
  for (const auto& c : cases) {
    auto report = checkCalicoSelector(c.selector);
    ASSERT_TRUE(report) << c.selector << ": " << report.error().message;
    EXPECT_FALSE(report->optimised()) << c.selector;
    EXPECT_THAT(report->unoptimised, ElementsAreArray(c.unoptimised)) << c.selector;
  }
}

// Tests that malformed selectors are refused with the offset and what was expected.
TEST(CalicoSelectorTest, RejectsMalformedSelectors) {
  struct Case {
    std::string selector;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"a = 'b'", "offset 2: expected an operator"},
      {"a == b", "offset 5: expected a quoted string, found 'b'"},
      {"a == 'b", "expected a closing quote"},
      {"has(a", "expected ')' to close has("},
      {"has()", "offset 4: expected a label name"},
      {"has (a)", "expected an operator"},
      {"(a == 'b'", "expected ')'"},
      {"a == 'b')", "offset 8: expected '&&', '||' or the end of the selector"},
      {"a == 'b' &&", "offset 11: expected a label name"},
      {"a == 'b' || ", "expected a label name"},
      {"a in {'x'", "expected '}' to close a set"},
      {"a in 'x'", "expected '{' to open a set"},
      {"a not 'x'", "expected 'in' after 'not'"},
      {"a starts 'x'", "expected 'with' after 'starts'"},
      {"a ends 'x'", "expected 'with' after 'ends'"},
      {"&& a == 'b'", "offset 0: expected a label name"},
      {"a == 'b' c == 'd'", "offset 9: expected '&&', '||' or the end"},
      {"all(x)", "expected ')' after all("},
      {"global(x)", "expected ')' after global("},
      {"a", "offset 1: expected an operator"},
      {"a == 'b' & c == 'd'", "expected '&&', '||' or the end"},
      {"a == 'b' | c == 'd'", "expected '&&', '||' or the end"},
      {"!", "expected a label name"},
      {"a == 'x' && b in {'y' 'z'}", "expected '}' to close a set"},
  };
  for (const auto& c : cases) {
    auto report = checkCalicoSelector(c.selector);
    ASSERT_FALSE(report) << c.selector;
    EXPECT_EQ(report.error().code, ErrorCode::kParse);
    EXPECT_THAT(report.error().message, HasSubstr(c.message)) << c.selector;
  }
}

// Tests that a label longer than Calico's 512-character limit is refused, and 512 accepted.
TEST(CalicoSelectorTest, EnforcesLabelLengthLimit) {
  EXPECT_TRUE(checkCalicoSelector(std::string(512, 'a') + " == 'x'"));
  auto report = checkCalicoSelector(std::string(513, 'a') + " == 'x'");
  ASSERT_FALSE(report);
  EXPECT_THAT(report.error().message, HasSubstr("at most 512 characters"));
}

// Tests that deeply nested parentheses end in an error, not a stack overflow.
TEST(CalicoSelectorTest, BoundsNesting) {
  EXPECT_TRUE(checkCalicoSelector(std::string(64, '(') + "a == 'b'" + std::string(64, ')')));
  auto report =
      checkCalicoSelector(std::string(100000, '(') + "a == 'b'" + std::string(100000, ')'));
  ASSERT_FALSE(report);
  EXPECT_THAT(report.error().message, HasSubstr("at most 64 nested parentheses"));
}

}  // namespace
}  // namespace picket::op::internal
