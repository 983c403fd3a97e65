// Device-side virtqueue: split and packed rings driven by the test driver.
#include "virtio/virtqueue.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "test_driver.h"
#include "virtio/ring.h"

namespace vdpu::virtio {
namespace {

using test::Buf;
using test::GuestMemory;
using test::TestDriverQueue;

struct Popped {
  Chain c;
  iovec iov[32];
  Popped() {
    c.iov = iov;
    c.max_iov = 32;
  }
};

class VqTest : public ::testing::TestWithParam<bool> {
 protected:
  bool packed() const { return GetParam(); }
  GuestMemory mem{8 << 20};
};

INSTANTIATE_TEST_SUITE_P(Layouts, VqTest, ::testing::Values(false, true),
                         [](const auto& i) { return i.param ? "Packed" : "Split"; });

TEST_P(VqTest, PopsChainAndReturnsUsed) {
  TestDriverQueue drv(mem, 8, packed());
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  uint64_t hdr = mem.alloc(16), data = mem.alloc(4096), st = mem.alloc(1);
  mem.fill(hdr, 0xab, 16);
  int id = drv.add({{hdr, 16, false}, {data, 4096, true}, {st, 1, true}});
  ASSERT_GE(id, 0);
  Popped p;
  ASSERT_EQ(vq.pop(p.c), PopStatus::kOk);
  EXPECT_EQ(p.c.id, id);
  EXPECT_EQ(p.c.n_out, 1);
  EXPECT_EQ(p.c.n_in, 2);
  EXPECT_EQ(p.c.out_len, 16u);
  EXPECT_EQ(p.c.in_len, 4097u);
  EXPECT_EQ(p.iov[0].iov_base, mem.hva(hdr));
  EXPECT_EQ(p.iov[1].iov_base, mem.hva(data));
  EXPECT_EQ(p.iov[2].iov_len, 1u);
  EXPECT_EQ(vq.pop(p.c), PopStatus::kEmpty);
  EXPECT_EQ(vq.outstanding(), 1u);
  EXPECT_FALSE(drv.get_used()) << "nothing is used before push";
  vq.push(p.c, 4097);
  vq.flush();
  auto u = drv.get_used();
  ASSERT_TRUE(u);
  EXPECT_EQ(u->id, uint32_t(id));
  EXPECT_EQ(u->len, 4097u);
  EXPECT_EQ(vq.outstanding(), 0u);
  EXPECT_EQ(vq.popped(), 1u);
  EXPECT_EQ(vq.completed(), 1u);
}

TEST_P(VqTest, IndirectChain) {
  TestDriverQueue drv(mem, 8, packed(), kFIndirectDesc);
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  uint64_t a = mem.alloc(16), b = mem.alloc(512), c = mem.alloc(512), s = mem.alloc(1);
  int id = drv.add({{a, 16, false}, {b, 512, true}, {c, 512, true}, {s, 1, true}}, /*indirect=*/true);
  Popped p;
  ASSERT_EQ(vq.pop(p.c), PopStatus::kOk);
  EXPECT_EQ(p.c.id, id);
  EXPECT_EQ(p.c.n_out, 1);
  EXPECT_EQ(p.c.n_in, 3);
  EXPECT_EQ(p.iov[2].iov_base, mem.hva(c));
  EXPECT_EQ(p.c.ndesc, 1) << "an indirect chain occupies one ring slot";
  vq.push(p.c, 1);
  vq.flush();
  ASSERT_TRUE(drv.get_used());
}

TEST_P(VqTest, BufferAcrossRegionsBecomesTwoIovecs) {
  GuestMemory two(1 << 20, 0x100000, /*split=*/true);
  TestDriverQueue drv(two, 8, packed());
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  uint64_t across = two.boundary() - 100;
  drv.add({{across, 200, true}});
  Popped p;
  ASSERT_EQ(vq.pop(p.c), PopStatus::kOk);
  EXPECT_EQ(p.c.n_in, 2);
  EXPECT_EQ(p.iov[0].iov_len, 100u);
  EXPECT_EQ(p.iov[1].iov_len, 100u);
}

TEST_P(VqTest, WrapsAroundManyTimes) {
  // Ring of 4 and chains of 1 or 2 descriptors: 16-bit index wrap (split
  // starts near 65535) and packed wrap counters flip many times.
  TestDriverQueue drv(mem, 4, packed());
  if (!packed()) drv.set_start(65530, 65530);
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  uint64_t buf = mem.alloc(64);
  for (int i = 0; i < 100; ++i) {
    int id = (i % 3 == 0) ? drv.add({{buf, 8, false}, {buf + 8, 8, true}}) : drv.add({{buf, 8, true}});
    ASSERT_GE(id, 0) << i;
    Popped p;
    ASSERT_EQ(vq.pop(p.c), PopStatus::kOk) << i;
    EXPECT_EQ(p.c.id, id);
    vq.push(p.c, uint32_t(i));
    vq.flush();
    auto u = drv.get_used();
    ASSERT_TRUE(u) << i;
    EXPECT_EQ(u->id, uint32_t(id));
    EXPECT_EQ(u->len, uint32_t(i));
  }
  QueueState s = vq.state();
  if (!packed()) {
    EXPECT_EQ(s.last_avail_idx, uint16_t(65530 + 100));
    EXPECT_EQ(s.last_used_idx, uint16_t(65530 + 100));
    EXPECT_EQ(drv.used_idx(), uint16_t(65530 + 100));
  }
}

TEST_P(VqTest, OutOfOrderCompletion) {
  TestDriverQueue drv(mem, 8, packed());
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  uint64_t buf = mem.alloc(64);
  int ids[3];
  Popped p[3];
  for (int i = 0; i < 3; ++i) ids[i] = drv.add({{buf, 8, true}});
  for (auto& x : p) ASSERT_EQ(vq.pop(x.c), PopStatus::kOk);
  vq.push(p[2].c, 2);
  vq.push(p[0].c, 0);
  vq.flush();
  auto u1 = drv.get_used(), u2 = drv.get_used();
  ASSERT_TRUE(u1 && u2);
  EXPECT_EQ(u1->id, uint32_t(ids[2])) << "without IN_ORDER, used order is completion order";
  EXPECT_EQ(u2->id, uint32_t(ids[0]));
  vq.push(p[1].c, 1);
  vq.flush();
  EXPECT_EQ(drv.get_used()->id, uint32_t(ids[1]));
}

TEST_P(VqTest, InOrderHoldsLaterCompletions) {
  TestDriverQueue drv(mem, 8, packed(), kFInOrder);
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  EXPECT_TRUE(vq.in_order());
  uint64_t buf = mem.alloc(64);
  int ids[3];
  Popped p[3];
  for (int i = 0; i < 3; ++i) ids[i] = drv.add({{buf, 8, true}});
  for (auto& x : p) ASSERT_EQ(vq.pop(x.c), PopStatus::kOk);
  vq.push(p[2].c, 2);
  vq.push(p[1].c, 1);
  vq.flush();
  EXPECT_FALSE(drv.get_used()) << "§2.7.9/§2.8.8: buffers are used in the order they were made available";
  vq.push(p[0].c, 0);
  vq.flush();
  for (int i = 0; i < 3; ++i) {
    auto u = drv.get_used();
    ASSERT_TRUE(u);
    EXPECT_EQ(u->id, uint32_t(ids[i]));
    EXPECT_EQ(u->len, uint32_t(i));
  }
}

TEST_P(VqTest, ForcedInOrderWithoutFeature) {
  TestDriverQueue drv(mem, 4, packed());
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config(), VqOptions{true}).ok());
  EXPECT_TRUE(vq.in_order());
  uint64_t buf = mem.alloc(64);
  // Several laps of the in-order slot ring with reversed completion.
  for (int lap = 0; lap < 5; ++lap) {
    int ids[4];
    Popped p[4];
    for (int i = 0; i < 4; ++i) ASSERT_GE(ids[i] = drv.add({{buf, 8, true}}), 0);
    for (auto& x : p) ASSERT_EQ(vq.pop(x.c), PopStatus::kOk);
    for (int i = 3; i >= 0; --i) vq.push(p[i].c, uint32_t(i));
    vq.flush();
    for (int i = 0; i < 4; ++i) EXPECT_EQ(drv.get_used()->id, uint32_t(ids[i]));
  }
}

