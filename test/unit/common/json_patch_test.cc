#include "common/json_patch.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace picket::common {
namespace {

using nlohmann::json;

// Tokens that exercise every escaping rule, including the order trap of "~01".
const std::vector<std::string> kTokens = {
    "", "plain", "a/b", "a~b", "~", "/", "~1", "~0", "~01", "//~~", "picket.dev/status", "é/ü",
};

// Tests that escaping agrees with nlohmann::json_pointer, an independent RFC 6901 implementation.
TEST(JsonPointerTest, EscapesLikeAnIndependentImplementation) {
  for (const std::string& token : kTokens) {
    std::string reference = (json::json_pointer() / token).to_string();
    EXPECT_EQ("/" + escapePointerToken(token), reference) << token;
  }
}

// Tests the two escapes RFC 6901 defines, on the annotation keys the injector writes.
TEST(JsonPointerTest, EscapesTildeAndSlash) {
  EXPECT_EQ(escapePointerToken("picket.dev/status"), "picket.dev~1status");
  EXPECT_EQ(escapePointerToken("a~b/c"), "a~0b~1c");
  EXPECT_EQ(escapePointerToken("~1"), "~01");
  EXPECT_EQ(escapePointerToken("plain"), "plain");
}

// Tests that unescaping reverses escaping for every token.
TEST(JsonPointerTest, UnescapeReversesEscape) {
  for (const std::string& token : kTokens) {
    auto back = unescapePointerToken(escapePointerToken(token));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, token);
  }
}

// Tests that "~01" decodes to "~1", not "/" (RFC 6901 section 4: "~1" first, then "~0").
TEST(JsonPointerTest, UnescapesInTheOrderTheRfcRequires) {
  EXPECT_EQ(unescapePointerToken("~01").value(), "~1");
  EXPECT_EQ(unescapePointerToken("~10").value(), "/0");
  EXPECT_EQ(unescapePointerToken("a~1b~0c").value(), "a/b~c");
}

// Tests that a "~" not followed by 0 or 1 is refused, with a message that locates it.
TEST(JsonPointerTest, RefusesBadEscapes) {
  for (const char* bad : {"~", "a~", "~2", "~a", "x~~0"}) {
    auto result = unescapePointerToken(bad);
    ASSERT_FALSE(result) << bad;
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(result.error().message.find("must be followed by 0 or 1"), std::string::npos);
  }
  EXPECT_NE(unescapePointerToken("x~~0").error().message.find("offset 1"), std::string::npos);
}

// Tests that makePointer escapes each token and that nlohmann resolves the result.
TEST(JsonPointerTest, MakesPointersThatResolve) {
  EXPECT_EQ(makePointer({}), "");
  EXPECT_EQ(makePointer({"metadata", "annotations", "picket.dev/status"}),
            "/metadata/annotations/picket.dev~1status");
  json doc = {{"metadata", {{"annotations", {{"a/b~c", "v"}}}}}};
  EXPECT_EQ(doc.at(json::json_pointer(makePointer({"metadata", "annotations", "a/b~c"}))), "v");
}

// Tests that the builder emits each operation in RFC 6902 shape and in order.
TEST(PatchBuilderTest, BuildsOperationsInOrder) {
  PatchBuilder patch;
  EXPECT_TRUE(patch.empty());
  EXPECT_EQ(patch.operations(), json::array());
  patch.test("/a", 1).replace("/a", 2).add("/b/-", "x").remove("/c");
  EXPECT_FALSE(patch.empty());
  EXPECT_EQ(patch.size(), 4u);
  EXPECT_EQ(patch.operations(), json::parse(R"([
    {"op": "test", "path": "/a", "value": 1},
    {"op": "replace", "path": "/a", "value": 2},
    {"op": "add", "path": "/b/-", "value": "x"},
    {"op": "remove", "path": "/c"}
  ])"));
}

// Tests that a null value is kept as a value ("add" of null is a valid operation).
TEST(PatchBuilderTest, KeepsNullValues) {
  PatchBuilder patch;
  patch.add("/a", nullptr);
  ASSERT_TRUE(patch.operations()[0].contains("value"));
  EXPECT_TRUE(patch.operations()[0]["value"].is_null());
}

// Tests that the patch applies with nlohmann's RFC 6902 implementation, escaped keys included.
TEST(PatchBuilderTest, ProducesPatchesAnIndependentImplementationApplies) {
  json doc = json::parse(R"({"metadata": {"annotations": {"x": "1"}}, "list": [1, 2], "gone": 0})");
  PatchBuilder patch;
  patch.test(makePointer({"metadata", "annotations", "x"}), "1")
      .add(makePointer({"metadata", "annotations", "picket.dev/status"}), "{}")
      .add(makePointer({"metadata", "annotations", "a~b"}), "t")
      .add("/list/0", 0)
      .add("/list/-", 3)
      .replace("/metadata/annotations/x", "2")
      .remove("/gone");
  json patched = doc.patch(patch.operations());
  EXPECT_EQ(patched, json::parse(R"({
    "metadata": {"annotations": {"x": "2", "picket.dev/status": "{}", "a~b": "t"}},
    "list": [0, 1, 2, 3]
  })"));
}

// Tests that a failing "test" operation makes the independent implementation reject the patch.
TEST(PatchBuilderTest, FailingTestOperationRejectsThePatch) {
  PatchBuilder patch;
  patch.test("/a", 1).replace("/a", 2);
  EXPECT_THROW(json({{"a", 5}}).patch(patch.operations()), json::other_error);
}

// Tests that release() hands over the document and leaves the builder empty for reuse.
TEST(PatchBuilderTest, ReleaseEmptiesTheBuilder) {
  PatchBuilder patch;
  patch.remove("/a");
  json released = patch.release();
  EXPECT_EQ(released.size(), 1u);
  EXPECT_TRUE(patch.empty());
  EXPECT_TRUE(patch.operations().is_array());
  patch.remove("/b");
  EXPECT_EQ(patch.operations(), json::parse(R"([{"op": "remove", "path": "/b"}])"));
}

}  // namespace
}  // namespace picket::common
