#include "models/whisper_model.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "core/errors.h"
#include "engine/whisper/kernels.h"

namespace sra {
namespace {

std::string trim(const std::string& s) {
  std::size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_none(const std::string& v) {
  std::string l = lower(trim(v));
  return l.empty() || l == "none" || l == "null";
}

double to_double(const std::string& v, const char* what) {
  std::string s = trim(v);
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(d)) {
    throw std::invalid_argument(std::string("expected ") + what + ", got '" + v + "'");
  }
  return d;
}

int to_int(const std::string& v, int min, int max) {
  double d = to_double(v, "an integer");
  if (d != std::floor(d) || d < min || d > max) {
    throw std::invalid_argument("expected an integer in [" + std::to_string(min) + ", " +
                                std::to_string(max) + "], got '" + v + "'");
  }
  return static_cast<int>(d);
}

bool to_bool(const std::string& v) {
  std::string l = lower(trim(v));
  if (l == "1" || l == "true" || l == "yes" || l == "on") return true;
  if (l == "0" || l == "false" || l == "no" || l == "off") return false;
  throw std::invalid_argument("expected true or false, got '" + v + "'");
}

std::vector<double> to_list(const std::string& v) {
  std::vector<double> out;
  std::stringstream in(v);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!trim(item).empty()) out.push_back(to_double(item, "a comma-separated list of numbers"));
  }
  return out;
}

std::optional<double> optional_double(const std::string& v) {
  if (is_none(v)) return std::nullopt;
  return to_double(v, "a number or none");
}

// The names a request may set; WHISPER_<NAME> sets the default.
const std::vector<std::string>& option_names() {
  static const std::vector<std::string> names = {"language",
                                                 "task",
                                                 "temperature",
                                                 "beam_size",
                                                 "best_of",
                                                 "patience",
                                                 "length_penalty",
                                                 "sample_len",
                                                 "without_timestamps",
                                                 "suppress_tokens",
                                                 "suppress_blank",
                                                 "initial_prompt",
                                                 "carry_initial_prompt",
                                                 "condition_on_previous_text",
                                                 "compression_ratio_threshold",
                                                 "logprob_threshold",
                                                 "no_speech_threshold",
                                                 "max_initial_timestamp",
                                                 "clip_timestamps",
                                                 "prefix",
                                                 "seed"};
  return names;
}

Segment to_segment(const whisper::TranscribeSegment& s) {
  Segment seg;
  seg.id = s.id;
  seg.seek = s.seek;
  seg.start = s.start;
  seg.end = s.end;
  seg.text = s.text;
  seg.tokens = s.tokens;
  seg.temperature = s.temperature;
  seg.avg_logprob = s.avg_logprob;
  seg.compression_ratio = s.compression_ratio;
  seg.no_speech_prob = s.no_speech_prob;
  return seg;
}

class WhisperModel final : public Model {
 public:
  explicit WhisperModel(WhisperModelOptions options)
      : options_(std::move(options)), engine_(whisper::ModelFile::load(options_.model_path)) {
    whisper::set_blas_threads(options_.threads);
    engine_.set_threads(options_.threads);
    // Names that need the vocabulary are checked now, not on the first request.
    check(options_.defaults);
  }

  Transcription transcribe(const AudioBuffer& audio, const TranscribeOptions& request) override {
    whisper::TranscribeOptions options = options_.defaults;
    for (const auto& [key, value] : request.values) {
      std::string name = key == "prompt" ? "initial_prompt" : key;
      if (std::find(option_names().begin(), option_names().end(), name) == option_names().end()) {
        continue;  // fields of other layers (response_format, ...) are not ours
      }
      try {
        apply_whisper_option(options, name, value);
      } catch (const std::invalid_argument& e) {
        throw invalid_request(key + ": " + e.what());
      }
    }
    check(options);
    if (request.on_segment) {
      options.on_segment = [&request](const whisper::TranscribeSegment& s) {
        request.on_segment(to_segment(s));
      };
    }
    whisper::TranscribeResult r = engine_.transcribe(audio.samples, options);
    Transcription t;
    t.text = trim(r.text);
    t.language = r.language;
    t.duration = audio.seconds();
    for (const auto& s : r.segments) t.segments.push_back(to_segment(s));
    return t;
  }

 private:
  void check(const whisper::TranscribeOptions& o) const {
    const auto& tok = engine_.tokenizer();
    if (o.decode.language && tok.multilingual() && tok.language_token(*o.decode.language) < 0) {
      throw invalid_request("language '" + *o.decode.language + "' is not one this model knows");
    }
    if (o.decode.task == "translate" && !tok.multilingual()) {
      throw invalid_request("task 'translate' needs a multilingual model");
    }
  }

  WhisperModelOptions options_;
  whisper::WhisperEngine engine_;
};

}  // namespace

