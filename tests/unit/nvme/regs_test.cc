// Register file and controller state machine (Base 2.0 §3.1.4, §3.5-3.7).
#include <gtest/gtest.h>

#include "test_host.h"

namespace vdpu::nvme::test {
namespace {

TEST(NvmeRegs, CapAndVersionDefaults) {
  TestHost h;
  uint64_t cap = h.rd64(kRegCap);
  EXPECT_EQ(cap_mqes(cap), kDefaultMaxQueueEntries - 1);
  EXPECT_TRUE(cap & kCapCqr);
  EXPECT_EQ(bits(cap, 31, 24), 0xf0u);            // TO
  EXPECT_EQ(cap_dstrd(cap), 0u);                  // 4-byte doorbell stride
  EXPECT_EQ(bits(cap, 44, 37), 1u);               // CSS: NVM
  EXPECT_EQ(cap_mpsmin(cap), 0u);
  EXPECT_EQ(cap_mpsmax(cap), 4u);
  EXPECT_EQ(bits(cap, 36, 36), 0u);               // NSSRS
  EXPECT_EQ(h.rd32(kRegVs), kNvmeVersion14);
  EXPECT_EQ(h.rd32(kRegCap), uint32_t(cap));      // 4-byte halves agree
  EXPECT_EQ(h.rd32(kRegCap + 4), uint32_t(cap >> 32));
  EXPECT_EQ(h.csts(), 0u);
}

TEST(NvmeRegs, WritableRegistersReadBack) {
  TestHost h;
  h.wr32(kRegAqa, 0xffffffff);
  EXPECT_EQ(h.rd32(kRegAqa), kAqaMask);  // reserved bits read 0
  h.wr64(kRegAsq, 0x123456789abcdfffull);
  EXPECT_EQ(h.rd64(kRegAsq), 0x123456789abcd000ull);  // bits 11:0 reserved
  h.wr32(kRegAcq, 0x5000);
  h.wr32(kRegAcq + 4, 0x1);
  EXPECT_EQ(h.rd64(kRegAcq), 0x100005000ull);
  h.wr32(kRegCc, (6u << 16) | (4u << 20));  // EN = 0
  EXPECT_EQ(h.rd32(kRegCc), (6u << 16) | (4u << 20));
  h.wr32(kRegIntms, 0x5);
  EXPECT_EQ(h.rd32(kRegIntms), 0x5u);
  EXPECT_EQ(h.rd32(kRegIntmc), 0x5u);
  h.wr32(kRegIntmc, 0x1);
  EXPECT_EQ(h.rd32(kRegIntms), 0x4u);
  // Read-only registers ignore writes.
  uint64_t cap = h.rd64(kRegCap);
  h.wr64(kRegCap, 0);
  h.wr32(kRegVs, 0);
  h.wr32(kRegCsts, 0xff);
  EXPECT_EQ(h.rd64(kRegCap), cap);
  EXPECT_EQ(h.rd32(kRegVs), kNvmeVersion14);
  EXPECT_EQ(h.csts(), 0u);
  // NSSR (not supported) reads 0; CMBLOC/CMBSZ read 0; sub-dword reads work.
  h.wr32(kRegNssr, kNssrReset);
  EXPECT_EQ(h.rd32(kRegNssr), 0u);
  EXPECT_EQ(h.rd32(kRegCmbloc), 0u);
  EXPECT_EQ(h.rd32(kRegCmbsz), 0u);
  EXPECT_EQ(h.ctrl().mmio_read(kRegVs + 2, 2), 1u);
  EXPECT_EQ(h.ctrl().mmio_read(kRegVs + 1, 1), 4u);
  // Doorbells read 0; odd sizes and misaligned qwords are ignored.
  EXPECT_EQ(h.rd32(kRegDoorbellBase), 0u);
  EXPECT_EQ(h.ctrl().mmio_read(kRegCc + 2, 8), 0u);
  EXPECT_EQ(h.ctrl().mmio_read(kRegCc, 3), 0u);
}

TEST(NvmeRegs, EnableSetsReady) {
  TestHost h;
  uint32_t csts = h.enable();
  EXPECT_EQ(csts & kCstsRdy, kCstsRdy);
  EXPECT_EQ(csts & kCstsCfs, 0u);
  EXPECT_EQ(h.ctrl().state(), CtrlState::kEnabled);
  EXPECT_EQ(h.disable() & kCstsRdy, 0u);
  EXPECT_EQ(h.ctrl().state(), CtrlState::kDisabled);
  // And again (a second enable after a reset works).
  EXPECT_EQ(h.enable() & kCstsRdy, kCstsRdy);
}

TEST(NvmeRegs, EnableWithMmioDoorbells) {
  TestHost::Options o;
  o.mmio_doorbells = true;
  TestHost h(o);
  ASSERT_EQ(h.enable() & kCstsRdy, kCstsRdy);
  uint64_t buf;
  auto e = h.identify(kCnsController, 0, &buf);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status >> 1, 0);
}

TEST(NvmeRegs, BadAqaSetsCfs) {
  TestHost h;
  uint64_t sq = h.alloc(4096), cq = h.alloc(4096);
  h.wr32(kRegAqa, 0);  // 1-entry queues: below the minimum of 2
  h.wr64(kRegAsq, sq);
  h.wr64(kRegAcq, cq);
  h.wr32(kRegCc, kCcEn | (6u << 16) | (4u << 20));
  h.run();
  EXPECT_EQ(h.csts() & kCstsRdy, 0u);
  EXPECT_EQ(h.csts() & kCstsCfs, kCstsCfs);
  // A reset clears CFS; a correct enable then works.
  EXPECT_EQ(h.disable() & (kCstsCfs | kCstsRdy), 0u);
  EXPECT_EQ(h.enable() & kCstsRdy, kCstsRdy);
}

TEST(NvmeRegs, BadMpsSetsCfs) {
  TestHost h;
  uint64_t sq = h.alloc(4096), cq = h.alloc(4096);
  h.wr32(kRegAqa, 0x001f001f);
  h.wr64(kRegAsq, sq);
  h.wr64(kRegAcq, cq);
  h.wr32(kRegCc, kCcEn | (5u << 7) | (6u << 16) | (4u << 20));  // MPS 128 KiB > MPSMAX
  h.run();
  EXPECT_EQ(h.csts() & (kCstsCfs | kCstsRdy), kCstsCfs);
}

TEST(NvmeRegs, BadIosqesSetsCfs) {
  TestHost h;
  uint64_t sq = h.alloc(4096), cq = h.alloc(4096);
  h.wr32(kRegAqa, 0x001f001f);
  h.wr64(kRegAsq, sq);
  h.wr64(kRegAcq, cq);
  h.wr32(kRegCc, kCcEn | (7u << 16) | (4u << 20));  // 128-byte SQEs
  h.run();
  EXPECT_EQ(h.csts() & (kCstsCfs | kCstsRdy), kCstsCfs);
}

TEST(NvmeRegs, BadCssAndAmsSetCfs) {
  for (uint32_t extra : {1u << 4 /*CSS 001b*/, 1u << 11 /*AMS WRR*/}) {
    TestHost h;
    uint64_t sq = h.alloc(4096), cq = h.alloc(4096);
    h.wr32(kRegAqa, 0x001f001f);
    h.wr64(kRegAsq, sq);
    h.wr64(kRegAcq, cq);
    h.wr32(kRegCc, kCcEn | extra | (6u << 16) | (4u << 20));
    h.run();
    EXPECT_EQ(h.csts() & (kCstsCfs | kCstsRdy), kCstsCfs) << extra;
  }
}

TEST(NvmeRegs, UnmappedAdminQueueSetsCfs) {
  TestHost h;
  h.wr32(kRegAqa, 0x001f001f);
  h.wr64(kRegAsq, 0x7000000000ull);  // outside guest memory
  h.wr64(kRegAcq, h.alloc(4096));
  h.wr32(kRegCc, kCcEn | (6u << 16) | (4u << 20));
  h.run();
  EXPECT_EQ(h.csts() & (kCstsCfs | kCstsRdy), kCstsCfs);
}

TEST(NvmeRegs, LargerPageSize) {
  TestHost h;
  ASSERT_EQ(h.enable(32, 0, 1) & kCstsRdy, kCstsRdy);  // MPS = 8 KiB
  uint64_t buf;
  auto e = h.identify(kCnsController, 0, &buf);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status >> 1, 0);
}

