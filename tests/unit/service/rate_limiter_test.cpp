#include "service/rate_limiter.h"

#include <gtest/gtest.h>

#include "core/errors.h"

namespace sra {
namespace {

using namespace std::chrono_literals;

double refusal_wait(RateLimiter& limiter, const std::string& client,
                    RateLimiter::Clock::time_point now) {
  try {
    limiter.admit(client, now);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::rate_limited);
    return e.retry_after().value_or(-1);
  }
  return 0;
}

TEST(RateLimiter, RequestsPerMinuteRefillContinuously) {
  RateLimiter limiter({.requests_per_minute = 2});
  auto t = RateLimiter::Clock::now();
  limiter.admit("a", t);
  limiter.admit("a", t);
  EXPECT_NEAR(refusal_wait(limiter, "a", t), 30, 0.01);  // one token comes back in 30 s
  EXPECT_NEAR(refusal_wait(limiter, "a", t + 20s), 10, 0.01);
  EXPECT_EQ(refusal_wait(limiter, "a", t + 30s), 0);
  limiter.admit("b", t);  // another client has its own allowance
}

TEST(RateLimiter, AudioIsChargedAfterTheFactAndDebtIsRepaid) {
  RateLimiter limiter({.audio_seconds_per_minute = 15});
  auto t = RateLimiter::Clock::now();
  limiter.admit("a", t);
  limiter.charge_audio("a", 11, t);  // 4 s left
  limiter.admit("a", t);
  limiter.charge_audio("a", 11, t);  // 7 s of debt
  // Until 1 s of allowance is back: 8 s at 15 s per minute.
  EXPECT_NEAR(refusal_wait(limiter, "a", t), 32, 0.01);
  EXPECT_EQ(refusal_wait(limiter, "a", t + 32s), 0);
}

TEST(RateLimiter, DisabledLimitsAdmitEverything) {
  RateLimiter limiter({});
  EXPECT_FALSE(limiter.enabled());
  for (int i = 0; i < 1000; ++i) limiter.admit("a");
  EXPECT_EQ(limiter.clients(), 0u);
}

TEST(RateLimiter, ClientTableIsBounded) {
  RateLimiter limiter({.requests_per_minute = 1, .max_clients = 3});
  auto t = RateLimiter::Clock::now();
  for (int i = 0; i < 100; ++i) limiter.admit("client-" + std::to_string(i), t);
  EXPECT_LE(limiter.clients(), 3u);
  // A client that was forgotten starts again with a full allowance; one still known does not.
  EXPECT_EQ(refusal_wait(limiter, "client-99", t), 60);
}

}  // namespace
}  // namespace sra
