#include "service/live_session.h"

#include <algorithm>

#include "core/errors.h"
#include "core/text.h"
#include "core/uuid.h"
#include "models/model_catalog.h"

namespace sra {

LiveSettings live_settings_from(const Config& config) {
  LiveSettings s;
  s.max_sessions = static_cast<int>(config.get_int("MAX_REALTIME_SESSIONS"));
  s.partial_seconds = config.get_double("REALTIME_PARTIAL_SECONDS");
  s.trim_seconds = config.get_double("REALTIME_TRIM_SECONDS");
  s.max_turn_seconds = config.get_double("REALTIME_MAX_TURN_SECONDS");
  s.max_ahead_seconds = config.get_double("REALTIME_MAX_AHEAD_SECONDS");
  s.max_pending_turns = static_cast<int>(config.get_int("REALTIME_MAX_PENDING_TURNS"));
  s.max_session_seconds = config.get_double("REALTIME_MAX_SESSION_SECONDS");
  s.max_buffered_seconds = config.get_double(
      "REALTIME_MAX_BUFFERED_SECONDS", std::max(s.max_buffered_seconds, s.max_turn_seconds + 60));
  if (s.max_buffered_seconds < s.max_turn_seconds) {
    throw config_error(
        "REALTIME_MAX_BUFFERED_SECONDS must hold a whole turn: at least "
        "REALTIME_MAX_TURN_SECONDS (" +
        std::to_string(static_cast<long long>(s.max_turn_seconds)) + ")");
  }
  s.max_sessions_per_client = static_cast<int>(
      config.get_int("REALTIME_MAX_SESSIONS_PER_CLIENT", std::max(1, s.max_sessions / 4)));
  s.idle_seconds = config.get_double("REALTIME_IDLE_SECONDS");
  s.turn_model = config.get_string("TURN_MODEL");
  s.turn_model_path = config.get_string("TURN_MODEL_PATH");
  if (s.turn_model_path.empty()) {
    const CatalogModel* m = find_catalog_model(s.turn_model);
    if (!m || m->kind != "turn") {
      throw config_error("TURN_MODEL=" + s.turn_model +
                         " is not an end-of-turn model of the catalog (`speech-recognition-api "
                         "models list`); set TURN_MODEL_PATH for a file of your own");
    }
  }
  s.require_origin = config.get_bool("REALTIME_REQUIRE_ORIGIN");
  s.ping_seconds = config.get_double("REALTIME_PING_SECONDS");
  return s;
}

namespace {

constexpr std::int64_t ms_to_samples(double ms) {
  return static_cast<std::int64_t>(ms * kSampleRate / 1000);
}
constexpr std::int64_t samples_to_ms(std::int64_t samples) {
  return samples * 1000 / kSampleRate;
}
constexpr std::int64_t kMinCommitSamples = ms_to_samples(100);  // OpenAI's smallest commit
constexpr std::int64_t kMinPartialSamples = ms_to_samples(500);
constexpr std::size_t kPartialPromptBytes = 220;  // a partial's prompt: < 224 tokens for sure

std::string join_words(const std::vector<std::string>& words, std::size_t from = 0) {
  std::string text;
  for (std::size_t i = from; i < words.size(); ++i) {
    if (i > from) text += ' ';
    text += words[i];
  }
  return text;
}

}  // namespace

SemanticPolicy semantic_policy(Eagerness eagerness) {
  switch (eagerness) {
    case Eagerness::low:
      return {.threshold = 0.7f, .first_check_ms = 300, .recheck_ms = 700, .max_wait_ms = 8000};
    case Eagerness::high:
      return {.threshold = 0.3f, .first_check_ms = 150, .recheck_ms = 300, .max_wait_ms = 2000};
    default:  // medium; auto is medium, as OpenAI documents
      return {};
  }
}

LiveSession::LiveSession(LiveSettings settings, std::shared_ptr<const vad::SileroVad> vad,
                         TurnModelSource turn_model)
    : settings_(settings), vad_(std::move(vad)), turn_source_(std::move(turn_model)) {
  if (!vad_) config_.turn.server_vad = false;
}

void LiveSession::configure(const LiveConfig& config) {
  if (config.turn.server_vad && !vad_) {
    throw invalid_field("turn_detection",
                        "server_vad needs the Silero VAD model, which could not be loaded "
                        "(VAD_MODEL_PATH, VAD_MODEL)");
  }
  if (config.turn.server_vad && config.turn.semantic && !turn_model_) {
    if (!turn_source_) {
      throw invalid_field("turn_detection",
                          "semantic_vad needs the smart-turn model, which this server has not");
    }
    turn_model_ = turn_source_();  // before anything changes: a failure leaves the session as is
  }
  const bool detection_changed = config.turn.server_vad != config_.turn.server_vad;
  if (detection_changed) flush_vad_window();
  config_ = config;
  if (detection_changed) {
    // A turn open in one mode stays open in the other; the VAD starts afresh.
    vad_stream_ = {};
    in_speech_ = open_.has_value();
    silence_start_ = -1;
  }
}

std::size_t LiveSession::buffered_samples() const {
  return committed_samples_ + (open_ ? open_->audio.size() : 0) + between_.size() +
         vad_window_.size();
}

void LiveSession::open_turn(std::int64_t start, std::vector<LiveEvent>& events, bool announce) {
  Turn turn;
  turn.item_id = "item_" + make_uuid();
  // The audio from `start` on is in between_ (at most the padding and one VAD window).
  const std::int64_t from = std::clamp<std::int64_t>(start - between_start_, 0,
                                                     static_cast<std::int64_t>(between_.size()));
  turn.audio.assign(between_.begin() + from, between_.end());
  turn.start = between_start_ + from;
  between_.clear();
  between_start_ = stored_;
  if (announce) {
    events.push_back({.kind = LiveEvent::Kind::speech_started,
                      .item_id = turn.item_id,
                      .audio_ms = samples_to_ms(turn.start)});
  }
  open_ = std::move(turn);
}

// Ends the open turn where the stored audio ends: nothing after it has been stored yet.
void LiveSession::close_turn(std::vector<LiveEvent>& events, bool announce) {
  Turn& turn = *open_;
  const std::int64_t end = stored_;
  between_.clear();
  between_start_ = end;
  last_turn_end_ = end;
  turn.audio.shrink_to_fit();
  turn.seconds = static_cast<double>(turn.audio.size()) / kSampleRate;
  if (announce) {
    events.push_back({.kind = LiveEvent::Kind::speech_stopped,
                      .item_id = turn.item_id,
                      .audio_ms = samples_to_ms(end)});
  }
  events.push_back({.kind = LiveEvent::Kind::committed,
                    .item_id = turn.item_id,
                    .previous_item_id = last_item_id_});
  last_item_id_ = turn.item_id;
  committed_samples_ += turn.audio.size();
  committed_.push_back(std::move(turn));
  open_.reset();
}

void LiveSession::store(const float* samples, std::size_t count) {
  if (open_) {
    open_->audio.insert(open_->audio.end(), samples, samples + count);
  } else {
    // Outside a turn only the audio a turn may start with is kept.
    between_.insert(between_.end(), samples, samples + count);
    const auto keep = static_cast<std::size_t>(ms_to_samples(config_.turn.prefix_padding_ms)) +
                      vad::kSileroWindow;
    if (between_.size() > keep) {
      const std::size_t drop = between_.size() - keep;
      between_.erase(between_.begin(), between_.begin() + static_cast<long>(drop));
      between_start_ += static_cast<std::int64_t>(drop);
    }
  }
  stored_ += static_cast<std::int64_t>(count);
  if (config_.turn.semantic) {
    // The last 8 s of the stream, whatever the turns: what smart-turn hears.
    recent_.insert(recent_.end(), samples, samples + count);
    if (recent_.size() > static_cast<std::size_t>(vad::kSmartTurnSamples)) {
      recent_.erase(
          recent_.begin(),
          recent_.begin() + static_cast<std::ptrdiff_t>(recent_.size() - vad::kSmartTurnSamples));
    }
  }
}

void LiveSession::append(const float* samples, std::size_t count, std::vector<LiveEvent>& events) {
  const auto max_turn = static_cast<std::size_t>(settings_.max_turn_seconds * kSampleRate);
  if (!config_.turn.server_vad && (open_ ? open_->audio.size() : 0) + count > max_turn) {
    throw too_large("the input audio buffer would hold more than REALTIME_MAX_TURN_SECONDS (" +
                    std::to_string(static_cast<long long>(settings_.max_turn_seconds)) +
                    " s); commit it first");
  }
  const auto max_buffered = static_cast<std::size_t>(settings_.max_buffered_seconds * kSampleRate);
  if (buffered_samples() + count > max_buffered) {
    throw unavailable("the session would hold more than REALTIME_MAX_BUFFERED_SECONDS (" +
                      std::to_string(static_cast<long long>(settings_.max_buffered_seconds)) +
                      " s) of audio: its turns wait for transcription longer than they last");
  }
  received_ += static_cast<std::int64_t>(count);
  if (!config_.turn.server_vad) {
    if (!open_ && count > 0) open_turn(stored_, events, false);
    store(samples, count);
    return;
  }
  // Window by window: each is stored where the turns stand before the VAD decides on it, so a
  // turn that ends never holds audio after its end.
  std::size_t at = 0;
  while (at < count) {
    const std::size_t take = std::min(count - at, vad::kSileroWindow - vad_window_.size());
    vad_window_.insert(vad_window_.end(), samples + at, samples + at + take);
    at += take;
    if (vad_window_.size() == vad::kSileroWindow) {
      run_vad_window(events);
      vad_window_.clear();
    }
  }
}

void LiveSession::flush_vad_window() {
  store(vad_window_.data(), vad_window_.size());
  vad_window_.clear();
}

void LiveSession::run_vad_window(std::vector<LiveEvent>& events) {
  const TurnDetection& td = config_.turn;
  const float off = std::max(td.threshold - 0.15f, 0.01f);
  const auto max_turn = static_cast<std::int64_t>(settings_.max_turn_seconds * kSampleRate);
  const std::int64_t window_start = stored_;
  store(vad_window_.data(), vad_window_.size());
  const float p = vad_->process(vad_window_.data(), vad_stream_);
  if (!in_speech_) {
    if (p >= td.threshold) {
      in_speech_ = true;
      silence_start_ = -1;
      if (!open_) {
        open_turn(std::max(window_start - ms_to_samples(td.prefix_padding_ms), last_turn_end_),
                  events, true);
      }
    }
    return;
  }
  if (p >= td.threshold) {
    silence_start_ = -1;
  } else if (p < off && silence_start_ < 0) {
    silence_start_ = window_start;
    next_turn_check_ = ms_to_samples(semantic_policy(td.eagerness).first_check_ms);
  }
  if (!open_) return;
  const bool silent_enough = td.semantic
                                 ? semantic_turn_end()
                                 : silence_start_ >= 0 && stored_ - silence_start_ >=
                                                              ms_to_samples(td.silence_duration_ms);
  const bool too_long = stored_ - open_->start >= max_turn;
  if (silent_enough || too_long) {
    close_turn(events, true);
    // A turn cut for length goes on as a new one while the speech does.
    in_speech_ = too_long && !silent_enough;
    silence_start_ = -1;
    if (in_speech_) open_turn(stored_, events, true);
  }
}

bool LiveSession::semantic_turn_end() {
  if (silence_start_ < 0) return false;
  const SemanticPolicy policy = semantic_policy(config_.turn.eagerness);
  const std::int64_t pause = stored_ - silence_start_;
  if (pause >= ms_to_samples(policy.max_wait_ms)) return true;
  if (pause < next_turn_check_) return false;
  next_turn_check_ = pause + ms_to_samples(policy.recheck_ms);
  // The last 8 s of the stream, the pause included: the turn so far and, before a short one,
  // what was said just before it (a pause that ended the last turn may have cut a sentence).
  ++turn_checks_;
  return turn_model_->probability(std::vector<float>(recent_.begin(), recent_.end())) >=
         policy.threshold;
}

void LiveSession::commit(std::vector<LiveEvent>& events) {
  const std::size_t held = (open_ ? open_->audio.size() : 0) + (open_ ? vad_window_.size() : 0);
  if (!open_ || static_cast<std::int64_t>(held) < kMinCommitSamples) {
    const double ms = static_cast<double>(held) * 1000 / kSampleRate;
    throw invalid_request("buffer too small: expected at least 100 ms of audio, but the buffer " +
                          std::string("holds ") + std::to_string(static_cast<int>(ms)) + " ms");
  }
  flush_vad_window();
  close_turn(events, false);
  in_speech_ = false;
  silence_start_ = -1;
}

void LiveSession::clear() {
  open_.reset();
  between_.clear();
  vad_window_.clear();
  stored_ = received_;
  between_start_ = received_;
  last_turn_end_ = received_;
  in_speech_ = false;
  silence_start_ = -1;
}

std::map<std::string, std::string> LiveSession::base_options() const {
  std::map<std::string, std::string> options = config_.options;
  if (!config_.language.empty()) options["language"] = config_.language;
  options["chunking_strategy"] = "none";  // a turn is short, and its own VAD cut it
  return options;
}

std::optional<LiveWork> LiveSession::next_work() {
  if (in_flight_) return std::nullopt;
  if (!committed_.empty()) {
    Turn& turn = committed_.front();
    LiveWork work{.kind = LiveWork::Kind::final, .item_id = turn.item_id};
    // The turn's audio goes with its work: it is transcribed once and never needed again.
    committed_samples_ -= turn.audio.size();
    work.audio.samples = std::move(turn.audio);
    work.samples = work.audio.samples.size();
    work.model = config_.model;
    turn.audio = {};
    work.options = base_options();
    for (const auto& [name, value] : config_.final_options) work.options[name] = value;
    if (!config_.prompt.empty()) work.options["prompt"] = config_.prompt;
    in_flight_ = true;
    return work;
  }
  if (!open_ || settings_.partial_seconds <= 0) return std::nullopt;
  Turn& turn = *open_;
  const auto step = static_cast<std::size_t>(settings_.partial_seconds * kSampleRate);
  if (turn.audio.size() < turn.decoded_until + step) return std::nullopt;
  if (turn.audio.size() - turn.window_start < static_cast<std::size_t>(kMinPartialSamples)) {
    return std::nullopt;
  }
  LiveWork work{.kind = LiveWork::Kind::partial, .item_id = turn.item_id};
  work.audio.samples.assign(turn.audio.begin() + static_cast<long>(turn.window_start),
                            turn.audio.end());
  work.samples = work.audio.samples.size();
  work.model = config_.model;
  work.options = base_options();
  work.options["temperature"] = "0";  // one attempt: a partial is redone soon anyway
  // The client's prompt, then the confirmed text that left the window; its end, so that it always
  // fits Whisper's prompt (a token is at least one byte).
  std::string prompt = config_.prompt;
  if (!turn.context.empty()) prompt += (prompt.empty() ? "" : " ") + turn.context;
  if (!prompt.empty())
    work.options["prompt"] = std::string(utf8_suffix(prompt, kPartialPromptBytes));
  turn.decoded_until = turn.audio.size();
  in_flight_ = true;
  return work;
}

LiveSession::Turn* LiveSession::find_turn(const std::string& item_id) {
  if (open_ && open_->item_id == item_id) return &*open_;
  for (auto& t : committed_) {
    if (t.item_id == item_id) return &t;
  }
  return nullptr;
}

void LiveSession::emit_words(Turn& turn, const std::vector<std::string>& words,
                             std::vector<LiveEvent>& events) {
  if (words.empty()) return;
  std::string text = (turn.emitted.empty() ? "" : " ") + join_words(words);
  turn.emitted.insert(turn.emitted.end(), words.begin(), words.end());
  events.push_back({.kind = LiveEvent::Kind::delta, .item_id = turn.item_id, .text = text});
}

void LiveSession::apply_partial(Turn& turn, std::size_t window_samples, const Transcription& result,
                                std::vector<LiveEvent>& events) {
  std::vector<std::string> texts;
  for (const auto& s : result.segments) texts.push_back(s.text);
  const std::vector<HypothesisWord> words = hypothesis_words(texts);
  emit_words(turn, turn.agreement.update(words), events);

  const double window_seconds = static_cast<double>(window_samples) / kSampleRate;
  if (window_seconds <= settings_.trim_seconds) return;
  // Cut the window after the last segment whose words are all confirmed.
  const std::size_t confirmed = turn.agreement.confirmed_in_hypothesis();
  std::size_t words_before = 0;
  double cut = 0;
  std::size_t cut_words = 0;
  for (std::size_t s = 0; s < result.segments.size(); ++s) {
    std::size_t n = 0;
    for (const auto& w : words) n += w.segment == static_cast<int>(s) ? 1 : 0;
    words_before += n;
    const double end = result.segments[s].end;
    if (words_before > confirmed || end <= 0 || end >= window_seconds) break;
    cut = end;
    cut_words = words_before;
  }
  // A window that grew too long without agreement is cut anyway: what it holds is confirmed.
  const double force_seconds = std::min(settings_.trim_seconds + 10, 27.0);
  if (cut <= 0 && window_seconds > force_seconds) {
    emit_words(turn, turn.agreement.confirm_rest(), events);
    cut = window_seconds;
    cut_words = turn.agreement.in_window().size();
    if (!result.segments.empty() && result.segments.back().end > 0 &&
        result.segments.back().end < window_seconds) {
      cut = result.segments.back().end;
    }
  }
  if (cut <= 0) return;
  const auto& in_window = turn.agreement.in_window();
  std::vector<std::string> leaving(
      in_window.begin(),
      in_window.begin() + static_cast<long>(std::min(cut_words, in_window.size())));
  if (!leaving.empty()) {
    turn.context += (turn.context.empty() ? "" : " ") + join_words(leaving);
    turn.context = std::string(utf8_suffix(turn.context, kPartialPromptBytes));
  }
  turn.agreement.forget(cut_words);
  turn.window_start += std::min(static_cast<std::size_t>(cut * kSampleRate), window_samples);
}

void LiveSession::finish(const LiveWork& work, const Transcription& result,
                         std::vector<LiveEvent>& events) {
  in_flight_ = false;
  Turn* turn = find_turn(work.item_id);
  if (!turn) return;  // cleared meanwhile
  if (work.kind == LiveWork::Kind::partial) {
    apply_partial(*turn, work.samples, result, events);
    return;
  }
  // The final text: whatever the deltas have not said yet, after the words that stand for what
  // they said (a final that reads a word differently cannot take it back: `completed` is the
  // authority).
  std::vector<std::string> final_words;
  for (const auto& w : hypothesis_words({result.text})) final_words.push_back(w.text);
  const std::size_t said = covered_prefix(turn->emitted, final_words);
  emit_words(
      *turn,
      std::vector<std::string>(final_words.begin() + static_cast<long>(said), final_words.end()),
      events);
  const std::string transcript = strip(result.text);
  const double start = static_cast<double>(turn->start) / kSampleRate;
  std::vector<Word> words;
  for (const Segment& s : result.segments) {
    for (Word w : s.words) {
      w.start += start;
      w.end += start;
      words.push_back(std::move(w));
    }
  }
  events.push_back({.kind = LiveEvent::Kind::completed,
                    .item_id = turn->item_id,
                    .text = transcript,
                    .seconds = turn->seconds,
                    .start = start,
                    .words = std::move(words)});
  committed_.pop_front();
}

void LiveSession::fail(const LiveWork& work, const std::string& message,
                       std::vector<LiveEvent>& events) {
  in_flight_ = false;
  if (work.kind == LiveWork::Kind::partial) return;  // the next partial or the final will do
  if (committed_.empty() || committed_.front().item_id != work.item_id) return;
  events.push_back({.kind = LiveEvent::Kind::failed, .item_id = work.item_id, .text = message});
  committed_.pop_front();
}

}  // namespace sra
