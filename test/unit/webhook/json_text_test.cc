#include "webhook/internal/json_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "test/unit/webhook/webhook_test_util.h"
#include "webhook/admission.h"

namespace picket::webhook::internal {
namespace {

using nlohmann::json;
using testing::readFixture;

// True when `a` and `b` are the same tree down to the value types: json's operator== calls 5
// (unsigned) and 5 (signed) equal, which would hide a parser that picks the wrong one.
bool sameTree(const json& a, const json& b) {
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
      if (ia.key() != ib.key() || !sameTree(*ia, *ib)) return false;
    }
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!sameTree(a[i], b[i])) return false;
    }
    return true;
  }
  return a == b;
}

// What nlohmann makes of `text`: the tree, or its exception's message.
struct Reference {
  bool ok = false;
  json value;
  std::string error;
};

Reference nlohmannParse(std::string_view text) {
  Reference reference;
  try {
    reference.value = json::parse(text);
    reference.ok = true;
  } catch (const json::exception& e) {
    reference.error = e.what();
  }
  return reference;
}

// Erases from `node` the member at `path` (from token `at` on), "*" standing for each element of
// an array.
void erase(json& node, const JsonPath& path, std::size_t at) {
  if (at + 1 == path.size()) {
    if (node.is_object()) node.erase(std::string(path[at]));
    return;
  }
  if (path[at] == "*") {
    if (node.is_array()) {
      for (json& item : node) erase(item, path, at + 1);
    }
    return;
  }
  if (node.is_object() && node.contains(path[at])) erase(node[std::string(path[at])], path, at + 1);
}

// `text` parsed by nlohmann with the members at `paths` erased afterwards: what pruning must
// give.
json erased(std::string_view text, const std::vector<JsonPath>& paths) {
  json out = json::parse(text);
  for (const JsonPath& path : paths) erase(out, path, 0);
  return out;
}

const std::vector<JsonPath> kPruned = {{"request", "object", "status"},
                                       {"request", "object", "metadata", "managedFields"},
                                       {"request", "oldObject"}};

// Paths through array elements too, as parseAdmissionReview() prunes a pod's containers.
const std::vector<JsonPath> kPrunedInLists = {
    {"request", "object", "status"},
    {"request", "object", "spec", "containers", "*", "env"},
    {"request", "object", "spec", "containers", "*", "volumeMounts"},
    {"request", "object", "spec", "initContainers", "*", "image"},
    {"request", "object", "spec", "volumes", "*", "configMap"},
    {"request", "object", "spec", "affinity"},
};

// Checks that parseJson() agrees with nlohmann on `text`: the same tree (less the members at
// `pruned`, erased from nlohmann's), or the same message.
void expectSameAsNlohmann(std::string_view text, const std::vector<JsonPath>& pruned = {}) {
  Reference reference = nlohmannParse(text);
  if (reference.ok) reference.value = erased(text, pruned);
  const Result<json> parsed = parseJson(text, pruned);
  ASSERT_EQ(parsed.has_value(), reference.ok)
      << "input: " << text << "\n"
      << (parsed ? "parsed, but nlohmann says: " + reference.error : parsed.error().message);
  if (reference.ok) {
    EXPECT_TRUE(sameTree(*parsed, reference.value))
        << "input: " << text << "\nparsed: " << parsed->dump()
        << "\nnlohmann: " << reference.value.dump();
  } else {
    EXPECT_EQ(parsed.error().code, ErrorCode::kParse);
    EXPECT_EQ(parsed.error().message, reference.error) << "input: " << text;
  }
}

const std::vector<std::string>& fixtureNames() {
  static const std::vector<std::string> names = {
      "pod_minimal.json",
      "pod_realistic.json",
      "pod_realistic.patch.json",
      "pod_realistic.injected.json",
      "review_pod_create.json",
      "review_pod_create.response.json",
      "review_deployment_create.json",
      "deployment_template.injected.json",
  };
  return names;
}

// Tests that the fixtures (pods, reviews, patches) parse to nlohmann's tree, compact and
// pretty-printed alike.
TEST(ParseJsonTest, BuildsNlohmannsTreeForTheFixtures) {
  for (const std::string& name : fixtureNames()) {
    SCOPED_TRACE(name);
    const std::string text = readFixture(name);
    expectSameAsNlohmann(text);
    expectSameAsNlohmann(json::parse(text).dump());
  }
}

