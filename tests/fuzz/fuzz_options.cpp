// libFuzzer harness: the Whisper option table and a whole transcription with the tiny test model.
// The input is up to 8 lines of `field=value`, given to the model as a request's form fields, on
// one second of real speech; greedy decoding of at most 16 tokens is the default (an input may
// override both) so that the fuzzer runs many inputs; a `chunks=` line decodes the audio as two
// chunks together, and `chunking_strategy=` is parsed as the service parses it. Properties: only
// sra::Error comes out (invalid_request naming a field, for values out of bounds); every
// transcription finishes, within 60 s even at the options' costliest bounds under the sanitizers.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "audio/decoder.h"
#include "core/errors.h"
#include "fuzz_support.h"
#include "models/whisper_model.h"
#include "service/chunking.h"

namespace {
std::unique_ptr<sra::Model> model;
sra::AudioBuffer audio;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  auto shared = sra::fuzz::shared_dir();
  sra::WhisperModelOptions o;
  o.model_path = (shared / "whisper" / "models" / "ggml-tiny-test-f32.bin").string();
  o.threads = 1;
  model = sra::make_whisper_model(o);
  std::ifstream in(shared / "audio" / "jfk.wav", std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  audio = sra::audio::decode(bytes.str());
  audio.samples.resize(std::min<std::size_t>(audio.samples.size(), 16000));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  sra::TranscribeOptions request;
  request.values = {{"temperature", "0"}, {"sample_len", "16"}};
  std::istringstream lines(text);
  std::string line;
  for (int n = 0; n < 8 && std::getline(lines, line); ++n) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    request.values[line.substr(0, eq)] = line.substr(eq + 1);
  }
  auto started = std::chrono::steady_clock::now();
  try {
    // The service's chunking field parses first (JSON text, bounded), as the upload routes do.
    if (auto c = request.values.find("chunking_strategy"); c != request.values.end()) {
      sra::parse_chunking(c->second, "chunking_strategy");
    }
    if (request.values.count("chunks")) {
      // The audio in two chunks, decoded together (WhisperModel::transcribe_chunks).
      std::vector<sra::AudioBuffer> chunks(2);
      const auto half = static_cast<std::ptrdiff_t>(audio.samples.size() / 2);
      chunks[0].samples.assign(audio.samples.begin(), audio.samples.begin() + half);
      chunks[1].samples.assign(audio.samples.begin() + half, audio.samples.end());
      std::size_t next = 0;
      model->transcribe_chunks(chunks, request, [&](std::size_t i, sra::Transcription&&) {
        if (i != next++) __builtin_trap();  // in order, each once
      });
      if (next != chunks.size()) __builtin_trap();
    } else {
      model->transcribe(audio, request);
    }
  } catch (const sra::Error& e) {
    if (e.kind() != sra::ErrorKind::invalid_request) __builtin_trap();
  }
  if (std::chrono::steady_clock::now() - started > std::chrono::seconds(60)) __builtin_trap();
  return 0;
}
