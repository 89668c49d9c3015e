#include "service/local_agreement.h"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace sra {

std::vector<HypothesisWord> hypothesis_words(const std::vector<std::string>& segment_texts) {
  std::vector<HypothesisWord> words;
  for (std::size_t s = 0; s < segment_texts.size(); ++s) {
    std::istringstream in(segment_texts[s]);
    std::string w;
    while (in >> w) words.push_back({w, static_cast<int>(s)});
  }
  return words;
}

std::string word_key(const std::string& word) {
  std::string key;
  for (char c : word) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x80 || std::isalnum(u)) key.push_back(static_cast<char>(std::tolower(u)));
  }
  return key.empty() ? word : key;
}

std::size_t covered_prefix(const std::vector<std::string>& confirmed,
                           const std::vector<std::string>& hypothesis) {
  const std::size_t c = confirmed.size();
  if (c == 0) return 0;
  auto same = [&](std::size_t h, std::size_t w) {
    return word_key(hypothesis[h]) == word_key(confirmed[w]);
  };
  // The usual case: the hypothesis repeats the confirmed words first.
  if (hypothesis.size() >= c) {
    bool all = true;
    for (std::size_t i = 0; i < c && all; ++i) all = same(i, i);
    if (all) return c;
  }
  for (std::size_t k = std::min<std::size_t>(c, 5); k >= 1; --k) {
    std::size_t best = 0;
    bool found = false;
    const std::size_t last_start =
        std::min(hypothesis.size() >= k ? hypothesis.size() - k : 0, c + 2 >= k ? c + 2 - k : 0);
    for (std::size_t j = 0; j <= last_start && j + k <= hypothesis.size(); ++j) {
      bool match = true;
      for (std::size_t i = 0; i < k && match; ++i) match = same(j + i, c - k + i);
      if (match) {
        const auto distance = [&](std::size_t end) { return end > c ? end - c : c - end; };
        if (!found || distance(j + k) < distance(best)) best = j + k;
        found = true;
      }
    }
    if (found) return best;
  }
  return std::min(c, hypothesis.size());
}

std::vector<std::string> LocalAgreement::update(const std::vector<HypothesisWord>& hypothesis) {
  std::vector<std::string> texts;
  for (const auto& w : hypothesis) texts.push_back(w.text);
  const std::size_t skip = covered_prefix(in_window_, texts);
  std::vector<std::string> rest;
  for (std::size_t i = skip; i < hypothesis.size(); ++i) rest.push_back(hypothesis[i].text);
  std::size_t agreed = 0;
  while (agreed < rest.size() && agreed < pending_.size() && rest[agreed] == pending_[agreed]) {
    ++agreed;
  }
  std::vector<std::string> confirmed(rest.begin(), rest.begin() + static_cast<long>(agreed));
  // From now on the window's confirmed words are the hypothesis' own, so that trimming after a
  // segment forgets exactly that segment's words.
  in_window_.clear();
  for (std::size_t i = 0; i < skip + agreed; ++i) in_window_.push_back(hypothesis[i].text);
  pending_.assign(rest.begin() + static_cast<long>(agreed), rest.end());
  confirmed_in_hypothesis_ = skip + agreed;
  return confirmed;
}

void LocalAgreement::forget(std::size_t count) {
  count = std::min(count, in_window_.size());
  in_window_.erase(in_window_.begin(), in_window_.begin() + static_cast<long>(count));
  confirmed_in_hypothesis_ =
      confirmed_in_hypothesis_ > count ? confirmed_in_hypothesis_ - count : 0;
}

std::vector<std::string> LocalAgreement::confirm_rest() {
  std::vector<std::string> rest = std::move(pending_);
  pending_.clear();
  in_window_.insert(in_window_.end(), rest.begin(), rest.end());
  confirmed_in_hypothesis_ += rest.size();
  return rest;
}

}  // namespace sra
