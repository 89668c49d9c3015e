#include "http/deepgram_api.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <sstream>

#include "audio/decoder.h"
#include "audio/pcm_stream.h"
#include "core/errors.h"
#include "core/languages.h"
#include "core/text.h"
#include "core/uuid.h"
#include "http/deepgram_live.h"
#include "http/dispatch.h"
#include "http/form.h"
#include "service/memory_budget.h"
#include "service/metrics.h"
#include "service/speaker_labels.h"
#include "service/webhooks.h"

namespace sra::http {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

using T = OptionType;

OptionSpec spec(std::string name, OptionType type, std::string default_text, std::string doc) {
  return make_option(std::move(name), type, std::move(default_text), std::move(doc));
}

// A number or integer parameter within [min, max].
OptionSpec ranged(std::string name, OptionType type, std::string default_text, std::string doc,
                  double min, double max) {
  OptionSpec o = spec(std::move(name), type, std::move(default_text), std::move(doc));
  o.min = min;
  o.max = max;
  return o;
}

// Deepgram features this server does not have: refused by name unless sent as false.
constexpr std::string_view kUnsupported[] = {
    "diarize_model",     "multichannel", "numerals",      "filler_words",
    "profanity_filter",  "redact",       "replace",       "search",
    "sentiment",         "summarize",    "topics",        "custom_topic",
    "custom_topic_mode", "intents",      "custom_intent", "custom_intent_mode",
    "detect_entities",   "dictation",    "measurements",  "language_hint"};

// Deepgram's model names: any of them means the default model here.
bool is_deepgram_model_name(std::string_view name) {
  for (std::string_view family :
       {"nova", "enhanced", "base", "general", "phonecall", "meeting", "voicemail", "finance",
        "conversationalai", "video", "medical", "drivethru", "automotive", "whisper"}) {
    if (name.starts_with(family)) return true;
  }
  return false;
}

}  // namespace

const std::vector<OptionSpec>& deepgram_option_specs() {
  static const std::vector<OptionSpec> specs = [] {
    std::vector<OptionSpec> s;
    auto text = [&](std::string name, std::size_t max_bytes, std::string doc) {
      OptionSpec o = spec(std::move(name), T::text, "", std::move(doc));
      o.max_items = max_bytes;
      s.push_back(std::move(o));
    };
    auto flag = [&](std::string name, std::string doc) {
      s.push_back(spec(std::move(name), T::boolean, "`false`", std::move(doc)));
    };
    text("model", 64,
         "a served model, or a Deepgram model name (`nova-3`, `nova-2-general`, `whisper`, ...), "
         "which means the default model");
    text("language", 32, "the spoken language (`en`, `en-US`, `de`; `multi`: detect it)");
    flag("detect_language", "detect the language (reported as `detected_language`)");
    flag("punctuate", "punctuated, capitalised transcript and each word's `punctuated_word`");
    flag("smart_format", "as `punctuate` (Whisper writes numbers and dates as people do)");
    flag("utterances", "split the transcript into `results.utterances` at pauses");
    s.push_back(ranged("utt_split", T::number, "`0.8`",
                       "the pause (seconds) between words that starts a new utterance", 0.1, 30));
    flag("paragraphs", "`paragraphs` of sentences, split at pauses");
    flag("diarize",
         "POST only: each word's `speaker` (0, 1, ...); utterances and paragraphs split where the "
         "speaker changes and carry theirs");
    text("keyterm", 8192, "a word or phrase to bias toward (repeatable; our `keyterms`)");
    text("keywords", 8192,
         "`word` or `word:boost` to bias toward (repeatable; the boost is ignored)");
    OptionSpec encoding = spec("encoding", T::choice, "",
                               "raw audio in the body: `linear16`, `mulaw` or `alaw` (with "
                               "`sample_rate`); omitted for a file in a container");
    encoding.choices = {"linear16", "mulaw", "alaw"};
    s.push_back(encoding);
    s.push_back(
        ranged("sample_rate", T::integer, "", "raw audio's samples per second", 8000, 48000));
    s.push_back(ranged("channels", T::integer, "`1`",
                       "raw audio's interleaved channels, mixed down", 1, 8));
    text("tag", 256, "a label echoed in `metadata.tags` (repeatable)");
    text("callback", 2048,
         "POST only: answer `{\"request_id\"}` at once, queue the work, and POST the response to "
         "this URL when it is done (a webhook: needs WEBHOOK_SECRET, signed as Standard Webhooks)");
    OptionSpec method = spec("callback_method", T::choice, "`post`", "how the callback is sent");
    method.choices = {"post"};
    s.push_back(method);
    text("extra", 1024, "`key:value` echoed in `metadata.extra` (repeatable)");
    text("version", 32, "accepted (Deepgram's model version)");
    flag("mip_opt_out", "accepted (Deepgram's model improvement program)");
    for (std::string_view name : kUnsupported) {
      s.push_back(
          spec(std::string(name), T::text, "", "not supported here: refused unless `false`"));
      s.back().max_items = 256;
    }
    return s;
  }();
  return specs;
}

