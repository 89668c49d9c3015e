#include "bus/redis_client.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <cmath>
#include <cstring>

#include "core/errors.h"
#include "core/text.h"

namespace sra::bus {
namespace {

RedisReply convert(const redisReply* r) {
  RedisReply out;
  if (!r) return out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::array;
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      break;
  }
  return out;
}

std::string sha1_hex(const std::string& text) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return to_hex({reinterpret_cast<const char*>(digest), sizeof digest});
}

}  // namespace

RedisUrl parse_redis_url(const std::string& url, const std::string& variable) {
  RedisUrl out;
  const std::string scheme = "redis://";
  if (url.rfind(scheme, 0) != 0)
    throw config_error(variable + "=" + redact_url(url) + " is not a redis:// URL");
  std::string rest = url.substr(scheme.size());
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    std::string auth = rest.substr(0, at);
    auto colon = auth.find(':');
    out.password = colon == std::string::npos ? auth : auth.substr(colon + 1);
    rest = rest.substr(at + 1);
  }
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      try {
        out.db = std::stoi(db);
      } catch (...) {
        throw config_error(variable + "=" + redact_url(url) + ": the database must be a number");
      }
    }
  }
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    try {
      out.port = std::stoi(rest.substr(colon + 1));
    } catch (...) {
      throw config_error(variable + "=" + redact_url(url) + ": the port must be a number");
    }
    rest = rest.substr(0, colon);
  }
  if (!rest.empty()) out.host = rest;
  out.text = "redis://" + out.host + ":" + std::to_string(out.port) + "/" + std::to_string(out.db);
  return out;
}

RedisClient::RedisClient(RedisUrl url, double timeout_seconds)
    : url_(std::move(url)), timeout_seconds_(timeout_seconds) {}

RedisClient::~RedisClient() {
  drop();
}

void RedisClient::drop() {
  if (context_) redisFree(context_);
  context_ = nullptr;
}

void RedisClient::connect() {
  timeval tv{static_cast<long>(timeout_seconds_),
             static_cast<long>((timeout_seconds_ - std::floor(timeout_seconds_)) * 1e6)};
  context_ = redisConnectWithTimeout(url_.host.c_str(), url_.port, tv);
  if (!context_ || context_->err) {
    std::string why = context_ ? context_->errstr : "out of memory";
    drop();
    throw unavailable("Redis at " + url_.text + " is unreachable: " + why);
  }
  redisSetTimeout(context_, tv);
  try {
    if (!url_.password.empty()) command({"AUTH", url_.password});
    if (url_.db != 0) command({"SELECT", std::to_string(url_.db)});
  } catch (...) {
    drop();  // never keep a connection that is not authenticated or on the wrong database
    throw;
  }
}

RedisReply RedisClient::command(const std::vector<std::string>& argv) {
  if (!context_) connect();
  std::vector<const char*> args;
  std::vector<std::size_t> lengths;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lengths.push_back(a.size());
  }
  auto* raw = static_cast<redisReply*>(
      redisCommandArgv(context_, static_cast<int>(args.size()), args.data(), lengths.data()));
  if (!raw) {
    std::string why = context_->errstr;
    drop();
    throw unavailable("Redis at " + url_.text + " failed: " + why);
  }
  RedisReply reply = convert(raw);
  freeReplyObject(raw);
  if (reply.type == RedisReply::Type::error) {
    throw unavailable("Redis at " + url_.text + " answered " + argv[0] + " with: " + reply.str);
  }
  return reply;
}

RedisReply RedisClient::eval(const std::string& script, const std::vector<std::string>& keys,
                             const std::vector<std::string>& args) {
  std::vector<std::string> argv{"EVALSHA", sha1_hex(script), std::to_string(keys.size())};
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  try {
    return command(argv);
  } catch (const Error& e) {
    if (std::string(e.what()).find("NOSCRIPT") == std::string::npos) throw;
  }
  argv[0] = "EVAL";
  argv[1] = script;
  return command(argv);
}

}  // namespace sra::bus
