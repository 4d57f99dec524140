// UTF-8 checks for bytes from outside, and the well-formed prefix kept of them.

#include "engine/utf8.h"

#include <gtest/gtest.h>

namespace wsflow {
namespace {

const std::string kReplacement = "\xEF\xBF\xBD";

TEST(ValidUtf8, AcceptsWellFormedTextAndRefusesEveryKindOfMalformedSequence) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));  // 2, 3 and 4 bytes
  EXPECT_FALSE(valid_utf8("\xff"));
  EXPECT_FALSE(valid_utf8("\x80"));              // a stray continuation byte
  EXPECT_FALSE(valid_utf8("\xC0\xAF"));          // an overlong '/'
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // a surrogate
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(valid_utf8("caf\xC3"));           // cut short
}

TEST(Utf8Prefix, KeepsWholeCharactersWithinTheLimit) {
  EXPECT_EQ(utf8_prefix("caf\xC3\xA9", 10), "caf\xC3\xA9");
  EXPECT_EQ(utf8_prefix("caf\xC3\xA9", 5), "caf\xC3\xA9");
  EXPECT_EQ(utf8_prefix("caf\xC3\xA9", 4), "caf");  // the limit cuts the é: left out whole
  EXPECT_EQ(utf8_prefix("\xF0\x9F\x98\x80x", 3), "");
  EXPECT_EQ(utf8_prefix("abc", 0), "");
}

TEST(Utf8Prefix, ReplacesEachMalformedByteAndKeepsTheRest) {
  EXPECT_EQ(utf8_prefix("a\xff"
                        "b",
                        10),
            "a" + kReplacement + "b");
  EXPECT_EQ(utf8_prefix("\xC0\xAF!", 10), kReplacement + kReplacement + "!");
  // A sequence the text itself ends inside is malformed, not cut by the limit.
  EXPECT_EQ(utf8_prefix("caf\xC3", 10), "caf" + kReplacement);
  const std::string mixed = "\xff\xfe ok \xE2\x82\xAC";
  EXPECT_TRUE(valid_utf8(utf8_prefix(mixed, mixed.size())));
}

}  // namespace
}  // namespace wsflow
