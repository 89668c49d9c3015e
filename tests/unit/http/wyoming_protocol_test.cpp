#include "http/wyoming_protocol.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "core/errors.h"

namespace sra::http {
namespace {

namespace json = boost::json;

TEST(WyomingProtocol, ReadsHeaderDataBlockAndPayloadFedByteByByte) {
  // As PyPI `wyoming` 1.x writes an audio chunk: data in a block of its own after the header.
  const std::string data = R"({"rate": 16000, "width": 2, "channels": 1})";
  const std::string wire = R"({"type": "audio-chunk", "version": "1.10.2", "data_length": )" +
                           std::to_string(data.size()) +
                           R"(, "payload_length": 4, "data": {"timestamp": 7}})"
                           "\n" +
                           data + std::string("\x01\x02\x03\x04", 4) + R"({"type": "describe"})" +
                           "\n";
  WyomingEventReader reader;
  std::vector<WyomingEvent> events;
  for (char c : wire) {
    reader.feed(std::string_view(&c, 1));
    while (auto e = reader.next()) events.push_back(std::move(*e));
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, "audio-chunk");
  EXPECT_EQ(events[0].data.at("rate").as_int64(), 16000);
  EXPECT_EQ(events[0].data.at("timestamp").as_int64(), 7);  // the header's data, merged
  EXPECT_EQ(events[0].payload, std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(events[1].type, "describe");
  EXPECT_TRUE(events[1].data.empty());
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(WyomingProtocol, WritesOneLineEveryVersionReads) {
  const std::string bytes =
      wyoming_bytes("transcript", json::object{{"text", "two\nlines \"quoted\""}}, "xy");
  const auto newline = bytes.find('\n');
  ASSERT_NE(newline, std::string::npos);
  EXPECT_EQ(bytes.substr(newline + 1), "xy");  // the text's newline is escaped in the line
  json::object header = json::parse(bytes.substr(0, newline)).as_object();
  EXPECT_EQ(header.at("type").as_string(), "transcript");
  EXPECT_EQ(header.at("data").at("text").as_string(), "two\nlines \"quoted\"");
  EXPECT_EQ(header.at("payload_length").as_int64(), 2);
  EXPECT_FALSE(header.contains("data_length"));
  WyomingEventReader reader;
  reader.feed(bytes);
  auto back = reader.next();
  ASSERT_TRUE(back);
  EXPECT_EQ(back->payload, "xy");
}

TEST(WyomingProtocol, RefusesWhatCannotBeAnEvent) {
  const WyomingLimits limits{.max_header_bytes = 64, .max_data_bytes = 16, .max_payload_bytes = 8};
  for (const std::string wire : {
           std::string(R"(not json)") + "\n",
           std::string(R"([1, 2])") + "\n",
           std::string(R"({"type": 5})") + "\n",
           std::string(R"({"type": ""})") + "\n",
           std::string(R"({"type": "a", "data": [1]})") + "\n",
           std::string(R"({"type": "a", "data_length": 17})") + "\n",
           std::string(R"({"type": "a", "payload_length": 9})") + "\n",
           std::string(R"({"type": "a", "payload_length": -1})") + "\n",
           std::string(R"({"type": "a", "payload_length": 1.5})") + "\n",
           std::string(R"({"type": "a", "payload_length": 18446744073709551615})") + "\n",
           std::string(R"({"type": "a", "data_length": 3})") + "\n[1]",
           std::string(70, 'x'),
       }) {
    WyomingEventReader reader(limits);
    reader.feed(wire);
    try {
      while (reader.next()) {
      }
      ADD_FAILURE() << "accepted: " << wire;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::invalid_request) << wire;
    }
  }
}

TEST(WyomingProtocol, WaitsForTheRestOfAnEventWithoutHoldingMoreThanItsBounds) {
  WyomingEventReader reader({.max_header_bytes = 64, .max_data_bytes = 16, .max_payload_bytes = 8});
  reader.feed(R"({"type": "audio-chunk", "payload_length": 8})");
  EXPECT_FALSE(reader.next());
  reader.feed("\n1234");
  EXPECT_FALSE(reader.next());
  reader.feed("5678");
  auto e = reader.next();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->payload, "12345678");
}

}  // namespace
}  // namespace sra::http
