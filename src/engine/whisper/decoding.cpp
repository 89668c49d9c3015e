// WhisperEngine's single-window operations, following whisper/decoding.py.
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>

#include "core/errors.h"
#include "core/text.h"
#include "engine/whisper/engine.h"
#include "engine/whisper/kernels.h"
#include "engine/whisper/step_batcher.h"
#include "engine/whisper/thread_budget.h"
#include "engine/whisper/word_timing.h"

namespace sra::whisper {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// log_softmax of a row, in float as PyTorch computes it.
// The two numbers log_softmax subtracts: the row's max and log(sum(exp(row - max))).
struct LogSoftmaxShift {
  float max;
  float log_sum;
  float of(float logit) const { return logit - max - log_sum; }
};
LogSoftmaxShift log_softmax_shift(const float* logits, int n) {
  const float max = simd().max(logits, n);
  return {max, static_cast<float>(std::log(simd().sum_exp(logits, n, max)))};
}

std::vector<float> log_softmax(const float* logits, int n) {
  const LogSoftmaxShift shift = log_softmax_shift(logits, n);
  std::vector<float> out(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = shift.of(logits[i]);
  return out;
}

int argmax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = i;
  }
  return best;
}

// One decoding of one window: the state of whisper.decoding.DecodingTask.
class DecodingTask {
 public:
  DecodingTask(const WhisperEngine& engine, const Decoder& decoder, StepBatcher& batcher,
               const DecodingOptions& options, const std::vector<int>& non_speech)
      : decoder_(decoder), batcher_(batcher), tok_(engine.tokenizer()), opt_(options) {
    const HParams& h = engine.hparams();
    const SpecialTokens& sp = tok_.special();
    n_ctx_ = h.n_text_ctx;
    sample_len_ = opt_.sample_len.value_or(n_ctx_ / 2);
    if (opt_.beam_size && opt_.best_of)
      throw invalid_field("best_of", "beam_size and best_of cannot be given together");
    if (opt_.temperature == 0 && opt_.best_of)
      throw invalid_field("best_of", "best_of with greedy sampling (T=0) is not compatible");
    if (opt_.patience && !opt_.beam_size)
      throw invalid_field("patience", "patience requires beam_size to be given");
    if (opt_.length_penalty && !(*opt_.length_penalty >= 0 && *opt_.length_penalty <= 1)) {
      throw invalid_field("length_penalty",
                          "length_penalty (alpha) should be a value between 0 and 1");
    }
    if (opt_.task != "transcribe" && opt_.task != "translate") {
      throw invalid_request("task must be 'transcribe' or 'translate', not '" + opt_.task + "'");
    }
    n_group_ = opt_.beam_size.value_or(opt_.best_of.value_or(1));
    if (n_group_ < 1 || n_group_ > 64)
      throw invalid_request("beam_size and best_of must be in [1, 64]");
    if (sample_len_ < 1 || sample_len_ > n_ctx_)
      throw invalid_request("sample_len must be in [1, " + std::to_string(n_ctx_) + "]");

    // Tokenizer.sot_sequence: English-only models have neither language nor task tokens.
    std::vector<int> sot_sequence{sp.sot};
    if (tok_.multilingual()) {
      std::string language = opt_.language.value_or("en");
      int lang = tok_.language_token(language);
      if (lang < 0) throw invalid_request("unsupported language '" + language + "'");
      sot_sequence.push_back(lang);
      sot_sequence.push_back(opt_.task == "translate" ? sp.translate : sp.transcribe);
    }
    if (opt_.without_timestamps) sot_sequence.push_back(sp.no_timestamps);

    std::vector<int> tokens = sot_sequence;
    if (!opt_.prefix.empty()) {
      // Python's prefix_tokens[-max_prefix_len:], where -0 keeps the whole list.
      int max_prefix_len = n_ctx_ / 2 - sample_len_;
      std::vector<int> prefix = opt_.prefix;
      if (max_prefix_len > 0 && static_cast<int>(prefix.size()) > max_prefix_len) {
        prefix.erase(prefix.begin(), prefix.end() - max_prefix_len);
      } else if (max_prefix_len < 0) {
        std::size_t drop =
            std::min<std::size_t>(prefix.size(), static_cast<std::size_t>(-max_prefix_len));
        prefix.erase(prefix.begin(), prefix.begin() + static_cast<std::ptrdiff_t>(drop));
      }
      tokens.insert(tokens.end(), prefix.begin(), prefix.end());
    }
    if (!opt_.prompt.empty()) {
      std::vector<int> prompt = opt_.prompt;
      // Python's prompt[-(n_ctx // 2 - 1):]; beyond OpenAI, also short enough that the prompt,
      // the start sequence and the prefix leave room for at least one sampled token (OpenAI's
      // code would index past the positional embedding there).
      std::size_t room = static_cast<std::size_t>(
          std::max<std::ptrdiff_t>(0, n_ctx_ - 2 - static_cast<std::ptrdiff_t>(tokens.size())));
      std::size_t keep = std::min(static_cast<std::size_t>(n_ctx_ / 2 - 1), room);
      if (prompt.size() > keep)
        prompt.erase(prompt.begin(), prompt.end() - static_cast<std::ptrdiff_t>(keep));
      std::vector<int> with_prompt{sp.sot_prev};
      with_prompt.insert(with_prompt.end(), prompt.begin(), prompt.end());
      with_prompt.insert(with_prompt.end(), tokens.begin(), tokens.end());
      tokens = std::move(with_prompt);
    }
    if (static_cast<int>(tokens.size()) >= n_ctx_) {
      throw invalid_field("prefix", "the prefix leaves no room in the model's context");
    }
    initial_tokens_ = tokens;
    sample_begin_ = static_cast<int>(initial_tokens_.size());
    sot_index_ = static_cast<int>(std::find(tokens.begin(), tokens.end(), sp.sot) - tokens.begin());

    // Logit filters: SuppressBlank, SuppressTokens, ApplyTimestampRules, in this order.
    if (opt_.suppress_blank) {
      blank_tokens_ = tok_.encode(" ");
      blank_tokens_.push_back(sp.eot);
    }
    if (!opt_.suppress_tokens.empty()) {
      std::vector<int> list;
      std::stringstream in(opt_.suppress_tokens);
      std::string item;
      bool defaults = false;
      while (std::getline(in, item, ',')) {
        try {
          std::size_t used = 0;
          int id = std::stoi(item, &used);
          if (item.find_first_not_of(" \t", used) != std::string::npos)
            throw std::invalid_argument(item);
          if (id == -1) {
            defaults = true;
          } else if (id >= 0) {
            list.push_back(id);
          }
        } catch (const std::exception&) {
          throw invalid_request("suppress_tokens must be comma-separated token ids, got '" +
                                opt_.suppress_tokens + "'");
        }
      }
      if (defaults) list.insert(list.end(), non_speech.begin(), non_speech.end());
      for (int t : {sp.transcribe, sp.translate, sp.sot, sp.sot_prev, sp.sot_lm, sp.no_speech})
        list.push_back(t);
      std::sort(list.begin(), list.end());
      list.erase(std::unique(list.begin(), list.end()), list.end());
      for (int t : list) {
        if (t >= 0 && t < tok_.n_vocab()) suppress_.push_back(t);
      }
    }
    if (!opt_.without_timestamps && opt_.max_initial_timestamp && *opt_.max_initial_timestamp > 0) {
      double precision = 30.0 / h.n_audio_ctx;
      // Clamped to the window, so that no value can index past the logits.
      double index = std::nearbyint(*opt_.max_initial_timestamp / precision);
      max_initial_timestamp_index_ =
          static_cast<int>(std::clamp(index, 0.0, static_cast<double>(h.n_audio_ctx)));
    }
    rng_.seed(opt_.seed ? *opt_.seed : std::random_device{}());
  }

