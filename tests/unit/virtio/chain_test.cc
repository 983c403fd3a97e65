// Malformed descriptor chains: every refusal of the walker, through the
// Virtqueue (the queue breaks, nothing crashes or loops) and directly.
#include "virtio/chain.h"

#include <gtest/gtest.h>

#include "test_driver.h"
#include "virtio/ring.h"
#include "virtio/virtqueue.h"

namespace vdpu::virtio {
namespace {

using test::GuestMemory;
using test::TestDriverQueue;

constexpr uint16_t N = VIRTQ_DESC_F_NEXT, W = VIRTQ_DESC_F_WRITE, I = VIRTQ_DESC_F_INDIRECT;

class SplitBad : public ::testing::Test {
 protected:
  GuestMemory mem{4 << 20, 0x100000, false, /*ro_tail=*/4096};
  TestDriverQueue drv{mem, 8, false, kFIndirectDesc};
  Virtqueue vq;
  uint64_t buf = 0;
  iovec iov[16];
  Chain c;
  void SetUp() override {
    buf = mem.alloc(4096);
    c.iov = iov;
    c.max_iov = 16;
  }
  // Starts the queue, pops, expects refusal e; the queue is broken after.
  void expect_refused(ChainError e, uint64_t features = kFIndirectDesc) {
    QueueConfig cfg = drv.config();
    cfg.features = features;
    ASSERT_TRUE(vq.start(cfg).ok());
    EXPECT_EQ(vq.pop(c), PopStatus::kError);
    EXPECT_EQ(vq.error(), e) << chain_error_name(vq.error());
    EXPECT_TRUE(vq.broken());
    EXPECT_EQ(vq.pop(c), PopStatus::kError) << "a broken queue stays broken";
    EXPECT_FALSE(vq.enable_notifications()) << "a broken queue never reports work";
  }
};

TEST_F(SplitBad, Loop) {
  drv.raw_desc(0, buf, 8, N, 1);
  drv.raw_desc(1, buf, 8, N, 0);  // back to 0
  drv.raw_avail(0);
  expect_refused(ChainError::kTooLong);
}

TEST_F(SplitBad, SelfLoop) {
  drv.raw_desc(3, buf, 8, N, 3);
  drv.raw_avail(3);
  expect_refused(ChainError::kTooLong);
}

TEST_F(SplitBad, NextOutOfRange) {
  drv.raw_desc(0, buf, 8, N, 8);
  drv.raw_avail(0);
  expect_refused(ChainError::kNextOutOfRange);
}

TEST_F(SplitBad, HeadOutOfRange) {
  drv.raw_avail(200);
  expect_refused(ChainError::kHeadOutOfRange);
}

TEST_F(SplitBad, AvailIndexJump) {
  drv.raw_desc(0, buf, 8, 0, 0);
  drv.raw_set_avail_idx(9);  // 9 new heads in a ring of 8
  expect_refused(ChainError::kAvailIndexJump);
}

TEST_F(SplitBad, IndirectTableLongerThanQueue) {
  std::vector<std::array<uint64_t, 4>> t;
  for (int i = 0; i < 9; ++i) t.push_back({buf, 8, uint64_t(i < 8 ? N : 0), uint64_t(i + 1)});
  drv.raw_desc(0, drv.raw_table(t), 16 * 9, I, 0);
  drv.raw_avail(0);
  expect_refused(ChainError::kTooLong);
}

TEST_F(SplitBad, LoopInsideIndirectTable) {
  uint64_t t = drv.raw_table({{buf, 8, N, 1}, {buf, 8, N, 0}});
  drv.raw_desc(0, t, 32, I, 0);
  drv.raw_avail(0);
  expect_refused(ChainError::kTooLong);
}

TEST_F(SplitBad, NextOutOfIndirectTable) {
  uint64_t t = drv.raw_table({{buf, 8, N, 2}, {buf, 8, 0, 0}});
  drv.raw_desc(0, t, 32, I, 0);
  drv.raw_avail(0);
  expect_refused(ChainError::kNextOutOfRange);
}

TEST_F(SplitBad, NestedIndirect) {
  uint64_t inner = drv.raw_table({{buf, 8, 0, 0}});
  uint64_t t = drv.raw_table({{inner, 16, I, 0}});
  drv.raw_desc(0, t, 16, I, 0);
  drv.raw_avail(0);
  expect_refused(ChainError::kNestedIndirect);
}

TEST_F(SplitBad, IndirectWithNext) {
  uint64_t t = drv.raw_table({{buf, 8, 0, 0}});
  drv.raw_desc(0, t, 16, I | N, 1);
  drv.raw_desc(1, buf, 8, 0, 0);
  drv.raw_avail(0);
  expect_refused(ChainError::kIndirectWithNext);
}

TEST_F(SplitBad, IndirectLengthNotMultipleOf16) {
  uint64_t t = drv.raw_table({{buf, 8, 0, 0}, {buf, 8, 0, 0}});
  drv.raw_desc(0, t, 24, I, 0);
  drv.raw_avail(0);
  expect_refused(ChainError::kIndirectBadLength);
}

TEST_F(SplitBad, IndirectZeroLength) {
  drv.raw_desc(0, buf, 0, I, 0);
  drv.raw_avail(0);
  expect_refused(ChainError::kIndirectBadLength);
}

TEST_F(SplitBad, IndirectTableBeyondMemory) {
  drv.raw_desc(0, mem.end() - 16, 32, I, 0);
  drv.raw_avail(0);
  expect_refused(ChainError::kIndirectOutOfBounds);
}

TEST_F(SplitBad, IndirectNotNegotiated) {
  uint64_t t = drv.raw_table({{buf, 8, 0, 0}});
  drv.raw_desc(0, t, 16, I, 0);
  drv.raw_avail(0);
  expect_refused(ChainError::kIndirectNotNegotiated, /*features=*/0);
}

TEST_F(SplitBad, ReadableAfterWritable) {
  drv.raw_desc(0, buf, 8, W | N, 1);
  drv.raw_desc(1, buf, 8, 0, 0);
  drv.raw_avail(0);
  expect_refused(ChainError::kReadableAfterWritable);
}

TEST_F(SplitBad, AddressOutsideMemory) {
  drv.raw_desc(0, 0x10, 8, 0, 0);
  drv.raw_avail(0);
  expect_refused(ChainError::kBadAddress);
}

TEST_F(SplitBad, LengthRunsPastEndOfMemory) {
  drv.raw_desc(0, mem.end() - 8, 16, W, 0);
  drv.raw_avail(0);
  expect_refused(ChainError::kBadAddress);
}

TEST_F(SplitBad, AddressWraps64Bits) {
  drv.raw_desc(0, ~0ull - 4, 4096, 0, 0);
  drv.raw_avail(0);
  expect_refused(ChainError::kBadAddress);
}

TEST_F(SplitBad, WritableBufferInReadOnlyMemory) {
  drv.raw_desc(0, mem.ro_start(), 64, W, 0);
  drv.raw_avail(0);
  expect_refused(ChainError::kBadAddress);
}

TEST_F(SplitBad, ZeroLengthChain) {
  drv.raw_desc(0, buf, 0, N, 1);
  drv.raw_desc(1, buf, 0, W, 0);
  drv.raw_avail(0);
  expect_refused(ChainError::kEmpty);
}

TEST_F(SplitBad, TooManySegments) {
  GuestMemory two(1 << 20, 0x100000, true);
  TestDriverQueue d2(two, 8, false);
  d2.raw_desc(0, two.boundary() - 8, 16, 0, 0);  // needs two iovecs
  d2.raw_avail(0);
  ASSERT_TRUE(vq.start(d2.config()).ok());
  c.max_iov = 1;
  EXPECT_EQ(vq.pop(c), PopStatus::kError);
  EXPECT_EQ(vq.error(), ChainError::kTooManySegments);
}

TEST_F(SplitBad, ReadableInReadOnlyMemoryIsFine) {
  drv.raw_desc(0, mem.ro_start(), 64, 0, 0);
  drv.raw_avail(0);
  ASSERT_TRUE(vq.start(drv.config()).ok());
  EXPECT_EQ(vq.pop(c), PopStatus::kOk);
}

TEST_F(SplitBad, ZeroLengthDescriptorInsideChainIsFine) {
  drv.raw_desc(0, buf, 0, N, 1);
  drv.raw_desc(1, buf, 8, W, 0);
  drv.raw_avail(0);
  ASSERT_TRUE(vq.start(drv.config()).ok());
  ASSERT_EQ(vq.pop(c), PopStatus::kOk);
  EXPECT_EQ(c.n_out, 0);
  EXPECT_EQ(c.n_in, 1);
}

TEST_F(SplitBad, FullLengthChainAccepted) {
  for (uint16_t i = 0; i < 8; ++i) drv.raw_desc(i, buf, 8, i < 7 ? N : 0, uint16_t(i + 1));
  drv.raw_avail(0);
  ASSERT_TRUE(vq.start(drv.config()).ok());
  ASSERT_EQ(vq.pop(c), PopStatus::kOk) << "a chain of exactly queue size descriptors is legal";
  EXPECT_EQ(c.n_out, 8);
}

// ---------------------------------------------------------------- packed

class PackedBad : public ::testing::Test {
 protected:
  GuestMemory mem{4 << 20};
  TestDriverQueue drv{mem, 4, true, kFIndirectDesc};
  Virtqueue vq;
  uint64_t buf = 0;
  iovec iov[16];
  Chain c;
  void SetUp() override {
    buf = mem.alloc(4096);
    c.iov = iov;
    c.max_iov = 16;
  }
  void expect_refused(ChainError e) {
    ASSERT_TRUE(vq.start(drv.config()).ok());
    EXPECT_EQ(vq.pop(c), PopStatus::kError);
    EXPECT_EQ(vq.error(), e) << chain_error_name(vq.error());
  }
};

TEST_F(PackedBad, EndlessNext) {
  for (uint16_t i = 0; i < 4; ++i) drv.raw_packed_desc(i, buf, 8, 0, N);
  expect_refused(ChainError::kTooLong);
}

TEST_F(PackedBad, IndirectInsideList) {
  uint64_t t = drv.raw_table({{buf, 8, 0, 0}});
  drv.raw_packed_desc(0, buf, 8, 0, N);
  drv.raw_packed_desc(1, t, 16, 0, I);
  expect_refused(ChainError::kIndirectWithNext);
}

TEST_F(PackedBad, IndirectWithNext) {
  uint64_t t = drv.raw_table({{buf, 8, 0, 0}});
  drv.raw_packed_desc(0, t, 16, 0, I | N);
  expect_refused(ChainError::kIndirectWithNext);
}

TEST_F(PackedBad, NestedIndirect) {
  uint64_t inner = drv.raw_table({{buf, 8, 0, 0}});
  // packed table entry: addr, len, id|flags<<16 packed into the 4th field.
  uint64_t t = drv.raw_table({{inner, 16, 0, 0}});
  // Write flags = INDIRECT at byte 14 of the entry (split layout's `next`).
  st16(mem.hva(t + 14, 2), I);
  drv.raw_packed_desc(0, t, 16, 0, I);
  expect_refused(ChainError::kNestedIndirect);
}

TEST_F(PackedBad, IndirectBadLength) {
  uint64_t t = drv.raw_table({{buf, 8, 0, 0}});
  drv.raw_packed_desc(0, t, 20, 0, I);
  expect_refused(ChainError::kIndirectBadLength);
}

TEST_F(PackedBad, IndirectBeyondMemory) {
  drv.raw_packed_desc(0, mem.end() - 8, 16, 0, I);
  expect_refused(ChainError::kIndirectOutOfBounds);
}

TEST_F(PackedBad, ReadableAfterWritable) {
  drv.raw_packed_desc(0, buf, 8, 0, W | N);
  drv.raw_packed_desc(1, buf, 8, 0, 0);
  expect_refused(ChainError::kReadableAfterWritable);
}

TEST_F(PackedBad, BadAddress) {
  drv.raw_packed_desc(0, 0x1000, 8, 0, 0);
  expect_refused(ChainError::kBadAddress);
}

TEST_F(PackedBad, ZeroLength) {
  drv.raw_packed_desc(0, buf, 0, 0, 0);
  expect_refused(ChainError::kEmpty);
}

TEST_F(PackedBad, UnavailableDescriptorIsNotPopped) {
  drv.raw_packed_desc(0, buf, 8, 0, 0, /*avail=*/false);
  ASSERT_TRUE(vq.start(drv.config()).ok());
  EXPECT_EQ(vq.pop(c), PopStatus::kEmpty) << "§2.8.1: zeroed flags are not available";
}

// ---------------------------------------------------------------- direct walker

TEST(Walker, SplitDirect) {
  GuestMemory mem;
  TestDriverQueue drv(mem, 4, false);
  uint64_t b = mem.alloc(64);
  drv.raw_desc(0, b, 16, N, 2);
  drv.raw_desc(2, b + 16, 1, W, 0);
  iovec iov[4];
  Chain c;
  c.iov = iov;
  c.max_iov = 4;
  WalkParams p{mem.map().get(), 4, false};
  ASSERT_EQ(walk_split_chain(p, mem.hva(drv.desc_gpa(), 64), 0, c), ChainError::kOk);
  EXPECT_EQ(c.n_out, 1);
  EXPECT_EQ(c.n_in, 1);
  EXPECT_EQ(c.id, 0);
  EXPECT_STRNE(chain_error_name(ChainError::kTooLong), "unknown");
}

}  // namespace
}  // namespace vdpu::virtio
