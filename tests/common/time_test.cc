#include "common/time.h"

#include <gtest/gtest.h>

#include "common/clock.h"

namespace gt {
namespace {

TEST(Time, ParsesTheFormatsOfTheTraces) {
  EXPECT_EQ(*ParseIsoTime("1970-01-01"), 0);
  EXPECT_EQ(*ParseIsoTime("2022-01-01 00:00:00+00:00"), 1640995200);
  EXPECT_EQ(*ParseIsoTime("2022-01-01T00:00:00Z"), 1640995200);
  EXPECT_EQ(*ParseIsoTime("2023-01-01 00:00:00"), 1672531200);
  EXPECT_EQ(*ParseIsoTime("2022-01-01 01:00:00+01:00"), 1640995200);
  EXPECT_EQ(*ParseIsoTime("2021-12-31T19:00-05:00"), 1640995200);
  EXPECT_EQ(*ParseIsoTime("2020-02-29 12:00"), 1582977600);
}

TEST(Time, RejectsMalformed) {
  for (const char* s : {"", "2022", "2022-13-01", "2022-02-30", "2022-01-01 25:00", "2022-01-01x",
                        "2022-01-01 00:00:00.5", "abc", "2022-01-01 00:00:00+0x:00"}) {
    auto r = ParseIsoTime(s);
    EXPECT_FALSE(r.ok()) << s;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("bad timestamp"), std::string::npos);
    }
  }
}

TEST(Time, FormatRoundTrips) {
  for (UnixSeconds t : {0LL, 1640995200LL, 1582977600LL + 3599, 4102444800LL, -86400LL}) {
    EXPECT_EQ(*ParseIsoTime(FormatIsoTime(t)), t) << FormatIsoTime(t);
  }
  EXPECT_EQ(FormatIsoTime(1640995200), "2022-01-01T00:00:00Z");
}

TEST(Time, Durations) {
  EXPECT_EQ(*ParseDurationSeconds("90"), 90);
  EXPECT_EQ(*ParseDurationSeconds("15m"), 900);
  EXPECT_EQ(*ParseDurationSeconds("1h"), 3600);
  EXPECT_EQ(*ParseDurationSeconds("2d"), 172800);
  EXPECT_FALSE(ParseDurationSeconds("1w").ok());
  EXPECT_FALSE(ParseDurationSeconds("h").ok());
  // Numbers too long for the count (found while fuzzing the config): refused, not wrapped around.
  EXPECT_FALSE(ParseDurationSeconds("99999999999999999999s").ok());
  EXPECT_FALSE(ParseDurationSeconds("999999999999999d").ok());
}

TEST(Clock, FakeClockJumps) {
  FakeClock c(100);
  c.SleepUntil(50);
  EXPECT_EQ(c.Now(), 100);
  c.SleepUntil(200);
  EXPECT_EQ(c.Now(), 200);
  c.Advance(5);
  EXPECT_EQ(c.Now(), 205);
}

TEST(Clock, TraceReplayIsCompressed) {
  TraceReplayClock c(1000, 0.036);  // one trace hour per 36 ms: 100000x
  EXPECT_NEAR(c.speedup(), 100000.0, 1e-6);
  c.SleepUntil(1000 + 360);         // 3.6 ms of wall time
  EXPECT_GE(c.Now(), 1360);
}

}  // namespace
}  // namespace gt
