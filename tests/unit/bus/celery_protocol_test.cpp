// Celery's message format, as kombu writes it; interoperability with real Python Celery is proven
// by tests/integration/test_workers.py.
#include "bus/celery_protocol.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace sra::bus {
namespace {

namespace json = boost::json;

TEST(CeleryProtocol, EnvelopeRoundTrips) {
  CeleryTask task{"0e0dae3d-9e2b-431a-b1ce-1f2063c70d34", kSeedCeleryTask, "file-1",
                  R"({"language":"en"})", 2};
  std::string tag;
  std::string envelope = redis_envelope(task, "celery", "tag-1");
  CeleryTask back = parse_redis_envelope(envelope, &tag);
  EXPECT_EQ(tag, "tag-1");
  EXPECT_EQ(back.id, task.id);
  EXPECT_EQ(back.name, task.name);
  EXPECT_EQ(back.file_id, "file-1");
  EXPECT_EQ(back.options_json, task.options_json);
  EXPECT_EQ(back.retries, 2);
  auto v = json::parse(envelope).as_object();
  EXPECT_EQ(v.at("content-type").as_string(), "application/json");
  EXPECT_EQ(v.at("properties").at("body_encoding").as_string(), "base64");
  EXPECT_EQ(v.at("properties").at("delivery_info").at("routing_key").as_string(), "celery");
  EXPECT_EQ(v.at("headers").at("argsrepr").as_string(), "['file-1']");
}

TEST(CeleryProtocol, ReadsWhatPythonCelerySends) {
  // A message Celery 5.7 (kombu 5.7) put on Redis for send_task(..., args=['FILE-ID']).
  std::string python =
      R"({"body": "W1siRklMRS1JRCJdLCB7fSwgeyJjYWxsYmFja3MiOiBudWxsLCAiZXJyYmFja3MiOiBudWxsLCAiY2hhaW4iOiBudWxsLCAiY2hvcmQiOiBudWxsfV0=", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "speech_recognition_api.extra.celery_bus.celery_bus.celery_task", "id": "bd397de2-1063-4592-99f8-ceb69248a182", "shadow": null, "eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "bd397de2-1063-4592-99f8-ceb69248a182", "parent_id": null, "argsrepr": "['FILE-ID']", "kwargsrepr": "{}", "origin": "gen25753@vm", "ignore_result": null, "replaced_task_nesting": 0, "stamped_headers": null, "stamps": {}}, "properties": {"correlation_id": "bd397de2-1063-4592-99f8-ceb69248a182", "reply_to": "5e9a5b76-140f-3e41-9a38-eaf0158e6f86", "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "275383c0-0610-42ab-8f13-927e2e817b88"}})";
  std::string tag;
  CeleryTask t = parse_redis_envelope(python, &tag);
  EXPECT_EQ(t.file_id, "FILE-ID");
  EXPECT_EQ(t.id, "bd397de2-1063-4592-99f8-ceb69248a182");
  EXPECT_EQ(tag, "275383c0-0610-42ab-8f13-927e2e817b88");
  EXPECT_THROW(parse_redis_envelope("{}", nullptr), std::runtime_error);
  EXPECT_THROW(parse_redis_envelope("not json", nullptr), std::runtime_error);
}

TEST(CeleryProtocol, ResultsAsCeleryStoresThem) {
  auto ok = json::parse(result_meta("id-1", "SUCCESS", json::object{{"transcription", "hi"}}, ""))
                .as_object();
  EXPECT_EQ(ok.at("status").as_string(), "SUCCESS");
  EXPECT_EQ(ok.at("result").at("transcription").as_string(), "hi");
  EXPECT_TRUE(ok.at("traceback").is_null());
  EXPECT_EQ(ok.at("task_id").as_string(), "id-1");
  EXPECT_TRUE(ok.at("children").as_array().empty());
  EXPECT_EQ(ok.at("date_done").as_string().size(), 32u);  // 2026-11-27T12:00:00.000000+00:00
  auto failed =
      json::parse(result_meta("id-2", "FAILURE", exception_result("ValueError", "bad"), "tb"))
          .as_object();
  EXPECT_EQ(failed.at("result").at("exc_type").as_string(), "ValueError");
  EXPECT_EQ(failed.at("result").at("exc_message").as_array().at(0).as_string(), "bad");
}

TEST(CeleryProtocol, Base64) {
  EXPECT_EQ(base64_encode("hello"), "aGVsbG8=");
  EXPECT_EQ(base64_decode("aGVsbG8="), "hello");
  EXPECT_EQ(base64_decode(base64_encode(std::string("\0\xff\x10", 3))),
            std::string("\0\xff\x10", 3));
}

TEST(CeleryProtocol, RequestIdTravelsAsAHeader) {
  CeleryTask task{"0e0dae3d-9e2b-431a-b1ce-1f2063c70d34", kSeedCeleryTask, "f", "{}", 0, "trace-1"};
  std::string envelope = redis_envelope(task, "celery", "t");
  EXPECT_EQ(json::parse(envelope).at("headers").at("request_id").as_string(), "trace-1");
  EXPECT_EQ(parse_redis_envelope(envelope, nullptr).request_id, "trace-1");
  task.request_id.clear();  // none: no header, as Python sends by default
  envelope = redis_envelope(task, "celery", "t");
  EXPECT_FALSE(json::parse(envelope).at("headers").as_object().contains("request_id"));
}

TEST(CeleryProtocol, OnlyFinalStatesAreDated) {
  auto progress = json::parse(result_meta("id", "PROGRESS", json::object{{"progress", 0.5}}, ""));
  EXPECT_TRUE(progress.at("date_done").is_null());
  EXPECT_EQ(progress.at("result").at("progress").as_double(), 0.5);
  auto revoked = json::parse(result_meta(
      "id", "REVOKED", exception_result("TaskRevokedError", "cancelled", "celery.exceptions"), ""));
  EXPECT_TRUE(revoked.at("date_done").is_string());
  EXPECT_EQ(revoked.at("result").at("exc_module").as_string(), "celery.exceptions");
}

}  // namespace
}  // namespace sra::bus
