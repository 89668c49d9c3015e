// Word-level timestamps as OpenAI's whisper.timing computes them for transcribe(word_timestamps=
// True). WhisperEngine::find_alignment runs the model (the cross-attention scores of the alignment
// heads over the window's text tokens) and uses the numeric steps here: softmax over the window's
// audio frames, normalisation per head and frame across tokens, a median filter of width 7, the
// mean over heads, and dynamic time warping that gives each token its first frame. The tokens are
// grouped into words (at spaces and punctuation, or at Unicode character boundaries for languages
// written without spaces), punctuation is merged into its neighbour, and add_word_timestamps
// applies OpenAI's rules for over-long words at sentence and segment boundaries.
//
// Pure functions over plain values; safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/whisper/engine.h"
#include "engine/whisper/model_file.h"
#include "engine/whisper/tokenizer.h"

namespace sra::whisper {

// The alignment heads OpenAI publishes for the model with these dimensions (tiny, base, small,
// medium, each with its .en variant, large-v2 (also used for large-v1, which has its shape),
// large-v3, large-v3-turbo), as (layer, head); any other model uses every head of the last half
// of the decoder layers, as OpenAI's default does.
std::vector<std::pair<int, int>> alignment_heads(const HParams& h, bool multilingual);

// Median of `width` (odd) neighbours along each of `rows` rows of `cols` values, with reflect
// padding at both ends (whisper.timing.median_filter); rows shorter than width / 2 + 1 are kept.
std::vector<float> median_filter(const std::vector<float>& x, int rows, int cols, int width);

// Dynamic time warping over the costs x[n, m] (whisper.timing.dtw_cpu, float32 cumulative costs
// and its tie rule): the path from (0, 0) to (n - 1, m - 1) as parallel (row, column) lists.
std::pair<std::vector<int>, std::vector<int>> dtw(const std::vector<double>& x, int n, int m);

// Tokenizer.split_to_word_tokens: words and their tokens. Languages written without spaces (zh,
// ja, th, lo, my, yue) split at Unicode character boundaries; the others at tokens that start
// with a space, are special, or are punctuation.
void split_to_word_tokens(const Tokenizer& tokenizer, const std::vector<int>& tokens,
                          const std::string& language, std::vector<std::string>& words,
                          std::vector<std::vector<int>>& word_tokens);

// whisper.timing.merge_punctuations: a word that is only a space and opening punctuation joins
// the next word; one that is closing punctuation joins the previous word (left empty behind).
void merge_punctuations(std::vector<WordTiming>& alignment, std::string_view prepended,
                        std::string_view appended);

// whisper.timing.add_word_timestamps after find_alignment: gives each of one window's segments
// its words (times offset by the window's start, rounded to 10 ms) and adjusts the first and last
// words and the segments' start and end (`last_speech_timestamp`: where speech last ended before
// this window).
void add_word_timestamps(std::vector<TranscribeSegment>& segments,
                         std::vector<WordTiming> alignment, int eot,
                         std::string_view prepend_punctuations,
                         std::string_view append_punctuations, double last_speech_timestamp);

// Python's round(x, digits) for floats: the exact binary value rounded half to even.
double python_round(double x, int digits);

}  // namespace sra::whisper
