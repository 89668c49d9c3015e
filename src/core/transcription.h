// Transcription: what a model returns for one audio, as plain values.
//
// Carries everything the HTTP layer needs for every response format (the seed's JSON, OpenAI's
// json/verbose_json/srt/vtt): the text, the language, the duration and timed segments with their
// decoding statistics. Models that have no statistics leave them at their defaults.
#pragma once

#include <boost/json/fwd.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace sra {

// A word of a segment with its time, for models that give word timestamps.
struct Word {
  std::string word;        // as the model wrote it, with its leading space (" Americans,")
  double start = 0;        // seconds from the start of the audio
  double end = 0;          // seconds from the start of the audio
  double probability = 0;  // how sure the model is of the word, 0..1
  std::string speaker;     // with diarization: who said it ("A", "B", ... or a known name)
};

// A sampled text token with its log-probability (OpenAI's `include[]=logprobs`).
struct TokenLogprob {
  std::string token;   // the token's text, invalid UTF-8 (part of a character) as U+FFFD
  std::string bytes;   // the token's own bytes
  double logprob = 0;  // natural log of its probability when it was sampled
};

struct Segment {
  int id = 0;                          // index of the segment in the transcription
  std::int64_t seek = 0;               // offset of the decoding window, in 10 ms frames
  double start = 0;                    // seconds from the start of the audio
  double end = 0;                      // seconds from the start of the audio
  std::string text;                    // text of the segment, as the model wrote it
  std::vector<int> tokens;             // token ids, for models that have tokens
  double temperature = 0;              // sampling temperature that produced the segment
  double avg_logprob = 0;              // average log-probability of the tokens
  double compression_ratio = 0;        // gzip compression ratio of the text
  double no_speech_prob = 0;           // probability that the window holds no speech
  std::vector<Word> words;             // with word timestamps: the segment's words, in order
  std::vector<TokenLogprob> logprobs;  // when asked for: the segment's text tokens, in order
  std::string speaker;                 // with diarization: who said it (segments are cut where
                                       // the speaker changes)
};

// A stretch of one speaker's speech, as diarization finds it (overlapping speech gives
// overlapping turns).
struct SpeakerTurn {
  double start = 0;     // seconds from the start of the audio
  double end = 0;       // seconds from the start of the audio
  std::string speaker;  // "A", "B", ... or a known speaker's name
};

// Where a model's time went, for metrics; not part of any response. Zero when not measured.
struct StageTimes {
  double encode_seconds = 0;  // the acoustic encoder
  double decode_seconds = 0;  // the text decoder
};

struct Transcription {
  std::string text;               // the whole transcript
  std::string language;           // language code ("en"), empty if the model does not say
  double duration = 0;            // seconds of audio that were transcribed
  std::vector<Segment> segments;  // timed pieces of `text`, in order
  StageTimes stage_times;         // measured by the model, if it does
  bool diarized = false;          // speakers were asked for (segments and words carry them)
  std::vector<SpeakerTurn> speaker_turns;  // with diarization: every turn, by start time
};

// How likely speech is in one language, as a model judges it.
struct LanguageScore {
  std::string language;    // language code ("en")
  double probability = 0;  // 0..1; a model's scores sum to 1
};
// Every language a model knows with its probability, the most likely first.
using LanguageScores = std::vector<LanguageScore>;

// OpenAI's logprobs list: [{"token", "logprob", "bytes": [ints]}].
boost::json::array logprobs_json(const std::vector<TokenLogprob>& logprobs);
boost::json::value to_json(const Segment& s);
boost::json::value to_json(const Transcription& t);
// Throws sra::Error(internal) if `v` is not an object of the shape to_json writes.
Segment segment_from_json(const boost::json::value& v);
// Throws sra::Error(internal) if `v` is not an object of the shape to_json writes.
Transcription transcription_from_json(const boost::json::value& v);

}  // namespace sra