TEST_P(VqTest, NeverMoreOutstandingThanQueueSize) {
  TestDriverQueue drv(mem, 2, packed());
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  uint64_t buf = mem.alloc(64);
  drv.add({{buf, 8, true}});
  drv.add({{buf, 8, true}});
  Popped p[3];
  EXPECT_EQ(vq.pop(p[0].c), PopStatus::kOk);
  EXPECT_EQ(vq.pop(p[1].c), PopStatus::kOk);
  if (!packed()) drv.raw_avail(0);  // a misbehaving driver re-posts head 0 while in flight
  EXPECT_EQ(vq.pop(p[2].c), PopStatus::kEmpty);
}

TEST_P(VqTest, StartRejectsBadConfig) {
  TestDriverQueue drv(mem, 8, packed());
  Virtqueue vq;
  QueueConfig c = drv.config();
  c.size = 0;
  EXPECT_FALSE(vq.start(c).ok());
  c = drv.config();
  c.desc = static_cast<uint8_t*>(c.desc) + 1;
  EXPECT_FALSE(vq.start(c).ok()) << "misaligned ring";
  c = drv.config();
  c.mem = nullptr;
  EXPECT_FALSE(vq.start(c).ok());
  if (!packed()) {
    c = drv.config();
    c.size = 6;
    EXPECT_FALSE(vq.start(c).ok()) << "split queue size must be a power of two";
  } else {
    c = drv.config();
    c.last_avail_idx = kPackedWrapBit | 9;
    EXPECT_FALSE(vq.start(c).ok()) << "position beyond the ring";
  }
}

