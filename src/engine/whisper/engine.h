// WhisperEngine: one loaded Whisper model and the operations of OpenAI's whisper package on it:
// encode a window, detect its language, decode it (whisper.decoding.decode: greedy, sampling with
// best-of, beam search with patience, the logit filters), and transcribe long audio
// (whisper.transcribe.transcribe: 30 s windows sought by timestamp tokens, temperature fallback,
// no-speech skipping, conditioning on previous text, initial prompt).
//
// With word_timestamps, every segment also gets its words with times (whisper.timing: the
// cross-attention of the model's alignment heads, dynamic time warping, OpenAI's punctuation and
// boundary rules; see word_timing.h), and hallucination_silence_threshold skips silence before
// probable hallucinations as OpenAI's transcribe() does.
//
// Layering: kernels -> Encoder / Decoder (layers) -> WhisperEngine (model) -> WhisperModel in
// src/models (service). Immutable after construction; every method may be called from several
// threads at once (each call keeps its own caches).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/cancel.h"
#include "engine/whisper/decoder.h"
#include "engine/whisper/encoder.h"
#include "engine/whisper/keyterms.h"
#include "engine/whisper/mel.h"
#include "engine/whisper/model_file.h"
#include "engine/whisper/tokenizer.h"

namespace sra::whisper {

class StepBatcher;
struct StepBatcherStats {
  std::uint64_t batches = 0;    // one-token decoder passes run
  std::uint64_t sequences = 0;  // sequence steps in them
  std::uint64_t shared = 0;     // passes that served more than one decoding
};

// whisper.DecodingOptions.
struct DecodingOptions {
  std::string task = "transcribe";             // "transcribe" or "translate"
  std::optional<std::string> language;         // language code; nullopt: detect it
  std::vector<std::string> allowed_languages;  // detection picks among these (empty: any)
  double temperature = 0.0;                    // 0: greedy or beam search; > 0: sampling
  std::optional<int> sample_len;               // most tokens to sample (default n_text_ctx / 2)
  std::optional<int> best_of;                  // samples to draw at temperature > 0
  std::optional<int> beam_size;                // beams at temperature 0 (none: greedy)
  std::optional<double> patience;              // beam search patience (default 1.0)
  std::optional<double> length_penalty;        // alpha of ((5 + n) / 6)^alpha; none: divide by n
  std::vector<int> prompt;                     // previous-context tokens (after <|startofprev|>)
  std::vector<int> prefix;                     // tokens forced at the start of the output
  std::string suppress_tokens = "-1";          // comma-separated ids; -1: the default set
  bool suppress_blank = true;                  // no blank or end of text as the first token
  bool without_timestamps = false;             // sample text tokens only (<|notimestamps|>)
  std::optional<double> max_initial_timestamp = 1.0;  // seconds the first timestamp may reach
  std::optional<std::uint64_t> seed = 0;  // sampling seed (a fixed default: one file gives one
                                          // transcript); nullopt: a random one per decoding
  const CancelToken* cancel = nullptr;    // checked before each decoded token; may be null
  // Terms whose tokens get a bonus (keyterms.h); null or empty: OpenAI's decoding, unchanged.
  std::shared_ptr<const KeytermBias> keyterms;
};

// whisper.DecodingResult.
struct DecodingResult {
  std::string language;
  std::map<std::string, double> language_probs;  // set when the language was detected
  std::vector<int> tokens;            // sampled tokens, without the prompt and the end of text
  std::vector<float> token_logprobs;  // log-probability of each of `tokens` (after the filters)
  std::string text;                   // tokens decoded, stripped
  double avg_logprob = 0;
  double no_speech_prob = 0;
  double temperature = 0;
  double compression_ratio = 0;
};

// One word of a segment, with its time in seconds (rounded to 10 ms, as OpenAI rounds) and the
// mean probability of its tokens.
struct TimedWord {
  std::string word;  // as the model wrote it, with its leading space (" Americans,")
  double start = 0;
  double end = 0;
  double probability = 0;
};

// A word as the alignment gives it, before OpenAI's boundary rules: times are relative to the
// window, tokens are the word's text tokens.
struct WordTiming {
  std::string word;
  std::vector<int> tokens;
  double start = 0;
  double end = 0;
  double probability = 0;
};

// OpenAI's defaults of transcribe()'s prepend_punctuations and append_punctuations.
inline constexpr std::string_view kPrependPunctuations = "\"'\u201c\u00bf([{-";
inline constexpr std::string_view kAppendPunctuations =
    "\"'.\u3002,\uff0c!\uff01?\uff1f:\uff1a\u201d)]}\u3001";

struct TranscribeSegment;

// whisper.transcribe()'s keyword arguments (decode options are given in `decode`).
struct TranscribeOptions {
  DecodingOptions decode;  // language, task, beam_size, ... for every window
  std::vector<double> temperatures{0.0, 0.2, 0.4, 0.6, 0.8, 1.0};  // fallback schedule
  std::optional<double> compression_ratio_threshold = 2.4;         // above: fall back
  std::optional<double> logprob_threshold = -1.0;                  // below: fall back
  std::optional<double> no_speech_threshold = 0.6;                 // above (with low logprob): skip
  // When every temperature falls back: false keeps the last attempt (OpenAI's transcribe()); true
  // keeps the attempt with the best average log-probability among those under the compression
  // ratio threshold, else among all (faster-whisper's rule: no window ends as high-temperature
  // noise because its greedy decoding looped).
  bool best_failed_attempt = false;
  bool condition_on_previous_text = true;     // prompt each window with the previous text
  std::optional<std::string> initial_prompt;  // text that primes the first window
  bool carry_initial_prompt = false;          // keep the initial prompt in every window's prompt
  std::vector<double> clip_timestamps;        // start,end,... seconds to transcribe (empty: all)
  std::optional<std::string> prefix_text;     // text forced at the start of every window
  bool word_timestamps = false;               // give every segment its words with times
  std::vector<std::string> keyterms;          // terms decoding favours (names, product words)
  double keyterm_boost = 1.5;                 // logit bonus per token of a term
  bool keyterms_prompt = true;                // also put the terms in every window's prompt
  bool token_logprobs = false;  // the caller wants each segment's token_logprobs (they are kept
                                // either way; this says whether a caller passes them on)
  bool seek_by_words = false;   // time the words (returned or not) and continue after the last
                                // one when the window's last segment runs on past it
  std::string prepend_punctuations{kPrependPunctuations};    // merged into the next word
  std::string append_punctuations{kAppendPunctuations};      // merged into the previous word
  std::optional<double> hallucination_silence_threshold;     // (word timestamps) skip silence
                                                             // longer than this before anomalies
  std::function<void(const TranscribeSegment&)> on_segment;  // each segment once it is final
  const CancelToken* cancel = nullptr;  // checked per window and per token; may be null
};

struct TranscribeSegment {
  int id = 0;
  std::int64_t seek = 0;
  double start = 0;
  double end = 0;
  std::string text;
  std::vector<int> tokens;
  std::vector<float> token_logprobs;  // of each of `tokens`, as the decoding sampled them
  double temperature = 0;
  double avg_logprob = 0;
  double compression_ratio = 0;
  double no_speech_prob = 0;
  std::vector<TimedWord> words;  // with word_timestamps
};

struct TranscribeResult {
  std::string text;
  std::string language;
  std::vector<TranscribeSegment> segments;
  double encode_seconds = 0;  // time spent in the encoder (language detection included)
  double decode_seconds = 0;  // time spent decoding windows (fallbacks included)
};

class WhisperEngine {
 public:
  explicit WhisperEngine(std::shared_ptr<const ModelFile> file);
  ~WhisperEngine();
  WhisperEngine(const WhisperEngine&) = delete;  // the batcher refers to the decoder
  WhisperEngine& operator=(const WhisperEngine&) = delete;

