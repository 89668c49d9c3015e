#include "http/wyoming_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstring>
#include <optional>

#include "audio/pcm_stream.h"
#include "core/errors.h"
#include "core/text.h"
#include "http/connection_watch.h"
#include "http/dispatch.h"
#include "http/form.h"
#include "http/wyoming_protocol.h"
#include "service/metrics.h"

namespace sra::http {

namespace asio = boost::asio;
namespace json = boost::json;

WyomingOptions wyoming_options_from(const Config& config) {
  WyomingOptions o;
  if (auto port = config.get("WYOMING_PORT"); port && !strip(*port).empty()) {
    o.port = static_cast<int>(config.get_int("WYOMING_PORT"));
  }
  o.host = config.get_string("WYOMING_HOST");
  o.idle_seconds = config.get_double("WYOMING_IDLE_SECONDS");
  o.max_audio_seconds = config.get_double("WYOMING_MAX_AUDIO_SECONDS");
  o.transcript_streaming = config.get_bool("WYOMING_TRANSCRIPT_STREAMING");
  return o;
}

namespace {

constexpr std::string_view kProgram = "speech-recognition-api";
// Bias terms taken from one `transcribe` (the keyterms option's own bounds).
constexpr std::size_t kMaxTerms = 100;
constexpr std::size_t kMaxTermBytes = 64;

json::object attribution() {
  return {{"name", kProgram}, {"url", "https://pypi.org/project/speech-recognition-api/"}};
}

// The `info` answer to `describe`: one ASR program, each served model with its languages (the
// default model first).
json::object info_data(Parts& parts) {
  json::array models;
  for (const std::string& name : parts.served_model_names()) {
    // OpenAI's "whisper-1" is another name of the default model, not a model of its own.
    if (name == kOpenAIDefaultModelName && name != parts.model_name()) continue;
    json::array languages;
    for (const std::string& code : parts.model(name).languages()) languages.emplace_back(code);
    models.push_back(json::object{{"name", name},
                                  {"attribution", attribution()},
                                  {"installed", true},
                                  {"description", "served model " + name},
                                  {"version", nullptr},
                                  {"languages", std::move(languages)}});
  }
  json::object program{{"name", kProgram},
                       {"attribution", attribution()},
                       {"installed", true},
                       {"description", "speech-recognition-api: Whisper speech to text"},
                       {"version", SRA_VERSION},
                       {"models", std::move(models)},
                       {"supports_transcript_streaming", true},
                       {"requires_external_vad", true}};
  json::object data{{"asr", json::array{std::move(program)}}};
  for (const char* kind : {"tts", "handle", "intent", "wake", "mic", "snd"}) {
    data[kind] = json::array{};
  }
  return data;
}

// A field of `data` as a string; absent or null: nullopt; any other type refused.
std::optional<std::string> string_field(const json::object& data, std::string_view name) {
  const json::value* v = data.if_contains(name);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) {
    throw invalid_field(std::string(name), "Wyoming: `" + std::string(name) + "` is not a string");
  }
  return std::string(v->as_string());
}

// An integer field of an audio event within [lo, hi].
int int_field(const json::object& data, std::string_view name, int lo, int hi) {
  const json::value* v = data.if_contains(name);
  if (!v || !v->is_int64() || v->as_int64() < lo || v->as_int64() > hi) {
    throw invalid_field(std::string(name), "Wyoming audio: `" + std::string(name) +
                                               "` must be an integer from " + std::to_string(lo) +
                                               " to " + std::to_string(hi));
  }
  return static_cast<int>(v->as_int64());
}

// The words of `transcript_names` then `transcript_terms`, as the keyterms option takes them (a
// JSON array): bias hints, so those past the option's bounds are left out rather than failing
// the utterance.
std::optional<std::string> bias_terms(const json::object& data) {
  json::array terms;
  for (const char* name : {"transcript_names", "transcript_terms"}) {
    const json::value* v = data.if_contains(name);
    if (!v || v->is_null()) continue;
    if (!v->is_array()) {
      throw invalid_field(name, std::string("Wyoming: `") + name + "` is not a list of strings");
    }
    for (const json::value& term : v->as_array()) {
      if (!term.is_string()) {
        throw invalid_field(name, std::string("Wyoming: `") + name + "` is not a list of strings");
      }
      std::string_view text = term.as_string();
      if (strip(text).empty() || text.size() > kMaxTermBytes || terms.size() >= kMaxTerms) continue;
      if (text.find_first_of(",\n") != std::string_view::npos) continue;
      terms.emplace_back(text);
    }
  }
  if (terms.empty()) return std::nullopt;
  return json::serialize(terms);
}

// The utterance being received: its format, the samples so far and their memory.
struct Utterance {
  int rate = 0, width = 0, channels = 0;
  std::unique_ptr<audio::PcmStream> pcm;
  AudioBuffer audio;
  std::unique_ptr<MemoryBudget::Reservation> memory;
  bool started = false;
};

class WyomingConnection {
 public:
  WyomingConnection(ApiContext& ctx, boost::beast::tcp_stream& stream,
                    const WyomingOptions& options, std::string client,
                    std::function<void(bool)> set_idle)
      : ctx_(ctx),
        stream_(stream),
        options_(options),
        client_(std::move(client)),
        set_idle_(std::move(set_idle)) {}

