#include "engine/whisper/tokenizer.h"

#include <locale.h>
#include <wctype.h>

#include <algorithm>
#include <climits>
#include <queue>
#include <set>

#include "core/errors.h"

namespace sra::whisper {
namespace {

// Decodes one code point starting at s[i]; returns its length, or 0 if invalid there.
// Follows the Unicode "maximal subpart" rule that Python's decoder uses.
std::size_t utf8_sequence(std::string_view s, std::size_t i, std::size_t& invalid_len,
                          char32_t& cp) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  invalid_len = 1;
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  int need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    cp = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    cp = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= s.size()) {
      invalid_len = static_cast<std::size_t>(k);
      return 0;
    }
    unsigned char cc = b(i + k);
    unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (cc < l || cc > h) {
      invalid_len = static_cast<std::size_t>(k);
      return 0;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  return static_cast<std::size_t>(need + 1);
}

std::vector<char32_t> code_points(std::string_view s, std::vector<std::size_t>& offsets) {
  std::vector<char32_t> out;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t bad = 1;
    char32_t cp = 0;
    std::size_t n = utf8_sequence(s, i, bad, cp);
    offsets.push_back(i);
    if (n == 0) {
      out.push_back(0xFFFD);
      i += bad;
    } else {
      out.push_back(cp);
      i += n;
    }
  }
  offsets.push_back(s.size());
  return out;
}

locale_t unicode_locale() {
  static locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  return loc;
}

bool is_letter(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  locale_t loc = unicode_locale();
  return loc ? iswalpha_l(static_cast<wint_t>(c), loc) && !iswdigit_l(static_cast<wint_t>(c), loc)
             : true;
}
bool is_number(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  locale_t loc = unicode_locale();
  // glibc counts letters and numbers together in iswalnum; digits of other scripts are alpha
  // there, so a code point that is alnum but classified as neither is taken as a number.
  return loc && iswdigit_l(static_cast<wint_t>(c), loc);
}
bool is_space(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= '\t' && c <= '\r');
  locale_t loc = unicode_locale();
  return loc && iswspace_l(static_cast<wint_t>(c), loc);
}

// GPT-2's pattern: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::vector<std::string_view> pretokenize(std::string_view text) {
  std::vector<std::size_t> off;
  std::vector<char32_t> cps = code_points(text, off);
  std::vector<std::string_view> pieces;
  std::size_t n = cps.size(), i = 0;
  auto emit = [&](std::size_t a, std::size_t b) {
    pieces.push_back(text.substr(off[a], off[b] - off[a]));
  };
  auto other = [&](char32_t c) { return !is_space(c) && !is_letter(c) && !is_number(c); };
  while (i < n) {
    if (cps[i] == '\'') {
      static const char* const suffixes[] = {"s", "t", "re", "ve", "m", "ll", "d"};
      std::size_t matched = 0;
      for (const char* suf : suffixes) {
        std::size_t len = std::char_traits<char>::length(suf);
        bool ok = i + len < n;
        for (std::size_t k = 0; ok && k < len; ++k) {
          ok = cps[i + 1 + k] == static_cast<char32_t>(suf[k]);
        }
        if (ok) {
          matched = 1 + len;
          break;
        }
      }
      if (matched) {
        emit(i, i + matched);
        i += matched;
        continue;
      }
    }
    std::size_t start = i;
    std::size_t j = i;
    if (cps[j] == ' ' && j + 1 < n && !is_space(cps[j + 1])) ++j;
    if (is_letter(cps[j])) {
      while (j < n && is_letter(cps[j])) ++j;
      emit(start, j);
      i = j;
      continue;
    }
    if (is_number(cps[j])) {
      while (j < n && is_number(cps[j])) ++j;
      emit(start, j);
      i = j;
      continue;
    }
    if (other(cps[j])) {
      while (j < n && other(cps[j])) ++j;
      emit(start, j);
      i = j;
      continue;
    }
    // Whitespace: \s+(?!\S) leaves the last space for the next piece when text follows.
    j = start;
    while (j < n && is_space(cps[j])) ++j;
    if (j < n && j - start > 1) {
      emit(start, j - 1);
      i = j - 1;
    } else {
      emit(start, j);
      i = j;
    }
  }
  return pieces;
}

}  // namespace

