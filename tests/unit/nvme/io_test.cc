// NVM I/O commands (NVM 1.0 §3.2): read/write with PRPs and SGLs, MDTS, LBA
// range, namespaces, flush, write zeroes, DSM, compare, bdev errors,
// interrupts and coalescing.
#include <gtest/gtest.h>

#include <cstring>

#include "test_host.h"

namespace vdpu::nvme::test {
namespace {

uint16_t sc_of(const std::optional<CqEntry>& e) { return e ? uint16_t((e->status >> 1) & 0x7ff) : 0xffff; }

class NvmeIo : public ::testing::Test {
 protected:
  void SetUp() override {
    TestHost::Options o;
    o.ctrl.num_queues = 2;
    o.ctrl.compare = true;
    o.namespaces = {{1, 65536}};
    h = std::make_unique<TestHost>(o);
    ASSERT_EQ(h->enable() & kCstsRdy, kCstsRdy);
    ASSERT_TRUE(h->create_io_queues(2, 64));
  }
  void fill(uint64_t gpa, size_t len, uint8_t seed) {
    for (size_t i = 0; i < len; ++i) h->hva(gpa)[i] = uint8_t(seed + i * 7);
  }
  std::unique_ptr<TestHost> h;
};

TEST_F(NvmeIo, WriteReadRoundTripAcrossPages) {
  // 20 KiB at an offset of 512 B into a page: PRP1 + a 5-entry PRP list.
  uint64_t src = h->alloc(8 * 4096) + 512, dst = h->alloc(8 * 4096) + 512;
  fill(src, 20480, 3);
  SqEntry w = TestHost::rw_cmd(kIoWrite, 1, 100, 40);
  h->build_prps(w, src, 20480);
  ASSERT_EQ(sc_of(h->io(1, w)), sc::kSuccess);
  EXPECT_EQ(0, std::memcmp(&h->bdev(1).data[100 * 512], h->hva(src), 20480));
  SqEntry r = TestHost::rw_cmd(kIoRead, 1, 100, 40);
  h->build_prps(r, dst, 20480);
  auto e = h->io(2, r);
  ASSERT_EQ(sc_of(e), sc::kSuccess);
  EXPECT_EQ(e->sqid, 2);
  EXPECT_EQ(e->sqhd, 1);
  EXPECT_EQ(0, std::memcmp(h->hva(src), h->hva(dst), 20480));
}

TEST_F(NvmeIo, PrpListChaining) {
  // 512 KiB (MDTS 7) with a list starting near the end of its page: chained.
  uint64_t buf = h->alloc(129 * 4096);
  fill(buf, 128 * 4096, 9);
  SqEntry w = TestHost::rw_cmd(kIoWrite, 1, 0, 1024);
  w.prp1 = buf;
  uint64_t l1 = h->alloc(8192) + 4096 - 16;  // room for 2 entries: 1 data + chain
  uint64_t l2 = h->alloc(4096);
  w.prp2 = l1;
  put_le64(h->hva(l1), buf + 4096);
  put_le64(h->hva(l1) + 8, l2);
  for (int i = 0; i < 126; ++i) put_le64(h->hva(l2) + 8 * i, buf + 4096 * uint64_t(i + 2));
  ASSERT_EQ(sc_of(h->io(1, w)), sc::kSuccess);
  EXPECT_EQ(0, std::memcmp(&h->bdev(1).data[0], h->hva(buf), 128 * 4096));
  // A chain pointer with an offset is PRP Offset Invalid.
  put_le64(h->hva(l1) + 8, l2 + 8);
  EXPECT_EQ(sc_of(h->io(1, w)), sc::kPrpOffsetInvalid);
}

TEST_F(NvmeIo, BadPrps) {
  uint64_t buf = h->alloc(4 * 4096);
  SqEntry r = TestHost::rw_cmd(kIoRead, 1, 0, 16);  // 8 KiB
  r.prp1 = buf + 1;  // not dword aligned
  r.prp2 = buf + 4096;
  EXPECT_EQ(sc_of(h->io(1, r)), sc::kPrpOffsetInvalid);
  r.prp1 = buf;
  r.prp2 = buf + 4096 + 4;  // second page with an offset
  EXPECT_EQ(sc_of(h->io(1, r)), sc::kPrpOffsetInvalid);
  r.prp2 = 0x7000000000ull;  // unmapped
  EXPECT_EQ(sc_of(h->io(1, r)), sc::kDataTransferError);
  SqEntry big = TestHost::rw_cmd(kIoRead, 1, 0, 24);  // 3 pages: PRP2 = list
  big.prp1 = buf;
  big.prp2 = buf + 4;  // list pointer not qword aligned
  EXPECT_EQ(sc_of(h->io(1, big)), sc::kPrpOffsetInvalid);
  uint64_t list = h->alloc(4096);
  put_le64(h->hva(list), buf + 4096 + 512);  // list entry with an offset
  put_le64(h->hva(list) + 8, buf + 8192);
  big.prp2 = list;
  EXPECT_EQ(sc_of(h->io(1, big)), sc::kPrpOffsetInvalid);
  big.prp2 = 0x7000000000ull;  // list itself unmapped
  EXPECT_EQ(sc_of(h->io(1, big)), sc::kDataTransferError);
}

TEST_F(NvmeIo, SglDataBlockAndSegments) {
  uint64_t a = h->alloc(4096), b = h->alloc(4096), seg = h->alloc(4096);
  fill(a, 1024, 1);
  fill(b, 1024, 2);
  // Last Segment with two data blocks.
  SglDescriptor d[2] = {{a, 1024, {}, kSglDataBlock << 4}, {b, 1024, {}, kSglDataBlock << 4}};
  std::memcpy(h->hva(seg), d, sizeof(d));
  SqEntry w = TestHost::rw_cmd(kIoWrite, 1, 8, 4);
  w.flags = kPsdtSglMptrContig << 6;
  SglDescriptor s1{seg, sizeof(d), {}, kSglLastSegment << 4};
  std::memcpy(&w.prp1, &s1, 16);
  ASSERT_EQ(sc_of(h->io(1, w)), sc::kSuccess);
  EXPECT_EQ(0, std::memcmp(&h->bdev(1).data[8 * 512], h->hva(a), 1024));
  EXPECT_EQ(0, std::memcmp(&h->bdev(1).data[8 * 512 + 1024], h->hva(b), 1024));
  // Single data block in the command.
  uint64_t dst = h->alloc(4096);
  SqEntry r = TestHost::rw_cmd(kIoRead, 1, 8, 2);
  r.flags = kPsdtSglMptrContig << 6;
  SglDescriptor db{dst, 1024, {}, kSglDataBlock << 4};
  std::memcpy(&r.prp1, &db, 16);
  ASSERT_EQ(sc_of(h->io(1, r)), sc::kSuccess);
  EXPECT_EQ(0, std::memcmp(h->hva(dst), h->hva(a), 1024));
  // Segment -> Last Segment chain.
  uint64_t seg2 = h->alloc(4096);
  SglDescriptor first[2] = {{a, 1024, {}, kSglDataBlock << 4}, {seg2, 16, {}, kSglLastSegment << 4}};
  SglDescriptor second[1] = {{b, 1024, {}, kSglDataBlock << 4}};
  std::memcpy(h->hva(seg), first, sizeof(first));
  std::memcpy(h->hva(seg2), second, sizeof(second));
  SglDescriptor s0{seg, sizeof(first), {}, kSglSegment << 4};
  std::memcpy(&w.prp1, &s0, 16);
  EXPECT_EQ(sc_of(h->io(1, w)), sc::kSuccess);
}

TEST_F(NvmeIo, BadSgls) {
  uint64_t a = h->alloc(4096), seg = h->alloc(4096);
  SqEntry r = TestHost::rw_cmd(kIoRead, 1, 0, 2);
  r.flags = kPsdtSglMptrContig << 6;
  auto with = [&](SglDescriptor d) {
    std::memcpy(&r.prp1, &d, 16);
    return sc_of(h->io(1, r));
  };
  EXPECT_EQ(with({a, 512, {}, kSglDataBlock << 4}), sc::kDataSglLengthInvalid);    // short
  EXPECT_EQ(with({a, 2048, {}, kSglDataBlock << 4}), sc::kDataSglLengthInvalid);   // excess
  EXPECT_EQ(with({a, 1024, {}, kSglBitBucket << 4}), sc::kSglDescriptorTypeInvalid);
  EXPECT_EQ(with({a, 1024, {}, kSglKeyedDataBlock << 4}), sc::kSglDescriptorTypeInvalid);
  EXPECT_EQ(with({a, 1024, {}, (kSglDataBlock << 4) | 1}), sc::kSglDescriptorTypeInvalid);
  EXPECT_EQ(with({seg, 20, {}, kSglLastSegment << 4}), sc::kInvalidNumberOfSglDescriptors);
  EXPECT_EQ(with({0x7000000000ull, 16, {}, kSglLastSegment << 4}), sc::kDataTransferError);
  // A segment descriptor that is not last in its segment.
  SglDescriptor bad[2] = {{seg, 16, {}, kSglLastSegment << 4}, {a, 1024, {}, kSglDataBlock << 4}};
  std::memcpy(h->hva(seg), bad, sizeof(bad));
  EXPECT_EQ(with({seg, 32, {}, kSglSegment << 4}), sc::kInvalidSglSegmentDescriptor);
  // A Last Segment that points to another segment.
  SglDescriptor bad2[1] = {{seg, 16, {}, kSglSegment << 4}};
  std::memcpy(h->hva(seg), bad2, sizeof(bad2));
  EXPECT_EQ(with({seg, 16, {}, kSglLastSegment << 4}), sc::kInvalidSglSegmentDescriptor);
  // A self-referencing Segment chain terminates.
  SglDescriptor loop[1] = {{seg, 16, {}, kSglSegment << 4}};
  std::memcpy(h->hva(seg), loop, sizeof(loop));
  EXPECT_EQ(with({seg, 16, {}, kSglSegment << 4}), sc::kInvalidNumberOfSglDescriptors);
  // PSDT 11b is reserved.
  r.flags = 3u << 6;
  EXPECT_EQ(sc_of(h->io(1, r)), sc::kInvalidField);
}

TEST_F(NvmeIo, MdtsLbaRangeNamespaceOpcode) {
  uint64_t buf = h->alloc(4096);
  SqEntry r = TestHost::rw_cmd(kIoRead, 1, 0, 1025);  // 512.5 KiB > 2^7 * 4 KiB
  r.prp1 = buf;
  EXPECT_EQ(sc_of(h->io(1, r)), sc::kInvalidField);
  r = TestHost::rw_cmd(kIoRead, 1, 65535, 2);
  h->build_prps(r, buf, 1024);
  EXPECT_EQ(sc_of(h->io(1, r)), sc::kLbaOutOfRange);
  r = TestHost::rw_cmd(kIoRead, 1, ~0ull, 1);  // slba + nlb overflows
  EXPECT_EQ(sc_of(h->io(1, r)), sc::kLbaOutOfRange);
  r = TestHost::rw_cmd(kIoRead, 1, 65535, 1);
  h->build_prps(r, buf, 512);
  EXPECT_EQ(sc_of(h->io(1, r)), sc::kSuccess);
  for (uint32_t nsid : {0u, 2u, 0xffffffffu}) {
    r.nsid = nsid;
    EXPECT_EQ(sc_of(h->io(1, r)), sc::kInvalidNamespaceOrFormat) << nsid;
  }
  for (uint8_t opc : {uint8_t(kIoWriteUncorrectable), uint8_t(kIoVerify), uint8_t(0x7f)}) {
    auto e = h->io(1, make_cmd(opc, 1));
    EXPECT_EQ(sc_of(e), sc::kInvalidOpcode) << int(opc);
    EXPECT_TRUE(e->status & 0x8000);  // DNR
  }
  SqEntry fused = TestHost::rw_cmd(kIoRead, 1, 0, 1);
  fused.flags = 1;
  EXPECT_EQ(sc_of(h->io(1, fused)), sc::kInvalidField);
}

TEST_F(NvmeIo, FlushWriteZeroesDsm) {
  EXPECT_EQ(sc_of(h->io(1, make_cmd(kIoFlush, 1))), sc::kSuccess);
  EXPECT_EQ(sc_of(h->io(1, make_cmd(kIoFlush, 0xffffffff))), sc::kInvalidNamespaceOrFormat);
  std::memset(h->bdev(1).data.data(), 0xab, 64 * 512);
  SqEntry wz = TestHost::rw_cmd(kIoWriteZeroes, 1, 4, 4);
  ASSERT_EQ(sc_of(h->io(1, wz)), sc::kSuccess);
  EXPECT_EQ(h->bdev(1).data[4 * 512], 0);
  EXPECT_EQ(h->bdev(1).data[8 * 512 - 1], 0);
  EXPECT_EQ(h->bdev(1).data[8 * 512], 0xab);
  wz = TestHost::rw_cmd(kIoWriteZeroes, 1, 65535, 2);
  EXPECT_EQ(sc_of(h->io(1, wz)), sc::kLbaOutOfRange);
  // DSM deallocate: three ranges, one empty.
  uint64_t rl = h->alloc(4096);
  DsmRange rg[3] = {{0, 2, 16}, {0, 0, 100}, {0, 1, 40}};
  std::memcpy(h->hva(rl), rg, sizeof(rg));
  SqEntry dsm = make_cmd(kIoDatasetManagement, 1);
  dsm.prp1 = rl;
  dsm.cdw10 = 2;        // 3 ranges
  dsm.cdw11 = 1u << 2;  // AD
  ASSERT_EQ(sc_of(h->io(1, dsm)), sc::kSuccess);
  EXPECT_EQ(h->bdev(1).data[16 * 512], 0);
  EXPECT_EQ(h->bdev(1).data[40 * 512], 0);
  EXPECT_EQ(h->bdev(1).data[18 * 512], 0xab);
  // Asynchronous backend: ranges chain through completions.
  h->bdev(1).async = true;
  std::memset(h->bdev(1).data.data(), 0xab, 64 * 512);
  ASSERT_EQ(sc_of(h->io(1, dsm)), sc::kSuccess);
  EXPECT_EQ(h->bdev(1).data[40 * 512], 0);
  h->bdev(1).async = false;
  // Out-of-range range.
  DsmRange oor{0, 8, 65530};
  std::memcpy(h->hva(rl), &oor, sizeof(oor));
  dsm.cdw10 = 0;
  EXPECT_EQ(sc_of(h->io(1, dsm)), sc::kLbaOutOfRange);
  // Without AD: hints only, nothing deallocated.
  dsm.cdw11 = 0;
  EXPECT_EQ(sc_of(h->io(1, dsm)), sc::kSuccess);
}

TEST_F(NvmeIo, CompareAndErrors) {
  uint64_t buf = h->alloc(4096);
  fill(buf, 512, 5);
  SqEntry w = TestHost::rw_cmd(kIoWrite, 1, 3, 1);
  h->build_prps(w, buf, 512);
  ASSERT_EQ(sc_of(h->io(1, w)), sc::kSuccess);
  SqEntry c = TestHost::rw_cmd(kIoCompare, 1, 3, 1);
  h->build_prps(c, buf, 512);
  EXPECT_EQ(sc_of(h->io(1, c)), sc::kSuccess);
  h->hva(buf)[100] ^= 1;
  EXPECT_EQ(sc_of(h->io(1, c)), sc::kCompareFailure);
  // Backend failures map to media errors; kNoMem is retried.
  h->bdev(1).fail_next = bdev::IoStatus::kFailed;
  SqEntry r = TestHost::rw_cmd(kIoRead, 1, 3, 1);
  h->build_prps(r, buf, 512);
  EXPECT_EQ(sc_of(h->io(1, r)), sc::kUnrecoveredReadError);
  h->bdev(1).fail_next = bdev::IoStatus::kFailed;
  EXPECT_EQ(sc_of(h->io(1, w)), sc::kWriteFault);
  h->bdev(1).nomem_next = 3;
  EXPECT_EQ(sc_of(h->io(1, r)), sc::kSuccess);
  EXPECT_EQ(h->bdev(1).nomem_next, 0u);
}

TEST(NvmeIoOptions, CompareDisabledIsInvalidOpcode) {
  TestHost::Options o;
  o.ctrl.compare = false;
  o.ctrl.write_zeroes = false;
  TestHost h(o);
  ASSERT_EQ(h.enable() & kCstsRdy, kCstsRdy);
  ASSERT_TRUE(h.create_io_queues(1, 16));
  uint64_t buf = h.alloc(4096);
  SqEntry c = TestHost::rw_cmd(kIoCompare, 1, 0, 1);
  h.build_prps(c, buf, 512);
  EXPECT_EQ(sc_of(h.io(1, c)), sc::kInvalidOpcode);
  EXPECT_EQ(sc_of(h.io(1, TestHost::rw_cmd(kIoWriteZeroes, 1, 0, 1))), sc::kInvalidOpcode);
}

TEST_F(NvmeIo, InterruptsPerVectorAndPolledCq) {
  uint64_t buf = h->alloc(4096);
  SqEntry r = TestHost::rw_cmd(kIoRead, 1, 0, 1);
  h->build_prps(r, buf, 512);
  uint64_t before = h->irq().counts[1];
  // A batch of 8 submitted with one doorbell: one interrupt for the batch.
  for (int i = 0; i < 8; ++i) h->submit(1, r, false);
  h->ring_sq(1);
  h->run();
  EXPECT_EQ(h->irq().counts[1], before + 1);
  for (int i = 0; i < 8; ++i) ASSERT_EQ(sc_of(h->reap(1)), sc::kSuccess);
  // CQ with IEN = 0: no interrupt.
  ASSERT_EQ(sc_of(h->delete_sq(2)), sc::kSuccess);
  ASSERT_EQ(sc_of(h->delete_cq(2)), sc::kSuccess);
  ASSERT_EQ(sc_of(h->create_cq(2, 16, false)), sc::kSuccess);
  ASSERT_EQ(sc_of(h->create_sq(2, 16, 2)), sc::kSuccess);
  uint64_t total = h->irq().total;
  EXPECT_EQ(sc_of(h->io(2, r)), sc::kSuccess);
  EXPECT_EQ(h->irq().total, total);
}

TEST_F(NvmeIo, InterruptCoalescingThresholdAndTime) {
  // THR = 3 (4 entries), TIME = 1 (100 us).
  SqEntry sf = make_cmd(kAdmSetFeatures);
  sf.cdw10 = kFidInterruptCoalescing;
  sf.cdw11 = 3 | (1u << 8);
  ASSERT_EQ(sc_of(h->admin(sf)), sc::kSuccess);
  h->run();
  uint64_t buf = h->alloc(4096);
  SqEntry r = TestHost::rw_cmd(kIoRead, 1, 0, 1);
  h->build_prps(r, buf, 512);
  uint64_t before = h->irq().counts[1];
  h->submit(1, r);
  h->run();
  EXPECT_EQ(h->irq().counts[1], before);  // below threshold, time not reached
  h->env().clock_ns += 100'000;
  h->run();
  EXPECT_EQ(h->irq().counts[1], before + 1);  // aggregation time passed
  for (int i = 0; i < 4; ++i) h->submit(1, r, false);
  h->ring_sq(1);
  h->run();
  EXPECT_EQ(h->irq().counts[1], before + 2);  // threshold reached
  // Coalescing disabled on vector 1: immediate again.
  sf.cdw10 = kFidInterruptVectorConfig;
  sf.cdw11 = 1 | (1u << 16);
  ASSERT_EQ(sc_of(h->admin(sf)), sc::kSuccess);
  h->run();
  h->submit(1, r);
  h->run();
  EXPECT_EQ(h->irq().counts[1], before + 3);
}

TEST_F(NvmeIo, IoStatsJson) {
  uint64_t buf = h->alloc(4096);
  SqEntry w = TestHost::rw_cmd(kIoWrite, 1, 0, 8);
  h->build_prps(w, buf, 4096);
  ASSERT_EQ(sc_of(h->io(1, w)), sc::kSuccess);
  json s = h->ctrl().io_stats();
  EXPECT_EQ(s["write_ios"], 1);
  EXPECT_EQ(s["write_bytes"], 4096);
  EXPECT_EQ(s["queues"].size(), 2u);
  json i = h->ctrl().info();
  EXPECT_EQ(i["num_queues"], 2);
  EXPECT_EQ(i["mdts"], 7);
  EXPECT_EQ(i["namespaces"][0]["nsid"], 1);
}

}  // namespace
}  // namespace vdpu::nvme::test
