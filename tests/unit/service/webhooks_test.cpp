#include "service/webhooks.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "core/errors.h"

namespace sra {
namespace {

WebhookSettings settings_with_key(const std::string& secret) {
  return webhook_settings_from(Config{{"WEBHOOK_SECRET", secret}});
}

TEST(Webhooks, SignatureIsTheStandardWebhooksOne) {
  // The specification's test vector (the same value PyPI standardwebhooks computes).
  WebhookSettings s = settings_with_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  EXPECT_EQ(webhook_signature(s.key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                              R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(Webhooks, SecretMustBeBase64OfEnoughBytes) {
  EXPECT_THROW(settings_with_key("whsec_short"), Error);
  EXPECT_THROW(settings_with_key("not base64 at all!"), Error);
  EXPECT_EQ(settings_with_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").key.size(), 24u);
  EXPECT_TRUE(settings_with_key("").key.empty());
}

std::string refusal(const std::string& url, const WebhookSettings& s = {}) {
  try {
    check_webhook_url(url, s);
  } catch (const Error& e) {
    EXPECT_EQ(e.field().value_or(""), "callback_url");
    return e.what();
  }
  return "";
}

TEST(Webhooks, PrivateAndMalformedUrlsAreRefused) {
  for (const char* url :
       {"http://127.0.0.1/", "http://127.1.2.3:8080/x", "http://10.1.2.3/", "http://172.16.0.1/",
        "http://192.168.1.1/", "http://169.254.169.254/latest", "http://100.64.0.1/",
        "http://0.0.0.0/", "http://[::1]/", "http://[fe80::1]/", "http://[fc00::1]/",
        "http://[::ffff:127.0.0.1]/", "http://224.0.0.1/", "http://localhost/"}) {
    EXPECT_NE(refusal(url).find("private"), std::string::npos) << url;
  }
  EXPECT_NE(refusal("file:///etc/passwd").find("http"), std::string::npos);
  EXPECT_NE(refusal("gopher://x/").find("http"), std::string::npos);
  EXPECT_NE(refusal("http://a@b/").find("credentials"), std::string::npos);
  EXPECT_NE(refusal("http://x:0/").find("port"), std::string::npos);
  EXPECT_NE(refusal("http://x:abc/").find("port"), std::string::npos);
  EXPECT_NE(refusal("http:///path").find("no host"), std::string::npos);
  EXPECT_NE(refusal("http://[::1/").find("]"), std::string::npos);
  EXPECT_NE(refusal("http://a b/").find("spaces"), std::string::npos);
  EXPECT_NE(refusal("http://" + std::string(3000, 'a')).find("longer"), std::string::npos);
}

TEST(Webhooks, AllowedHostsMayBePrivateAndConnectWhereChecked) {
  WebhookSettings s;
  s.allow_hosts = {"127.0.0.1", "[::1]", "::1"};
  WebhookTarget t = check_webhook_url("http://127.0.0.1:8080/hook?x=1", s);
  EXPECT_EQ(t.host, "127.0.0.1");
  EXPECT_EQ(t.port, 8080);
  EXPECT_EQ(t.address, "127.0.0.1");
  WebhookTarget v6 = check_webhook_url("https://[::1]/hook", s);
  EXPECT_EQ(v6.port, 443);
  EXPECT_EQ(v6.address, "[::1]");
}

TEST(Webhooks, PayloadOfEachOutcome) {
  TaskResult done;
  done.status = TaskStatus::success;
  done.transcription = Transcription{.text = " hello", .language = "en", .duration = 1};
  auto a = boost::json::parse(webhook_payload("t1", done)).as_object();
  EXPECT_EQ(a.at("type").as_string(), "transcription.completed");
  EXPECT_EQ(a.at("data").at("transcription").as_string(), " hello");
  EXPECT_EQ(a.at("data").at("status").as_string(), "SUCCESS");
  TaskResult cancelled;
  cancelled.status = TaskStatus::failed;
  cancelled.error = "the task was cancelled";
  cancelled.cancelled = true;
  auto b = boost::json::parse(webhook_payload("t2", cancelled)).as_object();
  EXPECT_EQ(b.at("type").as_string(), "transcription.cancelled");
  EXPECT_TRUE(b.at("data").at("cancelled").as_bool());
  EXPECT_TRUE(b.at("data").at("transcription").is_null());
}

}  // namespace
}  // namespace sra
