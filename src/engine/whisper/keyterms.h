// KeytermBias: contextual biasing of decoding toward a list of terms (names, product words),
// the way hotword boosting works in transducer decoders, applied to Whisper's logits.
//
// Each term is tokenized in the forms the model writes it in (with a leading space, and without
// one where a word may start with no space: after a timestamp or an opening quote, bracket,
// hyphen or slash), as given and with its first letter capitalised; the token sequences form a
// trie. A decoding sequence carries a KeytermState: where it stands in the trie. At each step,
// tokens that continue the current partial match get `boost` plus the bonus the match has earned
// so far (so abandoning a partial match gives back what it earned), tokens that start a term get
// `boost`; once a term is complete its bonus is kept. take_back() is what leaving a partial match
// costs, for scores that rank hypotheses (beam search, best-of).
//
// Built once per transcription from the request's terms; immutable afterwards and safe to share
// between threads. Each decoding sequence owns its KeytermState.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "engine/whisper/tokenizer.h"

namespace sra::whisper {

// Where one decoding sequence stands among the terms.
struct KeytermState {
  int node = -1;     // trie node of the current partial match; -1: none
  float earned = 0;  // bonus credited since the match began
  float banked = 0;  // part of `earned` kept because a whole term was matched
};

class KeytermBias {
 public:
  // Limits on what a request may give (the option parser and the model check them).
  static constexpr std::size_t kMaxTerms = 100;      // terms in a list
  static constexpr std::size_t kMaxTermBytes = 64;   // bytes of one term
  static constexpr std::size_t kMaxTermTokens = 16;  // tokens of one term's form

  // The terms' forms in `tokenizer`'s tokens (`tokenizer` must outlive this). Throws
  // sra::Error(invalid_request, field "keyterms") for a term longer than kMaxTermTokens tokens.
  KeytermBias(const Tokenizer& tokenizer, const std::vector<std::string>& terms, float boost);

  bool empty() const { return nodes_.size() <= 2; }
  float boost() const { return boost_; }

  // Adds the bonuses of the next token to `logits` (n_vocab of them) for a sequence in `state`
  // whose last token is `previous` (-1: none yet). Only the relative bonus matters to softmax,
  // so a partial match's give-back is added to its continuations rather than taken from all
  // other tokens.
  void apply(const KeytermState& state, int previous, float* logits) const;
  // The state after `token`.
  KeytermState advance(const KeytermState& state, int previous, int token) const;
  // What choosing `token` gives back of the state's earned bonus (0 or negative): the ranking
  // score of a hypothesis pays back an abandoned partial match.
  float take_back(const KeytermState& state, int token) const;

 private:
  struct Node {
    std::vector<std::pair<int, int>> children;  // (token, node), sorted by token
    bool terminal = false;                      // a whole term ends here
  };
  static constexpr int kSpacedRoot = 0;  // forms with a leading space
  static constexpr int kBareRoot = 1;    // forms without one

  void insert(int root, const std::vector<int>& tokens);
  int child(int node, int token) const;
  // Whether a word may begin without a space after `previous`.
  bool bare_start_allowed(int previous) const;
  // The node `token` leads to: continuing the match, else starting a term, else -1.
  int next_node(const KeytermState& state, int previous, int token) const;

  const Tokenizer& tokenizer_;
  std::vector<Node> nodes_;
  float boost_ = 0;
};

}  // namespace sra::whisper
