#include "engine/whisper/keyterms.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "core/errors.h"
#include "core/text.h"

namespace sra::whisper {
namespace {

// The term as given and with its first letter capitalised (ASCII letters only: other scripts
// are kept as written), each once.
std::vector<std::string> spellings(const std::string& term) {
  std::vector<std::string> out{term};
  if (!term.empty() && std::islower(static_cast<unsigned char>(term[0]))) {
    std::string upper = term;
    upper[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[0])));
    out.push_back(upper);
  }
  return out;
}

// Characters after which the model writes a word without a leading space.
constexpr std::string_view kWordOpeners = "\"'([-/";

}  // namespace

KeytermBias::KeytermBias(const Tokenizer& tokenizer, const std::vector<std::string>& terms,
                         float boost)
    : tokenizer_(tokenizer), nodes_(2), boost_(boost) {
  for (const std::string& raw : terms) {
    const std::string term = strip(raw);
    if (term.empty()) continue;
    for (const std::string& form : spellings(term)) {
      for (int root : {kSpacedRoot, kBareRoot}) {
        std::vector<int> tokens = tokenizer.encode(root == kSpacedRoot ? " " + form : form);
        if (tokens.size() > kMaxTermTokens) {
          throw invalid_field("keyterms", "'" + std::string(utf8_prefix(term, 40)) + "' is " +
                                              std::to_string(tokens.size()) +
                                              " tokens long; a term may have at most " +
                                              std::to_string(kMaxTermTokens));
        }
        insert(root, tokens);
      }
    }
  }
}

void KeytermBias::insert(int root, const std::vector<int>& tokens) {
  if (tokens.empty()) return;
  int node = root;
  for (int token : tokens) {
    int next = child(node, token);
    if (next < 0) {
      next = static_cast<int>(nodes_.size());
      nodes_.emplace_back();
      auto& children = nodes_[static_cast<std::size_t>(node)].children;
      children.insert(std::lower_bound(children.begin(), children.end(), std::pair(token, -1)),
                      {token, next});
    }
    node = next;
  }
  nodes_[static_cast<std::size_t>(node)].terminal = true;
}

int KeytermBias::child(int node, int token) const {
  const auto& children = nodes_[static_cast<std::size_t>(node)].children;
  auto it = std::lower_bound(children.begin(), children.end(), std::pair(token, -1));
  return it != children.end() && it->first == token ? it->second : -1;
}

bool KeytermBias::bare_start_allowed(int previous) const {
  if (previous < 0 || previous >= tokenizer_.special().eot) return true;
  const std::string bytes = tokenizer_.decode_bytes({previous});
  return !bytes.empty() && kWordOpeners.find(bytes.back()) != std::string_view::npos;
}

int KeytermBias::next_node(const KeytermState& state, int previous, int token) const {
  if (state.node >= 0) {
    if (int next = child(state.node, token); next >= 0) return next;
  }
  if (int next = child(kSpacedRoot, token); next >= 0) return next;
  if (bare_start_allowed(previous)) return child(kBareRoot, token);
  return -1;
}

void KeytermBias::apply(const KeytermState& state, int previous, float* logits) const {
  const float open = state.earned - state.banked;  // what leaving the match would give back
  const bool bare = bare_start_allowed(previous);
  auto starts_term = [&](int token) {
    return child(kSpacedRoot, token) >= 0 || (bare && child(kBareRoot, token) >= 0);
  };
  for (const auto& [token, node] : nodes_[kSpacedRoot].children) logits[token] += boost_;
  if (bare) {
    for (const auto& [token, node] : nodes_[kBareRoot].children) {
      if (child(kSpacedRoot, token) < 0) logits[token] += boost_;
    }
  }
  if (state.node < 0) return;
  for (const auto& [token, node] : nodes_[static_cast<std::size_t>(state.node)].children) {
    // A continuation that is also a term's start already has `boost_`.
    logits[token] += (starts_term(token) ? 0.0f : boost_) + open;
  }
}

KeytermState KeytermBias::advance(const KeytermState& state, int previous, int token) const {
  const bool continues = state.node >= 0 && child(state.node, token) >= 0;
  const int next = next_node(state, previous, token);
  if (next < 0) return {};
  KeytermState out;
  out.node = next;
  out.earned = (continues ? state.earned : 0.0f) + boost_;
  out.banked = continues ? state.banked : 0.0f;
  if (nodes_[static_cast<std::size_t>(next)].terminal) out.banked = out.earned;
  return out;
}

float KeytermBias::take_back(const KeytermState& state, int token) const {
  if (state.node < 0 || child(state.node, token) >= 0) return 0;
  return -(state.earned - state.banked);
}

}  // namespace sra::whisper
