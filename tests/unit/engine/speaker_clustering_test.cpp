// Agglomerative clustering of voice prints: a threshold cut, and the counts asked for.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/speakers/diarization.h"

namespace sra::speakers {
namespace {

// `per` noisy copies of each of `centres` random unit directions in 16 dimensions.
std::vector<std::vector<float>> blobs(int centres, int per, float noise, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0, 1);
  std::vector<std::vector<float>> out;
  std::vector<std::vector<float>> c(static_cast<std::size_t>(centres), std::vector<float>(16));
  for (auto& v : c)
    for (float& x : v) x = normal(rng);
  for (int i = 0; i < per; ++i)
    for (const auto& centre : c) {
      std::vector<float> v = centre;
      for (float& x : v) x += noise * normal(rng);
      out.push_back(v);
    }
  return out;
}

TEST(SpeakerClustering, ThresholdFindsTheGroups) {
  const auto points = blobs(3, 5, 0.1f, 1);  // interleaved: 0 1 2 0 1 2 ...
  const auto label = cluster_embeddings(points, 0.5f, 1, 20, std::nullopt);
  ASSERT_EQ(label.size(), 15u);
  EXPECT_EQ((std::vector<int>(label.begin(), label.begin() + 3)), (std::vector<int>{0, 1, 2}));
  for (std::size_t i = 3; i < label.size(); ++i) EXPECT_EQ(label[i], label[i % 3]) << i;
}

TEST(SpeakerClustering, CountsAskedForWin) {
  const auto points = blobs(3, 4, 0.1f, 2);
  auto count = [](const std::vector<int>& l) { return *std::max_element(l.begin(), l.end()) + 1; };
  EXPECT_EQ(count(cluster_embeddings(points, 0.5f, 1, 20, 2)), 2);
  EXPECT_EQ(count(cluster_embeddings(points, 0.5f, 1, 20, 5)), 5);
  EXPECT_EQ(count(cluster_embeddings(points, 0.5f, 1, 2, std::nullopt)), 2);   // max_speakers
  EXPECT_EQ(count(cluster_embeddings(points, 0.5f, 4, 20, std::nullopt)), 4);  // min_speakers
  EXPECT_EQ(count(cluster_embeddings(points, 2.5f, 1, 20, std::nullopt)), 1);  // all merge
  EXPECT_EQ(count(cluster_embeddings(points, 0.5f, 1, 20, 99)), 12);  // no more than points
  EXPECT_TRUE(cluster_embeddings({}, 0.5f, 1, 20, std::nullopt).empty());
  EXPECT_EQ(cluster_embeddings({{1, 0}}, 0.5f, 1, 20, std::nullopt), std::vector<int>{0});
}

}  // namespace
}  // namespace sra::speakers