  DecodingResult run(const CrossCache& cross) {
    const SpecialTokens& sp = tok_.special();
    const int vocab = tok_.n_vocab();
    DecodingResult result;
    result.temperature = opt_.temperature;
    result.language = opt_.language.value_or("en");

    std::vector<std::vector<int>> tokens(static_cast<std::size_t>(n_group_), initial_tokens_);
    std::vector<float> sum_logprobs(static_cast<std::size_t>(n_group_), 0.0f);
    token_logprobs_.assign(static_cast<std::size_t>(n_group_), {});
    keyterm_states_.assign(static_cast<std::size_t>(n_group_), {});
    // The prompt is the same for every member of the group: run it once, then fork its cache.
    SelfCache first;
    std::vector<SelfCache*> one{&first};
    std::vector<float> hidden = decoder_.forward({initial_tokens_}, one, cross);
    const int d = decoder_.width();
    std::vector<float> logits_rows =
        decoder_.logits(hidden.data() + static_cast<std::size_t>(sample_begin_ - 1) * d, 1);
    {
      std::vector<float> sot_logits =
          decoder_.logits(hidden.data() + static_cast<std::size_t>(sot_index_) * d, 1);
      float max = *std::max_element(sot_logits.begin(), sot_logits.end());
      double sum = 0;
      for (float v : sot_logits) sum += std::exp(static_cast<double>(v - max));
      result.no_speech_prob =
          std::exp(static_cast<double>(sot_logits[static_cast<std::size_t>(sp.no_speech)] - max)) /
          sum;
    }
    std::vector<SelfCache> caches(static_cast<std::size_t>(n_group_), first);
    // From here on every step is one token per sequence: batched with other decodings' steps.
    StepBatcher::Decoding batched(batcher_);
    std::vector<float> step_logits(static_cast<std::size_t>(n_group_) * vocab);
    for (int g = 0; g < n_group_; ++g) {
      std::copy(logits_rows.begin(), logits_rows.end(),
                step_logits.begin() + static_cast<std::ptrdiff_t>(g) * vocab);
    }

    for (int i = 0; i < sample_len_; ++i) {
      if (opt_.cancel) opt_.cancel->check();
      if (i > 0) {
        std::vector<int> last;
        std::vector<SelfCache*> ptrs;
        for (int g = 0; g < n_group_; ++g) {
          last.push_back(tokens[static_cast<std::size_t>(g)].back());
          ptrs.push_back(&caches[static_cast<std::size_t>(g)]);
        }
        step_logits = batcher_.step(last, ptrs, cross);
      }
      for (int g = 0; g < n_group_; ++g) {
        apply_filters(step_logits.data() + static_cast<std::size_t>(g) * vocab,
                      tokens[static_cast<std::size_t>(g)]);
      }
      if (biased()) {
        unbiased_ = step_logits;  // the model's own (filtered) scores, for the logprobs
        for (int g = 0; g < n_group_; ++g) {
          const auto i = static_cast<std::size_t>(g);
          opt_.keyterms->apply(keyterm_states_[i], previous(tokens[i]),
                               step_logits.data() + i * static_cast<std::size_t>(vocab));
        }
      }
      bool completed = opt_.beam_size ? beam_update(tokens, step_logits, sum_logprobs, caches)
                                      : greedy_update(tokens, step_logits, sum_logprobs);
      if (completed || static_cast<int>(tokens[0].size()) > n_ctx_) break;
    }

    // finalize: candidates with their sums, sliced between the first sampled token and eot.
    std::vector<Candidate> candidates;
    if (opt_.beam_size) {
      candidates = finished_;
      if (static_cast<int>(candidates.size()) < *opt_.beam_size) {
        std::vector<int> order(static_cast<std::size_t>(n_group_));
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
          return sum_logprobs[static_cast<std::size_t>(a)] >
                 sum_logprobs[static_cast<std::size_t>(b)];
        });
        for (int j : order) {
          const auto g = static_cast<std::size_t>(j);
          std::vector<int> seq = tokens[g];
          seq.push_back(sp.eot);
          add_candidate(candidates, {std::move(seq), sum_logprobs[g], token_logprobs_[g], {}});
          if (static_cast<int>(candidates.size()) >= *opt_.beam_size) break;
        }
      }
    } else {
      for (int g = 0; g < n_group_; ++g) {
        const auto i = static_cast<std::size_t>(g);
        std::vector<int> seq = tokens[i];
        seq.push_back(sp.eot);
        candidates.push_back({std::move(seq), sum_logprobs[i], token_logprobs_[i], {}});
      }
    }
    int best = -1;
    double best_score = 0;
    std::vector<std::vector<int>> sliced;
    for (std::size_t c = 0; c < candidates.size(); ++c) {
      const auto& seq = candidates[c].tokens;
      auto end = std::find(seq.begin() + sample_begin_, seq.end(), sp.eot);
      sliced.emplace_back(seq.begin() + sample_begin_, end);
      double length = static_cast<double>(sliced.back().size());
      double penalty =
          opt_.length_penalty ? std::pow((5.0 + length) / 6.0, *opt_.length_penalty) : length;
      double score = static_cast<double>(candidates[c].sum_logprob) / penalty;
      if (best < 0 || score > best_score) {  // np.argmax: the first maximum
        best = static_cast<int>(c);
        best_score = score;
      }
    }
    const Candidate& chosen = candidates[static_cast<std::size_t>(best)];
    result.tokens = sliced[static_cast<std::size_t>(best)];
    result.token_logprobs.assign(
        chosen.logprobs.begin(),
        chosen.logprobs.begin() +
            static_cast<std::ptrdiff_t>(std::min(result.tokens.size(), chosen.logprobs.size())));
    result.text = strip(tok_.decode(result.tokens));
    // The sum ranked the sequences; with keyterms it holds their bonuses, and the model's own
    // log-probabilities (end of text included) give the average.
    double sum = chosen.sum_logprob;
    if (biased()) sum = std::accumulate(chosen.logprobs.begin(), chosen.logprobs.end(), 0.0);
    result.avg_logprob = sum / static_cast<double>(result.tokens.size() + 1);
    result.compression_ratio = compression_ratio(result.text);
    return result;
  }

 private:
  void apply_filters(float* logits, const std::vector<int>& tokens) const {
    const SpecialTokens& sp = tok_.special();
    const int vocab = tok_.n_vocab();
    const bool at_begin = static_cast<int>(tokens.size()) == sample_begin_;
    if (!blank_tokens_.empty() && at_begin) {
      for (int t : blank_tokens_) logits[t] = kNegInf;
    }
    for (int t : suppress_) logits[t] = kNegInf;
    if (opt_.without_timestamps) return;

    // ApplyTimestampRules.
    const int tb = sp.timestamp_begin;
    logits[sp.no_timestamps] = kNegInf;
    const std::size_t n = tokens.size() - static_cast<std::size_t>(sample_begin_);
    const int* seq = tokens.data() + sample_begin_;
    const bool last_was_timestamp = n >= 1 && seq[n - 1] >= tb;
    const bool penultimate_was_timestamp = n < 2 || seq[n - 2] >= tb;
    if (last_was_timestamp) {
      if (penultimate_was_timestamp) {
        std::fill(logits + tb, logits + vocab, kNegInf);
      } else {
        std::fill(logits, logits + sp.eot, kNegInf);
      }
    }
    int last_timestamp = -1;
    for (std::size_t i = 0; i < n; ++i) {
      if (seq[i] >= tb) last_timestamp = seq[i];
    }
    if (last_timestamp >= 0) {
      int timestamp_last =
          (last_was_timestamp && !penultimate_was_timestamp) ? last_timestamp : last_timestamp + 1;
      std::fill(logits + tb, logits + std::min(timestamp_last, vocab), kNegInf);
    }
    if (at_begin) {
      std::fill(logits, logits + tb, kNegInf);
      if (max_initial_timestamp_index_) {
        int last_allowed = tb + *max_initial_timestamp_index_;
        if (last_allowed + 1 < vocab) std::fill(logits + last_allowed + 1, logits + vocab, kNegInf);
      }
    }
    std::vector<float> lp = log_softmax(logits, vocab);
    float max_ts = kNegInf;
    for (int t = tb; t < vocab; ++t) max_ts = std::max(max_ts, lp[static_cast<std::size_t>(t)]);
    double ts_sum = 0;
    if (max_ts != kNegInf) {
      for (int t = tb; t < vocab; ++t)
        ts_sum += std::exp(static_cast<double>(lp[static_cast<std::size_t>(t)] - max_ts));
    }
    const float timestamp_logprob =
        max_ts == kNegInf ? kNegInf : max_ts + static_cast<float>(std::log(ts_sum));
    float max_text = kNegInf;
    for (int t = 0; t < tb; ++t) max_text = std::max(max_text, lp[static_cast<std::size_t>(t)]);
    if (timestamp_logprob > max_text) std::fill(logits, logits + tb, kNegInf);
  }

  // GreedyDecoder.update; returns whether every sequence has ended.
  bool greedy_update(std::vector<std::vector<int>>& tokens, const std::vector<float>& logits,
                     std::vector<float>& sum_logprobs) {
    const int vocab = tok_.n_vocab();
    const int eot = tok_.special().eot;
    bool completed = true;
    for (int g = 0; g < n_group_; ++g) {
      const float* row = logits.data() + static_cast<std::size_t>(g) * vocab;
      int next;
      if (opt_.temperature == 0) {
        next = argmax(row, vocab);
      } else {
        next = sample(row, vocab);
      }
      auto& seq = tokens[static_cast<std::size_t>(g)];
      if (seq.back() != eot) {  // the next token's log-probability alone
        const float logprob = log_softmax_shift(row, vocab).of(row[next]);
        sum_logprobs[static_cast<std::size_t>(g)] += logprob;
        if (biased()) {
          auto& state = keyterm_states_[static_cast<std::size_t>(g)];
          const int before = previous(seq);
          sum_logprobs[static_cast<std::size_t>(g)] += opt_.keyterms->take_back(state, next);
          state = opt_.keyterms->advance(state, before, next);
          token_logprobs_[static_cast<std::size_t>(g)].push_back(own_logprob(g, next));
        } else {
          token_logprobs_[static_cast<std::size_t>(g)].push_back(logprob);
        }
      } else {
        next = eot;
      }
      seq.push_back(next);
      completed = completed && next == eot;
    }
    return completed;
  }

  int sample(const float* row, int vocab) {
    std::vector<double> weights(static_cast<std::size_t>(vocab));
    float max = kNegInf;
    for (int i = 0; i < vocab; ++i) max = std::max(max, row[i]);
    for (int i = 0; i < vocab; ++i) {
      weights[static_cast<std::size_t>(i)] =
          row[i] == kNegInf ? 0.0
                            : std::exp((static_cast<double>(row[i]) - max) / opt_.temperature);
    }
    std::discrete_distribution<int> dist(weights.begin(), weights.end());
    return dist(rng_);
  }

  // A sequence with its sum of log-probabilities (the ranking score: keyterm bonuses included)
  // and each sampled token's own log-probability.
  struct Candidate {
    std::vector<int> tokens;
    float sum_logprob = 0;
    std::vector<float> logprobs;
    KeytermState keyterm;  // where the sequence stands among the keyterms
  };

  bool biased() const { return opt_.keyterms && !opt_.keyterms->empty(); }
  // The last sampled token of a sequence (-1 before the first).
  int previous(const std::vector<int>& seq) const {
    return static_cast<int>(seq.size()) > sample_begin_ ? seq.back() : -1;
  }
  // The model's own log-probability of `token` for sequence `g` at this step (without bonuses).
  float own_logprob(int g, int token) const {
    const int vocab = tok_.n_vocab();
    const float* row = unbiased_.data() + static_cast<std::size_t>(g) * vocab;
    return log_softmax_shift(row, vocab).of(row[token]);
  }

  // A Python dict's assignment: a sequence already listed keeps its place, with the new score.
  static void add_candidate(std::vector<Candidate>& list, Candidate c) {
    for (auto& entry : list) {
      if (entry.tokens == c.tokens) {
        entry.sum_logprob = c.sum_logprob;
        entry.logprobs = std::move(c.logprobs);
        entry.keyterm = c.keyterm;
        return;
      }
    }
    list.push_back(std::move(c));
  }

  // BeamSearchDecoder.update (one audio); returns whether enough candidates have finished.
  bool beam_update(std::vector<std::vector<int>>& tokens, const std::vector<float>& logits,
                   std::vector<float>& sum_logprobs, std::vector<SelfCache>& caches) {
    const int vocab = tok_.n_vocab();
    const int eot = tok_.special().eot;
    const int beam = *opt_.beam_size;
    const int max_candidates = static_cast<int>(std::nearbyint(beam * opt_.patience.value_or(1.0)));
    // Candidates in insertion order (a Python dict); a repeated sequence keeps its first place.
    std::vector<Candidate> scores;
    std::vector<int> sources;
    for (int j = 0; j < beam; ++j) {
      std::vector<float> lp =
          log_softmax(logits.data() + static_cast<std::size_t>(j) * vocab, vocab);
      std::vector<int> order(static_cast<std::size_t>(vocab));
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + beam + 1, order.end(), [&](int a, int b) {
        float x = lp[static_cast<std::size_t>(a)], y = lp[static_cast<std::size_t>(b)];
        return x > y || (x == y && a < b);
      });
      for (int r = 0; r <= beam; ++r) {
        int token = order[static_cast<std::size_t>(r)];
        float new_logprob =
            sum_logprobs[static_cast<std::size_t>(j)] + lp[static_cast<std::size_t>(token)];
        const std::vector<int>& source = tokens[static_cast<std::size_t>(j)];
        KeytermState keyterm;
        float own = lp[static_cast<std::size_t>(token)];
        if (biased()) {
          const KeytermState& state = keyterm_states_[static_cast<std::size_t>(j)];
          new_logprob += opt_.keyterms->take_back(state, token);
          keyterm = opt_.keyterms->advance(state, previous(source), token);
          own = own_logprob(j, token);
        }
        std::vector<int> seq = source;
        seq.push_back(token);
        std::vector<float> logprobs = token_logprobs_[static_cast<std::size_t>(j)];
        logprobs.push_back(own);
        bool found = false;
        for (std::size_t k = 0; k < scores.size(); ++k) {
          if (scores[k].tokens == seq) {
            scores[k].sum_logprob = new_logprob;
            scores[k].logprobs = std::move(logprobs);
            scores[k].keyterm = keyterm;
            sources[k] = j;
            found = true;
            break;
          }
        }
        if (!found) {
          scores.push_back({std::move(seq), new_logprob, std::move(logprobs), keyterm});
          sources.push_back(j);
        }
      }
    }
    std::vector<std::size_t> ranked(scores.size());
    std::iota(ranked.begin(), ranked.end(), 0);
    std::stable_sort(ranked.begin(), ranked.end(), [&](std::size_t a, std::size_t b) {
      return scores[a].sum_logprob > scores[b].sum_logprob;
    });
    std::vector<std::vector<int>> next_tokens;
    std::vector<std::vector<float>> next_logprobs;
    std::vector<KeytermState> next_keyterms;
    std::vector<int> source_indices;
    std::vector<Candidate> newly_finished;
    for (std::size_t k : ranked) {
      if (scores[k].tokens.back() == eot) {
        newly_finished.push_back(scores[k]);
      } else {
        sum_logprobs[next_tokens.size()] = scores[k].sum_logprob;
        next_tokens.push_back(scores[k].tokens);
        next_logprobs.push_back(scores[k].logprobs);
        next_keyterms.push_back(scores[k].keyterm);
        source_indices.push_back(sources[k]);
        if (static_cast<int>(next_tokens.size()) == beam) break;
      }
    }
    std::vector<SelfCache> rearranged;
    for (int s : source_indices) rearranged.push_back(caches[static_cast<std::size_t>(s)]);
    caches = std::move(rearranged);
    tokens = std::move(next_tokens);
    token_logprobs_ = std::move(next_logprobs);
    keyterm_states_ = std::move(next_keyterms);
    // newly_finished is already in descending order of score.
    for (auto& entry : newly_finished) {
      if (static_cast<int>(finished_.size()) >= max_candidates) break;
      add_candidate(finished_, std::move(entry));
    }
    return static_cast<int>(finished_.size()) >= max_candidates;
  }

  const Decoder& decoder_;
  StepBatcher& batcher_;
  const Tokenizer& tok_;
  DecodingOptions opt_;
  int n_ctx_ = 0;
  int sample_len_ = 0;
  int n_group_ = 1;
  std::vector<int> initial_tokens_;
  int sample_begin_ = 0;
  int sot_index_ = 0;
  std::vector<int> blank_tokens_;
  std::vector<int> suppress_;
  std::optional<int> max_initial_timestamp_index_;
  std::vector<Candidate> finished_;
  std::vector<std::vector<float>> token_logprobs_;  // per sequence: its sampled tokens' own
  std::vector<KeytermState> keyterm_states_;        // per sequence, with keyterms
  std::vector<float> unbiased_;  // with keyterms: this step's logits before their bonuses
  std::mt19937_64 rng_;
};

}  // namespace

