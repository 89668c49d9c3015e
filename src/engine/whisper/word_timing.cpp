#include "engine/whisper/word_timing.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "core/errors.h"
#include "core/text.h"
#include "engine/whisper/decoder.h"
#include "engine/whisper/kernels.h"
#include "engine/whisper/mel.h"
#include "engine/whisper/thread_budget.h"

namespace sra::whisper {
namespace {

constexpr double kTokensPerSecond = 50;  // 16000 / (160 * 2): encoder positions per second
constexpr int kMedianFilterWidth = 7;

using Heads = std::vector<std::pair<int, int>>;

struct KnownHeads {
  int n_text_layer;
  int n_text_state;
  int n_mels;
  bool multilingual;
  Heads heads;
};

// OpenAI's _ALIGNMENT_HEADS, decoded (the same pairs whisper.cpp lists).
const std::vector<KnownHeads>& known_heads() {
  static const std::vector<KnownHeads> table = {
      {4, 384, 80, false, {{1, 0}, {2, 0}, {2, 5}, {3, 0}, {3, 1}, {3, 2}, {3, 3}, {3, 4}}},
      {4, 384, 80, true, {{2, 2}, {3, 0}, {3, 2}, {3, 3}, {3, 4}, {3, 5}}},
      {6, 512, 80, false, {{3, 3}, {4, 7}, {5, 1}, {5, 5}, {5, 7}}},
      {6, 512, 80, true, {{3, 1}, {4, 2}, {4, 3}, {4, 7}, {5, 1}, {5, 2}, {5, 4}, {5, 6}}},
      {12,
       768,
       80,
       false,
       {{6, 6},
        {7, 0},
        {7, 3},
        {7, 8},
        {8, 2},
        {8, 5},
        {8, 7},
        {9, 0},
        {9, 4},
        {9, 8},
        {9, 10},
        {10, 0},
        {10, 1},
        {10, 2},
        {10, 3},
        {10, 6},
        {10, 11},
        {11, 2},
        {11, 4}}},
      {12,
       768,
       80,
       true,
       {{5, 3}, {5, 9}, {8, 0}, {8, 4}, {8, 7}, {8, 8}, {9, 0}, {9, 7}, {9, 9}, {10, 5}}},
      {24,
       1024,
       80,
       false,
       {{11, 4},
        {14, 1},
        {14, 12},
        {14, 14},
        {15, 4},
        {16, 0},
        {16, 4},
        {16, 9},
        {17, 12},
        {17, 14},
        {18, 7},
        {18, 10},
        {18, 15},
        {20, 0},
        {20, 3},
        {20, 9},
        {20, 14},
        {21, 12}}},
      {24, 1024, 80, true, {{13, 15}, {15, 4}, {15, 15}, {16, 1}, {20, 0}, {23, 4}}},
      {32,
       1280,
       128,
       true,
       {{7, 0},
        {10, 17},
        {12, 18},
        {13, 12},
        {16, 1},
        {17, 14},
        {19, 11},
        {21, 4},
        {24, 1},
        {25, 6}}},
      // large-v3-turbo: large-v3's encoder with 4 decoder layers.
      {4, 1280, 128, true, {{2, 4}, {2, 11}, {3, 3}, {3, 6}, {3, 11}, {3, 14}}},
      // large-v2. large-v1 has the same dimensions and other heads (OpenAI's table:
      // (9,19) (11,2) (11,4) (11,17) (22,7) (22,11) (22,17) (23,2) (23,15)); a ggml file does not
      // say which it is, and v2 is the one in use.
      {32, 1280, 80, true, {{10, 12}, {13, 17}, {16, 11}, {16, 12}, {16, 13}, {17, 15},
                            {17, 16}, {18, 4},  {18, 11}, {18, 19}, {19, 11}, {21, 2},
                            {21, 3},  {22, 3},  {22, 9},  {22, 12}, {23, 5},  {23, 7},
                            {23, 13}, {25, 5},  {26, 1},  {26, 12}, {27, 15}}},
  };
  return table;
}

// Python's `needle in haystack` for str: a substring test (the empty string is in every string).
bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

constexpr std::string_view kPunctuation =
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";  // string.punctuation

// Tokenizer.split_tokens_on_unicode.
void split_on_unicode(const Tokenizer& tokenizer, const std::vector<int>& tokens,
                      std::vector<std::string>& words, std::vector<std::vector<int>>& word_tokens) {
  constexpr char32_t kReplacement = 0xFFFD;
  const std::vector<char32_t> full = utf8_code_points(tokenizer.decode(tokens));
  std::vector<int> current;
  std::size_t offset = 0;
  for (int token : tokens) {
    current.push_back(token);
    std::string decoded = tokenizer.decode(current);
    std::vector<char32_t> cps = utf8_code_points(decoded);
    auto bad =
        static_cast<std::size_t>(std::find(cps.begin(), cps.end(), kReplacement) - cps.begin());
    // A replacement character is a split point only where the whole text has one too (the
    // token really is an invalid sequence, not half of a character continued by the next).
    bool complete =
        bad == cps.size() || (offset + bad < full.size() && full[offset + bad] == kReplacement);
    if (complete) {
      words.push_back(std::move(decoded));
      word_tokens.push_back(std::move(current));
      current.clear();
      offset += cps.size();
    }
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

std::vector<std::pair<int, int>> alignment_heads(const HParams& h, bool multilingual) {
  for (const auto& k : known_heads()) {
    if (k.n_text_layer == h.n_text_layer && k.n_text_state == h.n_text_state &&
        k.n_mels == h.n_mels && k.multilingual == multilingual) {
      return k.heads;
    }
  }
  Heads all;
  for (int layer = h.n_text_layer / 2; layer < h.n_text_layer; ++layer)
    for (int head = 0; head < h.n_text_head; ++head) all.emplace_back(layer, head);
  return all;
}

std::vector<float> median_filter(const std::vector<float>& x, int rows, int cols, int width) {
  const int pad = width / 2;
  if (cols <= pad) return x;
  std::vector<float> out(x.size()), window(static_cast<std::size_t>(width));
  for (int r = 0; r < rows; ++r) {
    const float* row = x.data() + static_cast<std::size_t>(r) * cols;
    for (int c = 0; c < cols; ++c) {
      for (int k = 0; k < width; ++k) {
        int at = c + k - pad;  // reflect: -1 -> 1, cols -> cols - 2
        if (at < 0) at = -at;
        if (at >= cols) at = 2 * (cols - 1) - at;
        window[static_cast<std::size_t>(k)] = row[at];
      }
      std::nth_element(window.begin(), window.begin() + pad, window.end());
      out[static_cast<std::size_t>(r) * cols + c] = window[static_cast<std::size_t>(pad)];
    }
  }
  return out;
}

std::pair<std::vector<int>, std::vector<int>> dtw(const std::vector<double>& x, int n, int m) {
  const std::size_t w = static_cast<std::size_t>(m) + 1;
  std::vector<float> cost((static_cast<std::size_t>(n) + 1) * w,
                          std::numeric_limits<float>::infinity());
  std::vector<signed char> trace(cost.size(), -1);
  cost[0] = 0;
  for (int j = 1; j <= m; ++j) {
    for (int i = 1; i <= n; ++i) {
      float c0 = cost[(i - 1) * w + j - 1], c1 = cost[(i - 1) * w + j], c2 = cost[i * w + j - 1];
      float c;
      signed char t;
      if (c0 < c1 && c0 < c2) {
        c = c0, t = 0;
      } else if (c1 < c0 && c1 < c2) {
        c = c1, t = 1;
      } else {
        c = c2, t = 2;
      }
      cost[i * w + j] = static_cast<float>(x[(i - 1) * static_cast<std::size_t>(m) + j - 1] + c);
      trace[i * w + j] = t;
    }
  }
  for (std::size_t j = 0; j < w; ++j) trace[j] = 2;
  for (int i = 0; i <= n; ++i) trace[i * w] = 1;
  std::vector<int> rows, columns;
  int i = n, j = m;
  while (i > 0 || j > 0) {
    rows.push_back(i - 1);
    columns.push_back(j - 1);
    signed char t = trace[i * w + j];
    if (t == 0) {
      --i, --j;
    } else if (t == 1) {
      --i;
    } else {
      --j;
    }
  }
  std::reverse(rows.begin(), rows.end());
  std::reverse(columns.begin(), columns.end());
  return {rows, columns};
}

void split_to_word_tokens(const Tokenizer& tokenizer, const std::vector<int>& tokens,
                          const std::string& language, std::vector<std::string>& words,
                          std::vector<std::vector<int>>& word_tokens) {
  static const char* kNoSpaces[] = {"zh", "ja", "th", "lo", "my", "yue"};
  for (const char* l : kNoSpaces) {
    if (language == l) return split_on_unicode(tokenizer, tokens, words, word_tokens);
  }
  std::vector<std::string> subwords;
  std::vector<std::vector<int>> subword_tokens;
  split_on_unicode(tokenizer, tokens, subwords, subword_tokens);
  const int eot = tokenizer.special().eot;
  for (std::size_t i = 0; i < subwords.size(); ++i) {
    bool special = subword_tokens[i][0] >= eot;
    bool with_space = std::string_view(subwords[i]).starts_with(" ");
    bool punctuation = contains(kPunctuation, strip(subwords[i]));
    if (special || with_space || punctuation || words.empty()) {
      words.push_back(subwords[i]);
      word_tokens.push_back(subword_tokens[i]);
    } else {
      words.back() += subwords[i];
      word_tokens.back().insert(word_tokens.back().end(), subword_tokens[i].begin(),
                                subword_tokens[i].end());
    }
  }
}

void merge_punctuations(std::vector<WordTiming>& alignment, std::string_view prepended,
                        std::string_view appended) {
  if (alignment.size() >= 2) {
    std::size_t j = alignment.size() - 1;
    for (std::size_t i = alignment.size() - 1; i-- > 0;) {
      WordTiming& previous = alignment[i];
      WordTiming& following = alignment[j];
      if (std::string_view(previous.word).starts_with(" ") &&
          contains(prepended, strip(previous.word))) {
        following.word = previous.word + following.word;
        following.tokens.insert(following.tokens.begin(), previous.tokens.begin(),
                                previous.tokens.end());
        previous.word.clear();
        previous.tokens.clear();
      } else {
        j = i;
      }
    }
  }
  std::size_t i = 0;
  for (std::size_t j = 1; j < alignment.size(); ++j) {
    WordTiming& previous = alignment[i];
    WordTiming& following = alignment[j];
    if (!std::string_view(previous.word).ends_with(" ") && contains(appended, following.word)) {
      previous.word += following.word;
      previous.tokens.insert(previous.tokens.end(), following.tokens.begin(),
                             following.tokens.end());
      following.word.clear();
      following.tokens.clear();
    } else {
      i = j;
    }
  }
}

double python_round(double x, int digits) {
  if (!std::isfinite(x)) return x;
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, x);  // exact value, ties to even
  return std::strtod(text, nullptr);
}

void add_word_timestamps(std::vector<TranscribeSegment>& segments,
                         std::vector<WordTiming> alignment, int eot,
                         std::string_view prepend_punctuations,
                         std::string_view append_punctuations, double last_speech_timestamp) {
  if (segments.empty()) return;
  std::vector<double> durations;
  for (const auto& t : alignment) {
    if (t.end - t.start != 0) durations.push_back(t.end - t.start);
  }
  const double median_duration = std::min(0.7, durations.empty() ? 0.0 : median(durations));
  const double max_duration = median_duration * 2;

  // Words at sentence boundaries are no longer than twice the median word duration.
  if (!durations.empty()) {
    constexpr std::string_view kSentenceEnd = ".\u3002!\uff01?\uff1f";
    for (std::size_t i = 1; i < alignment.size(); ++i) {
      if (alignment[i].end - alignment[i].start > max_duration) {
        if (contains(kSentenceEnd, alignment[i].word)) {
          alignment[i].end = alignment[i].start + max_duration;
        } else if (contains(kSentenceEnd, alignment[i - 1].word)) {
          alignment[i].start = alignment[i].end - max_duration;
        }
      }
    }
  }
  merge_punctuations(alignment, prepend_punctuations, append_punctuations);

  const double time_offset = static_cast<double>(segments[0].seek) * kHopLength / 16000.0;
  std::size_t word_index = 0;
  for (auto& segment : segments) {
    std::size_t text_tokens = 0;
    for (int t : segment.tokens) text_tokens += t < eot ? 1 : 0;
    std::size_t saved_tokens = 0;
    std::vector<TimedWord> words;
    while (word_index < alignment.size() && saved_tokens < text_tokens) {
      const WordTiming& timing = alignment[word_index];
      if (!timing.word.empty()) {
        words.push_back({timing.word, python_round(time_offset + timing.start, 2),
                         python_round(time_offset + timing.end, 2), timing.probability});
      }
      saved_tokens += timing.tokens.size();
      ++word_index;
    }
    if (!words.empty()) {
      // The first and second word after a pause are no longer than twice the median duration.
      if (words[0].end - last_speech_timestamp > median_duration * 4 &&
          (words[0].end - words[0].start > max_duration ||
           (words.size() > 1 && words[1].end - words[0].start > max_duration * 2))) {
        if (words.size() > 1 && words[1].end - words[1].start > max_duration) {
          double boundary = std::max(words[1].end / 2, words[1].end - max_duration);
          words[0].end = words[1].start = boundary;
        }
        words[0].start = std::max(0.0, words[0].end - max_duration);
      }
      // The segment's own start is preferred when the first word is too long.
      if (segment.start < words[0].end && segment.start - 0.5 > words[0].start) {
        words[0].start = std::max(0.0, std::min(words[0].end - median_duration, segment.start));
      } else {
        segment.start = words[0].start;
      }
      // The segment's own end is preferred when the last word is too long.
      if (segment.end > words.back().start && segment.end + 0.5 < words.back().end) {
        words.back().end = std::max(words.back().start + median_duration, segment.end);
      } else {
        segment.end = words.back().end;
      }
      last_speech_timestamp = segment.end;
    }
    segment.words = std::move(words);
  }
}

std::vector<WordTiming> WhisperEngine::find_alignment(const CrossCache& cross,
                                                      const std::vector<int>& text_tokens,
                                                      int num_frames, const std::string& language,
                                                      const std::string& task) const {
  ThreadBudget::Scope threads(threads_);
  if (text_tokens.empty()) return {};
  const SpecialTokens& sp = tokenizer_.special();
  std::vector<int> tokens{sp.sot};
  if (tokenizer_.multilingual()) {
    int lang = tokenizer_.language_token(language);
    if (lang < 0) throw invalid_request("unsupported language '" + language + "'");
    tokens.push_back(lang);
    tokens.push_back(task == "translate" ? sp.translate : sp.transcribe);
  }
  const int sot_length = static_cast<int>(tokens.size());
  tokens.push_back(sp.no_timestamps);
  tokens.insert(tokens.end(), text_tokens.begin(), text_tokens.end());
  tokens.push_back(sp.eot);
  // A window's text is at most half the context, so this holds for what transcribe() decodes.
  if (static_cast<int>(tokens.size()) > decoder_.n_ctx()) return {};

  CrossAttentionTap tap;
  tap.heads = alignment_heads_;
  SelfCache cache;
  std::vector<SelfCache*> caches{&cache};
  std::vector<float> hidden = decoder_.forward({tokens}, caches, cross, &tap);

  // Probability of each text token where it was predicted, over the text vocabulary.
  const int n_text = static_cast<int>(text_tokens.size());
  const int d = decoder_.width();
  std::vector<float> logits =
      decoder_.logits(hidden.data() + static_cast<std::size_t>(sot_length) * d, n_text);
  softmax_rows(logits.data(), n_text, sp.eot, decoder_.n_vocab());
  std::vector<double> token_probs(static_cast<std::size_t>(n_text));
  for (int i = 0; i < n_text; ++i) {
    const float* row = logits.data() + static_cast<std::size_t>(i) * decoder_.n_vocab();
    int token = text_tokens[static_cast<std::size_t>(i)];
    token_probs[static_cast<std::size_t>(i)] = token < sp.eot ? row[token] : 0.0;
  }

  // heads x tokens x frames: softmax over the audio frames, normalised across tokens per frame,
  // median-filtered along time, then averaged over the heads.
  const int n_tokens = static_cast<int>(tokens.size());
  const int frames = std::clamp(num_frames / 2, 1, cross.n_audio_ctx);
  std::vector<double> matrix(static_cast<std::size_t>(n_tokens) * frames, 0.0);
  for (const auto& scores : tap.scores) {
    std::vector<float> w(static_cast<std::size_t>(n_tokens) * frames);
    for (int r = 0; r < n_tokens; ++r) {
      std::copy_n(scores.data() + static_cast<std::size_t>(r) * cross.n_audio_ctx, frames,
                  w.data() + static_cast<std::size_t>(r) * frames);
    }
    softmax_rows(w.data(), n_tokens, frames, frames);
    for (int c = 0; c < frames; ++c) {
      double sum = 0, squares = 0;
      for (int r = 0; r < n_tokens; ++r) sum += w[static_cast<std::size_t>(r) * frames + c];
      const double mean = sum / n_tokens;
      for (int r = 0; r < n_tokens; ++r) {
        double dev = w[static_cast<std::size_t>(r) * frames + c] - mean;
        squares += dev * dev;
      }
      const auto stddev = static_cast<float>(std::sqrt(squares / n_tokens));
      for (int r = 0; r < n_tokens; ++r) {
        float& v = w[static_cast<std::size_t>(r) * frames + c];
        v = (v - static_cast<float>(mean)) / stddev;
      }
    }
    w = median_filter(w, n_tokens, frames, kMedianFilterWidth);
    for (std::size_t k = 0; k < w.size(); ++k) matrix[k] += w[k];
  }
  const double heads = static_cast<double>(tap.scores.size());
  // Rows from <|notimestamps|> to the last text token, negated: the DTW's costs.
  const int n_rows = n_tokens - sot_length - 1;
  std::vector<double> costs(static_cast<std::size_t>(n_rows) * frames);
  for (int r = 0; r < n_rows; ++r) {
    for (int c = 0; c < frames; ++c) {
      costs[static_cast<std::size_t>(r) * frames + c] = -static_cast<double>(static_cast<float>(
          matrix[static_cast<std::size_t>(r + sot_length) * frames + c] / heads));
    }
  }
  auto [text_indices, time_indices] = dtw(costs, n_rows, frames);

  std::vector<std::string> words;
  std::vector<std::vector<int>> word_tokens;
  std::vector<int> with_eot = text_tokens;
  with_eot.push_back(sp.eot);
  split_to_word_tokens(tokenizer_, with_eot, language, words, word_tokens);
  if (word_tokens.size() <= 1) return {};
  std::vector<std::size_t> boundaries{0};
  for (std::size_t i = 0; i + 1 < word_tokens.size(); ++i)
    boundaries.push_back(boundaries.back() + word_tokens[i].size());

  std::vector<double> jump_times;
  for (std::size_t k = 0; k < text_indices.size(); ++k) {
    if (k == 0 || text_indices[k] != text_indices[k - 1])
      jump_times.push_back(time_indices[k] / kTokensPerSecond);
  }
  std::vector<WordTiming> out;
  for (std::size_t i = 0; i + 1 < boundaries.size(); ++i) {
    std::size_t from = boundaries[i], to = boundaries[i + 1];
    if (to >= jump_times.size()) break;  // cannot happen: the path visits every row
    double probability = 0;
    for (std::size_t k = from; k < to && k < token_probs.size(); ++k) probability += token_probs[k];
    WordTiming t;
    t.word = words[i];
    t.tokens = word_tokens[i];
    t.start = jump_times[from];
    t.end = jump_times[to];
    t.probability = to > from ? probability / static_cast<double>(to - from) : 0.0;
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace sra::whisper