// Tests that integers get nlohmann's types: unsigned when not negative, signed otherwise, at the
// edges of both ranges too, and a float once out of range.
TEST(ParseJsonTest, GivesIntegersNlohmannsTypes) {
  for (const char* text : {"0", "5", "-5", "-0", "18446744073709551615", "-9223372036854775808",
                           "18446744073709551616", "-9223372036854775809", "[1,-1,0]"}) {
    expectSameAsNlohmann(text);
  }
  EXPECT_TRUE(parseJson("7")->is_number_unsigned());
  EXPECT_TRUE(parseJson("-7")->is_number_integer());
  EXPECT_TRUE(parseJson("-7")->is_number_integer() && !parseJson("-7")->is_number_unsigned());
  EXPECT_TRUE(parseJson("18446744073709551616")->is_number_float());
}

// Tests that what the fast path leaves to nlohmann still parses: floats, a byte-order mark and
// nesting far deeper than the fast path recurses.
TEST(ParseJsonTest, ParsesFloatsByteOrderMarkAndDeepNesting) {
  for (const char* text :
       {"1.5", "-0.0", "1e3", "2E-2", "[0.1,{\"a\":1e400}]", "\xEF\xBB\xBF{}", "\xEF\xBB\xBF[1]"}) {
    expectSameAsNlohmann(text);
  }
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  Result<json> parsed = parseJson(deep);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_TRUE(parsed->is_array());
  const std::string just_fast = std::string(256, '[') + std::string(256, ']');
  expectSameAsNlohmann(just_fast);
  expectSameAsNlohmann(std::string(257, '[') + std::string(257, ']'));
}

// Tests that escapes and UTF-8 decode as nlohmann decodes them, surrogate pairs included.
TEST(ParseJsonTest, DecodesEscapesAndUtf8) {
  for (const char* text :
       {R"("\"\\\/\b\f\n\r\t")", R"("\u0000\u001f\u0041\u00e9\u20ac\uFFFF")",
        R"("\ud83d\ude00 and \uD834\uDD1E")", "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"",
        "\"\xF4\x8F\xBF\xBF \xEE\x80\x80 \x7F\"", R"({"k\u00e9y":"v","a\/b":[]})"}) {
    expectSameAsNlohmann(text);
  }
  EXPECT_EQ(parseJson(R"("\ud83d\ude00")")->get<std::string>(), "\xF0\x9F\x98\x80");
}

// Tests that a key given twice keeps its last value, as nlohmann keeps it.
TEST(ParseJsonTest, KeepsTheLastOfRepeatedKeys) {
  expectSameAsNlohmann(R"({"a":1,"b":2,"a":{"x":[3]}})");
  expectSameAsNlohmann(R"({"a":{"x":1},"a":"last"})");
  EXPECT_EQ(*parseJson(R"({"a":1,"a":2})"), json::parse(R"({"a":2})"));
}

// Tests that malformed input is refused with nlohmann's own message, which names the position
// and what was wrong.
TEST(ParseJsonTest, RefusesMalformedInputWithNlohmannsMessage) {
  const std::vector<std::string> inputs = {
      "",
      " ",
      "{",
      "}",
      "{\"a\":}",
      "{\"a\" 1}",
      "{\"a\":1,}",
      "{a:1}",
      "[1,]",
      "[1 2]",
      "1 2",
      "01",
      "-",
      "--1",
      "+1",
      "1.",
      ".5",
      "1e",
      "tru",
      "nul",
      "falsey",
      "\"unterminated",
      "\"bad escape \\x\"",
      "\"short \\u12\"",
      "\"raw\ncontrol\"",
      std::string("\"nul\0byte\"", 10),
      "\"\\ud800\"",
      "\"\\udc00\"",
      "\"\\ud800\\u0041\"",
      "\"\\ud800x\"",
      "\"\xC0\xAF\"",          // overlong '/'
      "\"\xE0\x80\xAF\"",      // overlong, three bytes
      "\"\xED\xA0\x80\"",      // a surrogate written as UTF-8
      "\"\xF4\x90\x80\x80\"",  // past U+10FFFF
      "\"\xF5\x80\x80\x80\"",
      "\"\x80\"",
      "\"\xC3\"",
      "\"\xE2\x82\"",
      "{\"a\":[1,{\"b\":\"\xFF\"}]}",
      "\xEF\xBB",
  };
  for (const std::string& text : inputs) {
    SCOPED_TRACE(text);
    Result<json> parsed = parseJson(text);
    ASSERT_FALSE(parsed) << "parsed: " << parsed->dump();
    EXPECT_THAT(parsed.error().message, ::testing::HasSubstr("[json.exception.parse_error."));
    expectSameAsNlohmann(text);
  }
}

