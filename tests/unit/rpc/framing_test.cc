#include "rpc/framing.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vdpu::rpc {
namespace {

using Err = JsonSplitter::Err;

std::vector<std::string> feed_all(JsonSplitter& s, std::string_view data, Err* err = nullptr) {
  std::vector<std::string> out;
  Err e = s.feed(data, [&](std::string_view m) { out.emplace_back(m); });
  if (err) *err = e;
  return out;
}

TEST(JsonSplitter, TwoRequestsInOneRead) {
  JsonSplitter s;
  auto m = feed_all(s, R"({"a":1}{"b":[2,3]})");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0], R"({"a":1})");
  EXPECT_EQ(m[1], R"({"b":[2,3]})");
  EXPECT_FALSE(s.partial());
}

TEST(JsonSplitter, WhitespaceBetweenValuesIsSkipped) {
  JsonSplitter s;
  auto m = feed_all(s, " \n{\"a\":1}\r\n\t [1] \n");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[1], "[1]");
  EXPECT_EQ(s.buffered(), 0u);
}

TEST(JsonSplitter, PartialReadsByteByByte) {
  JsonSplitter s;
  std::string req = R"({"jsonrpc":"2.0","method":"x","params":{"s":"}{][\"\\"},"id":1})";
  std::vector<std::string> got;
  for (char c : req) {
    auto m = feed_all(s, std::string_view(&c, 1));
    got.insert(got.end(), m.begin(), m.end());
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], req);
}

TEST(JsonSplitter, BracesInsideStringsDoNotCount) {
  JsonSplitter s;
  auto m = feed_all(s, R"({"k":"}}}\"{{"}{"k":2})");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0], R"({"k":"}}}\"{{"})");
}

TEST(JsonSplitter, SecondRequestSplitAcrossReads) {
  JsonSplitter s;
  auto m1 = feed_all(s, R"({"a":1}{"b")");
  ASSERT_EQ(m1.size(), 1u);
  EXPECT_TRUE(s.partial());
  auto m2 = feed_all(s, R"(:2})");
  ASSERT_EQ(m2.size(), 1u);
  EXPECT_EQ(m2[0], R"({"b":2})");
}

TEST(JsonSplitter, GarbageIsASyntaxError) {
  JsonSplitter s;
  Err e;
  feed_all(s, "hello", &e);
  EXPECT_EQ(e, Err::kSyntax);
  // Stays failed.
  feed_all(s, "{}", &e);
  EXPECT_EQ(e, Err::kSyntax);
}

TEST(JsonSplitter, BareScalarIsASyntaxError) {
  JsonSplitter s;
  Err e;
  feed_all(s, "42 ", &e);
  EXPECT_EQ(e, Err::kSyntax);
}

TEST(JsonSplitter, OversizedRequestRefusedWithoutBufferingIt) {
  JsonSplitter s(/*max_message=*/64);
  Err e = Err::kNone;
  std::string big = "{\"k\":\"" + std::string(1000, 'x');
  for (size_t i = 0; i < big.size() && e == Err::kNone; i += 10)
    feed_all(s, std::string_view(big).substr(i, 10), &e);
  EXPECT_EQ(e, Err::kTooLarge);
  EXPECT_LE(s.buffered(), 65u);
}

TEST(JsonSplitter, ExactlyAtTheLimitIsAccepted) {
  std::string req = R"({"k":"abcdef"})";
  JsonSplitter s(req.size());
  Err e;
  auto m = feed_all(s, req + req, &e);
  EXPECT_EQ(e, Err::kNone);
  EXPECT_EQ(m.size(), 2u);
  JsonSplitter t(req.size() - 1);
  feed_all(t, req, &e);
  EXPECT_EQ(e, Err::kTooLarge);
}

TEST(JsonSplitter, TooDeep) {
  JsonSplitter s(1 << 20, 8);
  Err e;
  feed_all(s, std::string(9, '['), &e);
  EXPECT_EQ(e, Err::kTooDeep);
}

}  // namespace
}  // namespace vdpu::rpc
