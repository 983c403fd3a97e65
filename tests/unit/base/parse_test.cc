#include "base/parse.h"

#include <gtest/gtest.h>

namespace vdpu {
namespace {

TEST(ParseU64, DecimalAndHex) {
  EXPECT_EQ(parse_u64("0"), 0u);
  EXPECT_EQ(parse_u64("4096"), 4096u);
  EXPECT_EQ(parse_u64("0x10"), 16u);
  EXPECT_EQ(parse_u64("18446744073709551615"), UINT64_MAX);
}

TEST(ParseU64, RejectsGarbageAndOverflow) {
  EXPECT_FALSE(parse_u64(""));
  EXPECT_FALSE(parse_u64("12a"));
  EXPECT_FALSE(parse_u64("-1"));
  EXPECT_FALSE(parse_u64("0x"));
  EXPECT_FALSE(parse_u64("18446744073709551616"));
}

TEST(ParseI64, Signs) {
  EXPECT_EQ(parse_i64("-5"), -5);
  EXPECT_EQ(parse_i64("-9223372036854775808"), INT64_MIN);
  EXPECT_FALSE(parse_i64("9223372036854775808"));
}

TEST(ParseCpumask, HexAndLists) {
  EXPECT_EQ(parse_cpumask("0x3"), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(parse_cpumask("1"), (std::vector<uint32_t>{0}));
  EXPECT_EQ(parse_cpumask("0xF000000"), (std::vector<uint32_t>{24, 25, 26, 27}));
  EXPECT_EQ(parse_cpumask("[0,1]"), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(parse_cpumask("[0-2,5]"), (std::vector<uint32_t>{0, 1, 2, 5}));
}

TEST(ParseCpumask, RejectsBadMasks) {
  EXPECT_FALSE(parse_cpumask(""));
  EXPECT_FALSE(parse_cpumask("0x0"));
  EXPECT_FALSE(parse_cpumask("[1-0]"));
  EXPECT_FALSE(parse_cpumask("[0,"));
  EXPECT_FALSE(parse_cpumask("0xZZ"));
  EXPECT_FALSE(parse_cpumask("[5000]"));
}

}  // namespace
}  // namespace vdpu