TEST(VqPacked, NonPowerOfTwoSize) {
  GuestMemory mem;
  TestDriverQueue drv(mem, 5, true);
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  uint64_t buf = mem.alloc(64);
  for (int i = 0; i < 23; ++i) {
    int id = drv.add({{buf, 8, false}, {buf + 8, 8, true}});
    ASSERT_GE(id, 0);
    Popped p;
    ASSERT_EQ(vq.pop(p.c), PopStatus::kOk);
    vq.push(p.c, 8);
    ASSERT_EQ(drv.get_used()->id, uint32_t(id));
  }
  QueueState s = vq.state();
  EXPECT_EQ(s.last_avail_idx & ~kPackedWrapBit, (23 * 2) % 5);
  EXPECT_EQ(bool(s.last_avail_idx & kPackedWrapBit), ((23 * 2) / 5) % 2 == 0);
}

TEST(VqPacked, UsedDescriptorWriteFlag) {
  GuestMemory mem;
  TestDriverQueue drv(mem, 4, true);
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  uint64_t buf = mem.alloc(64);
  drv.add({{buf, 8, false}});
  Popped p;
  ASSERT_EQ(vq.pop(p.c), PopStatus::kOk);
  vq.push(p.c, 0);
  uint16_t f = ld16(mem.hva(drv.desc_gpa() + 14, 2));
  EXPECT_FALSE(f & VIRTQ_DESC_F_WRITE) << "§2.8.3: WRITE in a used descriptor means data was written";
  EXPECT_TRUE((f & VIRTQ_DESC_F_USED) && (f & VIRTQ_DESC_F_AVAIL));
}

