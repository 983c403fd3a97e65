// PRP / SGL walking in isolation (Base 2.0 §4.1.1-4.1.2).
#include "nvme/dataptr.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <memory>

namespace vdpu::nvme {
namespace {

constexpr uint64_t kBase = 0x100000;
constexpr size_t kSize = 1 << 20;

class DataPtr : public ::testing::Test {
 protected:
  void SetUp() override {
    mem = static_cast<uint8_t*>(mmap(nullptr, kSize, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    hostmem::Region r;
    r.gpa = kBase;
    r.size = kSize;
    r.hva = mem;
    r.mmap_base = mem;
    r.mmap_len = kSize;
    map = std::make_unique<hostmem::MemoryMap>(std::vector<hostmem::Region>{r});
  }
  uint8_t* at(uint64_t gpa) { return mem + (gpa - kBase); }
  uint8_t* mem = nullptr;
  std::unique_ptr<hostmem::MemoryMap> map;
  iovec iov[64];
  uint32_t cnt = 0;
};

TEST_F(DataPtr, PrpSinglePageAndTwoPages) {
  DataMapArgs a;
  a.len = 4096 - 512;
  EXPECT_EQ(map_prp(*map, kBase + 512, 0, a, iov, 64, &cnt), sc::kSuccess);
  EXPECT_EQ(cnt, 1u);
  EXPECT_EQ(iov[0].iov_base, at(kBase + 512));
  a.len = 4096;
  // Discontiguous second page: two pieces.
  EXPECT_EQ(map_prp(*map, kBase + 512, kBase + 0x10000, a, iov, 64, &cnt), sc::kSuccess);
  EXPECT_EQ(cnt, 2u);
  EXPECT_EQ(iov[1].iov_len, 512u);
  // Contiguous second page: merged into one piece.
  EXPECT_EQ(map_prp(*map, kBase + 512, kBase + 4096, a, iov, 64, &cnt), sc::kSuccess);
  EXPECT_EQ(cnt, 1u);
  EXPECT_EQ(iov[0].iov_len, 4096u);
  a.len = 0;
  EXPECT_EQ(map_prp(*map, 0, 0, a, iov, 64, &cnt), sc::kSuccess);
  EXPECT_EQ(cnt, 0u);
}

TEST_F(DataPtr, PrpListCapAndWritability) {
  uint64_t list = kBase + 0x80000;
  for (int i = 0; i < 8; ++i) put_le64(at(list) + 8 * i, kBase + 0x20000 + 0x2000 * uint64_t(i));
  DataMapArgs a;
  a.len = 4096 * 9;
  EXPECT_EQ(map_prp(*map, kBase, list, a, iov, 64, &cnt), sc::kSuccess);
  EXPECT_EQ(cnt, 9u);
  EXPECT_EQ(map_prp(*map, kBase, list, a, iov, 4, &cnt), sc::kInvalidField);  // over cap
  // Read-only guest memory cannot receive device writes.
  hostmem::Region r = map->regions()[0];
  r.writable = false;
  r.mmap_base = nullptr;
  hostmem::MemoryMap ro({r});
  a.device_writes = true;
  EXPECT_EQ(map_prp(ro, kBase, list, a, iov, 64, &cnt), sc::kDataTransferError);
  a.device_writes = false;
  EXPECT_EQ(map_prp(ro, kBase, list, a, iov, 64, &cnt), sc::kSuccess);
}

TEST_F(DataPtr, PrpSelfReferencingListTerminates) {
  uint64_t list = kBase + 0x80000 + 4096 - 8;  // one entry: the chain pointer
  put_le64(at(list), kBase + 0x80000);          // points back to its own page...
  for (int i = 0; i < 511; ++i) put_le64(at(kBase + 0x80000) + 8 * i, kBase + 0x80000);
  DataMapArgs a;
  a.len = 4096 * 3;
  // ... whose entries are offset-0 data pages and whose last entry chains to
  // itself again: bounded, answered, no hang.
  uint16_t st = map_prp(*map, kBase, list, a, iov, 64, &cnt);
  EXPECT_TRUE(st == sc::kSuccess || st == sc::kPrpOffsetInvalid || st == sc::kInvalidField);
  put_le64(at(list), kBase + 0x80000 + 8);  // chain to a non-page-aligned list
  EXPECT_EQ(map_prp(*map, kBase, list, a, iov, 64, &cnt), sc::kPrpOffsetInvalid);
}

TEST_F(DataPtr, MapDataPsdt) {
  SqEntry c{};
  c.prp1 = kBase;
  DataMapArgs a;
  a.len = 512;
  EXPECT_EQ(map_data(*map, c, a, iov, 64, &cnt), sc::kSuccess);
  c.flags = kPsdtSglMptrContig << 6;
  EXPECT_EQ(map_data(*map, c, a, iov, 64, &cnt), sc::kInvalidField);  // SGL not allowed
  a.allow_sgl = true;
  SglDescriptor d{kBase, 512, {}, kSglDataBlock << 4};
  std::memcpy(&c.prp1, &d, 16);
  EXPECT_EQ(map_data(*map, c, a, iov, 64, &cnt), sc::kSuccess);
  EXPECT_EQ(cnt, 1u);
  c.flags = 3u << 6;
  EXPECT_EQ(map_data(*map, c, a, iov, 64, &cnt), sc::kInvalidField);
}

TEST_F(DataPtr, IovCopy) {
  uint8_t a[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, b[10] = {};
  iovec v[2] = {{a, 4}, {a + 4, 6}};
  EXPECT_EQ(iov_copy_from(v, 2, b, 10, 2), 8u);
  EXPECT_EQ(b[0], 3);
  EXPECT_EQ(b[7], 10);
  uint8_t src[5] = {9, 9, 9, 9, 9};
  EXPECT_EQ(iov_copy_to(v, 2, src, 5), 5u);
  EXPECT_EQ(a[4], 9);
  EXPECT_EQ(a[5], 6);
}

}  // namespace
}  // namespace vdpu::nvme