TEST(NvmeRegs, SuspendedControllerEnablesOnResume) {
  TestHost::Options o;
  o.ctrl.suspended = true;
  TestHost h(o);
  h.enable();
  EXPECT_EQ(h.csts() & kCstsRdy, 0u);
  h.ctrl().resume();
  h.run();
  EXPECT_EQ(h.csts() & kCstsRdy, kCstsRdy);
}

TEST(NvmeRegs, NormalShutdownCompletesOutstandingIo) {
  TestHost h;
  ASSERT_EQ(h.enable() & kCstsRdy, kCstsRdy);
  ASSERT_TRUE(h.create_io_queues(1));
  h.bdev(1).async = true;
  uint64_t buf = h.alloc(4096);
  SqEntry c = TestHost::rw_cmd(kIoRead, 1, 0, 8);
  h.build_prps(c, buf, 4096);
  h.submit(1, c);
  h.env().run_once();  // fetched and submitted, bdev completion still pending
  h.wr32(kRegCc, h.rd32(kRegCc) | (kCcShnNormal << 14));
  EXPECT_EQ((h.csts() & kCstsShstMask) >> kCstsShstShift, kShstOccurring);
  h.run();
  EXPECT_EQ((h.csts() & kCstsShstMask) >> kCstsShstShift, kShstComplete);
  EXPECT_EQ(h.ctrl().state(), CtrlState::kShutdown);
  auto e = h.reap(1);  // the in-flight read was completed, not lost
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status >> 1, 0);
  EXPECT_EQ(h.csts() & kCstsRdy, kCstsRdy);
  // Reset after shutdown.
  EXPECT_EQ(h.disable() & kCstsRdy, 0u);
  EXPECT_EQ(h.enable() & kCstsRdy, kCstsRdy);
  EXPECT_EQ((h.csts() & kCstsShstMask), 0u);
}