// ---------------------------------------------------------------- notifications

TEST(VqNotify, SplitNoInterruptFlag) {
  GuestMemory mem;
  TestDriverQueue drv(mem, 8, false);
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  uint64_t buf = mem.alloc(64);
  Popped p;
  EXPECT_FALSE(vq.need_notify()) << "nothing used yet";
  drv.add({{buf, 8, true}});
  ASSERT_EQ(vq.pop(p.c), PopStatus::kOk);
  vq.push(p.c, 8);
  vq.flush();
  EXPECT_TRUE(vq.need_notify());
  EXPECT_FALSE(vq.need_notify()) << "already signalled for this batch";
  drv.set_no_interrupt(true);
  drv.add({{buf, 8, true}});
  ASSERT_EQ(vq.pop(p.c), PopStatus::kOk);
  vq.push(p.c, 8);
  vq.flush();
  EXPECT_FALSE(vq.need_notify()) << "§2.7.7: VIRTQ_AVAIL_F_NO_INTERRUPT";
}

TEST(VqNotify, SplitEventIdx) {
  GuestMemory mem;
  TestDriverQueue drv(mem, 16, false, kFEventIdx);
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  EXPECT_TRUE(vq.event_idx());
  uint64_t buf = mem.alloc(64);
  drv.set_no_interrupt(true);  // ignored with EVENT_IDX
  drv.set_used_event(2);       // "interrupt me when used idx passes 2" (i.e. reaches 3)
  std::vector<bool> sig;
  for (int i = 0; i < 6; ++i) {
    drv.add({{buf, 8, true}});
    Popped p;
    ASSERT_EQ(vq.pop(p.c), PopStatus::kOk);
    vq.push(p.c, 8);
    vq.flush();
    sig.push_back(vq.need_notify());
    drv.get_used();
  }
  // First notification is always sent (signalled_used not valid yet), then
  // only when used idx crosses used_event: 1 -> yes, 2 -> no, 3 -> yes, ...
  EXPECT_EQ(sig, (std::vector<bool>{true, false, true, false, false, false}));
  // A batch jumping over used_event in one go still interrupts once.
  drv.set_used_event(7);
  Popped p[3];
  for (int i = 0; i < 3; ++i) drv.add({{buf, 8, true}});
  for (auto& x : p) ASSERT_EQ(vq.pop(x.c), PopStatus::kOk);
  for (auto& x : p) vq.push(x.c, 8);
  vq.flush();
  EXPECT_TRUE(vq.need_notify());
}

TEST(VqNotify, SplitKickSuppression) {
  GuestMemory mem;
  TestDriverQueue drv(mem, 8, false);
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  EXPECT_TRUE(drv.device_no_notify()) << "polling: kicks disabled from the start";
  EXPECT_FALSE(vq.enable_notifications()) << "no work pending";
  EXPECT_FALSE(drv.device_no_notify());
  uint16_t old = drv.avail_idx();
  uint64_t buf = mem.alloc(64);
  drv.add({{buf, 8, true}});
  EXPECT_TRUE(drv.kick_needed(old));
  EXPECT_TRUE(vq.enable_notifications()) << "work arrived: the caller must not sleep";
  vq.disable_notifications();
  EXPECT_TRUE(drv.device_no_notify());
}

TEST(VqNotify, SplitEventIdxKickSuppression) {
  GuestMemory mem;
  TestDriverQueue drv(mem, 8, false, kFEventIdx);
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  uint64_t buf = mem.alloc(64);
  Popped p;
  drv.add({{buf, 8, true}});
  ASSERT_EQ(vq.pop(p.c), PopStatus::kOk);
  EXPECT_FALSE(vq.enable_notifications());
  EXPECT_EQ(drv.avail_event(), 1) << "§2.7.10: avail_event = next index the device will read";
  uint16_t old = drv.avail_idx();
  drv.add({{buf, 8, true}});
  EXPECT_TRUE(drv.kick_needed(old));
  vq.disable_notifications();
  ASSERT_EQ(vq.pop(p.c), PopStatus::kOk);
  old = drv.avail_idx();
  drv.add({{buf, 8, true}});
  EXPECT_FALSE(drv.kick_needed(old)) << "avail_event left behind: no kick while polling";
}

