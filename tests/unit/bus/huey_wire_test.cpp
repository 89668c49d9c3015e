// Huey 2.5's wire format: the pickles in huey_pickles/ were written by Python's pickle with Huey's
// own Message and Error classes (make.py there); interoperability with the Python project's Huey
// bus and consumer is proven by tests/integration/test_python_project_huey.py.
#include "bus/huey_wire.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "test_paths.h"

namespace sra::bus::huey {
namespace {

std::string pickle_file(const std::string& name) {
  return test::read_file(std::filesystem::path(SRA_UNIT_TEST_DIR) / "bus" / "huey_pickles" / name);
}

constexpr const char* kId = "0b4e6c2e-7c1f-4a55-9a53-2f1f4fd1a3c1";

TEST(HueyWire, KeysAreCleanedAsHueyCleansTheName) {
  Keys k = keys_for("huey_message_bus");
  EXPECT_EQ(k.queue, "huey.redis.hueymessagebus");
  EXPECT_EQ(k.schedule, "huey.schedule.hueymessagebus");
  EXPECT_EQ(k.results, "huey.results.hueymessagebus");
}

TEST(HueyWire, ReadsMessagesHueyWroteInEveryProtocol) {
  for (int protocol : {2, 3, 4, 5}) {
    SCOPED_TRACE(protocol);
    Message m = read_message(pickle_file("message.p" + std::to_string(protocol) + ".pickle"));
    EXPECT_EQ(m.id, kId);
    EXPECT_EQ(m.name, kSeedTaskName);
    EXPECT_EQ(m.args, std::vector<std::string>{"audio-file-id"});
    EXPECT_TRUE(m.kwargs.empty());
    EXPECT_FALSE(m.eta);
    EXPECT_FALSE(m.has_callbacks);
    EXPECT_TRUE(
        read_message(pickle_file("message_callback.p" + std::to_string(protocol) + ".pickle"))
            .has_callbacks);
  }
}

TEST(HueyWire, ReadsTheEtaAndKeywordArguments) {
  for (int protocol : {3, 4, 5}) {  // protocol 2 spells bytes through _codecs.encode: refused
    SCOPED_TRACE(protocol);
    Message m = read_message(pickle_file("message_eta.p" + std::to_string(protocol) + ".pickle"));
    ASSERT_TRUE(m.eta);
    EXPECT_NEAR(*m.eta, 1893553445.6, 1e-6);  // 2030-01-02 03:04:05.6 UTC
    EXPECT_EQ(m.retries, 2);
    EXPECT_EQ(m.retry_delay, 10);
    EXPECT_EQ(m.kwargs.at("options"), R"({"language": "en"})");
  }
  EXPECT_THROW(read_message(pickle_file("message_eta.p2.pickle")), pickle::PickleError);
}

TEST(HueyWire, MessagesRoundTrip) {
  Message m;
  m.id = kId;
  m.name = kSeedTaskName;
  m.args = {std::string(300, 'x')};  // past the short string opcode
  m.kwargs = {{"options", "{\"language\":\"de\"}"}};
  m.retries = 3;
  Message back = read_message(write_message(m));
  EXPECT_EQ(back.id, m.id);
  EXPECT_EQ(back.name, m.name);
  EXPECT_EQ(back.args, m.args);
  EXPECT_EQ(back.kwargs, m.kwargs);
  EXPECT_EQ(back.retries, 3);
}

TEST(HueyWire, ReadsResultsAndErrors) {
  for (int protocol : {2, 3, 4, 5}) {
    SCOPED_TRACE(protocol);
    StoredResult ok = read_result(pickle_file("result.p" + std::to_string(protocol) + ".pickle"));
    EXPECT_FALSE(ok.error);
    EXPECT_EQ(ok.transcription, "go forward ten meters");
    StoredResult bad = read_result(pickle_file("error.p" + std::to_string(protocol) + ".pickle"));
    EXPECT_TRUE(bad.error);
    EXPECT_EQ(bad.message, "ValueError('not audio')");
    EXPECT_FALSE(bad.cancelled);
  }
  StoredResult ours = read_result(write_success("héllo", R"({"text":"héllo"})"));
  EXPECT_EQ(ours.transcription, "héllo");
  EXPECT_EQ(ours.details_json, R"({"text":"héllo"})");
  StoredResult cancelled = read_result(write_error(kId, "the task was cancelled", true));
  EXPECT_TRUE(cancelled.error && cancelled.cancelled);
  EXPECT_EQ(cancelled.message, "the task was cancelled");
}

TEST(HueyWire, Revocations) {
  EXPECT_TRUE(revokes(pickle_file("revoke.p5.pickle"), 1e9));
  EXPECT_TRUE(revokes(write_revoke(), 1e9));
  EXPECT_TRUE(revokes(pickle_file("revoke_until.p4.pickle"), 978307199));  // until 2001-01-01
  EXPECT_FALSE(revokes(pickle_file("revoke_until.p4.pickle"), 978307201));
  EXPECT_EQ(revoke_key("abc"), "r:abc");
}

TEST(HueyWire, RefusesHostilePickles) {
  EXPECT_THROW(read_message(pickle_file("hostile_global.pickle")), pickle::PickleError);
  EXPECT_THROW(read_result(pickle_file("cycle.pickle")), pickle::PickleError);  // a list
  EXPECT_THROW(read_message(""), pickle::PickleError);
  EXPECT_THROW(read_message("\x80\x05N"), pickle::PickleError);  // no STOP
  EXPECT_THROW(read_message("\x80\x05X\xff\xff\xff\x7f"
                            "ab."),
               pickle::PickleError);                                             // length
  EXPECT_THROW(read_message("\x80\x05\x8c\x02\xc3\x28."), pickle::PickleError);  // not UTF-8
  EXPECT_THROW(read_message("(lp0\nS'a'\n."), pickle::PickleError);              // protocol 0
  std::string deep = "\x80\x05";
  for (int i = 0; i < 200000; ++i) deep += ']';  // more values than the limit
  deep += '.';
  EXPECT_THROW(read_message(deep), pickle::PickleError);
  // One value pushed again and again from the memo: bounded by references, not only by values.
  std::string gets = "\x80\x04]\x94";
  for (int i = 0; i < 50000; ++i) gets += std::string("h\0", 2);
  gets += '.';
  try {
    read_message(gets);
    ADD_FAILURE() << "50,000 references accepted";
  } catch (const pickle::PickleError& e) {
    EXPECT_NE(std::string(e.what()).find("references"), std::string::npos) << e.what();
  }
  // A key set twice: the last setting wins, as in Python.
  pickle::Writer twice;
  twice.empty_dict();
  twice.mark();
  twice.string("transcription");
  twice.string("first");
  twice.string("transcription");
  twice.string("second");
  twice.set_items_from_mark();
  EXPECT_EQ(read_result(twice.finish()).transcription, "second");
  // A message of the right class but wrong fields.
  pickle::Writer w;
  w.global("huey.registry", "Message");
  w.mark();
  w.integer(5);
  w.tuple_from_mark();
  w.new_object();
  EXPECT_THROW(read_message(w.finish()), pickle::PickleError);
}

TEST(HueyWire, ScheduleScoreIsUnixTimeInUtc) {
  // This process's zone is what mktime reads; under TZ=UTC (CI) the score is the Unix time.
  double t = 1700000000.25;
  double score = schedule_score(t);
  EXPECT_NEAR(score - t, std::round(score - t), 1e-6);  // whole seconds of zone offset at most
}

}  // namespace
}  // namespace sra::bus::huey