TEST(NvmeRegs, AbruptShutdownDropsCompletions) {
  TestHost h;
  ASSERT_EQ(h.enable() & kCstsRdy, kCstsRdy);
  ASSERT_TRUE(h.create_io_queues(1));
  h.bdev(1).async = true;
  uint64_t buf = h.alloc(4096);
  SqEntry c = TestHost::rw_cmd(kIoRead, 1, 0, 8);
  h.build_prps(c, buf, 4096);
  h.submit(1, c);
  h.env().run_once();  // fetched and submitted; the bdev answers on a later poll
  h.wr32(kRegCc, h.rd32(kRegCc) | (kCcShnAbrupt << 14));
  h.run();
  EXPECT_EQ((h.csts() & kCstsShstMask) >> kCstsShstShift, kShstComplete);
  EXPECT_FALSE(h.reap(1));
}

TEST(NvmeRegs, ShutdownWhileDisabledCompletesAtOnce) {
  TestHost h;
  h.wr32(kRegCc, kCcShnNormal << 14);
  EXPECT_EQ((h.csts() & kCstsShstMask) >> kCstsShstShift, kShstComplete);
}

TEST(NvmeRegs, DisableWithInflightIoWaitsAndDrops) {
  TestHost::Options o;
  o.ctrl.num_queues = 2;
  TestHost h(o);
  ASSERT_EQ(h.enable() & kCstsRdy, kCstsRdy);
  ASSERT_TRUE(h.create_io_queues(2));
  h.bdev(1).async = true;
  h.bdev(1).hold = true;
  uint64_t buf = h.alloc(4096 * 4);
  for (uint16_t q = 1; q <= 2; ++q)
    for (int i = 0; i < 4; ++i) {
      SqEntry c = TestHost::rw_cmd(kIoWrite, 1, uint64_t(i) * 8, 8);
      h.build_prps(c, buf + 4096 * i, 4096);
      h.submit(q, c);
    }
  h.run();
  uint64_t before = h.bdev(1).submitted;
  EXPECT_GT(before, 0u);
  h.wr32(kRegCc, h.rd32(kRegCc) & ~kCcEn);
  h.run();
  // RDY stays 1 until the backends have answered.
  EXPECT_EQ(h.csts() & kCstsRdy, kCstsRdy);
  EXPECT_EQ(h.ctrl().state(), CtrlState::kResetting);
  h.bdev(1).hold = false;
  h.run();
  EXPECT_EQ(h.csts() & kCstsRdy, 0u);
  EXPECT_EQ(h.ctrl().state(), CtrlState::kDisabled);
  EXPECT_FALSE(h.reap(1));  // completions dropped (queues are gone)
  EXPECT_EQ(h.env().num_pollers(), 0u);  // every poller removed
  // Re-enable and use the device again.
  ASSERT_EQ(h.enable() & kCstsRdy, kCstsRdy);
  ASSERT_TRUE(h.create_io_queues(1));
  SqEntry c = TestHost::rw_cmd(kIoRead, 1, 0, 8);
  h.build_prps(c, buf, 4096);
  auto e = h.io(1, c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status >> 1, 0);
}

