#include "engine/whisper/model_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "core/errors.h"
#include "engine/whisper/memory.h"
#include "engine/whisper/simd_kernels.h"

namespace sra::whisper {
namespace {

constexpr std::uint32_t kMagic = 0x67676d6c;  // "ggml"
constexpr std::size_t kMaxTokenBytes = 1024;
constexpr int kMaxTensors = 100000;

// Sequential reader over the mapped bytes that refuses to read past the end.
class Reader {
 public:
  Reader(const unsigned char* data, std::size_t size, const std::string& file)
      : data_(data), size_(size), file_(file) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw config_error("whisper model " + file_ + ": " + what + " (at byte " +
                       std::to_string(pos_) + " of " + std::to_string(size_) + ")");
  }
  std::int32_t i32(const char* what) {
    need(4, what);
    std::int32_t v;
    std::memcpy(&v, data_ + pos_, 4);
    pos_ += 4;
    return v;
  }
  const unsigned char* bytes(std::size_t n, const char* what) {
    need(n, what);
    const unsigned char* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  void need(std::size_t n, const char* what) const {
    if (n > size_ - pos_) fail(std::string("file is truncated in ") + what);
  }
  std::size_t remaining() const { return size_ - pos_; }
  std::size_t pos() const { return pos_; }

 private:
  const unsigned char* data_;
  std::size_t size_;
  std::string file_;
  std::size_t pos_ = 0;
};

void check_range(Reader& r, const char* name, int value, int min, int max) {
  if (value < min || value > max) {
    r.fail(std::string("hyper-parameter ") + name + " = " + std::to_string(value) +
           " is outside [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
}

}  // namespace

std::shared_ptr<const ModelFile> ModelFile::load(const std::filesystem::path& path) {
  std::shared_ptr<ModelFile> file(new ModelFile());
  file->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw config_error("whisper model " + path.string() + ": cannot open: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw config_error("whisper model " + path.string() + ": not a regular file");
  }
  file->map_size_ = static_cast<std::size_t>(st.st_size);
  if (file->map_size_ == 0) {
    ::close(fd);
    throw config_error("whisper model " + path.string() + ": the file is empty");
  }
  void* map = ::mmap(nullptr, file->map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) {
    throw config_error("whisper model " + path.string() + ": cannot map: " + std::strerror(errno));
  }
  file->map_ = static_cast<const unsigned char*>(map);
  file->parse();
  file->drop_copied_pages();
  return file;
}

ModelFile::~ModelFile() {
  if (map_) ::munmap(const_cast<unsigned char*>(map_), map_size_);
}

void ModelFile::parse() {
  Reader r(map_, map_size_, path_.string());
  if (static_cast<std::uint32_t>(r.i32("magic")) != kMagic) {
    r.fail("not a ggml Whisper model (bad magic number)");
  }
  HParams& h = hparams_;
  h.n_vocab = r.i32("hyper-parameters");
  h.n_audio_ctx = r.i32("hyper-parameters");
  h.n_audio_state = r.i32("hyper-parameters");
  h.n_audio_head = r.i32("hyper-parameters");
  h.n_audio_layer = r.i32("hyper-parameters");
  h.n_text_ctx = r.i32("hyper-parameters");
  h.n_text_state = r.i32("hyper-parameters");
  h.n_text_head = r.i32("hyper-parameters");
  h.n_text_layer = r.i32("hyper-parameters");
  h.n_mels = r.i32("hyper-parameters");
  h.ftype = r.i32("hyper-parameters");
  check_range(r, "n_vocab", h.n_vocab, 51864, 51866);
  check_range(r, "n_audio_ctx", h.n_audio_ctx, 1500, 1500);
  check_range(r, "n_audio_state", h.n_audio_state, 1, 16384);
  check_range(r, "n_audio_head", h.n_audio_head, 1, 256);
  check_range(r, "n_audio_layer", h.n_audio_layer, 1, 256);
  check_range(r, "n_text_ctx", h.n_text_ctx, 8, 4096);
  check_range(r, "n_text_state", h.n_text_state, 1, 16384);
  check_range(r, "n_text_head", h.n_text_head, 1, 256);
  check_range(r, "n_text_layer", h.n_text_layer, 1, 256);
  check_range(r, "n_mels", h.n_mels, 1, 512);
  if (h.n_audio_state % h.n_audio_head != 0 || h.n_text_state % h.n_text_head != 0) {
    r.fail("the width is not a multiple of the number of heads");
  }
  // GGML_FTYPE: 0 f32, 1 f16, 2 q4_0, 3 q4_1, 7 q8_0, 8 q5_0, 9 q5_1; quantized files add
  // 1000 x the quantization version (2 today; 1 was an older, incompatible layout).
  {
    const int base = h.ftype % 1000, version = h.ftype / 1000;
    const bool known = h.ftype >= 0 && (base <= 3 || (base >= 7 && base <= 9));
    if (!known || (base >= 2 && version != 2) || (base < 2 && version != 0)) {
      r.fail("ftype " + std::to_string(h.ftype) +
             " is not one this server reads (f32, f16, or q4_0, q4_1, q5_0, q5_1, q8_0 of "
             "quantization version 2)");
    }
  }

  int n_mel = r.i32("mel filters");
  n_fft_bins_ = r.i32("mel filters");
  if (n_mel != h.n_mels || n_fft_bins_ != 201) {
    r.fail("mel filters are " + std::to_string(n_mel) + " x " + std::to_string(n_fft_bins_) +
           ", expected " + std::to_string(h.n_mels) + " x 201");
  }
  std::size_t filter_count = static_cast<std::size_t>(n_mel) * n_fft_bins_;
  const unsigned char* filters = r.bytes(filter_count * 4, "mel filters");
  mel_filters_.resize(filter_count);
  std::memcpy(mel_filters_.data(), filters, filter_count * 4);

  int count = r.i32("vocabulary");
  if (count < 0 || count > h.n_vocab) {
    r.fail("vocabulary count " + std::to_string(count) + " is not in [0, n_vocab]");
  }
  vocabulary_.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    int len = r.i32("vocabulary");
    if (len < 0 || static_cast<std::size_t>(len) > kMaxTokenBytes) {
      r.fail("token " + std::to_string(i) + " has length " + std::to_string(len));
    }
    const unsigned char* b = r.bytes(static_cast<std::size_t>(len), "vocabulary");
    vocabulary_.emplace_back(reinterpret_cast<const char*>(b), static_cast<std::size_t>(len));
  }

  while (r.remaining() > 0) {
    if (tensors_.size() >= static_cast<std::size_t>(kMaxTensors)) r.fail("too many tensors");
    int n_dims = r.i32("tensor header");
    int name_len = r.i32("tensor header");
    int type = r.i32("tensor header");
    if (n_dims < 1 || n_dims > 4) r.fail("tensor with " + std::to_string(n_dims) + " dimensions");
    if (name_len < 1 || name_len > 256) r.fail("tensor name length " + std::to_string(name_len));
    const std::optional<WeightType> wtype = weight_type_from_id(type);
    if (!wtype) {
      r.fail("tensor type " + std::to_string(type) +
             " is not one this server reads (f32, f16, q4_0, q4_1, q5_0, q5_1, q8_0)");
    }
    std::vector<std::int64_t> ne(static_cast<std::size_t>(n_dims));
    std::size_t elements = 1;
    for (int d = 0; d < n_dims; ++d) {
      std::int32_t v = r.i32("tensor shape");
      if (v < 1) r.fail("tensor dimension " + std::to_string(v));
      ne[static_cast<std::size_t>(d)] = v;
      // Every type takes at least half a byte per value.
      if (elements > 2 * r.remaining() / static_cast<std::size_t>(v)) {
        r.fail("tensor larger than the rest of the file");
      }
      elements *= static_cast<std::size_t>(v);
    }
    std::string name(
        reinterpret_cast<const char*>(r.bytes(static_cast<std::size_t>(name_len), "tensor name")),
        static_cast<std::size_t>(name_len));
    const std::size_t cols = static_cast<std::size_t>(ne[0]);
    if (is_quantized(*wtype) && cols % kQuantBlock != 0) {
      r.fail("tensor '" + name + "' is " + std::string(weight_type_name(*wtype)) +
             " with rows of " + std::to_string(cols) + " values, not a multiple of " +
             std::to_string(kQuantBlock));
    }
    if ((*wtype == WeightType::q4_1 || *wtype == WeightType::q5_0 || *wtype == WeightType::q5_1) &&
        cols > static_cast<std::size_t>(kMaxWidenedRow)) {
      r.fail("tensor '" + name + "' has rows of " + std::to_string(cols) + " " +
             std::string(weight_type_name(*wtype)) + " values, more than " +
             std::to_string(kMaxWidenedRow));
    }
    const std::size_t rows = elements / cols;
    const std::size_t bytes_per_row = row_bytes(*wtype, cols);
    if (rows > r.remaining() / bytes_per_row) r.fail("tensor '" + name + "' is truncated");
    const unsigned char* data = r.bytes(rows * bytes_per_row, "tensor data");
    if (tensors_.count(name)) r.fail("tensor '" + name + "' appears twice");

    Tensor t;
    // ggml lists dimensions innermost first; PyTorch's order is the reverse.
    for (int d = n_dims - 1; d >= 0; --d) t.shape.push_back(ne[static_cast<std::size_t>(d)]);
    // Weight matrices stay as stored; everything else is read through Tensor::data as f32.
    const bool matrix = n_dims == 2 && name.ends_with(".weight");
    const bool aligned = reinterpret_cast<std::uintptr_t>(data) % alignof(float) == 0;
    if (matrix && (*wtype != WeightType::f32 || aligned)) {
      t.type = *wtype;  // used as stored, straight from the mapping
      t.raw = data;
      if (*wtype == WeightType::f32) t.data = reinterpret_cast<const float*>(data);
      mapped_bytes_ += rows * bytes_per_row;
      in_place_.emplace_back(data, data + rows * bytes_per_row);
      ++type_counts_[static_cast<int>(*wtype)];
    } else if (*wtype == WeightType::f32 && aligned) {
      t.raw = t.data = reinterpret_cast<const float*>(data);
      mapped_bytes_ += elements * 4;
      in_place_.emplace_back(data, data + elements * 4);
    } else {
      auto owned = std::make_unique<float[]>(elements);
      for (std::size_t i = 0; i < rows; ++i)
        dequantize_row(*wtype, data + i * bytes_per_row, owned.get() + i * cols, cols);
      t.raw = t.data = owned.get();
      owned_bytes_ += elements * 4;
      owned_.push_back(std::move(owned));
      if (matrix) ++type_counts_[static_cast<int>(WeightType::f32)];
    }
    if (matrix) {
      t.derived = std::make_shared<DerivedWeights>();
      t.derived->mapped = t.raw == data;
    }
    order_.push_back(name);
    tensors_.emplace(std::move(name), std::move(t));
  }
}

void ModelFile::drop_copied_pages() {
  // The header, the vocabulary, the tensors' headers and the tensors converted into memory of our
  // own were read once; only the tensors used in place (in file order) are read again.
  const unsigned char* from = map_;
  for (const auto& [begin, end] : in_place_) {
    drop_file_pages(from, begin);
    from = end;
  }
  drop_file_pages(from, map_ + map_size_);
  in_place_.clear();
  in_place_.shrink_to_fit();
}

std::string_view ModelFile::weight_type() const {
  int best = 0, count = -1;
  for (const auto& [type, n] : type_counts_) {
    if (n > count) best = type, count = n;
  }
  return weight_type_name(static_cast<WeightType>(best));
}

const Tensor& ModelFile::tensor(const std::string& name,
                                const std::vector<std::int64_t>& shape) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    throw config_error("whisper model " + path_.string() + ": tensor '" + name + "' is missing");
  }
  // Conv biases are stored [n, 1]: compare shapes without their dimensions of size 1.
  auto squeeze = [](const std::vector<std::int64_t>& s) {
    std::vector<std::int64_t> out;
    for (auto d : s) {
      if (d != 1) out.push_back(d);
    }
    return out;
  };
  if (squeeze(it->second.shape) != squeeze(shape)) {
    auto text = [](const std::vector<std::int64_t>& s) {
      std::string out = "[";
      for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
      return out + "]";
    };
    throw config_error("whisper model " + path_.string() + ": tensor '" + name + "' has shape " +
                       text(it->second.shape) + ", expected " + text(shape));
  }
  return it->second;
}

}  // namespace sra::whisper
