// Helpers for the Whisper engine tests: the shared test material, NumPy arrays, JSON lines.
#pragma once

#include <boost/json.hpp>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "audio/decoder.h"
#include "engine/whisper/engine.h"
#include "test_paths.h"

namespace sra::test {

inline std::filesystem::path whisper_dir() {
  return shared_dir() / "whisper";
}
inline std::filesystem::path whisper_model(const std::string& name) {
  return whisper_dir() / "models" / ("ggml-" + name + ".bin");
}

struct NpyArray {
  std::vector<std::size_t> shape;
  std::vector<float> values;
};

// Reads a little-endian float32 C-order .npy file.
inline NpyArray read_npy(const std::filesystem::path& path) {
  std::string bytes = read_file(path);
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
    throw std::runtime_error("not npy: " + path.string());
  std::size_t header_len, offset;
  if (bytes[6] == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
    offset = 10;
  } else {
    std::uint32_t v;
    std::memcpy(&v, bytes.data() + 8, 4);
    header_len = v;
    offset = 12;
  }
  std::string header = bytes.substr(offset, header_len);
  if (header.find("'<f4'") == std::string::npos ||
      header.find("'fortran_order': False") == std::string::npos) {
    throw std::runtime_error("unsupported npy: " + header);
  }
  NpyArray a;
  std::size_t open = header.find('(', header.find("'shape'")), close = header.find(')', open);
  std::string dims = header.substr(open + 1, close - open - 1);
  std::size_t pos = 0;
  while (pos < dims.size()) {
    std::size_t comma = dims.find(',', pos);
    std::string item =
        dims.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (item.find_first_of("0123456789") != std::string::npos) a.shape.push_back(std::stoul(item));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  std::size_t count = 1;
  for (auto d : a.shape) count *= d;
  a.values.resize(count);
  std::memcpy(a.values.data(), bytes.data() + offset + header_len, count * 4);
  return a;
}

inline std::vector<boost::json::object> read_jsonl(const std::filesystem::path& path) {
  std::vector<boost::json::object> out;
  std::string text = read_file(path);
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    std::string line = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (!line.empty()) out.push_back(boost::json::parse(line).as_object());
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return out;
}

inline std::vector<int> int_list(const boost::json::value& v) {
  std::vector<int> out;
  for (const auto& x : v.as_array()) out.push_back(static_cast<int>(x.to_number<std::int64_t>()));
  return out;
}

inline std::vector<float> clip_samples(const std::string& relative) {
  return audio::decode(read_file(whisper_dir() / "audio" / relative)).samples;
}

// One engine per model file for the whole test program.
inline const whisper::WhisperEngine& engine(const std::string& name) {
  static std::map<std::string, std::unique_ptr<whisper::WhisperEngine>> cache;
  auto& e = cache[name];
  if (!e)
    e = std::make_unique<whisper::WhisperEngine>(whisper::ModelFile::load(whisper_model(name)));
  return *e;
}

}  // namespace sra::test