double compression_ratio(const std::string& text) {
  if (text.empty()) return 0.0;
  uLongf size = compressBound(static_cast<uLong>(text.size()));
  std::vector<Bytef> out(size);
  if (compress2(out.data(), &size, reinterpret_cast<const Bytef*>(text.data()),
                static_cast<uLong>(text.size()), Z_DEFAULT_COMPRESSION) != Z_OK) {
    return 0.0;
  }
  return static_cast<double>(text.size()) / static_cast<double>(size);
}

bool stores_quantized_weights(const ModelFile& file) {
  const std::string_view stored = file.weight_type();
  return stored != "f32" && stored != "f16";
}

bool int8_by_default(const ModelFile& file) {
  bool fast = false;  // an AVX-512 VNNI or AVX2 kernel
  int8_kernel(&fast);
  return fast && stores_quantized_weights(file);
}

LinearMath compute_math(std::string_view compute, const ModelFile& file) {
  if (compute == "int8") return LinearMath::int8;
  if (compute == "bf16") return bf16_avx512_supported() ? LinearMath::bf16 : LinearMath::exact;
  if (compute == "auto" && int8_by_default(file)) return LinearMath::int8;
  return LinearMath::exact;
}

std::string compute_name(LinearMath math) {
  switch (math) {
    case LinearMath::int8:
    case LinearMath::int8_blocks:
      return std::string("int8 (") + int8_kernel_name() + " kernel)";
    case LinearMath::bf16:
      return std::string("bf16 (") + bf16_kernel_name() + " kernel)";
    case LinearMath::exact:
      break;
  }
  return "f32";
}