// Tests that random damage to a real AdmissionReview (bytes changed, dropped or repeated, the
// text cut short) never makes the two parsers disagree. Seeded, so every run checks the same
// inputs.
TEST(ParseJsonTest, AgreesWithNlohmannOnDamagedReviews) {
  const std::string review = json::parse(readFixture("review_pod_create.json")).dump();
  std::mt19937 random(20261126);
  const std::string interesting = "{}[]\":,\\/ntfu0123456789-+.eE\x80\xC3\xED\xF0\x01";
  for (int round = 0; round < 3000; ++round) {
    std::string text = review;
    const int edits = 1 + static_cast<int>(random() % 3);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const std::size_t at = random() % text.size();
      switch (random() % 4) {
        case 0:
          text[at] = interesting[random() % interesting.size()];
          break;
        case 1:
          text.erase(at, 1 + random() % 4);
          break;
        case 2:
          text.insert(at, 1, interesting[random() % interesting.size()]);
          break;
        default:
          text.resize(at);
      }
    }
    SCOPED_TRACE(round);
    expectSameAsNlohmann(text);
    expectSameAsNlohmann(text, kPrunedInLists);
    if (::testing::Test::HasFailure()) break;
  }
}

// Tests that pruning leaves out exactly the members at the given paths: not members of the same
// name elsewhere (deeper, shallower, inside arrays), and not their siblings.
TEST(ParseJsonTest, PrunesOnlyTheMembersAtThePaths) {
  const std::string text = R"({"status":1,"request":{"status":2,"oldObject":{"big":[1,2,3]},)"
                           R"("object":{"status":{"phase":"Pending"},"spec":{"status":3,)"
                           R"("containers":[{"status":4,"oldObject":5}]},"metadata":{"name":"p",)"
                           R"("managedFields":[{"manager":"kubectl","fieldsV1":{"f:spec":{}}}],)"
                           R"("labels":{"managedFields":"kept"}}},"uid":"u"}})";
  Result<json> parsed = parseJson(text, kPruned);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_TRUE(sameTree(*parsed, erased(text, kPruned))) << parsed->dump();
  EXPECT_FALSE(parsed->at("request").contains("oldObject"));
  EXPECT_FALSE(parsed->at("request").at("object").contains("status"));
  EXPECT_FALSE(parsed->at("request").at("object").at("metadata").contains("managedFields"));
  EXPECT_EQ(parsed->at("status"), 1);
  EXPECT_EQ(parsed->at("request").at("status"), 2);
  EXPECT_EQ(parsed->at("request").at("object").at("spec").at("containers")[0].at("oldObject"), 5);
  EXPECT_EQ(parsed->at("request").at("object").at("metadata").at("labels").at("managedFields"),
            "kept");
}

// Tests that a "*" in a path prunes the member in every element of the array, on both paths (a
// float sends the second text to nlohmann), and nothing else: not the elements themselves, not
// elements that are no objects, not the member of an object that stands where the array should,
// not a member of an object whose key is "*".
TEST(ParseJsonTest, PrunesTheMemberOfEveryElementOfAList) {
  const std::string fast =
      R"({"request":{"object":{"spec":{"containers":[{"name":"a","env":[1],"ports":[]},)"
      R"({"name":"b","volumeMounts":{"x":1},"env":{}},7,{"name":"c"}],)"
      R"("initContainers":{"*":{"image":"kept"},"image":"kept"},)"
      R"("volumes":[{"name":"v","configMap":{"name":"cm"},"secret":{"secretName":"s"}}],)"
      R"("affinity":{"nodeAffinity":{}},"hostNetwork":false}}}})";
  std::string slow = fast;
  slow.replace(slow.find(R"("ports":[])"), 10, R"("ports":[],"ratio":0.5)");
  for (const std::string& text : {fast, slow}) {
    SCOPED_TRACE(text);
    Result<json> parsed = parseJson(text, kPrunedInLists);
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_TRUE(sameTree(*parsed, erased(text, kPrunedInLists))) << parsed->dump();
    const json& spec = parsed->at("request").at("object").at("spec");
    EXPECT_EQ(spec.at("containers").size(), 4u);
    json first = {{"name", "a"}, {"ports", json::array()}};
    if (text == slow) first["ratio"] = 0.5;
    EXPECT_EQ(spec.at("containers")[0], first);
    EXPECT_EQ(spec.at("containers")[1], json::parse(R"({"name":"b"})"));
    EXPECT_EQ(spec.at("containers")[2], 7);
    EXPECT_EQ(spec.at("initContainers"), json::parse(R"({"*":{"image":"kept"},"image":"kept"})"));
    EXPECT_EQ(spec.at("volumes"), json::parse(R"([{"name":"v","secret":{"secretName":"s"}}])"));
    EXPECT_FALSE(spec.contains("affinity"));
    EXPECT_EQ(spec.at("hostNetwork"), false);
  }
}

