#include "bus/pickle.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <unordered_map>

namespace sra::bus::pickle {
namespace {

// Opcodes of protocols 2 to 5 that Huey's messages use (names as in Python's pickletools).
enum : unsigned char {
  kMark = '(',
  kStop = '.',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kNone = 'N',
  kBinUnicode = 'X',
  kAppend = 'a',
  kBuild = 'b',
  kGlobal = 'c',
  kDict = 'd',
  kEmptyDict = '}',
  kAppends = 'e',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kList = 'l',
  kEmptyList = ']',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kEmptyTuple = ')',
  kSetItems = 'u',
  kBinFloat = 'G',
  kReduce = 'R',
  kShortBinBytes = 'C',
  kBinBytes = 'B',
  kProto = 0x80,
  kNewObj = 0x81,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
  kShortBinUnicode = 0x8c,
  kBinUnicode8 = 0x8d,
  kBinBytes8 = 0x8e,
  kStackGlobal = 0x93,
  kMemoize = 0x94,
  kFrame = 0x95,
};

[[noreturn]] void fail(const std::string& why) {
  throw PickleError("pickle refused: " + why);
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (n < 0 || i + static_cast<std::size_t>(n) >= s.size()) return false;
    std::uint32_t cp = n == 0 ? c : n == 1 ? (c & 0x1f) : n == 2 ? (c & 0x0f) : (c & 0x07);
    for (int k = 1; k <= n; ++k) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 2) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n + 1;
  }
  return true;
}

class Reader {
 public:
  Reader(std::string_view in, const std::vector<std::string>& allowed, const Limits& limits,
         std::vector<std::unique_ptr<Value>>& values)
      : in_(in), allowed_(allowed), limits_(limits), values_(values) {}

