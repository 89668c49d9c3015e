#include "models/whisper_model.h"

#include <gtest/gtest.h>

#include "core/errors.h"
#include "engine/whisper_test_support.h"

namespace sra {
namespace {

std::string config_error_of(const Config& config) {
  try {
    whisper_model_options_from(config);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return {};
}

TEST(WhisperModelPart, SeedNamesMapToGgmlFiles) {
  EXPECT_EQ(whisper_file_name("openai/whisper-tiny.en"), "ggml-tiny.en.bin");
  EXPECT_EQ(whisper_file_name("base"), "ggml-base.bin");
  EXPECT_EQ(whisper_file_name("openai/whisper-large"), "ggml-large-v3.bin");
  EXPECT_EQ(whisper_file_name("large-v3-turbo"), "ggml-large-v3-turbo.bin");
  EXPECT_EQ(whisper_file_name("ggml-small.bin"), "ggml-small.bin");
}

TEST(WhisperModelPart, DefaultsComeFromWhisperVariables) {
  std::string dir = (test::whisper_dir() / "models").string();
  auto o = whisper_model_options_from(Config({{"WHISPER_NAME", "openai/whisper-tiny-test-f16"},
                                              {"WHISPER_MODELS_DIR", dir},
                                              {"WHISPER_THREADS", "3"},
                                              {"WHISPER_LANGUAGE", "English"},
                                              {"WHISPER_TEMPERATURE", "0, 0.5"},
                                              {"WHISPER_BEAM_SIZE", "4"},
                                              {"WHISPER_PATIENCE", "2"},
                                              {"WHISPER_WITHOUT_TIMESTAMPS", "true"},
                                              {"WHISPER_LOGPROB_THRESHOLD", "none"},
                                              {"WHISPER_INITIAL_PROMPT", "hello there"},
                                              {"WHISPER_SUPPRESS_TOKENS", ""}}));
  EXPECT_EQ(o.model_path, dir + "/ggml-tiny-test-f16.bin");
  EXPECT_EQ(o.threads, 3);
  EXPECT_EQ(o.defaults.decode.language, "en");
  EXPECT_EQ(o.defaults.temperatures, (std::vector<double>{0.0, 0.5}));
  EXPECT_EQ(o.defaults.decode.beam_size, 4);
  EXPECT_EQ(o.defaults.decode.patience, 2.0);
  EXPECT_TRUE(o.defaults.decode.without_timestamps);
  EXPECT_FALSE(o.defaults.logprob_threshold.has_value());
  EXPECT_EQ(o.defaults.initial_prompt, "hello there");
  EXPECT_EQ(o.defaults.decode.suppress_tokens, "");
  // The rest keep OpenAI's defaults.
  EXPECT_EQ(o.defaults.compression_ratio_threshold, 2.4);
  EXPECT_EQ(o.defaults.no_speech_threshold, 0.6);
  EXPECT_TRUE(o.defaults.condition_on_previous_text);
}

TEST(WhisperModelPart, BadDefaultsNameTheVariable) {
  std::string path = test::whisper_model("tiny-test-f32").string();
  EXPECT_NE(config_error_of(Config({{"WHISPER_MODEL_PATH", path}, {"WHISPER_BEAM_SIZE", "many"}}))
                .find("WHISPER_BEAM_SIZE=many"),
            std::string::npos);
  EXPECT_NE(config_error_of(Config({{"WHISPER_MODEL_PATH", path}, {"WHISPER_TASK", "summarize"}}))
                .find("WHISPER_TASK"),
            std::string::npos);
  EXPECT_NE(config_error_of(Config({{"WHISPER_MODEL_PATH", path}, {"WHISPER_LANGUAGE", "klingon"}}))
                .find("WHISPER_LANGUAGE"),
            std::string::npos);
  EXPECT_NE(
      config_error_of(Config({{"WHISPER_MODEL_PATH", path}, {"WHISPER_TEMPERATURE", "0,hot"}}))
          .find("WHISPER_TEMPERATURE"),
      std::string::npos);
  EXPECT_NE(config_error_of(Config({{"WHISPER_MODEL_PATH", "/nonexistent/ggml.bin"}}))
                .find("WHISPER_MODEL_PATH=/nonexistent/ggml.bin does not exist"),
            std::string::npos);
  EXPECT_NE(
      config_error_of(Config({{"WHISPER_NAME", "medium"}, {"WHISPER_MODELS_DIR", "/nonexistent"}}))
          .find("WHISPER_NAME=medium"),
      std::string::npos);
}

TEST(WhisperModelPart, RequestsOverrideDefaults) {
  WhisperModelOptions o;
  o.model_path = test::whisper_model("tiny-test-f32").string();
  auto model = make_whisper_model(o);
  AudioBuffer audio{test::clip_samples("long/long_00001.wav")};
  TranscribeOptions request;
  request.values = {{"temperature", "0"},
                    {"without_timestamps", "true"},
                    {"condition_on_previous_text", "false"},
                    {"response_format", "json"}};
  Transcription t = model->transcribe(audio, request);
  auto ref =
      test::read_jsonl(test::whisper_dir() / "reference" / "long.tiny-test.openai_transcribe.jsonl")
          .at(1);
  std::string want(ref.at("text").as_string());
  EXPECT_EQ(" " + t.text, want);  // the part strips the leading space OpenAI keeps
  EXPECT_EQ(t.language, "en");
  EXPECT_EQ(t.segments.size(), 2u);
  EXPECT_NEAR(t.duration, 46.425, 0.01);

  for (auto [field, value] : {std::pair{"language", "klingon"}, std::pair{"beam_size", "0"},
                              std::pair{"temperature", "hot"}, std::pair{"task", "translate"}}) {
    try {
      model->transcribe(audio, TranscribeOptions{{{field, value}}});
      FAIL() << field;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::invalid_request);
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace sra
