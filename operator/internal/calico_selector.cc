#include "operator/internal/calico_selector.h"

#include <algorithm>
#include <cstddef>
#include <string>

#include "operator/internal/syntax.h"

namespace picket::op::internal {
namespace {

// Calico's tokenizer accepts label names of at most this many characters.
constexpr size_t kMaxLabelLength = 512;
// A bound on parenthesis nesting so that hostile input cannot exhaust the stack; Calico has none,
// but no selector a person or Picket writes comes near it.
constexpr int kMaxDepth = 64;

bool isLabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '/' || c == '-';
}

// A recursive-descent parser over the characters. Calico tokenizes first and then parses, but
// its tokenizer is context-sensitive (an operator word is only recognised right after a label),
// so reading characters with the grammar at hand accepts the same language with less machinery.
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<CalicoSelectorReport> run() {
    skipBlanks();
    if (pos_ == text_.size()) {
      note("empty selector");
      return report_;
    }
    if (auto status = parseOr(0); !status) return tl::unexpected(status.error());
    skipBlanks();
    if (pos_ != text_.size()) return fail("'&&', '||' or the end of the selector");
    return report_;
  }

 private:
  void skipBlanks() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }

  // Consumes `token` if the remaining text (after blanks) starts with it. Like Calico, operator
  // words are matched as prefixes: `a in{'x'}` is a valid selector.
  bool consume(std::string_view token) {
    skipBlanks();
    if (text_.substr(pos_).starts_with(token)) {
      pos_ += token.size();
      return true;
    }
    return false;
  }

  void note(std::string_view construct) {
    if (std::find(report_.unoptimised.begin(), report_.unoptimised.end(), construct) ==
        report_.unoptimised.end()) {
      report_.unoptimised.emplace_back(construct);
    }
  }

  tl::unexpected<Error> fail(std::string_view expected) const {
    std::string found = pos_ < text_.size() ? quote(text_.substr(pos_, 12)) : "the end";
    return makeError(ErrorCode::kParse, "selector \"" + std::string(text_) +
                                            "\" does not parse at offset " + std::to_string(pos_) +
                                            ": expected " + std::string(expected) + ", found " +
                                            found);
  }

  Status parseOr(int depth) {
    if (auto status = parseAnd(depth); !status) return status;
    while (consume("||")) {
      note("||");
      if (auto status = parseAnd(depth); !status) return status;
    }
    return ok();
  }

  Status parseAnd(int depth) {
    if (auto status = parseOperation(depth); !status) return status;
    while (consume("&&")) {
      if (auto status = parseOperation(depth); !status) return status;
    }
    return ok();
  }

  Status parseOperation(int depth) {
    skipBlanks();
    // Calico folds any run of '!' into one negation; '!=' only exists after a label.
    while (pos_ < text_.size() && text_[pos_] == '!') {
      note("!");
      ++pos_;
      skipBlanks();
    }
    if (consume("has(")) {
      if (auto status = parseLabel(); !status) return status;
      if (!consume(")")) return fail("')' to close has(");
      return ok();
    }
    if (consume("all(")) {
      if (!consume(")")) return fail("')' after all(");
      note("all()");
      return ok();
    }
    if (consume("global(")) {
      if (!consume(")")) return fail("')' after global(");
      note("global()");
      return ok();
    }
    if (consume("(")) {
      if (depth >= kMaxDepth) return fail("at most 64 nested parentheses");
      if (auto status = parseOr(depth + 1); !status) return status;
      if (!consume(")")) return fail("')'");
      return ok();
    }
    if (auto status = parseLabel(); !status) return status;
    return parseComparison();
  }

  // What may follow a label: a comparison with a string or a set.
  Status parseComparison() {
    if (consume("==")) return parseString();
    if (consume("!=")) {
      note("!=");
      return parseString();
    }
    if (consume("contains")) {
      note("contains");
      return parseString();
    }
    if (consume("starts")) {
      if (!consume("with")) return fail("'with' after 'starts'");
      note("starts with");
      return parseString();
    }
    if (consume("ends")) {
      if (!consume("with")) return fail("'with' after 'ends'");
      note("ends with");
      return parseString();
    }
    if (consume("not")) {
      if (!consume("in")) return fail("'in' after 'not'");
      note("not in");
      return parseSet();
    }
    if (consume("in")) return parseSet();
    return fail("an operator (==, !=, in, not in, contains, starts with, ends with) after a label");
  }

  Status parseLabel() {
    skipBlanks();
    size_t start = pos_;
    while (pos_ < text_.size() && isLabelChar(text_[pos_])) ++pos_;
    if (pos_ == start) return fail("a label name");
    if (pos_ - start > kMaxLabelLength) {
      pos_ = start;
      return fail("a label name of at most 512 characters");
    }
    return ok();
  }

  Status parseString() {
    skipBlanks();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
      return fail("a quoted string");
    }
    char quote = text_[pos_];
    size_t close = text_.find(quote, pos_ + 1);
    if (close == std::string_view::npos) return fail("a closing quote");
    pos_ = close + 1;
    return ok();
  }

  // `{ 'a', "b" }`; Calico accepts an empty set and a trailing comma, and so do we.
  Status parseSet() {
    if (!consume("{")) return fail("'{' to open a set");
    while (true) {
      skipBlanks();
      if (pos_ < text_.size() && (text_[pos_] == '\'' || text_[pos_] == '"')) {
        if (auto status = parseString(); !status) return status;
        if (consume(",")) continue;
      }
      break;
    }
    if (!consume("}")) return fail("'}' to close a set");
    return ok();
  }

  std::string_view text_;
  size_t pos_ = 0;
  CalicoSelectorReport report_;
};

}  // namespace

Result<CalicoSelectorReport> checkCalicoSelector(std::string_view selector) {
  return Parser(selector).run();
}

}  // namespace picket::op::internal
