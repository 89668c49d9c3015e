#include "bus/huey_wire.h"

#include <cmath>
#include <ctime>

namespace sra::bus::huey {
namespace {

using pickle::PickleError;
using pickle::Value;
using Kind = pickle::Value::Kind;

constexpr const char* kMessageClass = "huey.registry.Message";
constexpr const char* kErrorClass = "huey.utils.Error";
constexpr const char* kDatetimeClass = "datetime.datetime";
constexpr const char* kTimedeltaClass = "datetime.timedelta";

const std::vector<std::string>& allowed_classes() {
  static const std::vector<std::string> classes{kMessageClass, kErrorClass, kDatetimeClass,
                                                kTimedeltaClass};
  return classes;
}

pickle::Limits message_limits() {
  pickle::Limits limits;
  limits.max_bytes = kMaxMessageBytes;
  limits.max_values = 10000;
  return limits;
}

[[noreturn]] void refuse(const std::string& why) {
  throw PickleError("not a Huey message: " + why);
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
long long days_from_civil(long long y, unsigned m, unsigned d) {
  y -= m <= 2;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long long>(doe) - 719468;
}

// A naive datetime (Huey keeps UTC) as Unix seconds. Python pickles one as
// datetime.datetime(b'<10 bytes: year(2) month day hour minute second microsecond(3)>').
double datetime_seconds(const Value& v) {
  if (!v.is_object_of(kDatetimeClass) || v.args->items.empty() ||
      !v.args->items[0]->is(Kind::bytes) || v.args->items[0]->text.size() != 10)
    refuse("a time that is not a datetime");
  if (v.args->items.size() > 1 && !v.args->items[1]->is(Kind::none))
    refuse("a datetime with a time zone (Huey keeps naive UTC times)");
  const auto* b = reinterpret_cast<const unsigned char*>(v.args->items[0]->text.data());
  int year = b[0] * 256 + b[1];
  unsigned month = b[2], day = b[3], hour = b[4], minute = b[5], second = b[6];
  unsigned micro = (b[7] << 16) | (b[8] << 8) | b[9];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59 ||
      micro > 999999)
    refuse("a datetime out of range");
  long long days = days_from_civil(year, month, day);
  return static_cast<double>(days * 86400 + hour * 3600 + minute * 60 + second) + micro * 1e-6;
}

std::optional<double> optional_time(const Value* v) {
  if (!v || v->is(Kind::none)) return std::nullopt;
  return datetime_seconds(*v);
}

long long optional_integer(const Value* v, const char* field) {
  if (!v || v->is(Kind::none)) return 0;
  if (v->is(Kind::integer)) return v->integer;
  if (v->is(Kind::floating) && std::isfinite(v->floating))
    return static_cast<long long>(v->floating);
  refuse(std::string(field) + " is not a number");
}

}  // namespace

Keys keys_for(const std::string& name) {
  std::string clean;
  for (char c : name) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) clean += c;
  }
  return {"huey.redis." + clean, "huey.schedule." + clean, "huey.results." + clean};
}

Message read_message(std::string_view bytes) {
  pickle::Document doc = pickle::parse(bytes, allowed_classes(), message_limits());
  const Value& root = doc.root();
  if (!root.is_object_of(kMessageClass)) refuse("not a huey.registry.Message");
  const auto& f = root.args->items;  // Message's fields in order; missing ones are None
  auto field = [&](std::size_t i) -> const Value* { return i < f.size() ? f[i] : nullptr; };
  if (f.size() > 12) refuse("more fields than Huey 2.5's Message has");
  Message m;
  if (!field(0) || !field(0)->is(Kind::string) || field(0)->text.empty() ||
      field(0)->text.size() > 200)
    refuse("no task id");
  m.id = field(0)->text;
  if (!field(1) || !field(1)->is(Kind::string)) refuse("no task name");
  m.name = field(1)->text;
  m.eta = optional_time(field(2));
  m.retries = optional_integer(field(3), "retries");
  m.retry_delay = optional_integer(field(4), "retry_delay");
  if (const Value* args = field(6); args && !args->is(Kind::none)) {
    if (!args->is(Kind::tuple) && !args->is(Kind::list)) refuse("args is not a tuple");
    for (const Value* a : args->items) {
      if (!a->is(Kind::string)) refuse("an argument that is not a str");
      m.args.push_back(a->text);
    }
  }
  if (const Value* kwargs = field(7); kwargs && !kwargs->is(Kind::none)) {
    if (!kwargs->is(Kind::dict)) refuse("kwargs is not a dict");
    for (std::size_t i = 0; i + 1 < kwargs->items.size(); i += 2) {
      if (!kwargs->items[i]->is(Kind::string) || !kwargs->items[i + 1]->is(Kind::string))
        refuse("a keyword argument that is not a str");
      m.kwargs[kwargs->items[i]->text] = kwargs->items[i + 1]->text;
    }
  }
  auto callback = [&](std::size_t i) {
    const Value* v = field(i);
    if (!v || v->is(Kind::none)) return false;
    if (!v->is_object_of(kMessageClass)) refuse("a callback that is not a Message");
    return true;
  };
  m.has_callbacks = callback(8) || callback(9);
  m.expires_at = optional_time(field(11));
  return m;
}

