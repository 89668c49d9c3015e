#include "core/transcription.h"

#include <boost/json.hpp>

#include "core/errors.h"

namespace sra {

namespace json = boost::json;

json::array logprobs_json(const std::vector<TokenLogprob>& logprobs) {
  json::array out;
  for (const auto& l : logprobs) {
    json::array bytes;
    for (unsigned char b : l.bytes) bytes.emplace_back(static_cast<int>(b));
    out.emplace_back(
        json::object{{"token", l.token}, {"logprob", l.logprob}, {"bytes", std::move(bytes)}});
  }
  return out;
}

json::value to_json(const Segment& s) {
  json::array tokens;
  for (int id : s.tokens) tokens.emplace_back(id);
  json::object o{{"id", s.id},
                 {"seek", s.seek},
                 {"start", s.start},
                 {"end", s.end},
                 {"text", s.text},
                 {"tokens", std::move(tokens)},
                 {"temperature", s.temperature},
                 {"avg_logprob", s.avg_logprob},
                 {"compression_ratio", s.compression_ratio},
                 {"no_speech_prob", s.no_speech_prob}};
  if (!s.words.empty()) {
    json::array words;
    for (const auto& w : s.words) {
      json::object wo{
          {"word", w.word}, {"start", w.start}, {"end", w.end}, {"probability", w.probability}};
      if (!w.speaker.empty()) wo["speaker"] = w.speaker;
      words.emplace_back(std::move(wo));
    }
    o["words"] = std::move(words);
  }
  if (!s.logprobs.empty()) o["logprobs"] = logprobs_json(s.logprobs);
  if (!s.speaker.empty()) o["speaker"] = s.speaker;
  return o;
}

json::value to_json(const Transcription& t) {
  json::array segments;
  for (const auto& s : t.segments) segments.push_back(to_json(s));
  json::object o{{"text", t.text},
                 {"language", t.language},
                 {"duration", t.duration},
                 {"segments", std::move(segments)}};
  if (t.diarized) {
    json::array turns;
    for (const auto& turn : t.speaker_turns)
      turns.emplace_back(
          json::object{{"start", turn.start}, {"end", turn.end}, {"speaker", turn.speaker}});
    o["speaker_turns"] = std::move(turns);
  }
  return o;
}

namespace {
double number(const json::object& o, const char* key) {
  auto* v = o.if_contains(key);
  if (!v) return 0;
  return v->is_double() ? v->get_double() : static_cast<double>(v->to_number<std::int64_t>());
}
std::string string_field(const json::object& o, const char* key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}
}  // namespace

namespace {
Segment read_segment(const json::value& sv) {
  const auto& so = sv.as_object();
  Segment s;
  s.id = static_cast<int>(number(so, "id"));
  s.seek = static_cast<std::int64_t>(number(so, "seek"));
  s.start = number(so, "start");
  s.end = number(so, "end");
  s.text = string_field(so, "text");
  if (auto* tokens = so.if_contains("tokens")) {
    for (const auto& id : tokens->as_array()) s.tokens.push_back(id.to_number<int>());
  }
  s.temperature = number(so, "temperature");
  s.avg_logprob = number(so, "avg_logprob");
  s.compression_ratio = number(so, "compression_ratio");
  s.no_speech_prob = number(so, "no_speech_prob");
  if (auto* words = so.if_contains("words")) {
    for (const auto& wv : words->as_array()) {
      const auto& wo = wv.as_object();
      s.words.push_back({string_field(wo, "word"), number(wo, "start"), number(wo, "end"),
                         number(wo, "probability"), string_field(wo, "speaker")});
    }
  }
  if (auto* logprobs = so.if_contains("logprobs")) {
    for (const auto& lv : logprobs->as_array()) {
      const auto& lo = lv.as_object();
      TokenLogprob l{string_field(lo, "token"), {}, number(lo, "logprob")};
      if (auto* bytes = lo.if_contains("bytes")) {
        for (const auto& b : bytes->as_array())
          l.bytes += static_cast<char>(b.to_number<unsigned char>());
      }
      s.logprobs.push_back(std::move(l));
    }
  }
  s.speaker = string_field(so, "speaker");
  return s;
}
}  // namespace

Segment segment_from_json(const json::value& v) {
  try {
    return read_segment(v);
  } catch (const std::exception& e) {
    throw internal_error(std::string("stored segment is not valid: ") + e.what());
  }
}

Transcription transcription_from_json(const json::value& v) {
  try {
    const auto& o = v.as_object();
    Transcription t;
    t.text = string_field(o, "text");
    t.language = string_field(o, "language");
    t.duration = number(o, "duration");
    if (auto* segs = o.if_contains("segments")) {
      for (const auto& sv : segs->as_array()) t.segments.push_back(read_segment(sv));
    }
    if (auto* turns = o.if_contains("speaker_turns")) {
      t.diarized = true;
      for (const auto& tv : turns->as_array()) {
        const auto& to = tv.as_object();
        t.speaker_turns.push_back(
            {number(to, "start"), number(to, "end"), string_field(to, "speaker")});
      }
    }
    return t;
  } catch (const std::exception& e) {
    throw internal_error(std::string("stored transcription is not valid: ") + e.what());
  }
}

}  // namespace sra
