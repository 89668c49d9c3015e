// Base64, data URLs and UTF-8 checks: round trips, RFC 4648's vectors, and what is refused.
#include "core/base64.h"

#include <gtest/gtest.h>

#include "core/text.h"

namespace sra {
namespace {

TEST(Base64, TheRfcVectorsBothWays) {
  const std::pair<std::string, std::string> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [bytes, text] : vectors) {
    EXPECT_EQ(base64_encode(bytes), text);
    EXPECT_EQ(base64_decode(text), bytes);
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  EXPECT_EQ(base64_decode(base64_encode(all)), all);
  EXPECT_EQ(base64_decode("Zm9vYg"), "foob");  // padding optional
  EXPECT_FALSE(base64_decode("Zm9v Yg=="));    // white space
  EXPECT_FALSE(base64_decode("Zm9vY"));        // a lone sixth of a byte
  EXPECT_FALSE(base64_decode("Zm9vYg==="));    // three pads
  EXPECT_FALSE(base64_decode("Zm9v-_"));       // the URL alphabet is another
}

TEST(Base64, DataUrls) {
  auto url = parse_base64_data_url("data:Audio/WAV;base64,UklGRg==");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->media_type, "audio/wav");
  EXPECT_EQ(url->bytes, "RIFF");
  url = parse_base64_data_url("DATA:audio/ogg;codecs=opus;base64,T2dnUw");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->media_type, "audio/ogg");
  EXPECT_EQ(url->bytes, "OggS");
  url = parse_base64_data_url("data:;base64,");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->media_type, "");
  EXPECT_EQ(url->bytes, "");
  for (const char* bad : {"", "data:", "UklGRg==", "data:audio/wav,RIFF", "data:audio/wav;base64",
                          "https://example.com/a.wav", "data:audio/wav;base64,U k", "dat:;base64,"})
    EXPECT_FALSE(parse_base64_data_url(bad)) << bad;
}

TEST(Text, Utf8IsChecked) {
  EXPECT_TRUE(is_utf8(""));
  EXPECT_TRUE(is_utf8("plain"));
  EXPECT_TRUE(is_utf8("Zo\xc3\xab \xe2\x82\xac \xf0\x9f\x8e\xa4"));  // ë € 🎤
  EXPECT_FALSE(is_utf8("\xc3"));                                     // cut short
  EXPECT_FALSE(is_utf8("\xc0\xaf"));                                 // overlong '/'
  EXPECT_FALSE(is_utf8("\xe0\x80\xaf"));                             // overlong, 3 bytes
  EXPECT_FALSE(is_utf8("\xed\xa0\x80"));                             // a surrogate
  EXPECT_FALSE(is_utf8("\xf4\x90\x80\x80"));                         // past U+10FFFF
  EXPECT_FALSE(is_utf8("\x80"));                                     // a lone continuation
  EXPECT_FALSE(is_utf8("a\xe2\x82z"));
}

}  // namespace
}  // namespace sra
