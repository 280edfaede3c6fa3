#include "init/nat_state.h"

#include <algorithm>

namespace picket::init {

bool NatState::hasChain(std::string_view name) const {
  return std::find(chains.begin(), chains.end(), name) != chains.end();
}

std::vector<std::string> splitRuleSpec(std::string_view spec) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  bool in_quotes = false;
  for (size_t i = 0; i < spec.size(); ++i) {
    char c = spec[i];
    if (in_quotes) {
      // iptables-save escapes a quote inside a quoted argument as \" .
      if (c == '\\' && i + 1 < spec.size() && spec[i + 1] == '"') {
        word += '"';
        ++i;
      } else if (c == '"') {
        in_quotes = false;
      } else {
        word += c;
      }
    } else if (c == '"') {
      in_quotes = true;
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

Result<NatState> parseNatState(std::string_view save_output) {
  NatState state;
  bool in_nat = false;
  bool in_table = false;
  int line_number = 0;
  size_t start = 0;
  while (start < save_output.size()) {
    size_t end = save_output.find('\n', start);
    if (end == std::string_view::npos) end = save_output.size();
    std::string_view line = save_output.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    auto bad = [&](const char* why) {
      return makeError(ErrorCode::kParse, std::string("iptables-save output line ") +
                                              std::to_string(line_number) + " " + why + ": \"" +
                                              std::string(line) + "\"");
    };
    if (line.front() == '*') {
      if (in_table) return bad("opens a table before the previous one's COMMIT");
      in_table = true;
      in_nat = line == "*nat";
      continue;
    }
    if (!in_table) return bad("is outside any table");
    if (line == "COMMIT") {
      in_table = false;
      in_nat = false;
      continue;
    }
    if (line.front() == ':') {
      size_t space = line.find(' ');
      if (space == 1 || space == std::string_view::npos) return bad("declares no chain");
      if (in_nat) state.chains.emplace_back(line.substr(1, space - 1));
      continue;
    }
    if (line.substr(0, 3) == "-A ") {
      std::string_view rest = line.substr(3);
      size_t space = rest.find(' ');
      if (space == 0 || rest.empty()) return bad("names no chain");
      // A rule without matches or target is saved as a bare "-A CHAIN".
      std::string_view spec = space == std::string_view::npos ? "" : rest.substr(space + 1);
      if (in_nat) state.rules.push_back({std::string(rest.substr(0, space)), std::string(spec)});
      continue;
    }
    return bad("is not part of the iptables-save format");
  }
  if (in_table) {
    return makeError(ErrorCode::kParse, "iptables-save output ends without COMMIT");
  }
  return state;
}

}  // namespace picket::init
