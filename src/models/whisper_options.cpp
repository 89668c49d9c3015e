#include "models/whisper_options.h"

#include <algorithm>
#include <cctype>

#include "core/errors.h"
#include "core/languages.h"
#include "core/text.h"

namespace sra {
namespace {

OptionSpec spec(std::string name, OptionType type, std::string default_text, std::string doc) {
  OptionSpec s;
  s.name = std::move(name);
  s.type = type;
  s.default_text = std::move(default_text);
  s.doc = std::move(doc);
  return s;
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

}  // namespace

std::vector<OptionSpec> whisper_option_specs(int max_beam) {
  using T = OptionType;
  const double beams = max_beam;
  std::vector<OptionSpec> t;
  t.push_back(sized(spec("language", T::text, "detect",
                         "language code or English name; empty or `auto` detects it"),
                    32));
  {
    OptionSpec s = spec("task", T::choice, "`transcribe`", "`translate` gives English text");
    s.choices = {"transcribe", "translate"};
    t.push_back(s);
  }
  t.push_back(sized(bounded(spec("temperature", T::numbers, "`0,0.2,0.4,0.6,0.8,1.0`",
                                 "the fallback schedule; `0` alone means no fallback"),
                            0, 2),
                    6));
  t.push_back(
      bounded(spec("beam_size", T::integer, "greedy", "beams at temperature 0"), 1, beams, true));
  t.push_back(bounded(spec("best_of", T::integer, "1", "samples drawn at temperature > 0"), 1,
                      beams, true));
  t.push_back(bounded(spec("patience", T::number, "1.0", "beam search patience"), 0.1, 10, true));
  t.push_back(bounded(spec("length_penalty", T::number, "none",
                           "alpha of Google's length penalty; none ranks by sum / length"),
                      0, 1, true));
  t.push_back(bounded(spec("sample_len", T::integer, "224", "most tokens per 30 s window"), 1,
                      kMaxPromptTokens, true));
  t.push_back(spec("without_timestamps", T::boolean, "`false`", "sample text tokens only"));
  t.push_back(
      bounded(spec("max_initial_timestamp", T::number, "`1.0`", "latest first timestamp, seconds"),
              0, 30, true));
  t.push_back(sized(spec("suppress_tokens", T::text, "`-1`",
                         "comma-separated token ids; `-1` is OpenAI's non-speech set; empty "
                         "suppresses nothing"),
                    8192));
  t.push_back(
      spec("suppress_blank", T::boolean, "`true`", "no blank or end of text as the first token"));
  {
    OptionSpec s = sized(spec("initial_prompt", T::text, "",
                              "text that primes the first window (at most 224 tokens)"),
                         4096);
    s.aliases = {"prompt"};
    t.push_back(s);
  }
  t.push_back(spec("carry_initial_prompt", T::boolean, "`false`",
                   "keep the initial prompt in every window's prompt"));
  t.push_back(sized(
      spec("prefix", T::text, "", "text forced at the start of every window (at most 224 tokens)"),
      4096));
  t.push_back(spec("condition_on_previous_text", T::boolean, "`true`",
                   "prompt each window with the text before it"));
  t.push_back(bounded(spec("compression_ratio_threshold", T::number, "`2.4`",
                           "above: retry at the next temperature"),
                      0, 1000, true));
  t.push_back(bounded(
      spec("logprob_threshold", T::number, "`-1.0`", "below: retry at the next temperature"), -1000,
      0, true));
  t.push_back(bounded(spec("no_speech_threshold", T::number, "`0.6`",
                           "above, with a low log-probability: the window is silence"),
                      0, 1, true));
  t.push_back(sized(bounded(spec("clip_timestamps", T::numbers, "",
                                 "`start,end,...` seconds to transcribe (256 clips at most); "
                                 "clamped to the audio"),
                            0, 1e7),
                    512));
  t.push_back(spec("word_timestamps", T::boolean, "`false`",
                   "give every segment its words with start, end and probability"));
  t.push_back(sized(
      spec("prepend_punctuations", T::text, "`" + std::string(whisper::kPrependPunctuations) + "`",
           "(word timestamps) punctuation joined to the word after it"),
      64));
  t.push_back(sized(
      spec("append_punctuations", T::text, "`" + std::string(whisper::kAppendPunctuations) + "`",
           "(word timestamps) punctuation joined to the word before it"),
      64));
  t.push_back(bounded(spec("hallucination_silence_threshold", T::number, "none",
                           "(word timestamps) skip silences longer than this many seconds "
                           "before a probable hallucination"),
                      0, 30, true));
  t.push_back(bounded(spec("seed", T::integer, "random", "seed of sampling at temperature > 0"), 0,
                      2147483647));
  return t;
}

void apply_whisper_option(whisper::TranscribeOptions& o, const OptionSpec& spec,
                          const ParsedOption& v) {
  auto& d = o.decode;
  const std::string& name = spec.name;
  if (name == "language") {
    std::string l = strip(v.text);
    for (auto& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (l.empty() || l == "auto" || l == "none" || l == "null") {
      d.language.reset();
      return;
    }
    auto code = language_code_for(l);
    if (!code) throw invalid_field(name, "unknown language '" + v.text + "'");
    d.language = *code;
  } else if (name == "task") {
    d.task = v.text;
  } else if (name == "temperature") {
    if (v.numbers.empty()) throw invalid_field(name, "expected at least one temperature");
    o.temperatures = v.numbers;
  } else if (name == "beam_size") {
    d.beam_size = optional_int(v);
  } else if (name == "best_of") {
    d.best_of = optional_int(v);
  } else if (name == "patience") {
    d.patience = optional_number(v);
  } else if (name == "length_penalty") {
    d.length_penalty = optional_number(v);
  } else if (name == "sample_len") {
    d.sample_len = optional_int(v);
  } else if (name == "without_timestamps") {
    d.without_timestamps = v.flag;
  } else if (name == "max_initial_timestamp") {
    d.max_initial_timestamp = optional_number(v);
  } else if (name == "suppress_tokens") {
    check_token_list(spec, v.text);
    d.suppress_tokens = strip(v.text);
  } else if (name == "suppress_blank") {
    d.suppress_blank = v.flag;
  } else if (name == "initial_prompt") {
    o.initial_prompt = strip(v.text).empty() ? std::nullopt : std::optional<std::string>(v.text);
  } else if (name == "carry_initial_prompt") {
    o.carry_initial_prompt = v.flag;
  } else if (name == "prefix") {
    o.prefix_text = strip(v.text).empty() ? std::nullopt : std::optional<std::string>(v.text);
  } else if (name == "condition_on_previous_text") {
    o.condition_on_previous_text = v.flag;
  } else if (name == "compression_ratio_threshold") {
    o.compression_ratio_threshold = optional_number(v);
  } else if (name == "logprob_threshold") {
    o.logprob_threshold = optional_number(v);
  } else if (name == "no_speech_threshold") {
    o.no_speech_threshold = optional_number(v);
  } else if (name == "clip_timestamps") {
    for (std::size_t i = 1; i < v.numbers.size(); ++i) {
      if (v.numbers[i] < v.numbers[i - 1]) {
        throw invalid_field(name, "clip_timestamps must not decrease");
      }
    }
    o.clip_timestamps = v.numbers;
  } else if (name == "word_timestamps") {
    o.word_timestamps = v.flag;
  } else if (name == "prepend_punctuations") {
    o.prepend_punctuations = v.text;
  } else if (name == "append_punctuations") {
    o.append_punctuations = v.text;
  } else if (name == "hallucination_silence_threshold") {
    o.hallucination_silence_threshold = optional_number(v);
  } else if (name == "seed") {
    d.seed = static_cast<std::uint64_t>(v.number);
  } else {
    throw internal_error("the Whisper option table names '" + name + "', which has no setter");
  }
}

}  // namespace sra
