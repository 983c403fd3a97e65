// Admin command set: queue management with every error status, abort, AER,
// keep alive (Base 2.0 §5.1-5.7, §5.25).
#include <gtest/gtest.h>

#include "test_host.h"

namespace vdpu::nvme::test {
namespace {

uint16_t sc_of(const std::optional<CqEntry>& e) { return e ? uint16_t((e->status >> 1) & 0x7ff) : 0xffff; }
bool dnr(const std::optional<CqEntry>& e) { return e && (e->status & 0x8000); }

class NvmeAdmin : public ::testing::Test {
 protected:
  void SetUp() override {
    TestHost::Options o;
    o.ctrl.num_queues = 4;
    h = std::make_unique<TestHost>(o);
    ASSERT_EQ(h->enable() & kCstsRdy, kCstsRdy);
  }
  std::unique_ptr<TestHost> h;
};

TEST_F(NvmeAdmin, InvalidOpcode) {
  for (uint8_t opc : {uint8_t(0x03), uint8_t(kAdmFormatNvm), uint8_t(kAdmNsAttachment),
                      uint8_t(kAdmFirmwareCommit), uint8_t(0xff)}) {
    auto e = h->admin(make_cmd(opc));
    EXPECT_EQ(sc_of(e), sc::kInvalidOpcode) << int(opc);
    EXPECT_TRUE(dnr(e));
  }
}

TEST_F(NvmeAdmin, SglAndFusedRejectedForAdmin) {
  SqEntry c = make_cmd(kAdmIdentify);
  c.cdw10 = kCnsController;
  c.flags = 1u << 6;  // PSDT = SGL
  c.prp1 = h->alloc(4096);
  EXPECT_EQ(sc_of(h->admin(c)), sc::kInvalidField);
  c.flags = 1;  // FUSE first
  EXPECT_EQ(sc_of(h->admin(c)), sc::kInvalidField);
}

TEST_F(NvmeAdmin, CreateCqErrors) {
  EXPECT_EQ(sc_of(h->create_cq(0, 16)), sc::kInvalidQueueIdentifier);
  EXPECT_EQ(sc_of(h->create_cq(5, 16)), sc::kInvalidQueueIdentifier);  // > num_queues
  EXPECT_EQ(sc_of(h->create_cq(1, 1)), sc::kInvalidQueueSize);         // QSIZE 0
  EXPECT_EQ(sc_of(h->create_cq(1, kDefaultMaxQueueEntries + 1)), sc::kInvalidQueueSize);
  EXPECT_EQ(sc_of(h->create_cq(1, 16, true, 0, 0, /*pc=*/false)), sc::kInvalidField);
  EXPECT_EQ(sc_of(h->create_cq(1, 16, true, /*iv=*/5)), sc::kInvalidInterruptVector);
  EXPECT_EQ(sc_of(h->create_cq(1, 16, true, 0, h->alloc(4096) + 8)), sc::kPrpOffsetInvalid);
  EXPECT_EQ(sc_of(h->create_cq(1, 16, true, 0, 0x7000000000ull)), sc::kDataTransferError);
  EXPECT_EQ(sc_of(h->create_cq(1, kDefaultMaxQueueEntries)), sc::kSuccess);
  EXPECT_EQ(sc_of(h->create_cq(1, 16)), sc::kInvalidQueueIdentifier);  // in use
  EXPECT_EQ(sc_of(h->create_cq(2, 16, false, 77)), sc::kSuccess);      // IEN=0: IV ignored
}

TEST_F(NvmeAdmin, CreateSqErrors) {
  ASSERT_EQ(sc_of(h->create_cq(1, 16)), sc::kSuccess);
  EXPECT_EQ(sc_of(h->create_sq(1, 16, 0)), sc::kCompletionQueueInvalid);
  EXPECT_EQ(sc_of(h->create_sq(1, 16, 2)), sc::kCompletionQueueInvalid);  // CQ 2 missing
  EXPECT_EQ(sc_of(h->create_sq(0, 16, 1)), sc::kInvalidQueueIdentifier);
  EXPECT_EQ(sc_of(h->create_sq(5, 16, 1)), sc::kInvalidQueueIdentifier);
  EXPECT_EQ(sc_of(h->create_sq(1, 1, 1)), sc::kInvalidQueueSize);
  EXPECT_EQ(sc_of(h->create_sq(1, 4096, 1)), sc::kInvalidQueueSize);
  EXPECT_EQ(sc_of(h->create_sq(1, 16, 1, 0, /*pc=*/false)), sc::kInvalidField);
  EXPECT_EQ(sc_of(h->create_sq(1, 16, 1, h->alloc(8192) + 64)), sc::kPrpOffsetInvalid);
  EXPECT_EQ(sc_of(h->create_sq(1, 16, 1)), sc::kSuccess);
  EXPECT_EQ(sc_of(h->create_sq(1, 16, 1)), sc::kInvalidQueueIdentifier);  // in use
  EXPECT_EQ(sc_of(h->create_sq(2, 16, 1)), sc::kSuccess);  // two SQs share CQ 1
}

TEST_F(NvmeAdmin, DeleteQueueErrorsAndOrder) {
  ASSERT_TRUE(h->create_io_queues(1, 16));
  EXPECT_EQ(sc_of(h->delete_sq(0)), sc::kInvalidQueueIdentifier);
  EXPECT_EQ(sc_of(h->delete_sq(2)), sc::kInvalidQueueIdentifier);
  EXPECT_EQ(sc_of(h->delete_cq(0)), sc::kInvalidQueueIdentifier);
  EXPECT_EQ(sc_of(h->delete_cq(3)), sc::kInvalidQueueIdentifier);
  // Base 2.0 §5.7: the CQ still has an SQ.
  EXPECT_EQ(sc_of(h->delete_cq(1)), sc::kInvalidQueueDeletion);
  EXPECT_EQ(sc_of(h->delete_sq(1)), sc::kSuccess);
  EXPECT_EQ(sc_of(h->delete_sq(1)), sc::kInvalidQueueIdentifier);
  EXPECT_EQ(sc_of(h->delete_cq(1)), sc::kSuccess);
  // The QIDs can be reused.
  EXPECT_TRUE(h->create_io_queues(1, 16));
}

TEST_F(NvmeAdmin, DeleteSqWithInflightIoWaitsForBackend) {
  ASSERT_TRUE(h->create_io_queues(1, 16));
  h->bdev(1).async = true;
  h->bdev(1).hold = true;
  uint64_t buf = h->alloc(4096);
  SqEntry c = TestHost::rw_cmd(kIoRead, 1, 0, 8);
  h->build_prps(c, buf, 4096);
  h->submit(1, c);
  h->run();
  SqEntry d = make_cmd(kAdmDeleteIoSq);
  d.cdw10 = 1;
  h->admin_submit(d);
  h->run();
  EXPECT_FALSE(h->admin_reap());  // waits for the read in the backend
  h->bdev(1).hold = false;
  h->run();
  EXPECT_EQ(sc_of(h->admin_reap()), sc::kSuccess);
  EXPECT_FALSE(h->reap(1));  // the read was implicitly aborted, never completed twice
  EXPECT_EQ(sc_of(h->delete_cq(1)), sc::kSuccess);
}

TEST_F(NvmeAdmin, IoQueuesSpreadOverReactors) {
  ASSERT_TRUE(h->create_io_queues(4, 16));
  // Four CQs on a 2-reactor env: both reactors poll (+ admin poller on main).
  EXPECT_EQ(h->env().num_pollers(), 3u);
}

TEST_F(NvmeAdmin, AsyncEventLimit) {
  for (int i = 0; i < 4; ++i) h->admin_submit(make_cmd(kAdmAsyncEventRequest));
  h->run();
  EXPECT_FALSE(h->admin_reap());  // all four parked
  auto e = h->admin(make_cmd(kAdmAsyncEventRequest));
  EXPECT_EQ(sc_of(e), sc::kAsyncEventRequestLimitExceeded);
}

TEST_F(NvmeAdmin, AbortAnAer) {
  uint16_t aer = h->admin_submit(make_cmd(kAdmAsyncEventRequest));
  h->run();
  SqEntry a = make_cmd(kAdmAbort);
  a.cdw10 = 0 | (uint32_t(aer) << 16);
  h->admin_submit(a);
  h->run();
  auto e1 = h->admin_reap(), e2 = h->admin_reap();
  ASSERT_TRUE(e1 && e2);
  EXPECT_EQ(e1->cid, aer);
  EXPECT_EQ(sc_of(e1), sc::kAbortRequested);
  EXPECT_EQ(sc_of(e2), sc::kSuccess);
  EXPECT_EQ(e2->dw0 & 1, 0u);  // aborted
  // Abort of an unknown command: success, DW0 bit 0 = 1 (not aborted).
  a.cdw10 = 1 | (1234u << 16);
  auto e = h->admin(a);
  EXPECT_EQ(sc_of(e), sc::kSuccess);
  EXPECT_EQ(e->dw0 & 1, 1u);
}

TEST_F(NvmeAdmin, NamespaceAttachRaisesAenAndChangedList) {
  // Host enables namespace attribute notices and parks an AER.
  SqEntry sf = make_cmd(kAdmSetFeatures);
  sf.cdw10 = kFidAsyncEventConfig;
  sf.cdw11 = kAecNsAttrNotices;
  ASSERT_EQ(sc_of(h->admin(sf)), sc::kSuccess);
  uint16_t aer = h->admin_submit(make_cmd(kAdmAsyncEventRequest));
  h->run();
  // A second namespace on a new bdev, attached while suspended.
  auto b = std::make_unique<TestBdev>("aen_bdev", 512, 2048);
  ASSERT_TRUE(bdev::Manager::get().add(std::move(b)).ok());
  ASSERT_TRUE(h->subsys().add_namespace(7, "aen_bdev").ok());
  EXPECT_EQ(h->ctrl().attach_ns(7).error().code, Errc::kState);  // not suspended
  h->suspend();
  ASSERT_TRUE(h->ctrl().attach_ns(7).ok());
  EXPECT_EQ(h->ctrl().attach_ns(7).error().code, Errc::kExists);
  h->run();
  EXPECT_FALSE(h->admin_reap());  // delivered only after resume
  h->ctrl().resume();
  h->run();
  auto e = h->admin_reap();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->cid, aer);
  EXPECT_EQ(e->dw0, uint32_t(kAerNotice) | (kAerNoticeNsAttrChanged << 8) | (kLidChangedNsList << 16));
  // Changed Namespace List log.
  uint64_t buf = h->alloc(4096);
  SqEntry lp = make_cmd(kAdmGetLogPage);
  lp.prp1 = buf;
  lp.cdw10 = kLidChangedNsList | ((1024u - 1) << 16);
  ASSERT_EQ(sc_of(h->admin(lp)), sc::kSuccess);
  EXPECT_EQ(le32(h->hva(buf)), 7u);
  EXPECT_EQ(le32(h->hva(buf) + 4), 0u);
  // Reading it (RAE=0) cleared it.
  ASSERT_EQ(sc_of(h->admin(lp)), sc::kSuccess);
  EXPECT_EQ(le32(h->hva(buf)), 0u);
  // The new namespace is usable for I/O.
  ASSERT_TRUE(h->create_io_queues(1, 16));
  SqEntry w = TestHost::rw_cmd(kIoWrite, 7, 2047, 1);
  h->build_prps(w, h->alloc(4096), 512);
  EXPECT_EQ(sc_of(h->io(1, w)), sc::kSuccess);
  // Detach: again only while suspended; the NS becomes invalid for I/O.
  h->suspend();
  ASSERT_TRUE(h->ctrl().detach_ns(7).ok());
  EXPECT_EQ(h->ctrl().detach_ns(7).error().code, Errc::kNotFound);
  h->ctrl().resume();
  h->run();
  EXPECT_EQ(sc_of(h->io(1, w)), sc::kInvalidNamespaceOrFormat);
  EXPECT_TRUE(h->subsys().remove_namespace(7).ok());
}

TEST_F(NvmeAdmin, KeepAliveExpiryIsFatal) {
  SqEntry sf = make_cmd(kAdmSetFeatures);
  sf.cdw10 = kFidKeepAliveTimer;
  sf.cdw11 = 1000;  // 1 s
  ASSERT_EQ(sc_of(h->admin(sf)), sc::kSuccess);
  h->env().clock_ns += 500'000'000;
  EXPECT_EQ(sc_of(h->admin(make_cmd(kAdmKeepAlive))), sc::kSuccess);
  h->env().clock_ns += 900'000'000;
  h->run();
  EXPECT_EQ(h->csts() & kCstsCfs, 0u);
  h->env().clock_ns += 200'000'000;
  h->run();
  EXPECT_EQ(h->csts() & kCstsCfs, kCstsCfs);
  EXPECT_EQ(h->disable() & (kCstsCfs | kCstsRdy), 0u);
}

TEST_F(NvmeAdmin, CompletionQueueFullHoldsCompletions) {
  // A 4-entry CQ holds 3 CQEs; the 4th and 5th wait until the head moves.
  ASSERT_EQ(sc_of(h->create_cq(1, 4, true, 1)), sc::kSuccess);
  ASSERT_EQ(sc_of(h->create_sq(1, 16, 1)), sc::kSuccess);
  uint64_t buf = h->alloc(4096);
  for (int i = 0; i < 5; ++i) {
    SqEntry c = TestHost::rw_cmd(kIoRead, 1, 0, 1);
    h->build_prps(c, buf, 512);
    h->submit(1, c);
  }
  h->run();
  std::vector<uint16_t> cids;
  for (int i = 0; i < 3; ++i) {
    auto e = h->reap(1, /*ring_head=*/false);
    ASSERT_TRUE(e);
    cids.push_back(e->cid);
  }
  EXPECT_FALSE(h->reap(1, false));
  // Ring the head: the held completions are posted, in order, phase flipped.
  __atomic_store_n(&h->ctrl().doorbells()[3], h->q(1).cq_head, __ATOMIC_RELEASE);
  h->run();
  for (int i = 0; i < 2; ++i) {
    auto e = h->reap(1);
    ASSERT_TRUE(e);
    cids.push_back(e->cid);
  }
  EXPECT_EQ(cids, (std::vector<uint16_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(h->ctrl().io_stats()["queues"][0]["cq_full_waits"], 2);
}

}  // namespace
}  // namespace vdpu::nvme::test