// Tests that a pruned member is still checked: broken JSON inside it is nlohmann's error, and
// what the fast path leaves to nlohmann (a float, deep nesting) inside it is pruned all the
// same.
TEST(ParseJsonTest, ChecksPrunedMembersAndPrunesOnTheSlowPath) {
  for (const std::string& broken : {std::string(R"({"request":{"oldObject":{"a":[1,}}})"),
                                    std::string(R"({"request":{"oldObject":"bad \x escape"}})"),
                                    std::string("{\"request\":{\"oldObject\":\"\xC0\xAF\"}}"),
                                    std::string(R"({"request":{"oldObject":tru}})")}) {
    Result<json> parsed = parseJson(broken, kPruned);
    ASSERT_FALSE(parsed) << broken;
    EXPECT_EQ(parsed.error().message, nlohmannParse(broken).error);
  }
  for (const std::string& slow :
       {std::string(R"({"request":{"oldObject":{"ratio":0.5},"uid":"u"}})"),
        std::string(R"({"request":{"object":{"status":1e3,"spec":{"x":2.5}}}})"),
        R"({"request":{"oldObject":)" + std::string(300, '[') + std::string(300, ']') + "}}",
        "\xEF\xBB\xBF" + std::string(R"({"request":{"oldObject":{}}})")}) {
    Result<json> parsed = parseJson(slow, kPruned);
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_TRUE(sameTree(*parsed, erased(slow, kPruned))) << slow;
  }
}

// Tests that parseAdmissionReview() leaves the unread members out of the request (status,
// managedFields, oldObject, userInfo, the spec's scheduling and security settings, what the
// containers run, their env, mounts and resources, the volumes' sources), keeps what inject()
// reads, and that the answer is the same as for the whole pod: on the minimal review, and on the
// realistic pod (init container, probes, hooks, volumes, affinity, tolerations), injected in
// each mode.
TEST(ParseJsonTest, AdmissionReviewsAnswerTheSameWithoutTheUnreadMembers) {
  json minimal = json::parse(readFixture("review_pod_create.json"));
  json realistic = minimal;
  realistic["request"]["object"] = json::parse(readFixture("pod_realistic.json"));
  const NamespaceLookup lookup = [](const std::string&) -> Result<NamespaceInfo> {
    return testing::kEnabledNamespace;
  };
  Config native = testing::testConfig();
  native.proxy.native_sidecar = true;
  for (json full : {minimal, realistic}) {
    json& pod = full["request"]["object"];
    pod["status"] = {{"phase", "Pending"}, {"qosClass", "Burstable"}};
    pod["metadata"]["managedFields"] = json::array(
        {{{"manager", "kube-controller-manager"},
          {"operation", "Update"},
          {"apiVersion", "v1"},
          {"fieldsType", "FieldsV1"},
          {"fieldsV1",
           {{"f:spec", {{"f:containers", {{"k:{\"name\":\"app\"}", json::object()}}}}}}}}});
    full["request"]["oldObject"] = pod;
    full["request"]["userInfo"] = {{"username", "system:serviceaccount:kube-system:rs"}};
    Result<AdmissionRequest> pruned = parseAdmissionReview(full.dump());
    ASSERT_TRUE(pruned) << pruned.error().describe();
    const json& object = pruned->object;
    EXPECT_FALSE(object.contains("status"));
    EXPECT_FALSE(object["metadata"].contains("managedFields"));
    json metadata = pod["metadata"];
    metadata.erase("managedFields");
    EXPECT_EQ(object["metadata"], metadata);
    for (const char* unread : {"affinity", "tolerations", "securityContext"}) {
      EXPECT_FALSE(object["spec"].contains(unread)) << unread;
    }
    for (const json& container : object["spec"]["containers"]) {
      for (const char* unread : {"image", "env", "volumeMounts", "resources", "args"}) {
        EXPECT_FALSE(container.contains(unread)) << unread;
      }
      EXPECT_TRUE(container.contains("name"));
    }
    EXPECT_EQ(object["spec"]["containers"].size(), pod["spec"]["containers"].size());

    // The same review with the whole pod as nlohmann reads it.
    AdmissionRequest whole = *pruned;
    whole.object = pod;
    for (const Config& config : {testing::testConfig(), native}) {
      Result<Admission> from_whole = admit(whole, lookup, config);
      Result<Admission> from_pruned = admit(*pruned, lookup, config);
      ASSERT_TRUE(from_whole && from_pruned);
      EXPECT_EQ(from_pruned->body, from_whole->body);
      EXPECT_EQ(from_pruned->warnings, from_whole->warnings);
      EXPECT_EQ(from_pruned->result, ReviewResult::kInjected);
    }
  }
}

