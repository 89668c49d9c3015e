// Deepgram's live listen API: a WebSocket upgrade of GET /v1/listen, as Deepgram's SDKs and
// Pipecat's Deepgram service connect. Audio comes as binary messages in the
// query's `encoding` (linear16, mulaw or alaw) at its `sample_rate` (and `channels`, mixed down);
// text messages are `KeepAlive`, `Finalize` (ends the turn now) and `CloseStream` (ends the turn,
// sends every Results left, then Metadata, then closes). The server sends `Results` (interim ones
// with `interim_results`; a final one with `is_final` and `speech_final` per turn, with timed
// words), `SpeechStarted` (`vad_events`), `UtteranceEnd` (`utterance_end_ms`), `Metadata` and
// `Error`. Turns end after `endpointing` ms of silence (Silero VAD; at least 200 ms) or by Finalize
// (`endpointing=false`). The query parameters and the API key (`Authorization: Token`, or the
// subprotocols `token, <key>` from a browser) are checked before the upgrade (400/401 in
// Deepgram's shape). Every limit of live sessions applies (see live_connection.h).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string_view>

#include "http/api.h"

namespace sra::http {

// The upgrade of GET /v1/listen; a request that is not one gets 426 in Deepgram's shape.
boost::asio::awaitable<Response> deepgram_live_route(ApiContext& ctx,
                                                     const RequestParser::value_type& req,
                                                     Exchange& ex);

}  // namespace sra::http
