#include "engine/torch/torch_checkpoint.h"

#include <zip.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "core/errors.h"

namespace sra::torch {
namespace {

constexpr std::size_t kMaxNodes = 1u << 20;          // values the unpickler may build
constexpr std::size_t kMaxStack = 1u << 16;          // depth of its stack
constexpr std::size_t kMaxMemo = 1u << 20;           // memo entries
constexpr std::int64_t kMaxElements = 1ll << 26;     // per tensor
constexpr zip_uint64_t kMaxEntryBytes = 1ull << 29;  // per zip entry
constexpr int kMaxDepth = 64;                        // dict nesting walked for tensors
constexpr std::size_t kMaxStorageBytes = 1u << 30;   // all storages together

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw config_error(name + " is not a PyTorch checkpoint this reader accepts: " + what);
}

// The element types of storages, by the name of their pickled class.
struct StorageType {
  const char* name;
  int bytes;
};
constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", 4}, {"HalfStorage", 2}, {"BFloat16Storage", 2}, {"DoubleStorage", 8},
    {"LongStorage", 8},  {"IntStorage", 4},  {"ShortStorage", 2},    {"CharStorage", 1},
    {"ByteStorage", 1},  {"BoolStorage", 1},
};

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
  std::uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff, bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exponent = 127 - 15 + 1;
      while (!(mantissa & 0x400)) {
        mantissa <<= 1;
        --exponent;
      }
      bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
    }
  } else if (exponent == 31) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// One element of a storage of `type` at byte `at`, as a float.
float element(const std::string& bytes, std::size_t at, int type) {
  const char* p = bytes.data() + at;
  switch (type) {
    case 0: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case 1: {
      std::uint16_t v;
      std::memcpy(&v, p, 2);
      return half_to_float(v);
    }
    case 2: {
      std::uint16_t v;
      std::memcpy(&v, p, 2);
      std::uint32_t bits = static_cast<std::uint32_t>(v) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    case 3: {
      double v;
      std::memcpy(&v, p, 8);
      return static_cast<float>(v);
    }
    case 4: {
      std::int64_t v;
      std::memcpy(&v, p, 8);
      return static_cast<float>(v);
    }
    case 5: {
      std::int32_t v;
      std::memcpy(&v, p, 4);
      return static_cast<float>(v);
    }
    case 6: {
      std::int16_t v;
      std::memcpy(&v, p, 2);
      return static_cast<float>(v);
    }
    case 7:
      return static_cast<float>(static_cast<std::int8_t>(*p));
    default:  // uint8, bool
      return static_cast<float>(static_cast<std::uint8_t>(*p));
  }
}

// The zip archive, entries read on demand with their sizes bounded.
class Archive {
 public:
  Archive(std::string_view bytes, const std::string& name) : name_(name) {
    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
    if (!source) fail(name_, "cannot read it as a zip file");
    archive_ = zip_open_from_source(source, ZIP_RDONLY, &error);
    zip_error_fini(&error);
    if (!archive_) {
      zip_source_free(source);
      fail(name_, "not a zip file");
    }
  }
  ~Archive() {
    if (archive_) zip_discard(archive_);
  }
  Archive(const Archive&) = delete;
  Archive& operator=(const Archive&) = delete;

  // The directory that holds data.pkl ("archive/"), found among the entries.
  std::string prefix() const {
    const zip_int64_t n = zip_get_num_entries(archive_, 0);
    for (zip_int64_t i = 0; i < n; ++i) {
      const char* entry = zip_get_name(archive_, static_cast<zip_uint64_t>(i), 0);
      if (!entry) continue;
      std::string_view e(entry);
      if (e == "data.pkl") return "";
      if (e.size() > 9 && e.substr(e.size() - 9) == "/data.pkl" && e.find('/') == e.size() - 9)
        return std::string(e.substr(0, e.size() - 8));
    }
    fail(name_, "no data.pkl in the archive (a checkpoint saved with torch.save)");
  }

  std::string read(const std::string& entry) const {
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat(archive_, entry.c_str(), 0, &stat) != 0 || !(stat.valid & ZIP_STAT_SIZE))
      fail(name_, "no entry " + entry);
    if (stat.size > kMaxEntryBytes) fail(name_, entry + " is too large");
    std::unique_ptr<zip_file_t, decltype(&zip_fclose)> file(zip_fopen(archive_, entry.c_str(), 0),
                                                            zip_fclose);
    if (!file) fail(name_, "cannot open " + entry);
    std::string data(static_cast<std::size_t>(stat.size), '\0');
    zip_uint64_t done = 0;
    while (done < stat.size) {
      zip_int64_t got = zip_fread(file.get(), data.data() + done, stat.size - done);
      if (got <= 0) fail(name_, "cannot read " + entry);
      done += static_cast<zip_uint64_t>(got);
    }
    return data;
  }

 private:
  std::string name_;
  zip_t* archive_ = nullptr;
};