std::vector<char32_t> utf8_code_points(std::string_view text) {
  std::vector<std::size_t> offsets;
  return code_points(text, offsets);
}

std::string utf8_replace_invalid(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  while (i < bytes.size()) {
    std::size_t bad = 1;
    char32_t cp = 0;
    std::size_t n = utf8_sequence(bytes, i, bad, cp);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      i += bad;
    } else {
      out.append(bytes.substr(i, n));
      i += n;
    }
  }
  return out;
}

Tokenizer::Tokenizer(const std::vector<std::string>& vocabulary, int n_vocab)
    : vocabulary_(vocabulary), n_vocab_(n_vocab), multilingual_(n_vocab >= 51865) {
  SpecialTokens& s = special_;
  s.timestamp_begin = n_vocab - 1501;
  s.no_timestamps = s.timestamp_begin - 1;
  s.no_speech = s.timestamp_begin - 2;
  s.sot_prev = s.timestamp_begin - 3;
  s.sot_lm = s.timestamp_begin - 4;
  s.transcribe = s.timestamp_begin - 5;
  s.translate = s.timestamp_begin - 6;
  s.eot = multilingual_ ? 50257 : 50256;
  s.sot = s.eot + 1;
  s.first_language = s.sot + 1;
  s.num_languages = s.translate - s.first_language;
  if (static_cast<int>(vocabulary_.size()) > s.eot)
    vocabulary_.resize(static_cast<std::size_t>(s.eot));
  for (std::size_t i = 0; i < vocabulary_.size(); ++i)
    ranks_.emplace(vocabulary_[i], static_cast<int>(i));
}

int Tokenizer::language_token(std::string_view code) const {
  const auto& codes = language_codes();
  for (int i = 0; i < special_.num_languages && i < static_cast<int>(codes.size()); ++i) {
    if (codes[static_cast<std::size_t>(i)] == code) return special_.first_language + i;
  }
  return -1;
}

std::string Tokenizer::language_code(int token) const {
  int i = token - special_.first_language;
  if (i < 0 || i >= special_.num_languages || i >= static_cast<int>(language_codes().size()))
    return {};
  return language_codes()[static_cast<std::size_t>(i)];
}

std::string Tokenizer::special_name(int token) const {
  const SpecialTokens& s = special_;
  if (token == s.eot) return "<|endoftext|>";
  if (token == s.sot) return "<|startoftranscript|>";
  if (token == s.translate) return "<|translate|>";
  if (token == s.transcribe) return "<|transcribe|>";
  if (token == s.sot_lm) return "<|startoflm|>";
  if (token == s.sot_prev) return "<|startofprev|>";
  if (token == s.no_speech) return "<|nospeech|>";
  if (token == s.no_timestamps) return "<|notimestamps|>";
  if (std::string code = language_code(token); !code.empty()) return "<|" + code + "|>";
  return {};
}