TEST(VqNotify, PackedDriverEventSuppression) {
  GuestMemory mem;
  TestDriverQueue drv(mem, 4, true, kFEventIdx);
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  EXPECT_EQ(drv.device_event_flags(), RING_EVENT_FLAGS_DISABLE);
  uint64_t buf = mem.alloc(64);
  auto one = [&] {
    drv.add({{buf, 8, true}});
    Popped p;
    EXPECT_EQ(vq.pop(p.c), PopStatus::kOk);
    vq.push(p.c, 8);
    bool n = vq.need_notify();
    drv.get_used();
    return n;
  };
  drv.set_driver_event(RING_EVENT_FLAGS_DISABLE);
  EXPECT_FALSE(one());
  drv.set_driver_event(RING_EVENT_FLAGS_ENABLE);
  EXPECT_TRUE(one());
  // Used positions so far: 0,1 (wrap 1). Ask for an event at position 3 of
  // this lap: the next push (position 2) must not signal, the one at 3 must.
  drv.set_driver_event(RING_EVENT_FLAGS_DESC, uint16_t(kPackedWrapBit | 3));
  EXPECT_FALSE(one());
  EXPECT_TRUE(one());
  // Next lap (wrap 0): event at position 1 of it.
  drv.set_driver_event(RING_EVENT_FLAGS_DESC, 1);
  EXPECT_FALSE(one());
  EXPECT_TRUE(one());
  EXPECT_FALSE(vq.enable_notifications());
  EXPECT_EQ(drv.device_event_flags(), RING_EVENT_FLAGS_ENABLE);
  drv.add({{buf, 8, true}});
  EXPECT_TRUE(vq.enable_notifications());
}

TEST(VqNotify, CallAndKickFds) {
  GuestMemory mem;
  TestDriverQueue drv(mem, 8, false);
  int kick = eventfd(0, EFD_NONBLOCK), call = eventfd(0, EFD_NONBLOCK);
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config(kick, call)).ok());
  uint64_t one = 1, v = 0;
  ASSERT_EQ(write(kick, &one, 8), 8);
  vq.drain_kick();
  EXPECT_EQ(read(kick, &v, 8), -1) << "drained";
  uint64_t buf = mem.alloc(64);
  drv.add({{buf, 8, true}});
  Popped p;
  ASSERT_EQ(vq.pop(p.c), PopStatus::kOk);
  vq.push(p.c, 8);
  EXPECT_TRUE(vq.flush_and_notify());
  EXPECT_EQ(read(call, &v, 8), 8);
  EXPECT_EQ(v, 1u);
  vq.drain_kick();  // empty eventfd: must not block
  close(kick);
  close(call);
}

// ---- save / restore (virtio_blk_controller_state_save/restore) ----------

