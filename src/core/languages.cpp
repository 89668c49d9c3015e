#include "core/languages.h"

#include <utility>

namespace sra {
namespace {

const std::vector<std::pair<std::string, std::string>>& languages() {
  static const std::vector<std::pair<std::string, std::string>> table = {
      {"en", "english"},     {"zh", "chinese"},    {"de", "german"},
      {"es", "spanish"},     {"ru", "russian"},    {"ko", "korean"},
      {"fr", "french"},      {"ja", "japanese"},   {"pt", "portuguese"},
      {"tr", "turkish"},     {"pl", "polish"},     {"ca", "catalan"},
      {"nl", "dutch"},       {"ar", "arabic"},     {"sv", "swedish"},
      {"it", "italian"},     {"id", "indonesian"}, {"hi", "hindi"},
      {"fi", "finnish"},     {"vi", "vietnamese"}, {"he", "hebrew"},
      {"uk", "ukrainian"},   {"el", "greek"},      {"ms", "malay"},
      {"cs", "czech"},       {"ro", "romanian"},   {"da", "danish"},
      {"hu", "hungarian"},   {"ta", "tamil"},      {"no", "norwegian"},
      {"th", "thai"},        {"ur", "urdu"},       {"hr", "croatian"},
      {"bg", "bulgarian"},   {"lt", "lithuanian"}, {"la", "latin"},
      {"mi", "maori"},       {"ml", "malayalam"},  {"cy", "welsh"},
      {"sk", "slovak"},      {"te", "telugu"},     {"fa", "persian"},
      {"lv", "latvian"},     {"bn", "bengali"},    {"sr", "serbian"},
      {"az", "azerbaijani"}, {"sl", "slovenian"},  {"kn", "kannada"},
      {"et", "estonian"},    {"mk", "macedonian"}, {"br", "breton"},
      {"eu", "basque"},      {"is", "icelandic"},  {"hy", "armenian"},
      {"ne", "nepali"},      {"mn", "mongolian"},  {"bs", "bosnian"},
      {"kk", "kazakh"},      {"sq", "albanian"},   {"sw", "swahili"},
      {"gl", "galician"},    {"mr", "marathi"},    {"pa", "punjabi"},
      {"si", "sinhala"},     {"km", "khmer"},      {"sn", "shona"},
      {"yo", "yoruba"},      {"so", "somali"},     {"af", "afrikaans"},
      {"oc", "occitan"},     {"ka", "georgian"},   {"be", "belarusian"},
      {"tg", "tajik"},       {"sd", "sindhi"},     {"gu", "gujarati"},
      {"am", "amharic"},     {"yi", "yiddish"},    {"lo", "lao"},
      {"uz", "uzbek"},       {"fo", "faroese"},    {"ht", "haitian creole"},
      {"ps", "pashto"},      {"tk", "turkmen"},    {"nn", "nynorsk"},
      {"mt", "maltese"},     {"sa", "sanskrit"},   {"lb", "luxembourgish"},
      {"my", "myanmar"},     {"bo", "tibetan"},    {"tl", "tagalog"},
      {"mg", "malagasy"},    {"as", "assamese"},   {"tt", "tatar"},
      {"haw", "hawaiian"},   {"ln", "lingala"},    {"ha", "hausa"},
      {"ba", "bashkir"},     {"jw", "javanese"},   {"su", "sundanese"},
      {"yue", "cantonese"},
  };
  return table;
}

}  // namespace

const std::vector<std::string>& language_codes() {
  static const std::vector<std::string> codes = [] {
    std::vector<std::string> out;
    for (auto& [code, name] : languages()) out.push_back(code);
    return out;
  }();
  return codes;
}

std::string language_name(std::string_view code) {
  for (auto& [c, name] : languages()) {
    if (c == code) return name;
  }
  return {};
}

std::optional<std::string> language_code_for(std::string_view code_or_name) {
  for (auto& [c, name] : languages()) {
    if (c == code_or_name || name == code_or_name) return c;
  }
  return std::nullopt;
}

}  // namespace sra
