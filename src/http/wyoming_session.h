// A Wyoming connection (Home Assistant's voice protocol) served by the one transcription path.
//
// What a client may send, as Home Assistant and PyPI `wyoming`'s client do: `describe` (answered
// by `info`: our ASR program, each served model with its languages), `transcribe` (`name`: a
// served model; `language`; `transcript_names`/`transcript_terms`: words to bias toward, as
// keyterms), then `audio-start`, `audio-chunk`s (16-bit PCM, any rate from 8 to 48 kHz, channels
// mixed down) and `audio-stop`, answered by `transcript-start`, a `transcript-chunk` per segment
// as it is decoded, `transcript` (the whole text) and `transcript-stop` (the streaming events only
// with WYOMING_TRANSCRIPT_STREAMING; clients that do not know them skip them). `ping` gets `pong`;
// other events are ignored, as the protocol says. The transcription runs on the inference pool
// with the per-client limits, deadline, metrics and VAD of every route; a client that leaves
// cancels it. A protocol error, a refused job or audio past WYOMING_MAX_AUDIO_SECONDS (or the
// process's upload memory budget) gets an `error` event (`text`, `code`: the error kind) and the
// connection is closed. The protocol has no authentication: the port is off unless WYOMING_PORT
// is set.
//
// serve_wyoming() runs on the connection's strand, for the connection's lifetime.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <functional>
#include <string>

#include "core/config.h"
#include "http/api.h"

namespace sra::http {

struct WyomingOptions {
  std::string host = "127.0.0.1";    // address the Wyoming port listens on (WYOMING_HOST)
  int port = -1;                     // WYOMING_PORT; -1: no Wyoming server; 0: a free port
  double idle_seconds = 300;         // a connection that sends nothing this long is closed
  double max_audio_seconds = 300;    // one utterance's audio, at most
  bool transcript_streaming = true;  // send transcript-start/-chunk/-stop around `transcript`
};

WyomingOptions wyoming_options_from(const Config& config);

// Serves one connection until the client closes it, idles past idle_seconds or errs. `client` is
// the peer's identity for the per-client limits; `set_idle(true)` is called while the connection
// waits between utterances (a server that shuts down or needs room may close it then), and
// `set_idle(false)` once bytes come.
boost::asio::awaitable<void> serve_wyoming(ApiContext& ctx, boost::beast::tcp_stream& stream,
                                           const WyomingOptions& options, std::string client,
                                           std::function<void(bool idle)> set_idle);

}  // namespace sra::http