std::string Tokenizer::decode_bytes(const std::vector<int>& tokens) const {
  std::string out;
  for (int t : tokens) {
    if (t >= 0 && t < static_cast<int>(vocabulary_.size()))
      out += vocabulary_[static_cast<std::size_t>(t)];
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int>& tokens) const {
  // tiktoken joins the bytes of every token, specials as their names, then repairs UTF-8 once.
  std::string bytes;
  for (int t : tokens) {
    if (t >= special_.timestamp_begin || t < 0) continue;
    if (t < static_cast<int>(vocabulary_.size())) {
      bytes += vocabulary_[static_cast<std::size_t>(t)];
    } else {
      bytes += special_name(t);
    }
  }
  return utf8_replace_invalid(bytes);
}

std::vector<int> Tokenizer::bpe(std::string_view piece) const {
  if (auto it = ranks_.find(piece); it != ranks_.end()) return {it->second};
  // tiktoken's rule: repeatedly merge the adjacent pair of parts whose joined bytes have the
  // lowest rank, the leftmost on ties. Parts are a linked list of byte ranges and candidate pairs
  // sit in a min-heap ordered by (rank, start), entries made stale by a merge being skipped, so a
  // piece of n bytes costs O(n log n), not O(n^2): a long word cannot stall a request.
  struct Part {
    std::size_t start, end;
    int prev, next;
    unsigned version = 0;
    bool alive = true;
  };
  std::vector<Part> parts;
  parts.reserve(piece.size());
  for (std::size_t i = 0; i < piece.size(); ++i) {
    parts.push_back(
        {i, i + 1, static_cast<int>(i) - 1, i + 1 < piece.size() ? static_cast<int>(i) + 1 : -1});
  }
  auto rank_of = [&](std::size_t a, std::size_t b) {
    auto it = ranks_.find(piece.substr(a, b - a));
    return it == ranks_.end() ? INT_MAX : it->second;
  };
  struct Candidate {
    int rank;
    std::size_t start;
    int left;
    unsigned left_version, right_version;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : start > o.start;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](int left) {
    if (left < 0) return;
    const Part& l = parts[static_cast<std::size_t>(left)];
    if (l.next < 0) return;
    const Part& r = parts[static_cast<std::size_t>(l.next)];
    int rank = rank_of(l.start, r.end);
    if (rank != INT_MAX) heap.push({rank, l.start, left, l.version, r.version});
  };
  for (int i = 0; i + 1 < static_cast<int>(parts.size()); ++i) push(i);
  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    Part& l = parts[static_cast<std::size_t>(c.left)];
    if (!l.alive || l.version != c.left_version || l.next < 0) continue;
    Part& r = parts[static_cast<std::size_t>(l.next)];
    if (r.version != c.right_version) continue;
    l.end = r.end;
    l.next = r.next;
    if (r.next >= 0) parts[static_cast<std::size_t>(r.next)].prev = c.left;
    r.alive = false;
    ++l.version;
    push(l.prev);
    push(c.left);
  }
  std::vector<int> out;
  for (int i = parts.empty() ? -1 : 0; i >= 0; i = parts[static_cast<std::size_t>(i)].next) {
    int r =
        rank_of(parts[static_cast<std::size_t>(i)].start, parts[static_cast<std::size_t>(i)].end);
    if (r == INT_MAX) {
      throw invalid_request("text cannot be encoded with this model's vocabulary");
    }
    out.push_back(r);
  }
  return out;
}

std::vector<int> Tokenizer::encode(std::string_view text) const {
  std::vector<int> out;
  for (std::string_view piece : pretokenize(text)) {
    auto ids = bpe(piece);
    out.insert(out.end(), ids.begin(), ids.end());
  }
  return out;
}

std::vector<int> Tokenizer::non_speech_tokens() const {
  // whisper/tokenizer.py: Tokenizer.non_speech_tokens.
  std::vector<std::string> symbols;
  for (const char* s : {"\"", "#", "(", ")", "*", "+", "/", ":", ";", "<",  "=",  ">",  "@", "[",
                        "\\", "]", "^", "_", "`", "{", "|", "}", "~", "「", "」", "『", "』"}) {
    symbols.emplace_back(s);
  }
  for (const char* s : {"<<", ">>", "<<<", ">>>", "--", "---", "-(", "-[", "('", "(\"",
                        "((", "))", "(((", ")))", "[[", "]]",  "{{", "}}", "♪♪", "♪♪♪"}) {
    symbols.emplace_back(s);
  }
  std::set<std::string> miscellaneous = {"♩", "♪", "♫", "♬", "♭", "♮", "♯"};
  // A vocabulary without some of these bytes (only synthetic test files) just skips them.
  auto encode_or_empty = [&](const std::string& text) {
    try {
      return encode(text);
    } catch (const Error&) {
      return std::vector<int>{};
    }
  };
  std::set<int> result;
  for (const char* text : {" -", " '"}) {
    if (auto tokens = encode_or_empty(text); !tokens.empty()) result.insert(tokens[0]);
  }
  std::vector<std::string> all = symbols;
  all.insert(all.end(), miscellaneous.begin(), miscellaneous.end());
  for (const auto& symbol : all) {
    for (const auto& text : {symbol, " " + symbol}) {
      auto tokens = encode_or_empty(text);
      if (!tokens.empty() && (tokens.size() == 1 || miscellaneous.count(symbol))) {
        result.insert(tokens[0]);
      }
    }
  }
  return {result.begin(), result.end()};
}

}  // namespace sra::whisper
