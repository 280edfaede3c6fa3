#include "common/yaml_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace picket {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

json one(const std::string& yaml) {
  auto value = yamlToJson(yaml, "test.yaml");
  EXPECT_TRUE(value) << value.error().describe();
  return value ? *value : json();
}

// Tests that plain scalars get go-yaml v2's types and quoted ones stay strings, row by row.
TEST(YamlJsonTest, TypesPlainScalarsAsKubectlDoes) {
  struct Row {
    std::string yaml;
    json expected;
  };
  const std::vector<Row> rows = {
      {"v: 42", 42},
      {"v: -7", -7},
      {"v: +3", 3},
      {"v: 0x2a", 42},
      {"v: 0o17", 15},
      {"v: 017", 15},
      {"v: 0b101", 5},
      {"v: 1_000", 1000},
      {"v: 18446744073709551615", 18446744073709551615ull},
      {"v: 1.5", 1.5},
      {"v: 1e3", 1000.0},
      {"v: .5", 0.5},
      {"v: true", true},
      {"v: yes", true},
      {"v: On", true},
      {"v: n", false},
      {"v: FALSE", false},
      {"v: ~", nullptr},
      {"v: null", nullptr},
      {"v:", nullptr},
      {"v: '42'", "42"},
      {"v: \"true\"", "true"},
      {"v: !!str 42", "42"},
      {"v: 1.2.3", "1.2.3"},
      {"v: 08x", "08x"},
      {"v: 2024-01-01", "2024-01-01"},
      {"v: app.kubernetes.io/name == 'a'", "app.kubernetes.io/name == 'a'"},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(one(row.yaml)["v"], row.expected) << row.yaml;
  }
}

// Tests that mappings and sequences nest, and that keys are strings whatever they look like.
TEST(YamlJsonTest, ConvertsNestedStructures) {
  json value = one("a:\n  - {x: 1}\n  - [2, three]\n1: one\ntrue: t\n");
  EXPECT_EQ(value, json::parse(R"({"a":[{"x":1},[2,"three"]],"1":"one","true":"t"})"));
}

// Tests that every document of a stream is returned and empty ones are skipped.
TEST(YamlJsonTest, SplitsDocumentsAndSkipsEmptyOnes) {
  auto documents = yamlDocumentsToJson("---\na: 1\n---\n# nothing\n---\nb: 2\n", "in");
  ASSERT_TRUE(documents) << documents.error().describe();
  ASSERT_EQ(documents->size(), 2u);
  EXPECT_EQ((*documents)[0], json({{"a", 1}}));
  EXPECT_EQ((*documents)[1], json({{"b", 2}}));
}

// Tests that JSON text reads as the same JSON.
TEST(YamlJsonTest, ReadsJsonText) {
  const std::string text = R"({"kind":"List","items":[{"n":1.25,"s":"x","b":false,"z":null}]})";
  EXPECT_EQ(one(text), json::parse(text));
}

// Tests that malformed YAML is a parse error giving the origin, line and column.
TEST(YamlJsonTest, ReportsWhereSyntaxErrorsAre) {
  auto value = yamlToJson("a: 1\nb: [1, 2\n", "bad.yaml");
  ASSERT_FALSE(value);
  EXPECT_EQ(value.error().code, ErrorCode::kParse);
  EXPECT_THAT(value.error().message, HasSubstr("bad.yaml:"));
}

// Tests that a key given twice is refused rather than one value silently winning.
TEST(YamlJsonTest, RefusesDuplicateKeys) {
  auto value = yamlToJson("a: 1\nb: 2\na: 3\n", "dup.yaml");
  ASSERT_FALSE(value);
  EXPECT_THAT(value.error().message, HasSubstr("dup.yaml:3:1: key \"a\" appears twice"));
}

// Tests that merge keys, complex keys and infinities are refused with a reason.
TEST(YamlJsonTest, RefusesWhatJsonCannotHold) {
  auto merge = yamlToJson("base: &b {x: 1}\nd:\n  <<: *b\n", "m.yaml");
  ASSERT_FALSE(merge);
  EXPECT_THAT(merge.error().message, HasSubstr("merge keys"));
  auto complex_key = yamlToJson("? [a, b]\n: 1\n", "k.yaml");
  ASSERT_FALSE(complex_key);
  EXPECT_THAT(complex_key.error().message, HasSubstr("key must be a scalar"));
  auto infinity = yamlToJson("v: .inf\n", "i.yaml");
  ASSERT_FALSE(infinity);
  EXPECT_THAT(infinity.error().message, HasSubstr("cannot be written in JSON"));
}

// Tests that aliases expanding to an enormous value are stopped.
TEST(YamlJsonTest, StopsAliasExpansionBombs) {
  std::string yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    const std::string previous = "*a" + std::to_string(i - 1);
    yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) {
      if (j > 0) yaml += ", ";
      yaml += previous;
    }
    yaml += "]\n";
  }
  auto value = yamlToJson(yaml, "bomb.yaml");
  ASSERT_FALSE(value);
  EXPECT_THAT(value.error().message, HasSubstr("too large"));
}

// Tests that more than one document is an error where one is expected.
TEST(YamlJsonTest, RefusesSeveralDocumentsWhereOneIsExpected) {
  auto value = yamlToJson("a: 1\n---\nb: 2\n", "two.yaml");
  ASSERT_FALSE(value);
  EXPECT_THAT(value.error().message, HasSubstr("holds 2 YAML documents"));
}

// Tests that printing and reading back gives the same value, strings that look like other types
// included.
TEST(YamlJsonTest, RoundTripsThroughYaml) {
  const json value = json::parse(R"json({
    "metadata": {"name": "picket-a", "labels": {"x": "true", "y": "1000", "z": "", "n": "null"},
                 "annotations": {}},
    "spec": {"order": 1000, "ratio": 1.5, "whole": 2.0, "selector": "app == 'a' && has(b)",
             "types": ["Ingress"], "empty": [], "flag": false, "none": null,
             "ports": [8080, "http"], "text": "line one\nline two", "colon": "a: b", "hash": "#x"}
  })json");
  std::string yaml = jsonToYaml(value);
  auto back = yamlToJson(yaml, "round.yaml");
  ASSERT_TRUE(back) << back.error().describe() << "\n" << yaml;
  EXPECT_EQ(*back, value) << yaml;
  EXPECT_TRUE((*back)["spec"]["whole"].is_number_float()) << yaml;
}

}  // namespace
// Tests streams on which yaml-cpp 0.7's LoadAll() never returns (a stray ',' where a document
// should start; found by fuzz.operator_config): refused at once with the place, and well-formed
// streams with empty documents are still read.
TEST(YamlJsonTest, RefusesStreamsTheParserCannotLeave) {
  for (const std::string& text : {std::string(","),
                                  std::string(",  2\0"
                                              "2]J",
                                              8),
                                  std::string("- a\n---\n,\n")}) {
    auto documents = yamlDocumentsToJson(text, "in.yaml");
    ASSERT_FALSE(documents) << text;
    EXPECT_EQ(documents.error().code, ErrorCode::kParse);
    EXPECT_THAT(documents.error().message, HasSubstr("in.yaml:"));
    EXPECT_THAT(documents.error().message, HasSubstr("no YAML document can start here"));
  }
  auto documents = yamlDocumentsToJson("a: 1\n---\n---\nb: 2\n---\n", "in.yaml");
  ASSERT_TRUE(documents) << documents.error().describe();
  EXPECT_EQ(documents->size(), 2u);
}

}  // namespace picket
