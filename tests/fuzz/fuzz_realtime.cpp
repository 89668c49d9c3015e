// libFuzzer harness: what a realtime client's events reach before any model runs. The input's
// first line is a client event's JSON: its `session` goes through both session-update parsers
// and its `audio` through the base64 decoder, the PCM stream (each format) and a LiveSession with
// client commits; the remaining lines are hypotheses fed to the session as transcriptions of its
// partials and finals (one segment per `|`). The first line also goes through the scanner of
// large messages (scan_large_event). Properties: only RealtimeProtocolError or sra::Error come
// out; the scanner and the document parser agree on an append's type and audio; samples are
// finite and within the resampler's gain; deltas are append-only (a turn's deltas are never more
// words than its hypotheses held); the session never holds more than max_buffered_seconds;
// memory stays bounded (scripts/fuzz.sh runs this harness under a small -rss_limit_mb).
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "audio/pcm_stream.h"
#include "core/errors.h"
#include "http/realtime_protocol.h"
#include "service/live_session.h"

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line) && lines.size() < 64) lines.push_back(line);
  return lines;
}

sra::Transcription transcription_of(const std::string& line) {
  sra::Transcription t;
  std::istringstream in(line);
  std::string piece;
  double at = 0;
  while (std::getline(in, piece, '|') && t.segments.size() < 16) {
    sra::Segment s;
    s.text = " " + piece;
    s.start = at;
    at += 1.0 + static_cast<double>(piece.size() % 7);
    s.end = at;
    t.text += s.text;
    t.segments.push_back(s);
  }
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> lines = lines_of(input);
  if (lines.empty()) return 0;
  sra::http::RealtimeSession session;
  const std::vector<std::string> served{"whisper-1", "base"};
  std::string audio;
  boost::system::error_code ec;
  boost::json::value event = boost::json::parse(lines[0], ec);
  if (!ec && event.is_object()) {
    const auto& o = event.as_object();
    if (auto it = o.find("session"); it != o.end()) {
      for (bool beta : {false, true}) {
        try {
          if (beta) {
            sra::http::apply_transcription_session_update(it->value(), session, served);
          } else {
            sra::http::apply_session_update(it->value(), session, served);
          }
          (void)boost::json::serialize(sra::http::session_json(session));
          (void)boost::json::serialize(sra::http::beta_session_json(session));
        } catch (const sra::http::RealtimeProtocolError& e) {
          if (e.error().message.empty()) std::abort();
        }
      }
    }
    if (auto it = o.find("audio"); it != o.end() && it->value().is_string()) {
      try {
        const auto& s = it->value().as_string();
        audio = sra::http::decode_base64_audio(std::string_view(s.data(), s.size()));
      } catch (const sra::http::RealtimeProtocolError&) {
      }
    }
  }
  // The scanner of large messages sees the same event: where both take it, they agree.
  try {
    sra::http::ScannedEvent scanned = sra::http::scan_large_event(lines[0], 1 << 20);
    if (scanned.type.size() > 256 || scanned.event_id.size() > 256) std::abort();
    if (!ec && event.is_object() && scanned.has_audio && !audio.empty() && scanned.audio != audio) {
      std::abort();
    }
  } catch (const sra::http::RealtimeProtocolError& e) {
    if (e.error().message.empty()) std::abort();
  }
  if (audio.empty()) audio = lines[0];

  // The audio through each format; the 16 kHz one drives a session with client commits.
  std::vector<float> samples;
  for (auto format : {sra::audio::PcmFormat{sra::audio::PcmEncoding::pcm16, 24000},
                      sra::audio::PcmFormat{sra::audio::PcmEncoding::mulaw, 8000},
                      sra::audio::PcmFormat{sra::audio::PcmEncoding::alaw, 8000},
                      sra::audio::PcmFormat{sra::audio::PcmEncoding::pcm16, 16000}}) {
    samples.clear();
    sra::audio::PcmStream stream(format);
    stream.push(std::string_view(audio).substr(0, audio.size() / 2), samples);
    stream.push(std::string_view(audio).substr(audio.size() / 2), samples);
    stream.flush(samples);
    // Resampling may ring past full scale (a step at the flush reached 1.55), never past the
    // filter's gain: anything else is garbage.
    for (float x : samples) {
      if (!(x >= -4.0f && x <= 4.0f)) std::abort();
    }
  }
  sra::LiveSettings settings;
  settings.partial_seconds = 0.01;
  settings.max_turn_seconds = 5;
  settings.max_buffered_seconds = 12;
  settings.trim_seconds = 2;
  sra::LiveSession live(settings, nullptr);
  sra::LiveConfig config;
  config.turn.server_vad = false;
  live.configure(config);
  std::vector<sra::LiveEvent> events;
  std::string emitted;
  std::size_t hypothesis_words = 0;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    // Each line adds the audio again (as 16 kHz samples), then answers the session's next work.
    try {
      live.append(samples.data(), std::min<std::size_t>(samples.size(), 16000), events);
      std::vector<float> more(8000 + 800 * (lines[i].size() % 16), 0.01f);
      live.append(more.data(), more.size(), events);
    } catch (const sra::Error&) {
    }
    if (live.buffered_samples() > static_cast<std::size_t>(12 * sra::kSampleRate)) std::abort();
    if (lines[i].starts_with("#commit")) {
      try {
        live.commit(events);
      } catch (const sra::Error&) {
      }
      continue;
    }
    if (lines[i].starts_with("#clear")) {
      live.clear();
      continue;
    }
    auto work = live.next_work();
    if (!work) continue;
    sra::Transcription t = transcription_of(lines[i]);
    for (const auto& s : t.segments) {
      std::istringstream w(s.text);
      std::string word;
      while (w >> word) ++hypothesis_words;
    }
    live.finish(*work, t, events);
  }
  for (const auto& e : events) {
    if (e.kind == sra::LiveEvent::Kind::delta) emitted += e.text;
  }
  std::istringstream w(emitted);
  std::string word;
  std::size_t emitted_words = 0;
  while (w >> word) ++emitted_words;
  if (emitted_words > hypothesis_words) std::abort();
  return 0;
}
