// Deepgram's pre-recorded listen API, so that Deepgram clients (PyPI `deepgram-sdk`, Pipecat's
// Deepgram service) can point at this server: `POST /v1/listen` with the audio as
// the body (any format FFmpeg reads, or raw PCM named by `encoding` + `sample_rate` [+
// `channels`]), the query parameters of deepgram_option_specs(), `Authorization: Token <key>`
// where API keys are set, answered in Deepgram's response shape (`metadata`,
// `results.channels[0].alternatives[0]` with `transcript`, `confidence`, `words[]`, `paragraphs`;
// `results.utterances`). Errors come in Deepgram's shape ({"err_code", "err_msg", "request_id"},
// 400 for a bad request). A parameter this server cannot honour (a feature it lacks) is refused
// by name, never silently ignored; one that only Deepgram's billing or logs use is accepted.
//
// The route runs on the connection's strand; the transcription goes through dispatch() like every
// upload's. The rendering functions are pure and safe from any thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "audio/pcm_stream.h"
#include "core/message_bus.h"
#include "core/option_table.h"
#include "core/transcription.h"
#include "http/api.h"

namespace sra::http {

// The query parameters /v1/listen takes, with their bounds (the OpenAPI document's too).
const std::vector<OptionSpec>& deepgram_option_specs();

// How a transcription is written in Deepgram's shape.
struct DeepgramRender {
  bool punctuate = false;          // punctuated, capitalised transcript and `punctuated_word`s
  bool utterances = false;         // results.utterances
  double utterance_split = 0.8;    // a pause this long (s) between words starts an utterance
  bool paragraphs = false;         // alternatives[0].paragraphs
  bool detected_language = false;  // channels[0].detected_language
  std::string request_id;          // metadata.request_id
  std::string model;               // metadata.models / model_info
  std::vector<std::string> tags;   // metadata.tags (as sent)
  std::string created;             // metadata.created, ISO 8601
};

// Deepgram's response for `t`.
boost::json::object deepgram_response(const Transcription& t, const DeepgramRender& render);

// One alternative in Deepgram's shape ({"transcript", "confidence", "words"}) for timed `words`,
// or, when the model timed none, for `text` (with `fallback_confidence`).
boost::json::object deepgram_alternative(const std::vector<Word>& words, const std::string& text,
                                         double fallback_confidence, bool punctuate);

// The query of a /v1/listen request, checked against deepgram_option_specs() (and, for a live
// connection, deepgram_live_option_specs()). Throws sra::Error(invalid_request) naming the
// parameter at fault.
struct ListenRequest {
  std::string model;                           // a served model; empty: the default one
  std::map<std::string, std::string> options;  // for the model (language, keyterms, ...)
  DeepgramRender render;
  std::optional<audio::PcmFormat> raw;  // raw audio (REST: in the body; live: the stream's)
  int channels = 1;                     // raw audio's interleaved channels
  // Live only:
  bool interim_results = false;  // Results with is_final=false while a turn is spoken
  int endpointing_ms = 500;      // silence that ends a turn; -1: only Finalize ends one
  int utterance_end_ms = 0;      // send UtteranceEnd after each turn (0: never)
  bool vad_events = false;       // send SpeechStarted
  std::string callback;          // POST only: queue the work and POST the response here
};
ListenRequest parse_listen(ApiContext& ctx, std::string_view target, bool live);
// The parameters only a live connection takes (interim_results, endpointing, ...).
const std::vector<OptionSpec>& deepgram_live_option_specs();

// The webhook body of a task queued by a POST with `callback` (the service's webhook format
// "deepgram"): Deepgram's response for a transcription, its error shape for a failure.
std::string deepgram_callback_body(const std::string& task_id, const TaskResult& result,
                                   const std::map<std::string, std::string>& options);

// Now in Deepgram's `created` form (ISO 8601 with milliseconds, UTC).
std::string deepgram_created_now();

// Deepgram's error body and status for `e`.
Response deepgram_error_response(const Error& e, const std::string& request_id);

// A word as Deepgram's `word` writes it: lower case, without the punctuation around it
// ("Americans," -> "americans"); empty when nothing is left.
std::string deepgram_plain_word(std::string_view written);

boost::asio::awaitable<Response> deepgram_listen_route(ApiContext& ctx,
                                                       const RequestParser::value_type& req,
                                                       Exchange& ex, std::string_view tail);

}  // namespace sra::http
