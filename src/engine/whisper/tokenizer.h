// Tokenizer: Whisper's byte-level BPE vocabulary as read from the model file, its special tokens,
// and the conversions between token ids and UTF-8 text.
//
// decode() works as OpenAI's tokenizer (tiktoken) does: token bytes are concatenated and read as
// UTF-8 with invalid sequences replaced by U+FFFD (Python's errors="replace"), special tokens are
// written as their names ("<|en|>"), timestamp tokens are dropped. encode() splits text with
// GPT-2's pre-tokenization pattern and merges bytes pairwise in rank order (a token's id is its
// rank), as tiktoken does. Immutable after construction: safe to share between threads.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/languages.h"
#include "engine/whisper/model_file.h"

namespace sra::whisper {

using sra::language_codes;
using sra::language_name;

struct SpecialTokens {
  int eot = 0;
  int sot = 0;
  int first_language = 0;  // token of language_codes()[0]
  int num_languages = 0;   // language tokens the vocabulary has (99 or 100)
  int translate = 0;
  int transcribe = 0;
  int sot_lm = 0;
  int sot_prev = 0;
  int no_speech = 0;
  int no_timestamps = 0;
  int timestamp_begin = 0;  // <|0.00|>; timestamps go up to n_vocab - 1 (<|30.00|>)
};

class Tokenizer {
 public:
  Tokenizer(const std::vector<std::string>& vocabulary, int n_vocab);

  const SpecialTokens& special() const { return special_; }
  bool multilingual() const { return multilingual_; }
  int n_vocab() const { return n_vocab_; }
  // The token of a language code, or -1 if the vocabulary has none for it.
  int language_token(std::string_view code) const;
  // The code of a language token, or empty.
  std::string language_code(int token) const;

  std::string decode(const std::vector<int>& tokens) const;
  // Raw bytes of ordinary tokens (specials and timestamps skipped), without UTF-8 repair.
  std::string decode_bytes(const std::vector<int>& tokens) const;
  std::vector<int> encode(std::string_view text) const;
  // The name of a special token ("<|endoftext|>"); empty for ordinary tokens.
  std::string special_name(int token) const;
  // OpenAI's Tokenizer.non_speech_tokens: symbols and music notes to suppress by default.
  std::vector<int> non_speech_tokens() const;

 private:
  std::vector<int> bpe(std::string_view piece) const;

  std::vector<std::string> vocabulary_;
  // Looked up by string_view, without copying the bytes (heterogeneous lookup).
  struct ViewHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, int, ViewHash, std::equal_to<>> ranks_;
  int n_vocab_;
  bool multilingual_;
  SpecialTokens special_;
};

// Python's bytes.decode("utf-8", errors="replace").
std::string utf8_replace_invalid(std::string_view bytes);
// The code points of `text` as Python's str of text.decode("utf-8", errors="replace") holds them.
std::vector<char32_t> utf8_code_points(std::string_view text);

}  // namespace sra::whisper
