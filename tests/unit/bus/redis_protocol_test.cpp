// The RESP reader and the Redis URL as redis-py and Celery spell it; the client itself is
// exercised against real Redis servers (plain and TLS) by the integration tests.
#include <gtest/gtest.h>

#include "bus/redis_client.h"
#include "bus/resp_reader.h"
#include "core/errors.h"

namespace sra::bus {
namespace {

TEST(Resp, ParsesEveryReplyTypeAndWaitsForMore) {
  std::string data = "*4\r\n+OK\r\n:-12\r\n$5\r\nhe\r\no\r\n*2\r\n$-1\r\n-ERR no\r\n";
  RedisReply r;
  for (std::size_t cut = 0; cut < data.size(); ++cut)
    EXPECT_EQ(parse_resp_reply(std::string_view(data).substr(0, cut), r), 0u) << cut;
  ASSERT_EQ(parse_resp_reply(data, r), data.size());
  ASSERT_EQ(r.type, RedisReply::Type::array);
  ASSERT_EQ(r.elements.size(), 4u);
  EXPECT_EQ(r.elements[0].str, "OK");
  EXPECT_EQ(r.elements[1].integer, -12);
  EXPECT_EQ(r.elements[2].str, "he\r\no");  // a bulk string holds any byte
  EXPECT_TRUE(r.elements[3].elements[0].is_nil());
  EXPECT_EQ(r.elements[3].elements[1].type, RedisReply::Type::error);
}

TEST(Resp, RefusesWhatIsNotRespOrPastTheBounds) {
  RedisReply r;
  RespLimits limits;
  limits.max_bulk_bytes = 10;
  limits.max_depth = 3;
  EXPECT_THROW(parse_resp_reply("?x\r\n", r), Error);
  EXPECT_THROW(parse_resp_reply(":12x\r\n", r), Error);
  EXPECT_THROW(parse_resp_reply("$11\r\n", r, limits), Error);
  EXPECT_THROW(parse_resp_reply("$-5\r\n", r), Error);
  EXPECT_THROW(parse_resp_reply("$2\r\nabXY", r), Error);  // no CRLF after the bytes
  EXPECT_THROW(parse_resp_reply("*1\r\n*1\r\n*1\r\n*1\r\n*0\r\n", r, limits), Error);
  EXPECT_THROW(parse_resp_reply("*99999999999\r\n", r), Error);
  EXPECT_THROW(parse_resp_reply(std::string(70000, '+'), r), Error);  // a line without an end
}

TEST(Resp, EncodesCommandsAsBulkStrings) {
  EXPECT_EQ(encode_resp_command({"SET", "k", std::string("a\0b", 3)}),
            std::string("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\0b\r\n", 29));
}

TEST(RedisUrl, ReadsWhatRedisPyAndCeleryWrite) {
  RedisUrl u = parse_redis_url("redis://:p%40ss@cache.example:6380/3", "X");
  EXPECT_EQ(u.host, "cache.example");
  EXPECT_EQ(u.port, 6380);
  EXPECT_EQ(u.password, "p@ss");
  EXPECT_EQ(u.db, 3);
  EXPECT_FALSE(u.tls.enabled);
  EXPECT_EQ(u.text.find("p@ss"), std::string::npos);

  RedisUrl s = parse_redis_url(
      "rediss://app:secret@[::1]:6390/0?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs=%2Fetc%2Fca.pem",
      "X");
  EXPECT_TRUE(s.tls.enabled);
  EXPECT_EQ(s.host, "::1");
  EXPECT_EQ(s.port, 6390);
  EXPECT_EQ(s.user, "app");
  EXPECT_TRUE(s.tls.verify_peer);
  EXPECT_TRUE(s.tls.verify_hostname);
  EXPECT_EQ(s.tls.ca_file, "/etc/ca.pem");
  EXPECT_EQ(s.text, "rediss://::1:6390/0");

  RedisUrl none = parse_redis_url("rediss://h?ssl_cert_reqs=none", "X");
  EXPECT_FALSE(none.tls.verify_peer);
  EXPECT_FALSE(none.tls.verify_hostname);
  EXPECT_EQ(parse_redis_url("rediss://h?ssl_check_hostname=false", "X").tls.verify_hostname, false);
}

TEST(RedisUrl, RefusalsNeverCarryThePassword) {
  for (const char* bad : {"http://:hunter2@h", "redis://:hunter2@h:port", "redis://:hunter2@h/x",
                          "rediss://:hunter2@h?ssl_cert_reqs=maybe", "rediss://:hunter2@h?verify=1",
                          "rediss://:hun/ter2@h:bad", "redis://u:hunter2?@h:bad"}) {
    try {
      parse_redis_url(bad, "CELERY_BUS_BROKER");
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).find("ter2"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("CELERY_BUS_BROKER"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace sra::bus