  asio::awaitable<void> serve() {
    metrics().wyoming.with({"connection"}).add();
    std::array<char, 16 * 1024> buffer;
    for (;;) {
      for (;;) {
        std::optional<WyomingEvent> event;
        std::optional<Error> malformed;
        try {
          event = reader_.next();
        } catch (const Error& e) {
          malformed = e;
        }
        if (malformed) {
          co_await answer_error(*malformed);
          co_return;
        }
        if (!event) break;
        if (!co_await handle(*event)) co_return;
      }
      stream_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(options_.idle_seconds)));
      set_idle_(!utterance_.started && reader_.buffered() == 0);
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(buffer),
                                                      asio::as_tuple(asio::use_awaitable));
      set_idle_(false);
      if (ec) co_return;  // closed, reset or idle too long
      reader_.feed(std::string_view(buffer.data(), n));
    }
  }

 private:
  asio::awaitable<void> send(std::string_view type, const json::object& data = {}) {
    std::string bytes = wyoming_bytes(type, data);
    stream_.expires_after(std::chrono::seconds(30));
    co_await asio::async_write(stream_, asio::buffer(bytes), asio::use_awaitable);
  }

  // Tells the client what went wrong before the connection is closed; a client that cannot be
  // written to any more is not told.
  asio::awaitable<void> answer_error(const Error& e) {
    metrics().wyoming.with({"error"}).add();
    spdlog::info("wyoming {}: {} ({})", client_, e.what(), to_string(e.kind()));
    json::object data;
    data["text"] = e.what();
    data["code"] = to_string(e.kind());
    try {
      co_await send("error", data);
    } catch (const std::exception&) {
    }
  }

  // Handles one event; false when the connection must end.
  asio::awaitable<bool> handle(const WyomingEvent& event) {
    std::optional<Error> failure;
    try {
      if (event.type == "describe") {
        json::object data = co_await run_on(ctx_.blocking.get_executor(),
                                            [this] { return info_data(ctx_.service.parts()); });
        co_await send("info", data);
      } else if (event.type == "ping") {
        json::object data;
        if (auto text = string_field(event.data, "text")) data["text"] = *text;
        co_await send("pong", data);
      } else if (event.type == "transcribe") {
        on_transcribe(event.data);
      } else if (event.type == "audio-start") {
        start_audio(event.data);
      } else if (event.type == "audio-chunk") {
        if (!utterance_.started) start_audio(event.data);
        add_audio(event.data, event.payload);
      } else if (event.type == "audio-stop") {
        if (!utterance_.started) throw invalid_request("Wyoming: audio-stop before any audio");
        co_await transcribe();
      }
      // Anything else is not for an ASR service: ignored, as the protocol asks.
      co_return true;
    } catch (const Error& e) {
      failure = e;
    }
    // A client gone mid-job is nobody to answer.
    if (failure->kind() != ErrorKind::cancelled) co_await answer_error(*failure);
    co_return false;
  }

  void on_transcribe(const json::object& data) {
    options_for_next_.clear();
    model_.clear();
    if (auto name = string_field(data, "name"); name && *name != kProgram && !name->empty()) {
      auto names = ctx_.service.parts().served_model_names();
      if (std::find(names.begin(), names.end(), *name) == names.end()) {
        throw not_found("Wyoming: no model named '" + *name + "' is served");
      }
      model_ = *name;
    }
    if (auto language = string_field(data, "language"); language && !strip(*language).empty()) {
      options_for_next_["language"] = *language;
    }
    if (auto terms = bias_terms(data)) options_for_next_["keyterms"] = *terms;
  }

  void start_audio(const json::object& data) {
    utterance_ = Utterance{};
    utterance_.started = true;
    utterance_.memory = std::make_unique<MemoryBudget::Reservation>(ctx_.service.upload_memory());
    set_format(data);
  }

  // The chunk's format; a change mid-utterance starts a new resampler for what follows.
  void set_format(const json::object& data) {
    int rate = int_field(data, "rate", 8000, 48000);
    int width = int_field(data, "width", 1, 4);
    int channels = int_field(data, "channels", 1, 8);
    if (width != 2) {
      throw invalid_field("width", "Wyoming audio: only 16-bit samples (width 2) are taken, not " +
                                       std::to_string(width * 8) + "-bit");
    }
    if (utterance_.pcm && rate == utterance_.rate && channels == utterance_.channels) return;
    if (utterance_.pcm) utterance_.pcm->flush(utterance_.audio.samples);
    utterance_.rate = rate;
    utterance_.width = width;
    utterance_.channels = channels;
    utterance_.pcm = std::make_unique<audio::PcmStream>(
        audio::PcmFormat{.encoding = audio::PcmEncoding::pcm16, .rate = rate});
  }

  void add_audio(const json::object& data, std::string_view payload) {
    // Each chunk names its format; one that does not keeps the utterance's.
    if (data.contains("rate") || data.contains("width") || data.contains("channels")) {
      set_format(data);
    }
    const int channels = utterance_.channels;
    const std::size_t frame = 2 * static_cast<std::size_t>(channels);
    if (payload.size() % frame != 0) {
      throw invalid_request("Wyoming audio: a chunk of " + std::to_string(payload.size()) +
                            " bytes is not whole " + std::to_string(channels) +
                            "-channel 16-bit frames");
    }
    const double seconds =
        utterance_.audio.seconds() + static_cast<double>(payload.size() / frame) / utterance_.rate;
    if (seconds > options_.max_audio_seconds) {
      throw too_large("Wyoming audio: an utterance longer than WYOMING_MAX_AUDIO_SECONDS (" +
                      std::to_string(static_cast<long>(options_.max_audio_seconds)) + " s)");
    }
    std::string mixed;
    std::string_view mono = payload;
    if (channels > 1) {
      mixed = audio::mix_to_mono_pcm16(payload, audio::PcmEncoding::pcm16, channels);
      mono = mixed;
    }
    const std::size_t before = utterance_.audio.samples.size();
    utterance_.pcm->push(mono, utterance_.audio.samples);
    const std::size_t added = utterance_.audio.samples.size() - before;
    if (!utterance_.memory->grow(added * sizeof(float))) {
      throw unavailable(
          "Wyoming audio: the server holds as much audio as it may now "
          "(MAX_BUFFERED_UPLOAD_BYTES); try again later");
    }
  }

  asio::awaitable<void> transcribe() {
    utterance_.pcm->flush(utterance_.audio.samples);
    ctx_.service.clients().admit(client_);
    auto ticket = ctx_.inference.try_admit();
    if (!ticket) {
      metrics().refused.with({"inference_queue"}).add();
      throw overloaded("the server is busy: every inference place is taken; retry shortly", 1);
    }
    auto run = std::make_shared<JobRun>(stream_.get_executor());
    run->ticket = std::move(ticket);
    run->memory = std::move(utterance_.memory);
    run->samples = std::move(utterance_.audio);
    run->stream_segments = options_.transcript_streaming;
    run->job.model = model_;
    run->job.options = options_for_next_;
    run->job.client = client_;
    run->job.request_id = "wyoming-" + client_;
    utterance_ = Utterance{};
    auto asked = run->job.options.find("language");
    const std::string language = asked == run->job.options.end() ? "" : asked->second;
    auto started = std::chrono::steady_clock::now();
    if (run->samples.samples.empty()) {
      // Nothing heard: an empty transcript, as a model would give for silence.
      co_await finish_transcript("", language);
      co_return;
    }
    start(ctx_, run);
    CancelUnlessDone guard(run);
    if (options_.transcript_streaming) {
      json::object start_data;
      if (!language.empty()) start_data["language"] = language;
      co_await send("transcript-start", start_data);
    }
    {
      PeerWatch watch(stream_, run->cancel);
      for (;;) {
        JobNews news = co_await next(run, nullptr);
        for (const Segment& s : news.segments) {
          if (!strip(s.text).empty()) {
            json::object chunk;
            chunk["text"] = s.text;
            co_await send("transcript-chunk", chunk);
          }
        }
        if (news.done) break;
      }
    }
    if (run->error) std::rethrow_exception(run->error);
    const Transcription& t = run->transcription;
    spdlog::info(
        "wyoming {} transcript of {:.1f} s in {:.1f} ms", client_, t.duration,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count());
    std::string text = strip(t.text);
    std::string said = t.language.empty() ? language : t.language;
    co_await finish_transcript(text, said);
  }

  asio::awaitable<void> finish_transcript(const std::string& text, const std::string& language) {
    metrics().wyoming.with({"transcript"}).add();
    json::object data;
    data["text"] = text;
    if (!language.empty()) data["language"] = language;
    co_await send("transcript", data);
    if (options_.transcript_streaming) co_await send("transcript-stop");
    options_for_next_.clear();
    model_.clear();
  }

  ApiContext& ctx_;
  boost::beast::tcp_stream& stream_;
  const WyomingOptions& options_;
  std::string client_;
  std::function<void(bool)> set_idle_;
  WyomingEventReader reader_;
  std::string model_;                                    // from `transcribe`; empty: the default
  std::map<std::string, std::string> options_for_next_;  // from `transcribe`
  Utterance utterance_;
};

}  // namespace

asio::awaitable<void> serve_wyoming(ApiContext& ctx, boost::beast::tcp_stream& stream,
                                    const WyomingOptions& options, std::string client,
                                    std::function<void(bool idle)> set_idle) {
  WyomingConnection connection(ctx, stream, options, std::move(client), std::move(set_idle));
  co_await connection.serve();
}

}  // namespace sra::http
