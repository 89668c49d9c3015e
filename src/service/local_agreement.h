// LocalAgreement-2: the streaming policy of Macháček, Dabre and Bojar, "Turning Whisper into
// Real-Time Transcription System" (2023). The growing audio of a turn is transcribed again and
// again; a word is confirmed (and shown) once two successive hypotheses agree on it and on every
// word before it. Confirmed words never change, so what is emitted is append-only.
//
// This class holds only the words. Its owner (LiveTurn) keeps the audio window the hypotheses
// are made of, and trims it at the end of a segment whose words are all confirmed; it then tells
// forget() how many confirmed words left the window. A plain value, one thread at a time.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace sra {

// A hypothesis' words, each with the index of the segment it came from.
struct HypothesisWord {
  std::string text;  // the word as the model wrote it, without spaces ("Americans,")
  int segment = 0;   // index of its segment in the hypothesis' transcription
};

// The words of a transcription's segments, split on white space.
std::vector<HypothesisWord> hypothesis_words(const std::vector<std::string>& segment_texts);

class LocalAgreement {
 public:
  // Takes the hypothesis of the whole current window and returns the words it newly confirms.
  // The hypothesis' first words are matched to the confirmed words still in the window (by their
  // letters and digits, so "country" matches "country."); the rest is compared with the previous
  // hypothesis' unconfirmed rest, and their common prefix is confirmed.
  std::vector<std::string> update(const std::vector<HypothesisWord>& hypothesis);
  // How many of the last hypothesis' first words are confirmed (the matched ones and the new).
  std::size_t confirmed_in_hypothesis() const { return confirmed_in_hypothesis_; }
  // The first `count` confirmed words left the window (it was trimmed after them).
  void forget(std::size_t count);
  // Confirms the unconfirmed rest of the last hypothesis as it is and returns it (the window is
  // about to be cut without agreement: it grew too long).
  std::vector<std::string> confirm_rest();
  // Words confirmed whose audio is still in the window.
  const std::vector<std::string>& in_window() const { return in_window_; }
  // The last hypothesis' words that are not confirmed yet.
  const std::vector<std::string>& pending() const { return pending_; }

 private:
  std::vector<std::string> in_window_;
  std::vector<std::string> pending_;
  std::size_t confirmed_in_hypothesis_ = 0;
};

// How many leading words of `hypothesis` stand for the words `confirmed` earlier (matched by
// word_key): all of them when it starts with them; else the end of the longest run (up to 5) of
// the last confirmed words found near their place (a word was dropped or added before them);
// else as many words as were confirmed.
std::size_t covered_prefix(const std::vector<std::string>& confirmed,
                           const std::vector<std::string>& hypothesis);

// `word` lower-cased with everything but letters, digits and non-ASCII bytes removed: the form
// in which two hypotheses' words are matched to confirmed ones.
std::string word_key(const std::string& word);

}  // namespace sra