// Writes `value` through `writer`, members in the tree's (key) order: the way a document's own
// writer uses JsonWriter, generalised to any tree. Floats and integers past long's range, which
// the writer has no call for, go in as text.
void writeTree(JsonWriter& writer, const json& value) {
  switch (value.type()) {
    case json::value_t::object:
      writer.beginObject();
      for (const auto& [key, member] : value.items()) {
        writer.key(key);
        writeTree(writer, member);
      }
      writer.endObject();
      return;
    case json::value_t::array:
      writer.beginArray();
      for (const json& item : value) writeTree(writer, item);
      writer.endArray();
      return;
    case json::value_t::string:
      writer.string(value.get_ref<const std::string&>());
      return;
    case json::value_t::boolean:
      writer.boolean(value.get<bool>());
      return;
    case json::value_t::number_integer:
      writer.number(value.get<std::int64_t>());
      return;
    default:
      writer.raw(value.dump());
      return;
  }
}

std::string writtenText(const json& value) {
  std::string out;
  JsonWriter writer(out);
  writeTree(writer, value);
  return out;
}

// Tests that JsonWriter writes exactly what dump() writes for the fixtures' trees.
TEST(JsonWriterTest, WritesWhatDumpWritesForTheFixtures) {
  for (const std::string& name : fixtureNames()) {
    SCOPED_TRACE(name);
    const json value = json::parse(readFixture(name));
    EXPECT_EQ(writtenText(value), value.dump(-1, ' ', false, json::error_handler_t::replace));
  }
}

// Tests that every escape, non-ASCII text, invalid UTF-8 (replaced), negative and large
// integers, and empty containers in every position come out as dump() writes them.
TEST(JsonWriterTest, WritesEscapesNumbersEmptiesAndInvalidUtf8AsDumpDoes) {
  std::string controls;
  for (int c = 0; c < 0x20; ++c) controls += static_cast<char>(c);
  const json value = {
      {"controls", controls},
      {"quotes", "say \"hi\" \\ back/slash \x7F"},
      {"utf8", "caf\xC3\xA9 \xF0\x9F\x98\x80"},
      {"invalid", "bad \xFF byte \xC3 cut"},
      {"numbers", {0, -1, 42, std::int64_t{-9223372036854775807 - 1}, 1.5}},
      {"empty",
       {{"object", json::object()},
        {"array", json::array()},
        {"string", ""},
        {"nested", json::array({json::array(), json::object(), json::array({json::object()})})}}},
      {"literals", {true, false, nullptr}},
      {"k\"ey\n", "v"},
  };
  EXPECT_EQ(writtenText(value), value.dump(-1, ' ', false, json::error_handler_t::replace));
}

// Tests that escapeJson() gives what string() writes, so that its text can be written again with
// raw() among other values.
TEST(JsonWriterTest, WritesEscapedTextAgainWithRaw) {
  const std::string text = "line \"one\"\nline two \xC3\xA9";
  EXPECT_EQ(escapeJson(text), json(text).dump());
  std::string out;
  JsonWriter writer(out);
  writer.beginArray().raw(escapeJson(text)).string("x").raw(escapeJson(text)).endArray();
  EXPECT_EQ(out, json::array({text, "x", text}).dump());
}

// Tests the RFC 4648 test vectors, bytes above 0x7f, and that the text is appended.
TEST(AppendBase64Test, EncodesTheRfcVectorsAndAppends) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    std::string out;
    appendBase64(out, plain);
    EXPECT_EQ(out, encoded) << plain;
  }
  std::string out = "x:";
  appendBase64(out, std::string_view("\xFF\xFE\x00\x80", 4));
  EXPECT_EQ(out, "x://4AgA==");
}

}  // namespace
}  // namespace picket::webhook::internal
