// GET /v1/realtime: OpenAI's Realtime API in its transcription-session form over WebSocket
// (`?intent=transcription`, as OpenAI's SDKs connect for transcription). The client streams
// audio with input_audio_buffer.append; turns end by server VAD or input_audio_buffer.commit;
// the server answers with speech_started/stopped, committed, transcription deltas while the
// person speaks (LiveSession) and `completed` per turn. Bad events get `error` events in OpenAI's
// shape and the session goes on; a client that sends audio faster than real time (beyond
// REALTIME_MAX_AHEAD_SECONDS), lets committed turns pile up, outlives
// REALTIME_MAX_SESSION_SECONDS or stops reading its events is told (when it still reads) and
// closed. At most MAX_REALTIME_SESSIONS are open (more get 503); with API keys set, the key comes
// in `Authorization` or, from a browser, as the WebSocket subprotocol
// `openai-insecure-api-key.<key>`.
//
// Transcriptions run on the inference pool through the TranscriptionService with the HTTP
// routes' model, limits and metrics. Runs on the connection's strand.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "http/api.h"

namespace sra::http {

inline constexpr std::string_view kRealtimePath = "/v1/realtime";

// Serves a request to /v1/realtime: a WebSocket upgrade takes over the connection until the
// session ends (exchange.responded is set); anything else gets an error response (426).
boost::asio::awaitable<Response> realtime_route(ApiContext& ctx,
                                                const RequestParser::value_type& request,
                                                Exchange& exchange);

// The API key a browser offers as a WebSocket subprotocol in a Sec-WebSocket-Protocol value
// ("realtime, openai-insecure-api-key.<key>"), if any.
std::optional<std::string> subprotocol_api_key(std::string_view protocols);

}  // namespace sra::http
