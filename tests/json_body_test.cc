// Strict request-body reading: which unknown field is named, and how much of
// the client's own text an error echoes.

#include "adapters/http/json_body.h"

#include <gtest/gtest.h>

namespace wsflow::http {
namespace {

ApiError rejection(const nlohmann::json& object, const std::vector<const char*>& allowed, const std::string& prefix) {
  try {
    reject_unknown_fields(object, allowed, prefix);
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no field was rejected in " << object.dump();
  return ApiError(0, "", "");
}

TEST(RejectUnknownFields, AcceptsOnlyTheAllowedFields) {
  EXPECT_NO_THROW(reject_unknown_fields({{"user_id", "u1"}, {"email", "a@b.c"}}, {"user_id", "email"}));
  const ApiError e = rejection({{"user_id", "u1"}, {"nickname", "x"}}, {"user_id", "email"}, "owner.");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "unknown_field");
  EXPECT_EQ(e.field, "owner.nickname");
  EXPECT_STREQ(e.what(), "unknown field 'owner.nickname'");
}

TEST(RejectUnknownFields, EchoesAHugeNameOnlyInPartAndNeverSplitsACharacter) {
  std::string name;
  for (int i = 0; i < 5000; ++i) name += "\xC3\xA9";  // é, two bytes each
  const ApiError e = rejection({{name, 1}}, {"name"}, "sagas[0].");
  EXPECT_LE(e.field.size(), 123u);
  EXPECT_EQ(e.field.rfind("sagas[0].\xC3\xA9", 0), 0u) << e.field;
  EXPECT_EQ(e.field.substr(e.field.size() - 3), "...");
  EXPECT_TRUE(valid_utf8(e.field)) << "a cut must fall between characters";
  EXPECT_EQ(std::string(e.what()), "unknown field '" + e.field + "'");
}

TEST(ParseObject, NamesTheFirstUnknownTopLevelField) {
  EXPECT_EQ(parse_object(R"({"name":"a"})", {"name"})["name"], "a");
  try {
    parse_object(R"({"name":"a","colour":"red"})", {"name"});
    FAIL() << "an unknown field was accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.field, "colour");
  }
}

}  // namespace
}  // namespace wsflow::http
