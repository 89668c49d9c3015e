#include "core/option_table.h"

#include <gtest/gtest.h>

#include "core/cancel.h"
#include "core/errors.h"
#include "core/text.h"
#include "models/whisper_options.h"

namespace sra {
namespace {

OptionSpec numbers_spec() {
  OptionSpec s;
  s.name = "temperature";
  s.type = OptionType::numbers;
  s.min = 0;
  s.max = 2;
  s.max_items = 3;
  return s;
}

Error error_of(const OptionSpec& spec, std::string_view value) {
  try {
    parse_option(spec, value);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << spec.name << "=" << value << " accepted";
  return internal_error("none");
}

TEST(OptionTable, ParsesEachTypeWithinItsBounds) {
  OptionSpec integer{"beam_size", OptionType::integer, "", "", 1, 10, 0, true};
  EXPECT_EQ(parse_option(integer, " 5 ").number, 5);
  EXPECT_TRUE(parse_option(integer, "none").unset);
  for (const char* bad : {"0", "11", "2.5", "1e9", "nan", "inf", "five", ""}) {
    if (std::string(bad).empty()) continue;  // nullable: "" is unset
    Error e = error_of(integer, bad);
    EXPECT_EQ(e.kind(), ErrorKind::invalid_request);
    EXPECT_EQ(e.field(), "beam_size");
    EXPECT_NE(std::string(e.what()).find("integer in [1, 10]"), std::string::npos) << e.what();
  }
  OptionSpec list = numbers_spec();
  EXPECT_EQ(parse_option(list, "0, 0.5,,1").numbers, (std::vector<double>{0, 0.5, 1}));
  EXPECT_EQ(error_of(list, "0,0,0,0").field(), "temperature");
  EXPECT_EQ(error_of(list, "0,3").field(), "temperature");
  // A huge list is refused after its first items, and the message does not echo it all.
  std::string huge(1'000'000, ',');
  huge += "1";
  for (int i = 0; i < 10; ++i) huge += ",1";
  EXPECT_LT(std::string(error_of(list, huge).what()).size(), 200u);

  OptionSpec choice{"task", OptionType::choice};
  choice.choices = {"transcribe", "translate"};
  EXPECT_EQ(parse_option(choice, "Translate").text, "translate");
  EXPECT_EQ(error_of(choice, "summarize").field(), "task");
  OptionSpec flag{"suppress_blank", OptionType::boolean};
  EXPECT_TRUE(parse_option(flag, "yes").flag);
  EXPECT_FALSE(parse_option(flag, "0").flag);
  EXPECT_EQ(error_of(flag, "maybe").field(), "suppress_blank");
  OptionSpec text{"prefix", OptionType::text};
  text.max_items = 4;
  EXPECT_EQ(parse_option(text, "abcd").text, "abcd");
  EXPECT_EQ(error_of(text, "abcde").field(), "prefix");
}

TEST(OptionTable, WhisperTableHasTheIssuesBounds) {
  auto table = whisper_option_specs();
  auto bound = [&](const char* name) { return *find_option(table, name); };
  EXPECT_EQ(bound("max_initial_timestamp").max, 30);
  EXPECT_EQ(bound("max_initial_timestamp").min, 0);
  EXPECT_EQ(bound("temperature").max_items, 6u);
  EXPECT_EQ(bound("beam_size").max, 10);
  EXPECT_EQ(bound("best_of").max, 10);
  EXPECT_EQ(bound("clip_timestamps").max_items, 512u);  // 256 clips
  EXPECT_EQ(find_option(table, "prompt")->name, "initial_prompt");
  EXPECT_EQ(find_option(whisper_option_specs(4), "beam_size")->max,
            4);  // WHISPER_MAX_BEAM_SIZE tightens it
  // Every row of the README table names its variable and field.
  std::string md = options_markdown(table, "WHISPER_");
  for (const auto& spec : table) {
    EXPECT_NE(md.find("(field `" + spec.name + "`"), std::string::npos) << spec.name;
  }
  EXPECT_NE(md.find("`WHISPER_BEAM_SIZE`"), std::string::npos);
  auto props = options_schema_properties(table);
  EXPECT_TRUE(props.contains("prompt") && props.contains("initial_prompt"));
}

TEST(Text, ExcerptsOfClientTextEndOnACharacter) {
  // Each Devanagari letter is 3 bytes: 40 bytes would end inside the 14th.
  std::string letters;
  for (int i = 0; i < 30; ++i) letters += "\u092a";
  EXPECT_EQ(utf8_prefix(letters, 40).size(), 39u);
  EXPECT_EQ(utf8_prefix("short", 40), "short");
  EXPECT_EQ(utf8_prefix(letters, 2), "");
  // The message of a refused value quotes only whole characters.
  std::string message = error_of(numbers_spec(), letters).what();
  std::string quoted = message.substr(message.find('\'') + 1);
  quoted = quoted.substr(0, quoted.find("...'"));
  EXPECT_EQ(quoted, letters.substr(0, 39));
}

TEST(Text, CredentialsInUrlsAreRedacted) {
  EXPECT_EQ(redact_url("rediss://:s3cret@redis.example:6380/0"),
            "rediss://:***@redis.example:6380/0");
  EXPECT_EQ(redact_url("amqp://user:p%40ss@host:5672//"), "amqp://user:***@host:5672//");
  EXPECT_EQ(redact_url("redis://token@host"), "redis://***@host");
  EXPECT_EQ(redact_url("redis://host:6379/0"), "redis://host:6379/0");
  EXPECT_EQ(redact_url("not a url"), "not a url");
  // A password with an unescaped '/' is masked whole; an '@' in a path masks more, never less.
  EXPECT_EQ(redact_url("rediss://:pa/ss?#@h:1/0"), "rediss://:***@h:1/0");
  EXPECT_EQ(redact_url("redis://host/a@b"), "redis://***@b");
}

TEST(CancelToken, CancelWinsOnceAndDeadlinesExpire) {
  CancelToken t;
  EXPECT_NO_THROW(t.check());
  t.cancel("first");
  t.cancel("second");
  try {
    t.check();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::cancelled);
    EXPECT_STREQ(e.what(), "first");
    EXPECT_FALSE(e.is_permanent());
  }
  CancelToken late;
  late.set_deadline(CancelToken::Clock::now() - std::chrono::milliseconds(1));
  try {
    late.check();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::deadline_exceeded);
    EXPECT_TRUE(e.is_permanent());
  }
}

}  // namespace
}  // namespace sra
