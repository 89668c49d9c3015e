// Python pickle, the strict subset Huey's Redis messages and results use (protocols 2 to 5):
// None, booleans, integers, floats, str, bytes, tuples, lists, dicts, and objects of classes on
// an allow-list, built by NEWOBJ or REDUCE and BUILD. Nothing is ever called: a class is only a
// name, and an object is an inert record of its class, arguments and state. Bytes from a shared
// Redis are hostile input: an unknown opcode, a class off the allow-list, a bad length, invalid
// UTF-8 or a size past the limits is a PickleError, never a crash or an unbounded allocation.
// Pure functions and values; thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sra::bus::pickle {

class PickleError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One value of a parsed pickle. Values are owned by their Document and refer to each other by
// pointer (a pickle may share a value between places, or even hold a cycle).
struct Value {
  enum class Kind {
    none,
    boolean,
    integer,
    floating,
    string,
    bytes,
    tuple,
    list,
    dict,
    global,
    object
  };
  Kind kind = Kind::none;
  bool boolean = false;
  long long integer = 0;
  double floating = 0;
  std::string text;                 // string and bytes; a global's "module.name"
  std::vector<const Value*> items;  // tuple and list; a dict's keys and values, alternating
                                    // (a key set twice is there twice: the last wins)
  const Value* cls = nullptr;       // object: its class (a global)
  const Value* args = nullptr;      // object: the arguments it was made with (a tuple)
  const Value* state = nullptr;     // object: the state BUILD gave it, or null

  bool is(Kind k) const { return kind == k; }
  // An object of class `qualified` ("module.name").
  bool is_object_of(std::string_view qualified) const;
  // A dict's value for a string key (its last setting), or null.
  const Value* get(std::string_view key) const;
};

struct Limits {
  std::size_t max_bytes = 64u << 20;  // the whole pickle
  std::size_t max_values = 100000;    // values made while reading it
};

// A parsed pickle: its root value and the storage of every value.
class Document {
 public:
  const Value& root() const { return *root_; }

 private:
  friend Document parse(std::string_view, const std::vector<std::string>&, const Limits&);
  std::vector<std::unique_ptr<Value>> values_;
  const Value* root_ = nullptr;
};

// Reads `bytes`; a class whose "module.name" is not in `allowed_classes` is refused.
Document parse(std::string_view bytes, const std::vector<std::string>& allowed_classes,
               const Limits& limits = {});

// Writes a pickle (protocol 4, no frames) value by value, as Python's pickler would build it:
// push values, then group them. Every writer call appends opcodes; finish() ends the pickle.
class Writer {
 public:
  Writer();
  void none();
  void boolean(bool value);
  void integer(long long value);
  void floating(double value);
  void string(std::string_view text);  // must be UTF-8
  void mark();                         // starts the items of a tuple or dict
  void tuple_from_mark();              // the values pushed since mark() as a tuple
  void empty_dict();
  void set_items_from_mark();  // key, value pairs pushed since mark() into the dict below
  void global(std::string_view module, std::string_view name);
  void new_object();  // class, args tuple -> cls.__new__(cls, *args)
  std::string finish();

 private:
  std::string out_;
};

}  // namespace sra::bus::pickle