// A value the unpickler builds; containers refer to other values by index (an arena: no
// ownership cycles, whatever the memo does).
struct Node {
  enum class Kind { none, boolean, integer, real, text, tuple, list, dict, global, object, tensor };
  Kind kind = Kind::none;
  std::int64_t integer = 0;
  double real = 0;
  std::string text;             // text and bytes; global: "module.name"; object: its class
  std::vector<int> items;       // tuple, list; dict: key, value, key, value, ...; object: args
  std::vector<int> persistent;  // a storage's persistent id (object of class "<storage>")
};

class Unpickler {
 public:
  Unpickler(std::string_view pickle, const Archive& archive, std::string prefix,
            const std::string& name)
      : in_(pickle), archive_(archive), prefix_(std::move(prefix)), name_(name) {}

  // Runs the pickle; returns the index of the object it builds.
  int run() {
    for (;;) {
      const auto op = static_cast<unsigned char>(byte());
      switch (op) {
        case 0x80:  // PROTO
          byte();
          break;
        case 0x95:  // FRAME
          bytes(8);
          break;
        case '.':  // STOP
          if (stack_.size() != 1) fail(name_, "the pickle stops with a malformed stack");
          return stack_.back();
        case '(':  // MARK
          if (marks_.size() >= kMaxStack) fail(name_, "too deeply nested");
          marks_.push_back(stack_.size());
          break;
        case 'N':
          push(make(Node::Kind::none));
          break;
        case 0x88:
        case 0x89: {  // NEWTRUE, NEWFALSE
          int n = make(Node::Kind::boolean);
          nodes_[n].integer = op == 0x88;
          push(n);
          break;
        }
        case 'J':
          push_integer(signed_le(4));
          break;
        case 'K':
          push_integer(static_cast<std::int64_t>(unsigned_le(1)));
          break;
        case 'M':
          push_integer(static_cast<std::int64_t>(unsigned_le(2)));
          break;
        case 0x8a: {  // LONG1
          const std::size_t n = static_cast<std::size_t>(unsigned_le(1));
          if (n > 8) fail(name_, "an integer wider than 64 bits");
          std::int64_t v = n ? signed_le(n) : 0;
          push_integer(v);
          break;
        }
        case 'G': {  // BINFLOAT, big-endian double
          std::string_view b = bytes(8);
          std::uint64_t bits = 0;
          for (char c : b) bits = bits << 8 | static_cast<unsigned char>(c);
          double d;
          std::memcpy(&d, &bits, 8);
          int n = make(Node::Kind::real);
          nodes_[n].real = d;
          push(n);
          break;
        }
        case 'I':  // INT (text line), as protocol 0 writes it
        case 'L': {
          std::string line(this->line());
          if (!line.empty() && line.back() == 'L') line.pop_back();
          try {
            push_integer(line == "01" ? 1 : line == "00" ? 0 : std::stoll(line));
          } catch (const std::exception&) {
            fail(name_, "a malformed integer");
          }
          break;
        }
        case 'X':  // BINUNICODE
          push_text(bytes(static_cast<std::size_t>(unsigned_le(4))));
          break;
        case 0x8c:  // SHORT_BINUNICODE
          push_text(bytes(static_cast<std::size_t>(unsigned_le(1))));
          break;
        case 0x8d:  // BINUNICODE8
        case 0x8e:  // BINBYTES8
          push_text(bytes(static_cast<std::size_t>(unsigned_le(8))));
          break;
        case 'B':  // BINBYTES
        case 'T':  // BINSTRING
          push_text(bytes(static_cast<std::size_t>(unsigned_le(4))));
          break;
        case 'C':  // SHORT_BINBYTES
        case 'U':  // SHORT_BINSTRING
          push_text(bytes(static_cast<std::size_t>(unsigned_le(1))));
          break;
        case ')':
          push(make(Node::Kind::tuple));
          break;
        case ']':
          push(make(Node::Kind::list));
          break;
        case '}':
          push(make(Node::Kind::dict));
          break;
        case 0x8f:  // EMPTY_SET (kept as a list)
          push(make(Node::Kind::list));
          break;
        case 't':
        case 'l':
        case 0x91: {  // TUPLE, LIST, FROZENSET
          std::vector<int> items = pop_mark();
          int n = make(op == 't' ? Node::Kind::tuple : Node::Kind::list);
          nodes_[n].items = std::move(items);
          push(n);
          break;
        }
        case 'd': {  // DICT
          std::vector<int> items = pop_mark();
          if (items.size() % 2) fail(name_, "a dict with a key and no value");
          int n = make(Node::Kind::dict);
          nodes_[n].items = std::move(items);
          push(n);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          const std::size_t count = op - 0x84u;
          const std::size_t floor = marks_.empty() ? 0 : marks_.back();
          if (stack_.size() < floor + count) fail(name_, "a tuple of missing values");
          int n = make(Node::Kind::tuple);
          nodes_[n].items.assign(stack_.end() - static_cast<std::ptrdiff_t>(count), stack_.end());
          stack_.resize(stack_.size() - count);
          push(n);
          break;
        }
        case 'a': {  // APPEND
          int value = pop();
          add_items(top(), {value});
          break;
        }
        case 'e':     // APPENDS
        case 0x90: {  // ADDITEMS
          std::vector<int> items = pop_mark();
          add_items(top(), items);
          break;
        }
        case 's': {  // SETITEM
          int value = pop(), key = pop();
          set_items(top(), {key, value});
          break;
        }
        case 'u': {  // SETITEMS
          std::vector<int> items = pop_mark();
          if (items.size() % 2) fail(name_, "SETITEMS with a key and no value");
          set_items(top(), items);
          break;
        }
        case 'q':  // BINPUT
          memo_put(unsigned_le(1));
          break;
        case 'r':  // LONG_BINPUT
          memo_put(unsigned_le(4));
          break;
        case 0x94:  // MEMOIZE
          memo_put(memo_.size());
          break;
        case 'p':  // PUT
          memo_put(line_number());
          break;
        case 'h':  // BINGET
          push(memo_get(unsigned_le(1)));
          break;
        case 'j':  // LONG_BINGET
          push(memo_get(unsigned_le(4)));
          break;
        case 'g':  // GET
          push(memo_get(line_number()));
          break;
        case 'c': {  // GLOBAL module\nname\n
          std::string module(line()), name(line());
          push_global(module + "." + name);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          int name = pop(), module = pop();
          if (nodes_[name].kind != Node::Kind::text || nodes_[module].kind != Node::Kind::text)
            fail(name_, "STACK_GLOBAL of something that is not a name");
          push_global(nodes_[module].text + "." + nodes_[name].text);
          break;
        }
        case 'Q': {  // BINPERSID
          int id = pop();
          push(storage(id));
          break;
        }
        case 'R': {  // REDUCE
          int args = pop(), callable = pop();
          push(reduce(callable, args));
          break;
        }
        case 0x81: {  // NEWOBJ
          int args = pop(), cls = pop();
          push(reduce(cls, args));
          break;
        }
        case 'b': {  // BUILD: the state of an opaque object is kept, and ignored
          int state = pop();
          int target = top();
          if (nodes_[target].kind == Node::Kind::object) nodes_[target].items.push_back(state);
          break;
        }
        case '0':  // POP
          pop();
          break;
        case '1':  // POP_MARK
          pop_mark();
          break;
        case '2':  // DUP
          push(top());
          break;
        default:
          fail(name_, "pickle opcode 0x" + to_hex(op) + " is not one torch.save() writes");
      }
    }
  }