void apply_whisper_option(whisper::TranscribeOptions& o, const std::string& name,
                          const std::string& value) {
  auto& d = o.decode;
  if (name == "language") {
    std::string v = lower(trim(value));
    if (is_none(v) || v == "auto") {
      d.language.reset();
      return;
    }
    // Accept names too ("english"), as OpenAI's transcribe does.
    for (const auto& code : whisper::language_codes()) {
      if (whisper::language_name(code) == v) v = code;
    }
    if (std::find(whisper::language_codes().begin(), whisper::language_codes().end(), v) ==
        whisper::language_codes().end()) {
      throw std::invalid_argument("unknown language '" + value + "'");
    }
    d.language = v;
  } else if (name == "task") {
    std::string v = lower(trim(value));
    if (v != "transcribe" && v != "translate") {
      throw std::invalid_argument("expected transcribe or translate, got '" + value + "'");
    }
    d.task = v;
  } else if (name == "temperature") {
    auto list = to_list(value);
    if (list.empty()) throw std::invalid_argument("expected at least one temperature");
    for (double t : list) {
      if (t < 0 || t > 2) throw std::invalid_argument("temperatures must be in [0, 2]");
    }
    o.temperatures = list;
  } else if (name == "beam_size") {
    if (is_none(value))
      d.beam_size.reset();
    else
      d.beam_size = to_int(value, 1, 64);
  } else if (name == "best_of") {
    if (is_none(value))
      d.best_of.reset();
    else
      d.best_of = to_int(value, 1, 64);
  } else if (name == "patience") {
    if (is_none(value))
      d.patience.reset();
    else
      d.patience = to_double(value, "a number");
    if (d.patience && *d.patience <= 0) throw std::invalid_argument("patience must be positive");
  } else if (name == "length_penalty") {
    d.length_penalty = optional_double(value);
    if (d.length_penalty && (*d.length_penalty < 0 || *d.length_penalty > 1)) {
      throw std::invalid_argument("length_penalty must be in [0, 1]");
    }
  } else if (name == "sample_len") {
    if (is_none(value))
      d.sample_len.reset();
    else
      d.sample_len = to_int(value, 1, 448);
  } else if (name == "without_timestamps") {
    d.without_timestamps = to_bool(value);
  } else if (name == "suppress_tokens") {
    std::string v = trim(value);
    for (char c : v) {
      if (!std::isdigit(static_cast<unsigned char>(c)) && c != ',' && c != '-' && c != ' ') {
        throw std::invalid_argument("expected comma-separated token ids, got '" + value + "'");
      }
    }
    d.suppress_tokens = v;
  } else if (name == "suppress_blank") {
    d.suppress_blank = to_bool(value);
  } else if (name == "initial_prompt") {
    if (trim(value).empty())
      o.initial_prompt.reset();
    else
      o.initial_prompt = value;
  } else if (name == "carry_initial_prompt") {
    o.carry_initial_prompt = to_bool(value);
  } else if (name == "condition_on_previous_text") {
    o.condition_on_previous_text = to_bool(value);
  } else if (name == "compression_ratio_threshold") {
    o.compression_ratio_threshold = optional_double(value);
  } else if (name == "logprob_threshold") {
    o.logprob_threshold = optional_double(value);
  } else if (name == "no_speech_threshold") {
    o.no_speech_threshold = optional_double(value);
  } else if (name == "max_initial_timestamp") {
    d.max_initial_timestamp = optional_double(value);
  } else if (name == "clip_timestamps") {
    o.clip_timestamps = to_list(value);
    for (std::size_t i = 1; i < o.clip_timestamps.size(); ++i) {
      if (o.clip_timestamps[i] < o.clip_timestamps[i - 1]) {
        throw std::invalid_argument("clip_timestamps must not decrease");
      }
    }
  } else if (name == "prefix") {
    // Encoded by the engine's tokenizer when the model is known; stored as text here.
    o.prefix_text = trim(value).empty() ? std::nullopt : std::optional<std::string>(value);
  } else if (name == "seed") {
    d.seed = static_cast<std::uint64_t>(to_int(value, 0, 2147483647));
  } else {
    throw std::invalid_argument("unknown option '" + name + "'");
  }
}

std::string whisper_file_name(const std::string& name) {
  std::string n = trim(name);
  for (const char* prefix : {"openai/whisper-", "whisper-", "ggml-"}) {
    if (n.rfind(prefix, 0) == 0) n = n.substr(std::string(prefix).size());
  }
  if (n.size() > 4 && n.compare(n.size() - 4, 4, ".bin") == 0) n = n.substr(0, n.size() - 4);
  if (n == "large") n = "large-v3";
  if (n == "turbo") n = "large-v3-turbo";
  return "ggml-" + n + ".bin";
}

WhisperModelOptions whisper_model_options_from(const Config& config) {
  WhisperModelOptions o;
  if (auto path = config.get("WHISPER_MODEL_PATH"); path && !trim(*path).empty()) {
    o.model_path = *path;
  } else {
    std::string name = config.get_string("WHISPER_NAME", "base");
    std::string dir = config.get_string("WHISPER_MODELS_DIR", "./models");
    o.model_path = (std::filesystem::path(dir) / whisper_file_name(name)).string();
    if (!std::filesystem::exists(o.model_path)) {
      throw config_error("WHISPER_NAME=" + name + ": " + o.model_path +
                         " does not exist (set WHISPER_MODEL_PATH, or put the file in "
                         "WHISPER_MODELS_DIR; scripts/download-model.sh fetches published ones)");
    }
  }
  if (!std::filesystem::exists(o.model_path)) {
    throw config_error("WHISPER_MODEL_PATH=" + o.model_path + " does not exist");
  }
  unsigned hw = std::thread::hardware_concurrency();
  o.threads = static_cast<int>(config.get_int("WHISPER_THREADS", hw ? hw : 1, 1, 256));
  for (const auto& name : option_names()) {
    std::string variable = "WHISPER_" + name;
    for (auto& c : variable) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (auto value = config.get(variable)) {
      try {
        apply_whisper_option(o.defaults, name, *value);
      } catch (const std::invalid_argument& e) {
        throw config_error(variable + "=" + *value + ": " + e.what());
      }
    }
  }
  return o;
}

std::unique_ptr<Model> make_whisper_model(const WhisperModelOptions& options) {
  return std::make_unique<WhisperModel>(options);
}

}  // namespace sra
