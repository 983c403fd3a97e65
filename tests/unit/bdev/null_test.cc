// Tests of the null bdev (bdev/null).
#include "bdev/null/null.h"

#include "test_util.h"

namespace vdpu::bdev::test {
namespace {

using NullTest = BdevTest;

TEST_F(NullTest, EveryTypeSucceedsAndReadsLeaveBuffersAlone) {
  auto r = null::create({.name = "null0", .num_blocks = 1 << 20, .block_size = 4096});
  ASSERT_TRUE(r.ok());
  auto ch = (*r)->create_channel();
  Buf buf(8192);
  memset(buf.p, 0x5A, buf.size);
  TestIo t;
  t.set(IoType::kRead, 7, 2, buf.p, 8192);
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  for (size_t i = 0; i < buf.size; ++i) ASSERT_EQ(buf.p[i], 0x5A);
  for (IoType ty : {IoType::kWrite}) {
    t.set(ty, 0, 2, buf.p, 8192);
    EXPECT_EQ(run(*ch, t), IoStatus::kSuccess);
  }
  for (IoType ty : {IoType::kFlush, IoType::kUnmap, IoType::kWriteZeroes, IoType::kReset}) {
    t.set(ty, 0, 2);
    EXPECT_EQ(run(*ch, t), IoStatus::kSuccess) << io_type_name(ty);
  }
  EXPECT_FALSE(ch->poll());  // inline completion: nothing to poll
}

TEST_F(NullTest, BadParametersRefused) {
  null::Options bad[] = {
      {.name = "", .num_blocks = 8, .block_size = 512},
      {.name = "x", .num_blocks = 0, .block_size = 512},
      {.name = "x", .num_blocks = 8, .block_size = 520},
      {.name = "x", .num_blocks = UINT64_MAX, .block_size = 512},
      {.name = "x", .num_blocks = 8, .block_size = 512, .uuid = "zz"},
  };
  for (auto& o : bad) {
    auto r = null::create(o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument) << r.error().message;
  }
}

TEST_F(NullTest, WriteConfigAndDestroy) {
  auto r = null::create({.name = "null1", .num_blocks = 131072, .block_size = 512});
  ASSERT_TRUE(r.ok());
  json c = (*r)->write_config();
  EXPECT_EQ(c["method"], "bdev_null_create");
  EXPECT_EQ(c["params"]["name"], "null1");
  EXPECT_EQ(c["params"]["num_blocks"], 131072);
  EXPECT_EQ(c["params"]["block_size"], 512);
  ASSERT_TRUE(null::destroy("null1").ok());
  EXPECT_EQ(Manager::get().find("null1"), nullptr);
}

}  // namespace
}  // namespace vdpu::bdev::test