  // Every tensor reachable from `root` through dicts with text keys, by dotted path.
  void collect(int root, const std::string& path, int depth, std::map<std::string, Tensor>& out) {
    const Node& n = nodes_[static_cast<std::size_t>(root)];
    if (n.kind == Node::Kind::tensor) {
      out[path] = tensors_[static_cast<std::size_t>(n.integer)];
      return;
    }
    if (n.kind != Node::Kind::dict || depth >= kMaxDepth) return;
    for (std::size_t i = 0; i + 1 < n.items.size(); i += 2) {
      const Node& key = nodes_[static_cast<std::size_t>(n.items[i])];
      if (key.kind != Node::Kind::text) continue;
      collect(n.items[i + 1], path.empty() ? key.text : path + "." + key.text, depth + 1, out);
    }
  }

 private:
  static std::string to_hex(unsigned v) {
    std::ostringstream s;
    s << std::hex << v;
    return s.str();
  }

  char byte() { return bytes(1)[0]; }
  std::string_view bytes(std::size_t n) {
    if (n > in_.size() - at_) fail(name_, "the pickle ends early");
    std::string_view b = in_.substr(at_, n);
    at_ += n;
    return b;
  }
  std::string_view line() {
    std::size_t end = in_.find('\n', at_);
    if (end == std::string_view::npos || end - at_ > 4096) fail(name_, "a malformed text line");
    std::string_view l = in_.substr(at_, end - at_);
    at_ = end + 1;
    return l;
  }
  std::size_t line_number() {
    std::string l(line());
    if (l.empty() || l.size() > 9 || l.find_first_not_of("0123456789") != std::string::npos)
      fail(name_, "a malformed memo index");
    return static_cast<std::size_t>(std::stoul(l));
  }
  std::uint64_t unsigned_le(std::size_t n) {
    std::string_view b = bytes(n);
    std::uint64_t v = 0;
    for (std::size_t i = n; i-- > 0;) v = v << 8 | static_cast<unsigned char>(b[i]);
    return v;
  }
  std::int64_t signed_le(std::size_t n) {
    std::uint64_t v = unsigned_le(n);
    if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~0ull << (8 * n);  // sign-extend
    return static_cast<std::int64_t>(v);
  }

