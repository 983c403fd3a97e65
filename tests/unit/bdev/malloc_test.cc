// Tests of the malloc bdev (bdev/malloc).
#include "bdev/malloc/malloc.h"

#include "test_util.h"

namespace vdpu::bdev::test {
namespace {

using MallocTest = BdevTest;

Bdev* make(uint64_t nb = 256, uint32_t bs = 512, std::string name = "m0") {
  auto r = malloc::create({.name = std::move(name), .num_blocks = nb, .block_size = bs});
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : nullptr;
}

void fill(unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<unsigned char>(seed + i * 7);
}
bool all_zero(const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

TEST_F(MallocTest, StartsZeroFilled) {
  Bdev* b = make(64, 4096);
  auto ch = b->create_channel();
  Buf buf(64 * 4096);
  memset(buf.p, 0xAA, buf.size);
  TestIo t;
  t.set(IoType::kRead, 0, 64, buf.p, buf.size);
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  EXPECT_TRUE(all_zero(buf.p, buf.size));
}

TEST_F(MallocTest, WriteReadRoundTripWithScatteredIovecs) {
  Bdev* b = make();
  auto ch = b->create_channel();
  Buf w(4096), r(4096);
  fill(w.p, 4096, 3);
  TestIo t;
  // Write 8 blocks at 10 from three iovecs of odd sizes (sum 4096).
  t.set(IoType::kWrite, 10, 8, w.p, 100);
  t.iov[1] = {w.p + 100, 3000};
  t.iov[2] = {w.p + 3100, 996};
  t.io.iovcnt = 3;
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  t.set(IoType::kRead, 10, 8, r.p, 4096);
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  EXPECT_EQ(memcmp(w.p, r.p, 4096), 0);
  // Neighbours untouched.
  t.set(IoType::kRead, 9, 1, r.p, 512);
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  EXPECT_TRUE(all_zero(r.p, 512));
  t.set(IoType::kRead, 18, 1, r.p, 512);
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  EXPECT_TRUE(all_zero(r.p, 512));
}

TEST_F(MallocTest, DataIsSharedAcrossChannels) {
  Bdev* b = make();
  auto c1 = b->create_channel();
  auto c2 = b->create_channel();
  Buf w(512), r(512);
  fill(w.p, 512, 9);
  TestIo t;
  t.set(IoType::kWrite, 255, 1, w.p, 512);
  ASSERT_EQ(run(*c1, t), IoStatus::kSuccess);
  t.set(IoType::kRead, 255, 1, r.p, 512);
  ASSERT_EQ(run(*c2, t), IoStatus::kSuccess);
  EXPECT_EQ(memcmp(w.p, r.p, 512), 0);
}

TEST_F(MallocTest, UnmapAndWriteZeroesZeroTheRangeOnly) {
  Bdev* b = make(32, 512);
  auto ch = b->create_channel();
  Buf w(32 * 512), r(32 * 512);
  fill(w.p, w.size, 1);
  TestIo t;
  t.set(IoType::kWrite, 0, 32, w.p, w.size);
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  t.set(IoType::kUnmap, 4, 4);
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  t.set(IoType::kWriteZeroes, 20, 2);
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  t.set(IoType::kRead, 0, 32, r.p, r.size);
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  for (uint64_t blk = 0; blk < 32; ++blk) {
    bool zero = (blk >= 4 && blk < 8) || (blk >= 20 && blk < 22);
    if (zero) EXPECT_TRUE(all_zero(r.p + blk * 512, 512)) << blk;
    else EXPECT_EQ(memcmp(r.p + blk * 512, w.p + blk * 512, 512), 0) << blk;
  }
}

TEST_F(MallocTest, CompareMatchesAndMiscompares) {
  Bdev* b = make(8, 512);
  auto ch = b->create_channel();
  Buf w(512), c(512);
  fill(w.p, 512, 5);
  TestIo t;
  t.set(IoType::kWrite, 1, 1, w.p, 512);
  ASSERT_EQ(run(*ch, t), IoStatus::kSuccess);
  memcpy(c.p, w.p, 512);
  t.set(IoType::kCompare, 1, 1, c.p, 512);
  EXPECT_EQ(run(*ch, t), IoStatus::kSuccess);
  c.p[511] ^= 1;
  t.set(IoType::kCompare, 1, 1, c.p, 512);
  EXPECT_EQ(run(*ch, t), IoStatus::kMiscompare);
}

TEST_F(MallocTest, FlushAndResetSucceed) {
  Bdev* b = make(8, 512);
  auto ch = b->create_channel();
  TestIo t;
  t.set(IoType::kFlush, 0, 8);
  EXPECT_EQ(run(*ch, t), IoStatus::kSuccess);
  t.set(IoType::kReset, 0, 0);
  EXPECT_EQ(run(*ch, t), IoStatus::kSuccess);
}

TEST_F(MallocTest, DefaultNamesAreMallocN) {
  auto a = malloc::create({.num_blocks = 8, .block_size = 512});
  auto b = malloc::create({.num_blocks = 8, .block_size = 512});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)->name().rfind("Malloc", 0), 0u);
  EXPECT_NE((*a)->name(), (*b)->name());
  EXPECT_EQ((*a)->product_name(), "Malloc disk");
}

TEST_F(MallocTest, UuidIsKeptAndWritten) {
  const std::string u = "913fc008-79a7-447f-b2c4-c73543638c31";
  auto r = malloc::create({.name = "m1", .num_blocks = 8, .block_size = 512, .uuid = u,
                           .optimal_io_boundary = 16});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->uuid(), u);
  json c = (*r)->write_config();
  EXPECT_EQ(c["params"]["uuid"], u);
  EXPECT_EQ(c["params"]["optimal_io_boundary"], 16);
  EXPECT_EQ(c["params"]["name"], "m1");
}

TEST_F(MallocTest, BadParametersRefused) {
  struct Case {
    malloc::Options o;
    Errc code;
  } cases[] = {
      {{.name = "x", .num_blocks = 8, .block_size = 0}, Errc::kInvalidArgument},
      {{.name = "x", .num_blocks = 8, .block_size = 1000}, Errc::kInvalidArgument},
      {{.name = "x", .num_blocks = 0, .block_size = 512}, Errc::kInvalidArgument},
      {{.name = "x", .num_blocks = UINT64_MAX / 2, .block_size = 4096}, Errc::kInvalidArgument},
      {{.name = "x", .num_blocks = 8, .block_size = 512, .uuid = "not-a-uuid"},
       Errc::kInvalidArgument},
  };
  for (auto& c : cases) {
    auto r = malloc::create(c.o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, c.code) << r.error().message;
  }
  EXPECT_TRUE(Manager::get().list().empty());
}

TEST_F(MallocTest, DestroyDeletes) {
  make(8, 512, "m0");
  ASSERT_TRUE(malloc::destroy("m0").ok());
  EXPECT_EQ(Manager::get().find("m0"), nullptr);
  auto s = malloc::destroy("m0");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kNotFound);
}

}  // namespace
}  // namespace vdpu::bdev::test