const std::vector<OptionSpec>& deepgram_live_option_specs() {
  static const std::vector<OptionSpec> specs = [] {
    std::vector<OptionSpec> s;
    s.push_back(spec("interim_results", T::boolean, "`false`",
                     "live: Results with is_final=false while a turn is spoken"));
    OptionSpec endpointing =
        spec("endpointing", T::text, "`500`",
             "live: the silence (ms, 10 to 10000) that ends a turn, at least 200 ms here "
             "(Whisper needs whole words); `false`: only Finalize ends one");
    endpointing.max_items = 8;
    s.push_back(endpointing);
    s.push_back(ranged("utterance_end_ms", T::integer, "",
                       "live: send UtteranceEnd after each turn", 1000, 5000));
    s.push_back(spec("vad_events", T::boolean, "`false`", "live: send SpeechStarted"));
    s.push_back(spec("no_delay", T::boolean, "`false`", "live: accepted"));
    return s;
  }();
  return specs;
}

std::string deepgram_plain_word(std::string_view written) {
  std::string w = strip(written);
  auto is_kept = [](unsigned char c) { return std::isalnum(c) || c >= 0x80; };
  std::size_t b = 0, e = w.size();
  while (b < e && !is_kept(static_cast<unsigned char>(w[b]))) ++b;
  while (e > b && !is_kept(static_cast<unsigned char>(w[e - 1]))) --e;
  std::string out = w.substr(b, e - b);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

namespace {

struct DgWord {
  std::string plain, written;
  double start = 0, end = 0, confidence = 0;
  int speaker = -1;  // diarized: 0, 1, ... (from the label "A", "B", ...)
};

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

std::vector<DgWord> words_of(const std::vector<Word>& timed) {
  std::vector<DgWord> words;
  {
    for (const Word& w : timed) {
      DgWord d{.plain = deepgram_plain_word(w.word),
               .written = strip(w.word),
               .start = w.start,
               .end = w.end,
               .confidence = w.probability,
               .speaker = speaker_label_index(w.speaker)};
      if (d.plain.empty()) {
        // Punctuation on its own belongs to the word before it.
        if (!words.empty()) words.back().written += d.written;
        continue;
      }
      words.push_back(std::move(d));
    }
  }
  return words;
}

double dg_round(double v) {
  return std::round(v * 1000) / 1000;
}

json::array words_json(const std::vector<DgWord>& words, std::size_t from, std::size_t to,
                       bool punctuated) {
  json::array out;
  for (std::size_t i = from; i < to; ++i) {
    json::object w{{"word", words[i].plain},
                   {"start", dg_round(words[i].start)},
                   {"end", dg_round(words[i].end)},
                   {"confidence", dg_round(words[i].confidence)}};
    if (words[i].speaker >= 0) w["speaker"] = words[i].speaker;
    if (punctuated) w["punctuated_word"] = words[i].written;
    out.push_back(std::move(w));
  }
  return out;
}

double mean_confidence(const std::vector<DgWord>& words, std::size_t from, std::size_t to) {
  if (to <= from) return 0;
  double sum = 0;
  for (std::size_t i = from; i < to; ++i) sum += words[i].confidence;
  return dg_round(sum / static_cast<double>(to - from));
}

std::string joined(const std::vector<DgWord>& words, std::size_t from, std::size_t to,
                   bool punctuated) {
  std::string out;
  for (std::size_t i = from; i < to; ++i) {
    if (!out.empty()) out += ' ';
    out += punctuated ? words[i].written : words[i].plain;
  }
  return out;
}

// [from, to) ranges of words split where the pause before a word is at least `pause`, or the
// speaker changes.
std::vector<std::pair<std::size_t, std::size_t>> split_at_pauses(const std::vector<DgWord>& words,
                                                                 double pause) {
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  std::size_t begin = 0;
  for (std::size_t i = 1; i <= words.size(); ++i) {
    if (i == words.size() || words[i].start - words[i - 1].end >= pause ||
        words[i].speaker != words[i - 1].speaker) {
      if (i > begin) ranges.emplace_back(begin, i);
      begin = i;
    }
  }
  return ranges;
}

bool ends_sentence(const std::string& written) {
  return !written.empty() &&
         (written.back() == '.' || written.back() == '?' || written.back() == '!' ||
          (written.size() > 1 && written.ends_with("\"") &&
           std::string(".?!").find(written[written.size() - 2]) != std::string::npos));
}

json::object paragraphs_json(const std::vector<DgWord>& words, bool punctuated) {
  constexpr double kParagraphPause = 1.5;  // seconds of silence between paragraphs
  json::array paragraphs;
  std::string transcript;
  for (auto [from, to] : split_at_pauses(words, kParagraphPause)) {
    json::array sentences;
    std::string text;
    std::size_t begin = from;
    for (std::size_t i = from; i < to; ++i) {
      if (i + 1 == to || ends_sentence(words[i].written)) {
        std::string sentence = joined(words, begin, i + 1, punctuated);
        sentences.push_back(json::object{{"text", sentence},
                                         {"start", dg_round(words[begin].start)},
                                         {"end", dg_round(words[i].end)}});
        text += (text.empty() ? "" : " ") + sentence;
        begin = i + 1;
      }
    }
    const int speaker = words[from].speaker;
    transcript +=
        "\n" + (speaker >= 0 ? "Speaker " + std::to_string(speaker) + ": " : "") + text + "\n";
    json::object paragraph{{"sentences", std::move(sentences)},
                           {"num_words", static_cast<std::int64_t>(to - from)},
                           {"start", dg_round(words[from].start)},
                           {"end", dg_round(words[to - 1].end)}};
    if (speaker >= 0) paragraph["speaker"] = speaker;
    paragraphs.push_back(std::move(paragraph));
  }
  return json::object{{"transcript", transcript}, {"paragraphs", std::move(paragraphs)}};
}

std::string deepgram_now() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

json::object deepgram_alternative(const std::vector<Word>& timed, const std::string& text,
                                  double fallback_confidence, bool punctuate) {
  const std::vector<DgWord> words = words_of(timed);
  std::string transcript;
  double confidence = 0;
  if (!words.empty()) {
    transcript = joined(words, 0, words.size(), punctuate);
    confidence = mean_confidence(words, 0, words.size());
  } else {
    // A model without word times: the text, and how sure it was of it.
    transcript = strip(text);
    confidence = dg_round(fallback_confidence);
    if (!punctuate) {
      std::string plain;
      for (const std::string& w : split_words(transcript)) {
        std::string p = deepgram_plain_word(w);
        if (!p.empty()) plain += (plain.empty() ? "" : " ") + p;
      }
      transcript = plain;
    }
  }
  return json::object{{"transcript", transcript},
                      {"confidence", confidence},
                      {"words", words_json(words, 0, words.size(), punctuate)}};
}

json::object deepgram_response(const Transcription& t, const DeepgramRender& r) {
  std::vector<Word> timed;
  for (const Segment& s : t.segments) timed.insert(timed.end(), s.words.begin(), s.words.end());
  const std::vector<DgWord> words = words_of(timed);
  double segment_confidence = 0;
  for (const Segment& s : t.segments) segment_confidence += std::exp(s.avg_logprob);
  if (!t.segments.empty()) segment_confidence /= static_cast<double>(t.segments.size());
  json::object alternative = deepgram_alternative(timed, t.text, segment_confidence, r.punctuate);
  if (r.paragraphs) alternative["paragraphs"] = paragraphs_json(words, r.punctuate);
  json::object channel{{"alternatives", json::array{std::move(alternative)}}};
  if (r.detected_language && !t.language.empty()) channel["detected_language"] = t.language;
  json::object results{{"channels", json::array{std::move(channel)}}};
  if (r.utterances) {
    json::array utterances;
    for (auto [from, to] : split_at_pauses(words, r.utterance_split)) {
      json::object utterance{{"start", dg_round(words[from].start)},
                             {"end", dg_round(words[to - 1].end)},
                             {"confidence", mean_confidence(words, from, to)},
                             {"channel", 0},
                             {"transcript", joined(words, from, to, r.punctuate)},
                             {"words", words_json(words, from, to, r.punctuate)},
                             {"id", make_uuid()}};
      if (words[from].speaker >= 0) utterance["speaker"] = words[from].speaker;
      utterances.push_back(std::move(utterance));
    }
    results["utterances"] = std::move(utterances);
  }
  json::object model_info{{r.model, json::object{{"name", r.model},
                                                 {"version", SRA_VERSION},
                                                 {"arch", "speech-recognition-api"}}}};
  json::array tags;
  for (const std::string& tag : r.tags) tags.emplace_back(tag);
  json::object metadata{{"transaction_key", "deprecated"},
                        {"request_id", r.request_id},
                        {"created", r.created.empty() ? deepgram_now() : r.created},
                        {"duration", dg_round(t.duration)},
                        {"channels", 1},
                        {"models", json::array{json::value(r.model)}},
                        {"model_info", std::move(model_info)}};
  if (!tags.empty()) metadata["tags"] = std::move(tags);
  return json::object{{"metadata", std::move(metadata)}, {"results", std::move(results)}};
}

std::string deepgram_created_now() {
  return deepgram_now();
}

Response deepgram_error_response(const Error& e, const std::string& request_id) {
  beast_http::status status = status_for(e.kind());
  // Deepgram answers 400 to every bad request, its audio included.
  if (e.kind() == ErrorKind::invalid_request || e.kind() == ErrorKind::unsupported_media) {
    status = beast_http::status::bad_request;
  }
  std::string code = e.kind() == ErrorKind::unauthorized ? "INVALID_AUTH"
                     : status == beast_http::status::bad_request
                         ? "Bad Request"
                         : std::string(beast_http::obsolete_reason(status));
  // The parameter at fault leads the message, as Deepgram names it.
  std::string message = e.what();
  if (e.field() && !message.starts_with(*e.field())) message = *e.field() + ": " + message;
  json::object body{{"err_code", code}, {"err_msg", message}, {"request_id", request_id}};
  Response res = json_response(status, body);
  set_retry_after(res, e);
  return res;
}

namespace {

bool is_repeatable(std::string_view name) {
  return name == "keyterm" || name == "keywords" || name == "tag" || name == "extra";
}

}  // namespace

ListenRequest parse_listen(ApiContext& ctx, std::string_view target, bool live) {
  ListenRequest r;
  std::map<std::string, ParsedOption> once;
  std::vector<std::string> terms;
  for (auto& [name, value] : query_parameters(target)) {
    const OptionSpec* s = find_option(deepgram_option_specs(), name);
    if (!s && live) s = find_option(deepgram_live_option_specs(), name);
    if (!s)
      throw invalid_field(name, "'" + std::string(utf8_prefix(name, 64)) +
                                    "' is not a parameter this server takes");
    ParsedOption parsed = parse_option(*s, value);
    if (std::find(std::begin(kUnsupported), std::end(kUnsupported), name) !=
        std::end(kUnsupported)) {
      if (strip(value) == "false") continue;
      throw invalid_field(name, "'" + name + "' is not supported by this server");
    }
    if (is_repeatable(name)) {
      if (name == "keyterm") terms.push_back(parsed.text);
      if (name == "keywords") terms.push_back(parsed.text.substr(0, parsed.text.rfind(':')));
      if (name == "tag") r.render.tags.push_back(parsed.text);
      if (terms.size() > 100) throw invalid_field(name, "at most 100 terms may be given");
      if (r.render.tags.size() > 32) throw invalid_field(name, "at most 32 tags may be given");
      continue;
    }
    if (once.count(name)) throw invalid_field(name, "'" + name + "' is given more than once");
    once[name] = std::move(parsed);
  }
  auto flag = [&](const char* name) { return once.count(name) && once[name].flag; };
  // The model: a served one by name; a Deepgram name means the default one.
  if (once.count("model")) {
    const std::string& name = once["model"].text;
    auto served = ctx.service.parts().served_model_names();
    if (std::find(served.begin(), served.end(), name) != served.end()) {
      r.model = name;
    } else if (!is_deepgram_model_name(name)) {
      throw invalid_field("model", "no model named '" + name + "' is served");
    }
  }
  r.render.model = r.model.empty() ? ctx.service.parts().model_name() : r.model;
  const bool detect = flag("detect_language");
  if (once.count("language") && !detect) {
    std::string language = strip(once["language"].text);
    std::transform(language.begin(), language.end(), language.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (language != "multi" && !language.empty()) {
      r.options["language"] = language.substr(0, language.find_first_of("-_"));
    }
  }
  r.render.detected_language = detect || !r.options.count("language");
  r.render.punctuate = flag("punctuate") || flag("smart_format");
  r.render.utterances = flag("utterances");
  if (once.count("utt_split")) r.render.utterance_split = once["utt_split"].number;
  r.render.paragraphs = flag("paragraphs");
  if (flag("diarize")) {
    if (live) {
      throw invalid_field("diarize",
                          "a live connection is not diarized here: POST the recording instead");
    }
    r.options["diarize"] = "true";
  }
  if (!terms.empty()) {
    json::array list;
    for (const std::string& term : terms) list.emplace_back(term);
    r.options["keyterms"] = json::serialize(list);
  }
  if (once.count("encoding")) {
    if (!once.count("sample_rate")) {
      throw missing_field("sample_rate", "raw audio (encoding) needs its sample_rate");
    }
    const std::string& e = once["encoding"].text;
    r.raw = audio::PcmFormat{.encoding = e == "mulaw"  ? audio::PcmEncoding::mulaw
                                         : e == "alaw" ? audio::PcmEncoding::alaw
                                                       : audio::PcmEncoding::pcm16,
                             .rate = static_cast<int>(once["sample_rate"].number)};
    if (once.count("channels")) r.channels = static_cast<int>(once["channels"].number);
  }
  if (once.count("callback")) {
    if (live) throw invalid_field("callback", "a live connection takes no callback");
    r.callback = once["callback"].text;
  }
  if (live) {
    r.interim_results = flag("interim_results");
    r.vad_events = flag("vad_events");
    if (once.count("utterance_end_ms")) {
      r.utterance_end_ms = static_cast<int>(once["utterance_end_ms"].number);
    }
    if (once.count("endpointing")) {
      const std::string e = strip(once["endpointing"].text);
      if (e == "false") {
        r.endpointing_ms = -1;
      } else {
        int ms = 0;
        auto [end, ec] = std::from_chars(e.data(), e.data() + e.size(), ms);
        if (ec != std::errc() || end != e.data() + e.size() || ms < 10 || ms > 10000) {
          throw invalid_field("endpointing",
                              "expected milliseconds from 10 to 10000 or `false`, "
                              "got '" +
                                  std::string(utf8_prefix(e, 16)) + "'");
        }
        r.endpointing_ms = std::max(ms, 200);
      }
    }
  } else {
    r.options["word_timestamps"] = "true";
  }
  return r;
}

namespace {

// Raw audio decoded to the samples models take: interleaved channels mixed down first.
AudioBuffer decode_raw(const std::string& body, const audio::PcmFormat& format, int channels) {
  const std::size_t width = format.encoding == audio::PcmEncoding::pcm16 ? 2 : 1;
  const std::size_t frame = width * static_cast<std::size_t>(channels);
  if (body.size() % frame != 0) {
    throw invalid_request("the body is not whole frames of " + std::to_string(channels) +
                          "-channel audio in this encoding");
  }
  const std::string mono =
      channels == 1 ? body : audio::mix_to_mono_pcm16(body, format.encoding, channels);
  audio::PcmFormat mixed = format;
  if (channels > 1) mixed.encoding = audio::PcmEncoding::pcm16;
  audio::PcmStream stream(mixed);
  AudioBuffer out;
  stream.push(mono, out.samples);
  stream.flush(out.samples);
  return out;
}

}  // namespace

namespace {

// 16-bit PCM WAV of `audio` (16 kHz mono), for raw audio a worker will read as a file.
std::string wav_of(const AudioBuffer& audio) {
  const auto n = static_cast<std::uint32_t>(audio.samples.size());
  std::string out;
  auto u32 = [&out](std::uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&out](std::uint16_t v) { out.append(reinterpret_cast<const char*>(&v), 2); };
  out += "RIFF";
  u32(36 + 2 * n);
  out += "WAVEfmt ";
  u32(16);
  u16(1);
  u16(1);
  u32(kSampleRate);
  u32(2 * kSampleRate);
  u16(2);
  u16(16);
  out += "data";
  u32(2 * n);
  for (float s : audio.samples) {
    const auto v = static_cast<std::int16_t>(std::lrint(std::clamp(s, -1.0f, 1.0f) * 32767.0f));
    u16(static_cast<std::uint16_t>(v));
  }
  return out;
}

// A POST with `callback`: the audio stored and queued as an async task whose webhook is the
// Deepgram response (webhook format "deepgram"); the answer is {"request_id": task id} at once.
asio::awaitable<Response> queue_with_callback(ApiContext& ctx, Exchange& ex, ListenRequest& r,
                                              std::string body) {
  if (r.raw) body = wav_of(decode_raw(body, *r.raw, r.channels));
  json::object render{{"punctuate", r.render.punctuate},
                      {"utterances", r.render.utterances},
                      {"utt_split", r.render.utterance_split},
                      {"paragraphs", r.render.paragraphs},
                      {"detected_language", r.render.detected_language},
                      {"model", r.render.model}};
  json::array tags;
  for (const auto& tag : r.render.tags) tags.emplace_back(tag);
  render["tags"] = std::move(tags);
  json::object options;
  for (const auto& [name, value] : r.options) options[name] = value;
  options["callback_url"] = r.callback;
  options["callback_format"] = "deepgram";
  options["deepgram_render"] = json::serialize(render);
  std::string task_id = co_await queue_for_webhook(
      ctx, ex.request_id, std::move(body), json::serialize(options), r.callback, "callback");
  co_return json_response(beast_http::status::ok, json::object{{"request_id", task_id}});
}

}  // namespace

std::string deepgram_callback_body(const std::string& task_id, const TaskResult& result,
                                   const std::map<std::string, std::string>& options) {
  if (result.status != TaskStatus::success || !result.transcription) {
    return json::serialize(json::object{{"err_code", result.cancelled ? "Cancelled" : "Failed"},
                                        {"err_msg", result.error.value_or("")},
                                        {"request_id", task_id}});
  }
  DeepgramRender render{.request_id = task_id};
  if (auto it = options.find("deepgram_render"); it != options.end()) {
    boost::system::error_code ec;
    json::value v = json::parse(it->second, ec);
    if (!ec && v.is_object()) {
      const json::object& o = v.as_object();
      auto flag = [&o](const char* name) {
        const json::value* f = o.if_contains(name);
        return f && f->is_bool() && f->as_bool();
      };
      render.punctuate = flag("punctuate");
      render.utterances = flag("utterances");
      render.paragraphs = flag("paragraphs");
      render.detected_language = flag("detected_language");
      if (const json::value* s = o.if_contains("utt_split"); s && s->is_number()) {
        render.utterance_split = s->to_number<double>();
      }
      if (const json::value* m = o.if_contains("model"); m && m->is_string()) {
        render.model = std::string(m->as_string());
      }
      if (const json::value* t = o.if_contains("tags"); t && t->is_array()) {
        for (const auto& tag : t->as_array()) {
          if (tag.is_string()) render.tags.emplace_back(tag.as_string());
        }
      }
    }
  }
  return json::serialize(deepgram_response(*result.transcription, render));
}

asio::awaitable<Response> deepgram_listen_route(ApiContext& ctx,
                                                const RequestParser::value_type& req, Exchange& ex,
                                                std::string_view) {
  if (req.method() != beast_http::verb::post) co_return co_await deepgram_live_route(ctx, req, ex);
  ListenRequest r = parse_listen(ctx, req.target(), false);
  r.render.request_id = ex.request_id;
  const std::string content_type = strip(req[beast_http::field::content_type]);
  if (content_type.starts_with("application/json")) {
    throw invalid_field("url",
                        "fetching audio by URL is not supported by this server: send the "
                        "audio as the request body");
  }
  const std::string client = admit_client(ctx, ex);
  if (ctx.inference.full()) {
    metrics().refused.with({"inference_queue"}).add();
    throw inference_queue_full(ctx);
  }
  const std::size_t max_upload = ctx.service.limits().max_upload_bytes;
  check_declared_length(req, max_upload);
  auto memory = std::make_unique<MemoryBudget::Reservation>(ctx.service.upload_memory());
  std::string body;
  while (auto piece = co_await ex.body.next()) {
    if (body.size() + piece->size() > max_upload) {
      throw too_large("upload is larger than MAX_UPLOAD_BYTES (" + std::to_string(max_upload) +
                      " bytes)");
    }
    if (!memory->grow(piece->size())) {
      throw unavailable(
          "the server holds as many uploads as it may now "
          "(MAX_BUFFERED_UPLOAD_BYTES); retry later");
    }
    body.append(*piece);
  }
  if (body.empty()) throw invalid_request("the request has no audio: send it as the body");
  if (!r.callback.empty()) co_return co_await queue_with_callback(ctx, ex, r, std::move(body));
  auto run = std::make_shared<JobRun>(ex.stream.get_executor());
  if (r.raw) {
    run->samples = decode_raw(body, *r.raw, r.channels);
    if (run->samples.samples.empty()) throw invalid_request("the body holds no whole sample");
    if (!memory->grow(run->samples.samples.size() * sizeof(float))) {
      throw unavailable(
          "the server holds as many uploads as it may now "
          "(MAX_BUFFERED_UPLOAD_BYTES); retry later");
    }
  } else {
    run->audio = std::move(body);
  }
  run->ticket = admit(ctx);
  run->memory = std::move(memory);
  run->job.client = client;
  run->job.request_id = ex.request_id;
  run->job.model = r.model;
  run->job.options = std::move(r.options);
  start(ctx, run);
  co_await wait(run, &ex);
  co_return json_response(beast_http::status::ok, deepgram_response(run->transcription, r.render));
}

}  // namespace sra::http