  int make(Node::Kind kind) {
    if (nodes_.size() >= kMaxNodes) fail(name_, "too many values");
    nodes_.push_back(Node{});
    nodes_.back().kind = kind;
    return static_cast<int>(nodes_.size() - 1);
  }
  void push(int n) {
    if (stack_.size() >= kMaxStack) fail(name_, "the pickle's stack is too deep");
    stack_.push_back(n);
  }
  int pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      fail(name_, "the pickle pops an empty stack");
    int n = stack_.back();
    stack_.pop_back();
    return n;
  }
  int top() {
    if (stack_.empty()) fail(name_, "the pickle reads an empty stack");
    return stack_.back();
  }
  std::vector<int> pop_mark() {
    if (marks_.empty()) fail(name_, "the pickle has no mark to pop to");
    const std::size_t mark = marks_.back();
    marks_.pop_back();
    if (mark > stack_.size()) fail(name_, "the pickle's mark lies above its stack");
    std::vector<int> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  void push_integer(std::int64_t v) {
    int n = make(Node::Kind::integer);
    nodes_[n].integer = v;
    push(n);
  }
  void push_text(std::string_view t) {
    int n = make(Node::Kind::text);
    nodes_[n].text = std::string(t);
    push(n);
  }
  void push_global(const std::string& name) {
    int n = make(Node::Kind::global);
    nodes_[n].text = name;
    push(n);
  }
  void memo_put(std::size_t index) {
    if (index >= kMaxMemo) fail(name_, "a memo index out of range");
    if (memo_.size() <= index) memo_.resize(index + 1, -1);
    memo_[index] = top();
  }
  int memo_get(std::size_t index) {
    if (index >= memo_.size() || memo_[index] < 0) fail(name_, "a memo index never stored");
    return memo_[index];
  }
  void add_items(int target, const std::vector<int>& items) {
    Node& n = nodes_[static_cast<std::size_t>(target)];
    if (n.kind != Node::Kind::list && n.kind != Node::Kind::object)
      fail(name_, "APPEND to something that is not a list");
    if (n.items.size() + items.size() > kMaxNodes) fail(name_, "too many values");
    n.items.insert(n.items.end(), items.begin(), items.end());
  }
  void set_items(int target, const std::vector<int>& items) {
    Node& n = nodes_[static_cast<std::size_t>(target)];
    if (n.kind != Node::Kind::dict && n.kind != Node::Kind::object)
      fail(name_, "SETITEM on something that is not a dict");
    if (n.items.size() + items.size() > kMaxNodes) fail(name_, "too many values");
    n.items.insert(n.items.end(), items.begin(), items.end());
  }
  const Node& node(int n) const { return nodes_[static_cast<std::size_t>(n)]; }
  std::int64_t integer_of(int n, const char* what) const {
    if (node(n).kind != Node::Kind::integer) fail(name_, std::string(what) + " is not an integer");
    return node(n).integer;
  }
  std::vector<std::int64_t> integers_of(int n, const char* what) const {
    if (node(n).kind != Node::Kind::tuple && node(n).kind != Node::Kind::list)
      fail(name_, std::string(what) + " is not a tuple");
    std::vector<std::int64_t> v;
    for (int item : node(n).items) v.push_back(integer_of(item, what));
    return v;
  }

  // A persistent id ('storage', <class>, key, location, numel) stands for a storage.
  int storage(int id) {
    const std::vector<int> items = node(id).items;  // copied: make() may move the nodes
    if (node(id).kind != Node::Kind::tuple || items.size() < 5 ||
        node(items[0]).kind != Node::Kind::text || node(items[0]).text != "storage")
      fail(name_, "a persistent id that is not a storage");
    int n = make(Node::Kind::object);
    nodes_[n].text = "<storage>";
    nodes_[n].persistent = items;
    return n;
  }

  int reduce(int callable, int args) {
    const std::string cls = node(callable).kind == Node::Kind::global ? node(callable).text : "";
    const Node a = node(args);  // a copy: make() may move the nodes
    if (cls == "collections.OrderedDict") return make(Node::Kind::dict);
    if (cls == "torch._utils._rebuild_tensor_v2" && a.kind == Node::Kind::tuple &&
        a.items.size() >= 4)
      return rebuild_tensor(a.items[0], a.items[1], a.items[2], a.items[3]);
    if ((cls == "torch._utils._rebuild_parameter" ||
         cls == "torch._utils._rebuild_parameter_with_state") &&
        a.kind == Node::Kind::tuple && !a.items.empty() &&
        node(a.items[0]).kind == Node::Kind::tensor)
      return a.items[0];
    // Anything else stays an opaque object: nothing is called.
    int n = make(Node::Kind::object);
    nodes_[n].text = cls;
    nodes_[n].items = {args};
    return n;
  }

  int rebuild_tensor(int storage_node, int offset_node, int size_node, int stride_node) {
    const Node& s = node(storage_node);
    if (s.kind != Node::Kind::object || s.text != "<storage>")
      fail(name_, "a tensor without a storage");
    const Node& type = node(s.persistent[1]);
    const Node& key = node(s.persistent[2]);
    if (type.kind != Node::Kind::global || key.kind != Node::Kind::text)
      fail(name_, "a storage without a type or key");
    int type_index = -1, element_bytes = 0;
    for (std::size_t i = 0; i < std::size(kStorageTypes); ++i) {
      if (type.text == std::string("torch.") + kStorageTypes[i].name) {
        type_index = static_cast<int>(i);
        element_bytes = kStorageTypes[i].bytes;
      }
    }
    if (type_index < 0) fail(name_, "storages of " + type.text + " are not supported");
    if (key.text.empty() || key.text.size() > 32 ||
        key.text.find_first_of("/\\.") != std::string::npos)
      fail(name_, "a malformed storage key");
    auto found = storages_.find(key.text);
    if (found == storages_.end()) {
      std::string data = archive_.read(prefix_ + "data/" + key.text);
      storage_bytes_ += data.size();
      if (storage_bytes_ > kMaxStorageBytes) fail(name_, "its storages are too large");
      found = storages_.emplace(key.text, std::move(data)).first;
    }
    const std::string& bytes = found->second;
    const std::int64_t available = static_cast<std::int64_t>(bytes.size() / element_bytes);

    const std::int64_t offset = integer_of(offset_node, "a storage offset");
    const std::vector<std::int64_t> shape = integers_of(size_node, "a tensor size");
    const std::vector<std::int64_t> stride = integers_of(stride_node, "a tensor stride");
    if (shape.size() != stride.size() || shape.size() > 8)
      fail(name_, "a tensor's size and stride disagree");
    std::int64_t count = 1, last = offset;
    for (std::size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] < 0 || stride[d] < 0 || offset < 0) fail(name_, "a negative size or stride");
      if (shape[d] == 0) count = 0;
      if (count && shape[d] > kMaxElements / count) fail(name_, "a tensor is too large");
      count *= shape[d];
      if (shape[d] > 0 && stride[d] > (kMaxElements * 16) / shape[d])
        fail(name_, "a stride is too large");
      if (shape[d] > 0) last += (shape[d] - 1) * stride[d];
    }
    if (count > 0 && last >= available) fail(name_, "a tensor reaches past its storage");
    Tensor t;
    t.shape = shape;
    t.values.resize(static_cast<std::size_t>(count));
    std::vector<std::int64_t> index(shape.size(), 0);
    for (std::int64_t i = 0; i < count; ++i) {
      std::int64_t at = offset;
      for (std::size_t d = 0; d < shape.size(); ++d) at += index[d] * stride[d];
      t.values[static_cast<std::size_t>(i)] =
          element(bytes, static_cast<std::size_t>(at) * element_bytes, type_index);
      for (std::size_t d = shape.size(); d-- > 0;) {
        if (++index[d] < shape[d]) break;
        index[d] = 0;
      }
    }
    tensors_.push_back(std::move(t));
    int n = make(Node::Kind::tensor);
    nodes_[n].integer = static_cast<std::int64_t>(tensors_.size() - 1);
    return n;
  }

  std::string_view in_;
  std::size_t at_ = 0;
  const Archive& archive_;
  std::string prefix_;
  const std::string& name_;
  std::vector<Node> nodes_;
  std::vector<int> stack_;
  std::vector<std::size_t> marks_;
  std::vector<int> memo_;
  std::vector<Tensor> tensors_;
  std::map<std::string, std::string> storages_;  // key -> bytes, each read once
  std::size_t storage_bytes_ = 0;                // their total
};

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

}  // namespace