std::string write_message(const Message& m) {
  pickle::Writer w;
  w.global("huey.registry", "Message");
  w.mark();
  w.string(m.id);
  w.string(m.name);
  w.none();  // eta: the producers of this service run tasks at once
  w.integer(m.retries);
  w.integer(m.retry_delay);
  w.none();  // priority
  w.mark();
  for (const auto& a : m.args) w.string(a);
  w.tuple_from_mark();
  w.empty_dict();
  if (!m.kwargs.empty()) {
    w.mark();
    for (const auto& [k, v] : m.kwargs) {
      w.string(k);
      w.string(v);
    }
    w.set_items_from_mark();
  }
  w.none();  // on_complete
  w.none();  // on_error
  w.none();  // expires
  w.none();  // expires_resolved
  w.tuple_from_mark();
  w.new_object();
  return w.finish();
}

StoredResult read_result(std::string_view bytes) {
  pickle::Document doc = pickle::parse(bytes, allowed_classes());
  const Value& root = doc.root();
  StoredResult out;
  if (root.is_object_of(kErrorClass)) {
    out.error = true;
    const Value* metadata = root.args->items.empty() ? nullptr : root.args->items[0];
    const Value* error = metadata ? metadata->get("error") : nullptr;
    out.message = error && error->is(Kind::string) ? error->text : "the task failed";
    const Value* cancelled = metadata ? metadata->get("cancelled") : nullptr;
    out.cancelled = cancelled && cancelled->is(Kind::boolean) && cancelled->boolean;
    return out;
  }
  if (root.is(Kind::string)) {
    out.transcription = root.text;
    return out;
  }
  if (!root.is(Kind::dict)) throw PickleError("not a Huey result: neither a dict nor an Error");
  const Value* text = root.get("transcription");
  if (text && text->is(Kind::string)) out.transcription = text->text;
  const Value* details = root.get("sra_result");
  if (details && details->is(Kind::string)) out.details_json = details->text;
  return out;
}

std::string write_success(const std::string& transcription, const std::string& details_json) {
  pickle::Writer w;
  w.empty_dict();
  w.mark();
  w.string("transcription");
  w.string(transcription);
  w.string("sra_result");
  w.string(details_json);
  w.set_items_from_mark();
  return w.finish();
}

std::string write_error(const std::string& task_id, const std::string& message, bool cancelled) {
  pickle::Writer w;
  w.global("huey.utils", "Error");
  w.mark();
  w.empty_dict();
  w.mark();
  w.string("error");
  w.string(message);
  w.string("retries");
  w.integer(0);
  w.string("traceback");
  w.string(message);
  w.string("task_id");
  w.string(task_id);
  w.string("cancelled");
  w.boolean(cancelled);
  w.set_items_from_mark();
  w.tuple_from_mark();
  w.new_object();
  return w.finish();
}

std::string revoke_key(const std::string& task_id) {
  return "r:" + task_id;
}

std::string write_revoke() {
  pickle::Writer w;
  w.mark();
  w.none();
  w.boolean(false);
  w.tuple_from_mark();
  return w.finish();
}

bool revokes(std::string_view bytes, double now) {
  pickle::Document doc = pickle::parse(bytes, allowed_classes(), message_limits());
  const Value& root = doc.root();
  if (!root.is(Kind::tuple) || root.items.size() != 2) throw PickleError("not a Huey revocation");
  auto until = optional_time(root.items[0]);
  return !until || *until > now;
}

double schedule_score(double unix_seconds) {
  auto whole = static_cast<std::time_t>(std::floor(unix_seconds));
  std::tm utc{};
  gmtime_r(&whole, &utc);
  utc.tm_isdst = -1;  // as Python's naive timetuple()
  return static_cast<double>(std::mktime(&utc)) + (unix_seconds - std::floor(unix_seconds));
}

}  // namespace sra::bus::huey
