#include "engine/duration.h"

#include <gtest/gtest.h>

namespace wsflow {
namespace {

TEST(Duration, ParsesEveryUnit) {
  EXPECT_EQ(parse_duration("250ms"), Millis(250));
  EXPECT_EQ(parse_duration("60s"), Millis(60'000));
  EXPECT_EQ(parse_duration("5m"), Millis(300'000));
  EXPECT_EQ(parse_duration("1h"), Millis(3'600'000));
  EXPECT_EQ(parse_duration("30d"), Millis(30LL * 24 * 3'600'000));
  EXPECT_EQ(parse_duration("0s"), Millis(0));
}

TEST(Duration, RejectsMalformedText) {
  for (const char* bad :
       {"", "s", "10", "10x", "-5s", "1.5s", " 5s", "5s ", "5 s", "5sec", "ms", "99999999999999999999s"}) {
    EXPECT_FALSE(try_parse_duration(bad).has_value()) << bad;
  }
  EXPECT_THROW(parse_duration("ten seconds"), std::invalid_argument);
}

TEST(Duration, RejectsOverflow) { EXPECT_FALSE(try_parse_duration("999999999999999999d").has_value()); }

TEST(Duration, FormatsShortestExactUnit) {
  EXPECT_EQ(format_duration(Millis(90'000)), "90s");
  EXPECT_EQ(format_duration(Millis(1500)), "1500ms");
  EXPECT_EQ(format_duration(Millis(3'600'000)), "1h");
  EXPECT_EQ(format_duration(Millis(0)), "0ms");
  EXPECT_EQ(parse_duration(format_duration(Millis(123'456))), Millis(123'456));
}

}  // namespace
}  // namespace wsflow