TorchCheckpoint::TorchCheckpoint(const std::filesystem::path& path) : name_(path.string()) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw config_error("cannot read " + name_);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  load(bytes.str());
}

TorchCheckpoint::TorchCheckpoint(std::string_view zip_bytes, const std::string& name)
    : name_(name) {
  load(zip_bytes);
}

void TorchCheckpoint::load(std::string_view zip_bytes) {
  Archive archive(zip_bytes, name_);
  const std::string prefix = archive.prefix();
  const std::string pickle = archive.read(prefix + "data.pkl");
  Unpickler unpickler(pickle, archive, prefix, name_);
  const int root = unpickler.run();
  unpickler.collect(root, "", 0, tensors_);
  if (tensors_.empty()) fail(name_, "it holds no tensors");
}

const Tensor& TorchCheckpoint::get(const std::string& name,
                                   const std::vector<std::int64_t>& shape) const {
  auto it = tensors_.find(name);
  for (const char* prefix : {"state_dict.", "model."}) {
    if (it == tensors_.end()) it = tensors_.find(prefix + name);
  }
  if (it == tensors_.end()) throw config_error(name_ + " has no tensor " + name);
  if (!shape.empty() && it->second.shape != shape) {
    throw config_error(name_ + ": " + name + " has the shape " + shape_text(it->second.shape) +
                       ", not " + shape_text(shape));
  }
  return it->second;
}

}  // namespace sra::torch