  const Value* run() {
    if (in_.size() > limits_.max_bytes)
      fail("larger than " + std::to_string(limits_.max_bytes) + " bytes");
    if (byte() != kProto) fail("not a pickle of protocol 2 or later");
    int proto = byte();
    if (proto < 2 || proto > 5) fail("protocol " + std::to_string(proto));
    for (;;) {
      unsigned char op = byte();
      switch (op) {
        case kStop: {
          if (stack_.size() != 1 || !marks_.empty()) fail("STOP with a malformed stack");
          if (pos_ != in_.size()) fail("bytes after STOP");
          return stack_.back();
        }
        case kFrame:
          fixed(8);  // frames only group the opcodes that follow
          break;
        case kMark:
          marks_.push_back(stack_.size());
          break;
        case kNone:
          push(make(Value::Kind::none));
          break;
        case kNewTrue:
        case kNewFalse: {
          Value* v = make(Value::Kind::boolean);
          v->boolean = op == kNewTrue;
          push(v);
          break;
        }
        case kBinInt:
          push_integer(static_cast<std::int32_t>(little_endian(4)));
          break;
        case kBinInt1:
          push_integer(byte());
          break;
        case kBinInt2:
          push_integer(static_cast<long long>(little_endian(2)));
          break;
        case kLong1: {
          std::size_t n = byte();
          if (n > 8) fail("integer wider than 64 bits");
          std::uint64_t raw = little_endian(n);
          long long value = 0;
          if (n > 0) {
            unsigned shift = 64 - 8 * static_cast<unsigned>(n);
            value = static_cast<long long>(raw << shift) >> shift;  // sign-extend
          }
          push_integer(value);
          break;
        }
        case kBinFloat: {
          std::uint64_t bits = 0;
          for (int i = 0; i < 8; ++i) bits = (bits << 8) | byte();  // big-endian
          Value* v = make(Value::Kind::floating);
          v->floating = std::bit_cast<double>(bits);
          push(v);
          break;
        }
        case kShortBinUnicode:
          push_text(Value::Kind::string, byte());
          break;
        case kBinUnicode:
          push_text(Value::Kind::string, little_endian(4));
          break;
        case kBinUnicode8:
          push_text(Value::Kind::string, little_endian(8));
          break;
        case kShortBinBytes:
          push_text(Value::Kind::bytes, byte());
          break;
        case kBinBytes:
          push_text(Value::Kind::bytes, little_endian(4));
          break;
        case kBinBytes8:
          push_text(Value::Kind::bytes, little_endian(8));
          break;
        case kEmptyTuple:
          push(make(Value::Kind::tuple));
          break;
        case kTuple1:
        case kTuple2:
        case kTuple3: {
          std::size_t n = op - kTuple1 + 1;
          if (stack_.size() < floor() + n) fail("tuple of missing values");
          Value* t = make(Value::Kind::tuple);
          t->items.assign(stack_.end() - static_cast<long>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          push(t);
          break;
        }
        case kTuple:
        case kList: {
          Value* t = make(op == kTuple ? Value::Kind::tuple : Value::Kind::list);
          t->items = pop_to_mark();
          push(t);
          break;
        }
        case kEmptyList:
          push(make(Value::Kind::list));
          break;
        case kAppend: {
          const Value* item = pop();
          count_reference();
          target(Value::Kind::list)->items.push_back(item);
          break;
        }
        case kAppends: {
          auto items = pop_to_mark();
          auto* list = target(Value::Kind::list);
          list->items.insert(list->items.end(), items.begin(), items.end());
          break;
        }
        case kEmptyDict:
          push(make(Value::Kind::dict));
          break;
        case kDict: {
          auto items = pop_to_mark();
          if (items.size() % 2) fail("dict with a key and no value");
          Value* d = make(Value::Kind::dict);
          for (std::size_t i = 0; i < items.size(); i += 2) set_item(d, items[i], items[i + 1]);
          push(d);
          break;
        }
        case kSetItem: {
          const Value* value = pop();
          const Value* key = pop();
          set_item(target(Value::Kind::dict), key, value);
          break;
        }
        case kSetItems: {
          auto items = pop_to_mark();
          if (items.size() % 2) fail("SETITEMS with a key and no value");
          Value* d = target(Value::Kind::dict);
          for (std::size_t i = 0; i < items.size(); i += 2) set_item(d, items[i], items[i + 1]);
          break;
        }
        case kMemoize:
          if (stack_.size() <= floor()) fail("MEMOIZE of nothing");
          count_reference();
          memo_[static_cast<std::uint32_t>(memo_.size())] = stack_.back();
          break;
        case kBinPut:
        case kLongBinPut: {
          auto index = static_cast<std::uint32_t>(op == kBinPut ? byte() : little_endian(4));
          if (stack_.size() <= floor()) fail("PUT of nothing");
          count_reference();
          memo_[index] = stack_.back();
          break;
        }
        case kBinGet:
        case kLongBinGet: {
          auto index = static_cast<std::uint32_t>(op == kBinGet ? byte() : little_endian(4));
          auto it = memo_.find(index);
          if (it == memo_.end()) fail("GET of an unknown memo entry");
          push(it->second);
          break;
        }
        case kGlobal: {
          std::string module = line();
          std::string name = line();
          push(global(module + "." + name));
          break;
        }
        case kStackGlobal: {
          const Value* name = pop();
          const Value* module = pop();
          if (!module->is(Value::Kind::string) || !name->is(Value::Kind::string))
            fail("STACK_GLOBAL of a non-string");
          push(global(module->text + "." + name->text));
          break;
        }
        case kNewObj:
        case kReduce: {
          const Value* args = pop();
          const Value* cls = pop();
          if (!cls->is(Value::Kind::global)) fail("an object of something that is not a class");
          if (!args->is(Value::Kind::tuple))
            fail("an object made with arguments that are not a tuple");
          Value* object = make(Value::Kind::object);
          object->cls = cls;
          object->args = args;
          push(object);
          break;
        }
        case kBuild: {
          const Value* state = pop();
          Value* object = target(Value::Kind::object);
          if (object->state) fail("BUILD twice");
          object->state = state;
          break;
        }
        default:
          fail("opcode 0x" + hex(op) + " at byte " + std::to_string(pos_ - 1));
      }
    }
  }

 private:
  static std::string hex(unsigned char c) {
    const char* digits = "0123456789abcdef";
    return {digits[c >> 4], digits[c & 15]};
  }

  unsigned char byte() {
    if (pos_ >= in_.size()) fail("truncated");
    return static_cast<unsigned char>(in_[pos_++]);
  }
  std::string_view fixed(std::size_t n) {
    if (in_.size() - pos_ < n) fail("truncated");
    auto out = in_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::uint64_t little_endian(std::size_t n) {
    auto b = fixed(n);
    std::uint64_t v = 0;
    for (std::size_t i = n; i-- > 0;) v = (v << 8) | static_cast<unsigned char>(b[i]);
    return v;
  }
  std::string line() {
    std::size_t end = in_.find('\n', pos_);
    if (end == std::string_view::npos || end - pos_ > 256) fail("malformed GLOBAL");
    std::string out(in_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return out;
  }

  Value* make(Value::Kind kind) {
    if (values_.size() >= limits_.max_values)
      fail("more than " + std::to_string(limits_.max_values) + " values");
    values_.push_back(std::make_unique<Value>());
    values_.back()->kind = kind;
    return values_.back().get();
  }
  void push(const Value* v) {
    count_reference();
    stack_.push_back(v);
  }
  // Every reference held (on the stack, in the memo, in a container) counts against the limit, so
  // that re-pushing one value (GET) or appending it again and again cannot grow without bound.
  void count_reference() {
    if (++references_ > 4 * limits_.max_values)
      fail("more than " + std::to_string(4 * limits_.max_values) + " references");
  }
  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  const Value* pop() {
    if (stack_.size() <= floor()) fail("stack underflow");
    const Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  std::vector<const Value*> pop_to_mark() {
    if (marks_.empty()) fail("no MARK");
    std::size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<const Value*> items(stack_.begin() + static_cast<long>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  // The value on top of the stack, to be changed in place; it must be of `kind`. Values are made
  // by this reader only, so the const on the stack is dropped safely here.
  Value* target(Value::Kind kind) {
    if (stack_.size() <= floor()) fail("stack underflow");
    const Value* v = stack_.back();
    if (!v->is(kind)) fail("an item added to a value of the wrong type");
    return const_cast<Value*>(v);
  }
  void push_integer(long long value) {
    Value* v = make(Value::Kind::integer);
    v->integer = value;
    push(v);
  }
  void push_text(Value::Kind kind, std::uint64_t n) {
    if (n > in_.size() - pos_) fail("a length past the end");
    Value* v = make(kind);
    v->text.assign(fixed(static_cast<std::size_t>(n)));
    if (kind == Value::Kind::string && !valid_utf8(v->text)) fail("a str that is not UTF-8");
    push(v);
  }
  // Keys may be strings or integers (Python allows any hashable; Huey's use neither else). A key
  // set again is appended again, not searched for (that would be quadratic): readers take the
  // last, as Python's dict keeps the last.
  void set_item(Value* dict, const Value* key, const Value* value) {
    if (!key->is(Value::Kind::string) && !key->is(Value::Kind::integer))
      fail("a dict key that is not a str or an int");
    dict->items.push_back(key);
    dict->items.push_back(value);
  }
  const Value* global(const std::string& qualified) {
    if (std::find(allowed_.begin(), allowed_.end(), qualified) == allowed_.end())
      fail("class '" + qualified.substr(0, 128) + "' is not allowed");
    Value* v = make(Value::Kind::global);
    v->text = qualified;
    return v;
  }

  std::string_view in_;
  const std::vector<std::string>& allowed_;
  const Limits& limits_;
  std::vector<std::unique_ptr<Value>>& values_;
  std::size_t pos_ = 0;
  std::vector<const Value*> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint32_t, const Value*> memo_;
  std::size_t references_ = 0;
};

}  // namespace

bool Value::is_object_of(std::string_view qualified) const {
  return kind == Kind::object && cls && cls->text == qualified;
}

const Value* Value::get(std::string_view key) const {
  if (kind != Kind::dict) return nullptr;
  for (std::size_t i = items.size() / 2; i-- > 0;) {  // the last setting wins, as in Python
    if (items[2 * i]->is(Kind::string) && items[2 * i]->text == key) return items[2 * i + 1];
  }
  return nullptr;
}

Document parse(std::string_view bytes, const std::vector<std::string>& allowed_classes,
               const Limits& limits) {
  Document doc;
  Reader reader(bytes, allowed_classes, limits, doc.values_);
  doc.root_ = reader.run();
  return doc;
}

Writer::Writer() {
  out_ += static_cast<char>(kProto);
  out_ += static_cast<char>(4);
}

void Writer::none() {
  out_ += static_cast<char>(kNone);
}

void Writer::boolean(bool value) {
  out_ += static_cast<char>(value ? kNewTrue : kNewFalse);
}

void Writer::integer(long long value) {
  if (value >= INT32_MIN && value <= INT32_MAX) {
    out_ += static_cast<char>(kBinInt);
    auto v = static_cast<std::uint32_t>(static_cast<std::int32_t>(value));
    for (int i = 0; i < 4; ++i) out_ += static_cast<char>((v >> (8 * i)) & 0xff);
    return;
  }
  out_ += static_cast<char>(kLong1);
  out_ += static_cast<char>(8);
  auto v = static_cast<std::uint64_t>(value);
  for (int i = 0; i < 8; ++i) out_ += static_cast<char>((v >> (8 * i)) & 0xff);
}

void Writer::floating(double value) {
  out_ += static_cast<char>(kBinFloat);
  auto bits = std::bit_cast<std::uint64_t>(value);
  for (int i = 7; i >= 0; --i) out_ += static_cast<char>((bits >> (8 * i)) & 0xff);
}

void Writer::string(std::string_view text) {
  if (text.size() < 256) {
    out_ += static_cast<char>(kShortBinUnicode);
    out_ += static_cast<char>(text.size());
  } else if (text.size() <= UINT32_MAX) {
    out_ += static_cast<char>(kBinUnicode);
    auto n = static_cast<std::uint32_t>(text.size());
    for (int i = 0; i < 4; ++i) out_ += static_cast<char>((n >> (8 * i)) & 0xff);
  } else {
    out_ += static_cast<char>(kBinUnicode8);
    auto n = static_cast<std::uint64_t>(text.size());
    for (int i = 0; i < 8; ++i) out_ += static_cast<char>((n >> (8 * i)) & 0xff);
  }
  out_ += text;
}

void Writer::mark() {
  out_ += static_cast<char>(kMark);
}

void Writer::tuple_from_mark() {
  out_ += static_cast<char>(kTuple);
}

void Writer::empty_dict() {
  out_ += static_cast<char>(kEmptyDict);
}

void Writer::set_items_from_mark() {
  out_ += static_cast<char>(kSetItems);
}

void Writer::global(std::string_view module, std::string_view name) {
  string(module);
  string(name);
  out_ += static_cast<char>(kStackGlobal);
}

void Writer::new_object() {
  out_ += static_cast<char>(kNewObj);
}

std::string Writer::finish() {
  out_ += static_cast<char>(kStop);
  return std::move(out_);
}

}  // namespace sra::bus::pickle
