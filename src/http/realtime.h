// GET /v1/realtime: OpenAI's Realtime API in its transcription-session form over WebSocket
// (`?intent=transcription`, as OpenAI's SDKs connect for transcription). The client streams
// audio with input_audio_buffer.append; turns end by server VAD or input_audio_buffer.commit;
// the server answers with speech_started/stopped, committed, transcription deltas while the
// person speaks (LiveSession) and `completed` per turn. Bad events get `error` events in OpenAI's
// shape and the session goes on; a client that sends audio faster than real time (a token bucket
// of REALTIME_MAX_AHEAD_SECONDS), lets committed turns pile up (REALTIME_MAX_PENDING_TURNS,
// REALTIME_MAX_BUFFERED_SECONDS), sends no audio for REALTIME_IDLE_SECONDS, outlives
// REALTIME_MAX_SESSION_SECONDS or stops reading its events is told (when it still reads) and
// closed. A message is at most an append of REALTIME_MAX_AHEAD_SECONDS of audio; one over 64 KiB
// is read as it streams (only an append's members), never parsed into a document. At most
// MAX_REALTIME_SESSIONS are open (more get 503), REALTIME_MAX_SESSIONS_PER_CLIENT per client
// (429); a page of another origin is refused (403). With API keys set, the key comes in
// `Authorization` or, from a browser, as the WebSocket subprotocol
// `openai-insecure-api-key.<key>`.
//
// Network I/O runs on the connection's strand; the session's audio work (base64, decoding,
// resampling, VAD, turns) on a strand of its own on the blocking pool; transcriptions on the
// inference pool through dispatch() (the routes' admission, model, limits and metrics).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "http/api.h"

namespace sra::http {

inline constexpr std::string_view kRealtimePath = "/v1/realtime";

// Serves a request to /v1/realtime: a WebSocket upgrade takes over the connection until the
// session ends (exchange.responded is set); anything else gets an error response (426). A route
// handler for the router (router.h).
boost::asio::awaitable<Response> realtime_route(ApiContext& ctx,
                                                const RequestParser::value_type& request,
                                                Exchange& exchange, std::string_view tail);

// Whether a WebSocket upgrade with this Origin header (empty when none) may open a session on a
// server reached as `host` (the Host header): the server's own origin, or one CORS_ALLOW_ORIGINS
// allows; no Origin (not a browser) unless REALTIME_REQUIRE_ORIGIN.
bool origin_may_connect(std::string_view origin, std::string_view host, const Access& access,
                        bool require_origin);

// The API key a browser offers as a WebSocket subprotocol in a Sec-WebSocket-Protocol value
// ("realtime, openai-insecure-api-key.<key>"), if any.
std::optional<std::string> subprotocol_api_key(std::string_view protocols);

}  // namespace sra::http
