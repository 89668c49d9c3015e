#include "engine/speakers/diarization.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <numeric>

#include "core/errors.h"
#include "engine/whisper/thread_budget.h"

namespace sra::speakers {
namespace {

constexpr int kChunkFrames = 589;             // SpeakerSegmentation::frames(kSegmentationChunk)
constexpr double kMinEmbeddingSeconds = 0.5;  // of a local speaker's speech for a voice print
// The most of it a print takes (its first seconds): the chunks overlap, so each stretch of speech
// is printed twice anyway. Measured: 4 s leaves the error rate of pyannote's sample (9.5 %), of
// the flite meeting (3.0 %) and the turns of 10 minutes of real speech unchanged and saves 20 %
// of the time; 2 s raised the sample's confusion (14.6 %).
constexpr double kMaxEmbeddingSeconds = 4.0;

struct Chunk {
  int first_frame = 0;                                  // on the global grid of 270-sample frames
  int frames = 0;                                       // of its 589 that lie within the audio
  std::vector<std::uint8_t> active;                     // [kChunkFrames][3]: local speaker speaks
  std::array<int, kLocalSpeakers> cluster{-1, -1, -1};  // each local speaker's embedding's cluster
  std::array<int, kLocalSpeakers> embedding{-1, -1, -1};
};

void normalize(std::vector<float>& v) {
  double n = 0;
  for (float x : v) n += static_cast<double>(x) * x;
  if (n <= 0) return;
  const float inv = static_cast<float>(1.0 / std::sqrt(n));
  for (float& x : v) x *= inv;
}

// Union-find over cluster labels.
int find(std::vector<int>& parent, int i) {
  while (parent[i] != i) i = parent[i] = parent[parent[i]];
  return i;
}

}  // namespace

std::vector<int> cluster_embeddings(const std::vector<std::vector<float>>& embeddings,
                                    float threshold, int min_clusters, int max_clusters,
                                    std::optional<int> exact) {
  const int n = static_cast<int>(embeddings.size());
  if (n == 0) return {};
  // Cosine distances of unit vectors.
  std::vector<std::vector<float>> unit = embeddings;
  for (auto& v : unit) normalize(v);
  std::vector<double> d(static_cast<std::size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      double dot = 0;
      for (std::size_t k = 0; k < unit[i].size(); ++k) dot += unit[i][k] * unit[j][k];
      d[static_cast<std::size_t>(i) * n + j] = d[static_cast<std::size_t>(j) * n + i] = 1 - dot;
    }
  // Average linkage by the nearest-neighbour chain (exact for this reducible linkage; O(n^2)):
  // the merges, then sorted by distance.
  struct Merge {
    double distance;
    int a, b;
  };
  std::vector<Merge> merges;
  std::vector<int> size(static_cast<std::size_t>(n), 1);
  std::vector<bool> alive(static_cast<std::size_t>(n), true);
  std::vector<int> chain;
  int remaining = n;
  while (remaining > 1) {
    if (chain.empty()) {
      for (int i = 0; i < n; ++i)
        if (alive[i]) {
          chain.push_back(i);
          break;
        }
    }
    const int a = chain.back();
    const int previous = chain.size() > 1 ? chain[chain.size() - 2] : -1;
    int best = -1;
    double best_d = std::numeric_limits<double>::infinity();
    for (int j = 0; j < n; ++j) {
      if (!alive[j] || j == a) continue;
      const double dj = d[static_cast<std::size_t>(a) * n + j];
      if (dj < best_d || (dj == best_d && j == previous)) best = j, best_d = dj;
    }
    if (best == previous) {
      chain.pop_back();
      chain.pop_back();
      merges.push_back({best_d, a, best});
      // Lance-Williams for average linkage; the merged cluster keeps index `best`.
      for (int k = 0; k < n; ++k) {
        if (!alive[k] || k == a || k == best) continue;
        const double merged = (size[a] * d[static_cast<std::size_t>(a) * n + k] +
                               size[best] * d[static_cast<std::size_t>(best) * n + k]) /
                              (size[a] + size[best]);
        d[static_cast<std::size_t>(best) * n + k] = d[static_cast<std::size_t>(k) * n + best] =
            merged;
      }
      size[best] += size[a];
      alive[a] = false;
      --remaining;
    } else {
      chain.push_back(best);
    }
  }
  std::stable_sort(merges.begin(), merges.end(),
                   [](const Merge& x, const Merge& y) { return x.distance < y.distance; });
  // How many merges to apply: those under the threshold, then as many clusters as asked.
  int applied = 0;
  while (applied < static_cast<int>(merges.size()) && merges[applied].distance < threshold)
    ++applied;
  int clusters = n - applied;
  if (exact) {
    clusters = std::clamp(*exact, 1, n);
  } else {
    clusters = std::clamp(clusters, std::min(std::max(min_clusters, 1), n),
                          std::max(1, std::min(max_clusters, n)));
  }
  applied = n - clusters;
  // The sorted merges refer to the chain's representatives; replaying them in sorted order
  // through union-find gives the same partition at every cut.
  std::vector<int> parent(static_cast<std::size_t>(n));
  std::iota(parent.begin(), parent.end(), 0);
  for (int m = 0; m < applied; ++m) {
    const int ra = find(parent, merges[m].a), rb = find(parent, merges[m].b);
    if (ra != rb) parent[ra] = rb;
  }
  std::vector<int> label(static_cast<std::size_t>(n), -1),
      root_label(static_cast<std::size_t>(n), -1);
  int next = 0;
  for (int i = 0; i < n; ++i) {
    const int r = find(parent, i);
    if (root_label[r] < 0) root_label[r] = next++;
    label[i] = root_label[r];
  }
  return label;
}

namespace {

// One chunk's segmentation and its local speakers' voice prints (empty where too little speech).
void process_chunk(const SpeakerSegmentation& segmentation, const CamPlusPlus& embedding,
                   const std::vector<float>& samples, int start, Chunk& chunk,
                   std::array<std::vector<float>, kLocalSpeakers>& prints) {
  const std::size_t first = static_cast<std::size_t>(start) * kFrameStep;
  const std::size_t available = std::min<std::size_t>(kSegmentationChunk, samples.size() - first);
  std::vector<float> window(kSegmentationChunk, 0.0f);
  std::copy_n(samples.begin() + static_cast<std::ptrdiff_t>(first), available, window.begin());
  const std::vector<float> speakers =
      powerset_to_speakers(segmentation.forward(window.data(), kSegmentationChunk));
  chunk.first_frame = start;
  // Frames past the end of the audio (a short recording's padding) are not kept.
  chunk.frames = available >= static_cast<std::size_t>(kSegmentationChunk)
                     ? kChunkFrames
                     : std::clamp(static_cast<int>(available / kFrameStep), 1, kChunkFrames);
  chunk.active.assign(static_cast<std::size_t>(kChunkFrames) * kLocalSpeakers, 0);
  for (int f = 0; f < chunk.frames; ++f)
    for (int s = 0; s < kLocalSpeakers; ++s)
      chunk.active[static_cast<std::size_t>(f) * kLocalSpeakers + s] =
          speakers[static_cast<std::size_t>(f) * kLocalSpeakers + s] > 0;

  // A voice print per local speaker, from the frames where it speaks alone (or, failing enough
  // of those, every frame where it speaks).
  std::vector<float> speech;
  for (int s = 0; s < kLocalSpeakers; ++s) {
    for (bool alone_only : {true, false}) {
      speech.clear();
      for (int f = 0; f < chunk.frames; ++f) {
        const std::uint8_t* a = chunk.active.data() + static_cast<std::size_t>(f) * kLocalSpeakers;
        if (!a[s] || (alone_only && a[0] + a[1] + a[2] > 1)) continue;
        const std::size_t from = first + static_cast<std::size_t>(f) * kFrameStep;
        const std::size_t to = std::min(samples.size(), from + kFrameStep);
        speech.insert(speech.end(), samples.begin() + static_cast<std::ptrdiff_t>(from),
                      samples.begin() + static_cast<std::ptrdiff_t>(to));
      }
      if (speech.size() >= kMinEmbeddingSeconds * kSegmentationRate) break;
    }
    if (speech.size() < kMinEmbeddingSeconds * kSegmentationRate) continue;
    if (speech.size() > kMaxEmbeddingSeconds * kSegmentationRate)
      speech.resize(static_cast<std::size_t>(kMaxEmbeddingSeconds * kSegmentationRate));
    prints[s] = embedding.embed(speech.data(), static_cast<int>(speech.size()));
    normalize(prints[s]);
  }
}

}  // namespace

Diarization Diarizer::diarize(const std::vector<float>& samples,
                              const DiarizationOptions& options) const {
  if (options.num_speakers && (*options.num_speakers < 1 || *options.num_speakers > 64))
    throw invalid_field("num_speakers", "must be between 1 and 64");
  if (options.min_speakers < 1 || options.max_speakers < options.min_speakers ||
      options.max_speakers > 64)
    throw invalid_field("max_speakers", "must be at least min_speakers (1 or more), at most 64");
  if (!(options.min_turn_seconds >= 0 && options.min_turn_seconds <= 60 &&
        options.min_gap_seconds >= 0 && options.min_gap_seconds <= 60))
    throw invalid_request("the shortest turn and gap must be between 0 and 60 seconds");
  if (!(options.step_seconds >= 1.0 && options.step_seconds <= 10.0))
    throw invalid_request("the diarization step must be between 1 and 10 seconds");
  Diarization result;
  const int total = static_cast<int>(samples.size());
  if (SpeakerSegmentation::frames(total) <= 0) return result;

  // 1. Chunks on the frame grid: starts are multiples of the frame step.
  const int step_frames = std::max(
      1, static_cast<int>(std::lround(options.step_seconds * kSegmentationRate / kFrameStep)));
  std::vector<int> starts;  // in frames
  const int last_start =
      std::max(0, (total - kSegmentationChunk) / kFrameStep);  // the chunk that ends the audio
  for (int s = 0; s < last_start; s += step_frames) starts.push_back(s);
  starts.push_back(last_start);

  // 1-2. Each chunk segmented and its local speakers' voice prints taken, chunks in parallel on
  // the process's thread budget (each chunk's work is its own; the results keep chunk order).
  std::vector<Chunk> chunks(starts.size());
  std::vector<std::array<std::vector<float>, kLocalSpeakers>> prints(starts.size());
  const whisper::ThreadBudget::Scope scope(whisper::ThreadBudget::total());
  const int threads = std::max(1, whisper::ThreadBudget::current());
  std::exception_ptr failure;
  std::atomic<bool> stop{false};
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int i = 0; i < static_cast<int>(starts.size()); ++i) {
    if (stop.load()) continue;
    try {
      if (options.cancelled && options.cancelled())
        throw Error(ErrorKind::cancelled, "the diarization was cancelled");
      process_chunk(segmentation_, embedding_, samples, starts[static_cast<std::size_t>(i)],
                    chunks[i], prints[i]);
    } catch (...) {
#pragma omp critical(sra_diarization_failure)
      if (!failure) failure = std::current_exception();
      stop = true;
    }
  }
  if (failure) std::rethrow_exception(failure);
  std::vector<std::vector<float>> embeddings;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    for (int s = 0; s < kLocalSpeakers; ++s) {
      if (prints[i][s].empty()) continue;
      chunks[i].embedding[s] = static_cast<int>(embeddings.size());
      embeddings.push_back(std::move(prints[i][s]));
    }
  }
  if (embeddings.empty()) return result;

  // 3. Clusters of voice prints.
  const std::vector<int> label =
      cluster_embeddings(embeddings, options.threshold, options.min_speakers, options.max_speakers,
                         options.num_speakers);
  const int clusters = *std::max_element(label.begin(), label.end()) + 1;
  for (Chunk& c : chunks)
    for (int s = 0; s < kLocalSpeakers; ++s)
      if (c.embedding[s] >= 0) c.cluster[s] = label[static_cast<std::size_t>(c.embedding[s])];

  // 4. Reconstruction on the global frame grid.
  const int frames = chunks.back().first_frame + chunks.back().frames;
  std::vector<float> activity(static_cast<std::size_t>(frames) * clusters, 0.0f);
  std::vector<float> count(static_cast<std::size_t>(frames), 0.0f);
  std::vector<float> coverage(static_cast<std::size_t>(frames), 0.0f);
  for (const Chunk& c : chunks) {
    for (int f = 0; f < c.frames; ++f) {
      const int g = c.first_frame + f;
      const std::uint8_t* a = c.active.data() + static_cast<std::size_t>(f) * kLocalSpeakers;
      coverage[g] += 1;
      count[g] += a[0] + a[1] + a[2];
      for (int s = 0; s < kLocalSpeakers; ++s) {
        if (!a[s] || c.cluster[s] < 0) continue;
        bool seen = false;  // two local speakers of one cluster count once
        for (int r = 0; r < s; ++r) seen |= a[r] && c.cluster[r] == c.cluster[s];
        if (!seen) activity[static_cast<std::size_t>(g) * clusters + c.cluster[s]] += 1.0f;
      }
    }
  }
  // Each frame: the `count` most active clusters (activity as the share of covering chunks).
  std::vector<std::uint8_t> speaking(static_cast<std::size_t>(frames) * clusters, 0);
  std::vector<int> order(static_cast<std::size_t>(clusters));
  for (int g = 0; g < frames; ++g) {
    if (coverage[g] <= 0) continue;
    const int k = static_cast<int>(std::lround(count[g] / coverage[g]));
    if (k <= 0) continue;
    std::iota(order.begin(), order.end(), 0);
    const float* row = activity.data() + static_cast<std::size_t>(g) * clusters;
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return row[x] > row[y]; });
    for (int i = 0; i < std::min(k, clusters); ++i)
      if (row[order[i]] > 0) speaking[static_cast<std::size_t>(g) * clusters + order[i]] = 1;
  }

  // Runs of frames to turns; short gaps filled, short turns dropped.
  const double frame_seconds = static_cast<double>(kFrameStep) / kSegmentationRate;
  const double centre = 0.5 * kFrameSamples / kSegmentationRate;
  std::vector<SpeakerTurn> turns;
  for (int k = 0; k < clusters; ++k) {
    std::vector<SpeakerTurn> own;
    for (int g = 0; g < frames;) {
      if (!speaking[static_cast<std::size_t>(g) * clusters + k]) {
        ++g;
        continue;
      }
      int end = g;
      while (end < frames && speaking[static_cast<std::size_t>(end) * clusters + k]) ++end;
      SpeakerTurn t;
      t.start = std::max(0.0, g * frame_seconds + centre - frame_seconds / 2);
      t.end = std::min(static_cast<double>(total) / kSegmentationRate,
                       (end - 1) * frame_seconds + centre + frame_seconds / 2);
      t.speaker = k;
      if (!own.empty() && t.start - own.back().end < options.min_gap_seconds) {
        own.back().end = t.end;
      } else {
        own.push_back(t);
      }
      g = end;
    }
    for (const SpeakerTurn& t : own)
      if (t.end - t.start >= options.min_turn_seconds) turns.push_back(t);
  }
  std::sort(turns.begin(), turns.end(), [](const SpeakerTurn& a, const SpeakerTurn& b) {
    return a.start != b.start ? a.start < b.start : a.speaker < b.speaker;
  });
  // Speakers numbered by first appearance; their centroids.
  std::vector<int> renumber(static_cast<std::size_t>(clusters), -1);
  int next = 0;
  for (SpeakerTurn& t : turns) {
    if (renumber[t.speaker] < 0) renumber[t.speaker] = next++;
    t.speaker = renumber[t.speaker];
  }
  result.turns = std::move(turns);
  result.speakers = next;
  result.centroids.assign(static_cast<std::size_t>(next),
                          std::vector<float>(embeddings.front().size(), 0.0f));
  for (std::size_t i = 0; i < embeddings.size(); ++i) {
    const int speaker = renumber[label[i]];
    if (speaker < 0) continue;
    for (std::size_t j = 0; j < embeddings[i].size(); ++j)
      result.centroids[speaker][j] += embeddings[i][j];
  }
  for (auto& c : result.centroids) normalize(c);
  return result;
}

std::vector<float> Diarizer::voice_print(const std::vector<float>& clip) const {
  if (clip.size() < static_cast<std::size_t>(kSegmentationRate / 10))
    throw invalid_request("a voice print needs at least 0.1 s of audio");
  Chunk chunk;
  std::array<std::vector<float>, kLocalSpeakers> prints;
  process_chunk(segmentation_, embedding_, clip, 0, chunk, prints);
  int main = -1;
  std::array<int, kLocalSpeakers> spoken{0, 0, 0};
  for (int f = 0; f < chunk.frames; ++f)
    for (int s = 0; s < kLocalSpeakers; ++s)
      spoken[s] += chunk.active[static_cast<std::size_t>(f) * kLocalSpeakers + s];
  for (int s = 0; s < kLocalSpeakers; ++s)
    if (!prints[s].empty() && (main < 0 || spoken[s] > spoken[main])) main = s;
  if (main >= 0) return prints[main];
  const int count = static_cast<int>(std::min<std::size_t>(clip.size(), kSegmentationChunk));
  std::vector<float> print = embedding_.embed(clip.data(), count);
  normalize(print);
  return print;
}

}  // namespace sra::speakers
