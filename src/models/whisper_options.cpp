#include "models/whisper_options.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>

#include "core/errors.h"
#include "core/languages.h"
#include "core/text.h"

namespace sra {
namespace {

OptionSpec spec(std::string name, OptionType type, std::string default_text, std::string doc) {
  return make_option(std::move(name), type, std::move(default_text), std::move(doc));
}

OptionSpec bounded(OptionSpec s, double min, double max, bool nullable = false) {
  s.min = min;
  s.max = max;
  s.nullable = nullable;
  return s;
}

OptionSpec sized(OptionSpec s, std::size_t max_items) {
  s.max_items = max_items;
  return s;
}

std::optional<int> optional_int(const ParsedOption& v) {
  if (v.unset) return std::nullopt;
  return static_cast<int>(v.number);
}

std::optional<double> optional_number(const ParsedOption& v) {
  if (v.unset) return std::nullopt;
  return v.number;
}

// Comma-separated token ids as DecodingOptions.suppress_tokens takes them ("-1" = the defaults).
void check_token_list(const OptionSpec& spec, const std::string& text) {
  std::size_t at = 0;
  while (at <= text.size()) {
    std::size_t comma = text.find(',', at);
    std::string item =
        strip(text.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    at = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) continue;
    bool ok = item.size() <= 7;
    for (std::size_t i = 0; ok && i < item.size(); ++i) {
      ok = std::isdigit(static_cast<unsigned char>(item[i])) || (i == 0 && item[i] == '-');
    }
    if (!ok || (item[0] == '-' && item != "-1")) {
      throw invalid_field(spec.name, "expected comma-separated token ids (or -1), got '" +
                                         std::string(utf8_prefix(item, 40)) + "'");
    }
  }
}

// The language codes of a comma-separated list of codes or English names (`auto`, `none`, `null`
// or nothing: an empty list), each once, in order.
std::vector<std::string> language_list(const char* field, std::string_view text) {
  std::vector<std::string> codes;
  for (std::string item : split_list(text)) {
    for (auto& c : item) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (item == "auto" || item == "none" || item == "null") continue;
    auto code = language_code_for(item);
    if (!code) {
      throw invalid_field(field, "unknown language '" + std::string(utf8_prefix(item, 40)) + "'");
    }
    if (std::find(codes.begin(), codes.end(), *code) == codes.end()) codes.push_back(*code);
  }
  return codes;
}

// The terms of a keyterms value: a JSON array of strings, or items separated by commas or new
// lines; each stripped, empty ones dropped, each once. Bounded by KeytermBias's limits.
std::vector<std::string> keyterm_list(std::string_view text) {
  using whisper::KeytermBias;
  std::vector<std::string> items;
  const std::string trimmed = strip(text);
  if (!trimmed.empty() && trimmed.front() == '[') {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(trimmed, ec);
    if (ec || !v.is_array()) throw invalid_field("keyterms", "expected a JSON array of strings");
    for (const auto& item : v.as_array()) {
      if (!item.is_string()) throw invalid_field("keyterms", "expected a JSON array of strings");
      items.emplace_back(item.as_string());
    }
  } else {
    std::string list(text);
    std::replace(list.begin(), list.end(), '\n', ',');
    items = split_list(list);
  }
  std::vector<std::string> terms;
  for (auto& item : items) {
    std::string term = strip(item);
    if (term.empty() || std::find(terms.begin(), terms.end(), term) != terms.end()) continue;
    if (term.size() > KeytermBias::kMaxTermBytes) {
      throw invalid_field("keyterms", "'" + std::string(utf8_prefix(term, 40)) +
                                          "...' is longer than " +
                                          std::to_string(KeytermBias::kMaxTermBytes) + " bytes");
    }
    terms.push_back(std::move(term));
    if (terms.size() > KeytermBias::kMaxTerms) {
      throw invalid_field(
          "keyterms", "at most " + std::to_string(KeytermBias::kMaxTerms) + " terms may be given");
    }
  }
  return terms;
}

}  // namespace

BoundOptions<whisper::TranscribeOptions> whisper_options(int max_beam) {
  using T = OptionType;
  using O = whisper::TranscribeOptions;
  using V = const ParsedOption&;
  const double beams = max_beam;
  BoundOptions<O> t;
  auto add = [&t](OptionSpec s, std::function<void(O&, V)> set) {
    t.push_back({std::move(s), std::move(set)});
  };
  {
    OptionSpec s = sized(spec("language", T::text, "detect",
                              "language code or English name; empty or `auto` detects it; a "
                              "comma-separated list (`en,de`) detects among those only"),
                         512);
    // Checked wherever it is parsed: an async route refuses a bad one before queuing it.
    s.check = [](std::string_view value) { language_list("language", value); };
    add(s, [](O& o, V v) {
      std::vector<std::string> codes = language_list("language", v.text);
      o.decode.language.reset();
      if (codes.size() == 1) {
        o.decode.language = codes.front();
      } else if (codes.size() > 1) {
        o.decode.allowed_languages = std::move(codes);
      }
    });
  }
  {
    OptionSpec s = sized(spec("allowed_languages", T::text, "any",
                              "comma-separated language codes or names: detection picks the "
                              "most probable of these (a request's `language` still wins)"),
                         512);
    s.aliases = {"languages", "languages[]"};
    s.check = [](std::string_view value) { language_list("allowed_languages", value); };
    add(s,
        [](O& o, V v) { o.decode.allowed_languages = language_list("allowed_languages", v.text); });
  }
  {
    OptionSpec s = spec("task", T::choice, "`transcribe`", "`translate` gives English text");
    s.choices = {"transcribe", "translate"};
    add(s, [](O& o, V v) { o.decode.task = v.text; });
  }
  add(sized(bounded(spec("temperature", T::numbers, "`0,0.2,0.4,0.6,0.8,1.0`",
                         "the fallback schedule; `0` alone means no fallback"),
                    0, 2),
            6),
      [](O& o, V v) {
        if (v.numbers.empty())
          throw invalid_field("temperature", "expected at least one temperature");
        o.temperatures = v.numbers;
      });
  add(bounded(spec("beam_size", T::integer, "greedy", "beams at temperature 0"), 1, beams, true),
      [](O& o, V v) { o.decode.beam_size = optional_int(v); });
  add(bounded(spec("best_of", T::integer, "1", "samples drawn at temperature > 0"), 1, beams, true),
      [](O& o, V v) { o.decode.best_of = optional_int(v); });
  add(bounded(spec("patience", T::number, "1.0", "beam search patience"), 0.1, 10, true),
      [](O& o, V v) { o.decode.patience = optional_number(v); });
  add(bounded(spec("length_penalty", T::number, "none",
                   "alpha of Google's length penalty; none ranks by sum / length"),
              0, 1, true),
      [](O& o, V v) { o.decode.length_penalty = optional_number(v); });
  add(bounded(spec("sample_len", T::integer, "224", "most tokens per 30 s window"), 1,
              kMaxPromptTokens, true),
      [](O& o, V v) { o.decode.sample_len = optional_int(v); });
  add(spec("without_timestamps", T::boolean, "`false`", "sample text tokens only"),
      [](O& o, V v) { o.decode.without_timestamps = v.flag; });
  add(bounded(spec("max_initial_timestamp", T::number, "`1.0`", "latest first timestamp, seconds"),
              0, 30, true),
      [](O& o, V v) { o.decode.max_initial_timestamp = optional_number(v); });
  {
    OptionSpec s = sized(spec("suppress_tokens", T::text, "`-1`",
                              "comma-separated token ids; `-1` is OpenAI's non-speech set; empty "
                              "suppresses nothing"),
                         8192);
    add(s, [s](O& o, V v) {
      check_token_list(s, v.text);
      o.decode.suppress_tokens = strip(v.text);
    });
  }
  add(spec("suppress_blank", T::boolean, "`true`", "no blank or end of text as the first token"),
      [](O& o, V v) { o.decode.suppress_blank = v.flag; });
  {
    OptionSpec s = sized(spec("initial_prompt", T::text, "",
                              "text that primes the first window (at most 224 tokens)"),
                         4096);
    s.aliases = {"prompt"};
    add(s, [](O& o, V v) {
      o.initial_prompt = strip(v.text).empty() ? std::nullopt : std::optional<std::string>(v.text);
    });
  }
  add(spec("carry_initial_prompt", T::boolean, "`false`",
           "keep the initial prompt in every window's prompt"),
      [](O& o, V v) { o.carry_initial_prompt = v.flag; });
  add(sized(spec("prefix", T::text, "",
                 "text forced at the start of every window (at most 224 tokens)"),
            4096),
      [](O& o, V v) {
        o.prefix_text = strip(v.text).empty() ? std::nullopt : std::optional<std::string>(v.text);
      });
  add(spec("condition_on_previous_text", T::boolean, "`true`",
           "prompt each window with the text before it"),
      [](O& o, V v) { o.condition_on_previous_text = v.flag; });
  add(bounded(spec("compression_ratio_threshold", T::number, "`2.4`",
                   "above: retry at the next temperature"),
              0, 1000, true),
      [](O& o, V v) { o.compression_ratio_threshold = optional_number(v); });
  add(bounded(
          spec("logprob_threshold", T::number, "`-1.0`", "below: retry at the next temperature"),
          -1000, 0, true),
      [](O& o, V v) { o.logprob_threshold = optional_number(v); });
  add(bounded(spec("no_speech_threshold", T::number, "`0.6`",
                   "above, with a low log-probability: the window is silence"),
              0, 1, true),
      [](O& o, V v) { o.no_speech_threshold = optional_number(v); });
  add(sized(bounded(spec("clip_timestamps", T::numbers, "",
                         "`start,end,...` seconds to transcribe (256 clips at most); "
                         "clamped to the audio"),
                    0, 1e7),
            512),
      [](O& o, V v) {
        for (std::size_t i = 1; i < v.numbers.size(); ++i) {
          if (v.numbers[i] < v.numbers[i - 1]) {
            throw invalid_field("clip_timestamps", "clip_timestamps must not decrease");
          }
        }
        o.clip_timestamps = v.numbers;
      });
  add(spec("word_timestamps", T::boolean, "`false`",
           "give every segment its words with start, end and probability"),
      [](O& o, V v) { o.word_timestamps = v.flag; });
  add(spec("seek_by_words", T::boolean, "`false`",
           "time each window's words (returned only with word_timestamps) and continue after "
           "the last word when the window's last segment runs on past it: audio the model "
           "skipped is heard again; on with VAD unless a request sets it"),
      [](O& o, V v) { o.seek_by_words = v.flag; });
  add(sized(spec("prepend_punctuations", T::text,
                 "`" + std::string(whisper::kPrependPunctuations) + "`",
                 "(word timestamps) punctuation joined to the word after it"),
            64),
      [](O& o, V v) { o.prepend_punctuations = v.text; });
  add(sized(spec("append_punctuations", T::text,
                 "`" + std::string(whisper::kAppendPunctuations) + "`",
                 "(word timestamps) punctuation joined to the word before it"),
            64),
      [](O& o, V v) { o.append_punctuations = v.text; });
  add(bounded(spec("hallucination_silence_threshold", T::number, "none",
                   "(word timestamps) skip silences longer than this many seconds "
                   "before a probable hallucination"),
              0, 30, true),
      [](O& o, V v) { o.hallucination_silence_threshold = optional_number(v); });
  add(bounded(spec("seed", T::integer, "`0`",
                   "seed of sampling at temperature > 0 (fixed: one file gives one transcript); "
                   "`-1` draws a new one each time"),
              -1, 2147483647),
      [](O& o, V v) {
        if (v.number < 0) {
          o.decode.seed.reset();
        } else {
          o.decode.seed = static_cast<std::uint64_t>(v.number);
        }
      });
  {
    OptionSpec s = sized(spec("keyterms", T::text, "",
                              "terms to favour (names, product words), comma- or line-separated "
                              "or a JSON array; at most 100, 64 bytes each"),
                         8192);
    s.aliases = {"hotwords", "keyterm", "keyterms[]"};
    s.check = [](std::string_view value) { keyterm_list(value); };
    add(s, [](O& o, V v) { o.keyterms = keyterm_list(v.text); });
  }
  add(bounded(spec("keyterm_boost", T::number, "`1.5`",
                   "logit bonus of each token of a keyterm (taken back when a partial match is "
                   "abandoned)"),
              0, 10),
      [](O& o, V v) { o.keyterm_boost = v.number; });
  add(spec("keyterms_prompt", T::boolean, "`true`",
           "also open every window's prompt with the keyterms (as faster-whisper's hotwords do)"),
      [](O& o, V v) { o.keyterms_prompt = v.flag; });
  add(spec("logprobs", T::boolean, "`false`",
           "give each text token with its log-probability (OpenAI's `include[]=logprobs`)"),
      [](O& o, V v) { o.token_logprobs = v.flag; });
  add(spec("keep_best_attempt", T::boolean, "`false`",
           "when every temperature falls back, keep the attempt with the best average "
           "log-probability (faster-whisper's rule) rather than the last (OpenAI's); on with VAD "
           "and chunking unless a request sets it"),
      [](O& o, V v) { o.best_failed_attempt = v.flag; });
  return t;
}

std::vector<OptionSpec> whisper_option_specs(int max_beam) {
  return specs_of(whisper_options(max_beam));
}

}  // namespace sra