  const ModelFile& file() const { return *file_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  const Decoder& decoder() const { return decoder_; }
  const HParams& hparams() const { return file_->hparams(); }

  // Log-mel of whole audio (16 kHz mono) with `padding` zero samples appended.
  Mel mel(const std::vector<float>& samples, int padding) const;
  // Encoder output of one n_mels x 3000 window: n_audio_ctx x n_audio_state; `cancel` is checked
  // before each layer.
  std::vector<float> encode(const Mel& window, const CancelToken* cancel = nullptr) const;
  // Language probabilities of an encoded window (multilingual models only). With `allowed`
  // (language codes), only those languages compete: the others get no probability and the
  // allowed ones' sum to 1. Throws sra::Error(invalid_request, field "allowed_languages") when
  // the model knows none of them.
  std::map<std::string, double> detect_language(const std::vector<float>& features,
                                                const std::vector<std::string>& allowed = {}) const;
  // Language probabilities of the first 30 s of audio, as OpenAI's example computes them:
  // pad_or_trim, log-mel, encode, detect_language (multilingual models only).
  std::map<std::string, double> detect_audio_language(
      const std::vector<float>& samples, const std::vector<std::string>& allowed = {}) const;
  // Decodes one encoded window.
  DecodingResult decode(const std::vector<float>& features, const DecodingOptions& options) const;
  // Word times of `text_tokens` in the window whose cross-attention keys and values are `cross`
  // (Decoder::cross_cache of its encoder output), of which the first `num_frames` mel frames are
  // audio (whisper.timing.find_alignment). `language` and `task` make the start sequence the
  // tokens were decoded after. Empty for no text tokens.
  std::vector<WordTiming> find_alignment(const CrossCache& cross,
                                         const std::vector<int>& text_tokens, int num_frames,
                                         const std::string& language,
                                         const std::string& task) const;
  // Transcribes audio of any length.
  TranscribeResult transcribe(const std::vector<float>& samples,
                              const TranscribeOptions& options) const;
  // Transcribes each of `chunks` on its own, as transcribe() would (nothing carried from one to
  // the next; set the language, or each chunk detects its own), `parallel` at a time (fewer when
  // their cross-attention caches would pass 320 MiB): the first
  // window of each is encoded in turn with every thread of the call, then they are decoded
  // together, so that the step batcher runs their tokens in shared passes. `on_done(i, result)`
  // is called for each chunk in order, on the calling thread. options.on_segment is not called.
  // The first error (a cancellation included) stops the others and is thrown.
  void transcribe_batch(const std::vector<const std::vector<float>*>& chunks,
                        const TranscribeOptions& options, int parallel,
                        const std::function<void(std::size_t, TranscribeResult&&)>& on_done) const;

  void set_threads(int threads) { threads_ = threads; }
  // Keep each window's cross-attention keys and values as IEEE halves (WHISPER_CROSS_CACHE=f16):
  // half their memory and of the bytes a decoded token reads; not exact f32 math.
  void set_half_cross_cache(bool half) { half_cross_cache_ = half; }
  // How each window's many-row products (the encoder's layers, the cross-attention keys and
  // values) are computed: exactly, in int8 (int8_gemm.h: WHISPER_COMPUTE=int8, with the decoder's
  // steps over quantized weights in int8 blocks, int8_gemv.h) or in bfloat16 (bf16_gemm.h:
  // WHISPER_COMPUTE=bf16, the steps exact). Before first use.
  void set_math(LinearMath math) {
    encoder_.set_math(math);
    decoder_.set_math(math);
  }
  // Decoder passes run and how many requests' steps they merged (step_batcher.h).
  StepBatcherStats batching_stats() const;

 private:
  // Decodes a window from its cross-attention cache; the language must be set (or the model
  // English-only).
  DecodingResult decode(const CrossCache& cross, const DecodingOptions& options) const;
  // A clip's log-mel (30 s of silence padded) and its first window encoded, when known.
  struct FirstWindow {
    Mel mel;
    std::vector<float> features;  // empty: encoded when needed
  };
  FirstWindow first_window(const std::vector<float>& samples, bool encode_it,
                           const CancelToken* cancel) const;
  TranscribeResult transcribe_from(FirstWindow first, const TranscribeOptions& options) const;

  std::shared_ptr<const ModelFile> file_;
  Tokenizer tokenizer_;
  Encoder encoder_;
  Decoder decoder_;
  std::unique_ptr<StepBatcher> batcher_;  // merges concurrent decodings' steps
  std::vector<int> non_speech_tokens_;
  std::vector<std::pair<int, int>> alignment_heads_;
  int threads_ = 1;
  bool half_cross_cache_ = false;
};

// Whether most of `file`'s weight matrices are stored quantized (q8_0, q5_*, q4_*).
bool stores_quantized_weights(const ModelFile& file);
// WHISPER_COMPUTE=auto's choice for `file`: int8 products for quantized weights where the
// AVX-512 VNNI or AVX2 kernel runs; exact products otherwise.
bool int8_by_default(const ModelFile& file);
// What a WHISPER_COMPUTE value (`auto`, `f32`, `int8` or `bf16`) computes with for `file` on
// this CPU: `bf16` is exact where the AVX-512 BF16 kernel does not run (bf16_avx512_supported()).
LinearMath compute_math(std::string_view compute, const ModelFile& file);
// The log's words for it: "f32", "int8 (AVX-512 VNNI kernel)", "bf16 (AVX-512 BF16 kernel)".
std::string compute_name(LinearMath math);

// len(text) / len(zlib.compress(text)), as whisper.utils.compression_ratio.
double compression_ratio(const std::string& text);

}  // namespace sra::whisper