WhisperEngine::WhisperEngine(std::shared_ptr<const ModelFile> file)
    : file_(std::move(file)),
      tokenizer_(file_->vocabulary(), file_->hparams().n_vocab),
      encoder_(*file_),
      decoder_(*file_),
      batcher_(std::make_unique<StepBatcher>(decoder_)),
      non_speech_tokens_(tokenizer_.non_speech_tokens()),
      alignment_heads_(whisper::alignment_heads(file_->hparams(), tokenizer_.multilingual())) {}

WhisperEngine::~WhisperEngine() = default;

StepBatcherStats WhisperEngine::batching_stats() const {
  return batcher_->stats();
}

Mel WhisperEngine::mel(const std::vector<float>& samples, int padding) const {
  ThreadBudget::Scope threads(threads_);
  return log_mel_spectrogram(samples, padding, file_->mel_filters(), hparams().n_mels,
                             ThreadBudget::current());
}

std::vector<float> WhisperEngine::encode(const Mel& window, const CancelToken* cancel) const {
  ThreadBudget::Scope threads(threads_);
  return encoder_.forward(window, cancel);
}

std::map<std::string, double> WhisperEngine::detect_language(
    const std::vector<float>& features, const std::vector<std::string>& allowed) const {
  ThreadBudget::Scope threads(threads_);
  if (!tokenizer_.multilingual()) {
    throw invalid_request("this model is English-only and has no language detection");
  }
  const SpecialTokens& sp = tokenizer_.special();
  // The language tokens that compete: all, or those allowed.
  std::vector<int> candidates;
  for (int i = 0; i < sp.num_languages; ++i) {
    const int token = sp.first_language + i;
    if (allowed.empty() || std::find(allowed.begin(), allowed.end(),
                                     tokenizer_.language_code(token)) != allowed.end()) {
      candidates.push_back(token);
    }
  }
  if (candidates.empty()) {
    throw invalid_field("allowed_languages", "this model knows none of the allowed languages");
  }
  CrossCache cross = decoder_.cross_cache(features, half_cross_cache_);
  SelfCache cache;
  std::vector<SelfCache*> ptrs{&cache};
  std::vector<float> h = decoder_.forward({{sp.sot}}, ptrs, cross);
  std::vector<float> logits = decoder_.logits(h.data(), 1);
  float max = kNegInf;
  for (int t : candidates) max = std::max(max, logits[static_cast<std::size_t>(t)]);
  double sum = 0;
  for (int t : candidates)
    sum += std::exp(static_cast<double>(logits[static_cast<std::size_t>(t)] - max));
  std::map<std::string, double> probs;
  for (int t : candidates) {
    probs[tokenizer_.language_code(t)] =
        std::exp(static_cast<double>(logits[static_cast<std::size_t>(t)] - max)) / sum;
  }
  return probs;
}

DecodingResult WhisperEngine::decode(const std::vector<float>& features,
                                     const DecodingOptions& options) const {
  ThreadBudget::Scope threads(threads_);
  DecodingOptions opt = options;
  std::map<std::string, double> probs;
  if (!opt.language && tokenizer_.multilingual()) {
    probs = detect_language(features, opt.allowed_languages);
    opt.language = std::max_element(probs.begin(), probs.end(), [](auto& a, auto& b) {
                     return a.second < b.second;
                   })->first;
  }
  DecodingResult result = decode(decoder_.cross_cache(features, half_cross_cache_), opt);
  result.language_probs = std::move(probs);
  return result;
}

DecodingResult WhisperEngine::decode(const CrossCache& cross,
                                     const DecodingOptions& options) const {
  ThreadBudget::Scope threads(threads_);
  DecodingTask task(*this, decoder_, *batcher_, options, non_speech_tokens_);
  return task.run(cross);
}

}  // namespace sra::whisper