// A queue restarted by a front-end that knows nothing (base 0) continues
// from the restored position: nothing done is done again.
TEST_P(VqTest, RestoreContinuesFromTheSavedPosition) {
  TestDriverQueue drv(mem, 8, packed());
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  uint64_t b = mem.alloc(64);
  for (int i = 0; i < 3; ++i) ASSERT_GE(drv.add({{b, 64, true}}), 0);
  Popped p;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(vq.pop(p.c), PopStatus::kOk);
    vq.push(p.c, 0);
  }
  vq.flush();
  RingState saved = vq.ring_state();
  EXPECT_TRUE(saved.resubmit.empty());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(drv.get_used());

  Virtqueue again;  // same rings, started from scratch
  ASSERT_TRUE(again.start(drv.config()).ok());
  ASSERT_TRUE(again.restore(saved).ok());
  EXPECT_EQ(again.pop(p.c), PopStatus::kEmpty) << "the three done requests are not redone";
  int id = drv.add({{b, 64, true}});
  ASSERT_GE(id, 0);
  ASSERT_EQ(again.pop(p.c), PopStatus::kOk);
  EXPECT_EQ(p.c.id, id);
  again.push(p.c, 0);
  again.flush();
  auto u = drv.get_used();
  ASSERT_TRUE(u);
  EXPECT_EQ(u->id, uint32_t(id));
  EXPECT_FALSE(drv.get_used());
  EXPECT_EQ(again.state().last_avail_idx, packed() ? saved.pos.last_avail_idx + 1 : 4);
}

TEST(VqRestore, SplitResubmitsInOrderAndRefusesBadStates) {
  GuestMemory mem;
  TestDriverQueue drv(mem, 8, false);
  uint64_t b = mem.alloc(64);
  int h0 = drv.add({{b, 64, true}});
  int h1 = drv.add({{b, 64, true}});
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  auto bad = [&](RingState s) { return vq.restore(s).error().code; };
  // Counts that do not add up, heads out of range or repeated, used index
  // other than the ring's: refused, nothing changed.
  EXPECT_EQ(bad({{2, 0}, {}}), Errc::kInvalidArgument);
  EXPECT_EQ(bad({{2, 0}, {uint16_t(h0), uint16_t(h0)}}), Errc::kInvalidArgument);
  EXPECT_EQ(bad({{2, 0}, {uint16_t(h0), 9}}), Errc::kInvalidArgument);
  EXPECT_EQ(bad({{3, 1}, {uint16_t(h0), uint16_t(h1)}}), Errc::kInvalidArgument);  // used->idx is 0
  // Both popped by a previous run and never completed: redone, in the
  // saved order, then nothing (last avail 2).
  ASSERT_TRUE(vq.restore({{2, 0}, {uint16_t(h1), uint16_t(h0)}}).ok());
  EXPECT_EQ(vq.resubmit_pending(), 2u);
  Popped p, q;
  ASSERT_EQ(vq.pop(p.c), PopStatus::kOk);
  EXPECT_EQ(p.c.id, uint32_t(h1));
  ASSERT_EQ(vq.pop(q.c), PopStatus::kOk);
  EXPECT_EQ(q.c.id, uint32_t(h0));
  EXPECT_EQ(vq.pop(q.c), PopStatus::kEmpty);
  // Outstanding chains: neither saved nor restored.
  EXPECT_EQ(vq.restore({{2, 0}, {}}).error().code, Errc::kState);
  vq.push(p.c, 0);
  vq.push(q.c, 0);
  vq.flush();
  RingState s = vq.ring_state();
  EXPECT_EQ(s.pos.last_avail_idx, 2);
  EXPECT_EQ(s.pos.last_used_idx, 2);
  EXPECT_TRUE(s.resubmit.empty());
}

TEST(VqRestore, PackedPositionsAndNoResubmit) {
  GuestMemory mem;
  TestDriverQueue drv(mem, 8, true);
  Virtqueue vq;
  ASSERT_TRUE(vq.start(drv.config()).ok());
  EXPECT_FALSE(vq.restore({{8, 0}, {}}).ok());  // beyond the ring
  EXPECT_FALSE(vq.restore({{0, 0}, {1}}).ok());  // no resubmission on packed rings
  ASSERT_TRUE(vq.restore({{uint16_t(3 | 0x8000), uint16_t(3 | 0x8000)}, {}}).ok());
  EXPECT_EQ(vq.state().last_avail_idx, 3 | 0x8000);
  EXPECT_EQ(vq.state().last_used_idx, 3 | 0x8000);
}

}  // namespace
}  // namespace vdpu::virtio