TEST(NvmeRegs, FunctionLevelResetRestoresDefaults) {
  TestHost h;
  ASSERT_EQ(h.enable() & kCstsRdy, kCstsRdy);
  ASSERT_TRUE(h.create_io_queues(1));
  bool done = false;
  h.ctrl().function_reset([&] { done = true; });
  h.run();
  EXPECT_TRUE(done);
  EXPECT_EQ(h.rd32(kRegCc), 0u);
  EXPECT_EQ(h.rd32(kRegAqa), 0u);
  EXPECT_EQ(h.rd64(kRegAsq), 0u);
  EXPECT_EQ(h.csts(), 0u);
  EXPECT_EQ(h.enable() & kCstsRdy, kCstsRdy);
}

TEST(NvmeRegs, SuspendDrainsAndResumeRunsPendingCommands) {
  TestHost h;
  ASSERT_EQ(h.enable() & kCstsRdy, kCstsRdy);
  ASSERT_TRUE(h.create_io_queues(1));
  h.suspend();
  uint64_t buf = h.alloc(4096);
  SqEntry c = TestHost::rw_cmd(kIoRead, 1, 0, 8);
  h.build_prps(c, buf, 4096);
  h.submit(1, c);
  h.run();
  EXPECT_FALSE(h.reap(1));  // not fetched while suspended
  h.ctrl().resume();
  h.run();
  auto e = h.reap(1);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status >> 1, 0);
}

TEST(NvmeRegs, InvalidSqTailDoorbellRaisesErrorEvent) {
  TestHost h;
  ASSERT_EQ(h.enable() & kCstsRdy, kCstsRdy);
  ASSERT_TRUE(h.create_io_queues(1, 16));
  uint16_t cid = h.admin_submit(make_cmd(kAdmAsyncEventRequest));
  h.run();
  __atomic_store_n(&h.ctrl().doorbells()[2], 99u, __ATOMIC_RELEASE);  // >= size 16
  h.run();
  auto e = h.admin_reap();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->cid, cid);
  EXPECT_EQ(e->dw0 & 7, kAerError);
  EXPECT_EQ((e->dw0 >> 8) & 0xff, kAerErrInvalidDoorbellValue);
  EXPECT_EQ((e->dw0 >> 16) & 0xff, kLidErrorInformation);
}

}  // namespace
}  // namespace vdpu::nvme::test
