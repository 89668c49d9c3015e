// The settings table: every variable the service reads from its environment and `.env`, declared
// once (name, type, default, bounds, one line of doc, where the README lists it, whether its
// value is a secret). Config's getters read through it: the default and the bounds of a read come
// from here, and reading a name the table does not declare is a fault of ours
// (sra::Error(internal)), so a variable can never be read without being documented. The README's
// configuration tables and `speech-recognition-api config` are generated from it.
//
// Two families of variables are declared by their option tables instead (core/option_table.h):
// WHISPER_<option> (the Whisper options) and VAD_<option> (voice activity detection); they are
// read with Config::option().
//
// Immutable static data; safe from any thread.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace sra {

enum class SettingType {
  text,     // any text (paths, names, URLs)
  integer,  // a whole number in [min, max]
  number,   // a finite number in [min, max]
  boolean,  // true/false, 1/0, yes/no, on/off
  list,     // comma-separated items
};

// How `config` shows a value.
enum class Secrecy {
  none,    // as it is
  secret,  // never shown (keys, tokens)
  url,     // a URL whose user-info password is masked
};

struct Setting {
  std::string_view name = {};            // the variable
  SettingType type = SettingType::text;  // what its value must be
  std::string_view default_value = {};   // parsed as a value would be; empty: unset
  std::string_view doc = {};             // one line, for the README and `config`
  double min = 0;                        // integer, number: smallest value accepted
  double max = 0;                        // integer, number: largest value accepted
  std::string_view section = {};         // the README table that lists it
  // The README's wording of the default when it is computed (cores, another setting) or worth
  // saying otherwise ("25 MiB"); empty: default_value as it is.
  std::string_view default_doc = {};
  bool computed = false;  // the default depends on the machine or other settings: the reader
                          // passes it (default_doc says how)
  Secrecy secrecy = Secrecy::none;
};

// Every declared setting, in the README's order.
std::span<const Setting> settings_table();
// The declaration of `name`, or nullptr.
const Setting* find_setting(std::string_view name);

// The README's configuration tables, one per section, as Markdown: | variable | default | meaning
// |.
std::string settings_markdown();
// `value` as `config` shows it for `setting` (secrets masked).
std::string shown_value(const Setting& setting, std::string_view value);

}  // namespace sra
