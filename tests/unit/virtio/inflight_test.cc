// vhost-user inflight tracking (split rings): marking, clearing, and
// resubmission after a simulated backend crash.
#include <gtest/gtest.h>

#include <vector>

#include "test_driver.h"
#include "virtio/inflight.h"
#include "virtio/virtqueue.h"

namespace vdpu::virtio {
namespace {

using test::GuestMemory;
using test::TestDriverQueue;

struct Region {
  std::vector<uint64_t> buf;
  explicit Region(uint16_t qs) : buf(inflight_split_queue_bytes(qs) / 8, 0) {}
  InflightQueueSplit* q() { return reinterpret_cast<InflightQueueSplit*>(buf.data()); }
  InflightRegion r() { return InflightRegion{buf.data(), buf.size() * 8}; }
};

struct Popped {
  Chain c;
  iovec iov[8];
  Popped() {
    c.iov = iov;
    c.max_iov = 8;
  }
};

TEST(Inflight, RegionSize) {
  EXPECT_EQ(inflight_split_queue_bytes(256), 16u + 16u * 256 + 48u);  // rounded to 64
  EXPECT_EQ(inflight_split_queue_bytes(1) % kInflightAlign, 0u);
}

TEST(Inflight, MarkThenClearAfterUsedUpdate) {
  GuestMemory mem;
  TestDriverQueue drv(mem, 8, false);
  Region reg(8);
  QueueConfig cfg = drv.config();
  cfg.inflight = reg.r();
  Virtqueue vq;
  ASSERT_TRUE(vq.start(cfg).ok());
  EXPECT_EQ(reg.q()->version, kInflightVersion) << "fresh region initialised";
  EXPECT_EQ(reg.q()->desc_num, 8);
  uint64_t b = mem.alloc(64);
  int ids[3];
  Popped p[3];
  for (int& id : ids) id = drv.add({{b, 8, true}});
  for (auto& x : p) ASSERT_EQ(vq.pop(x.c), PopStatus::kOk);
  for (int id : ids) EXPECT_EQ(reg.q()->desc()[id].inflight, 1) << "marked before processing";
  EXPECT_LT(reg.q()->desc()[ids[0]].counter, reg.q()->desc()[ids[1]].counter);
  vq.push(p[1].c, 8);
  EXPECT_EQ(reg.q()->desc()[ids[1]].inflight, 1) << "still inflight until the used ring is updated";
  vq.flush();
  EXPECT_EQ(reg.q()->desc()[ids[1]].inflight, 0);
  EXPECT_EQ(reg.q()->used_idx, 1);
  EXPECT_EQ(reg.q()->desc()[ids[0]].inflight, 1);
}

TEST(Inflight, ResubmitsInOrderAfterCrash) {
  GuestMemory mem;
  TestDriverQueue drv(mem, 8, false);
  Region reg(8);
  uint64_t b = mem.alloc(64);
  std::vector<int> ids;
  {
    QueueConfig cfg = drv.config();
    cfg.inflight = reg.r();
    Virtqueue vq;  // the backend that will "crash"
    ASSERT_TRUE(vq.start(cfg).ok());
    Popped p[4];
    for (int i = 0; i < 4; ++i) ids.push_back(drv.add({{b + 8 * i, 8, true}}));
    for (auto& x : p) ASSERT_EQ(vq.pop(x.c), PopStatus::kOk);
    vq.push(p[2].c, 8);
    vq.flush();
    // crash: p[0], p[1], p[3] never completed
  }
  ASSERT_EQ(drv.get_used()->id, uint32_t(ids[2]));
  // One more chain arrives while the backend is down.
  int late = drv.add({{b + 64, 8, true}});
  // QEMU restarts the queue with last_avail_idx = used->idx.
  QueueConfig cfg = drv.config();
  cfg.last_avail_idx = drv.used_idx();
  cfg.inflight = reg.r();
  Virtqueue vq;
  ASSERT_TRUE(vq.start(cfg).ok());
  EXPECT_EQ(vq.resubmit_pending(), 3u);
  EXPECT_EQ(vq.state().last_avail_idx, 4) << "used idx 1 + 3 inflight";
  std::vector<uint16_t> got;
  Popped p;
  while (vq.pop(p.c) == PopStatus::kOk) {
    got.push_back(p.c.id);
    vq.push(p.c, 8);
  }
  EXPECT_EQ(got, (std::vector<uint16_t>{uint16_t(ids[0]), uint16_t(ids[1]), uint16_t(ids[3]), uint16_t(late)}));
  vq.flush();
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(drv.get_used());
  for (int i = 0; i < 8; ++i) EXPECT_EQ(reg.q()->desc()[i].inflight, 0);
}

TEST(Inflight, RepairsHalfWrittenBatch) {
  // Crash after used->idx was published but before the batch's inflight
  // flags were cleared: recovery must not resubmit those heads.
  GuestMemory mem;
  TestDriverQueue drv(mem, 8, false);
  Region reg(8);
  uint64_t b = mem.alloc(64);
  QueueConfig cfg = drv.config();
  cfg.inflight = reg.r();
  {
    Virtqueue vq;
    ASSERT_TRUE(vq.start(cfg).ok());
    Popped p[3];
    for (int i = 0; i < 3; ++i) drv.add({{b, 8, true}});
    for (auto& x : p) ASSERT_EQ(vq.pop(x.c), PopStatus::kOk);
    vq.push(p[0].c, 8);
    vq.push(p[1].c, 8);
    vq.flush();
    // Undo the clearing, as if we crashed right after the used->idx store.
    reg.q()->desc()[p[0].c.id].inflight = 1;
    reg.q()->desc()[p[1].c.id].inflight = 1;
    reg.q()->used_idx = 0;
  }
  cfg = drv.config();
  cfg.last_avail_idx = drv.used_idx();
  cfg.inflight = reg.r();
  Virtqueue vq;
  ASSERT_TRUE(vq.start(cfg).ok());
  EXPECT_EQ(vq.resubmit_pending(), 1u) << "only the third head is still inflight";
  EXPECT_EQ(reg.q()->used_idx, 2);
}

TEST(Inflight, RejectsBadRegion) {
  GuestMemory mem;
  TestDriverQueue drv(mem, 8, false);
  Region reg(8);
  QueueConfig cfg = drv.config();
  cfg.inflight = InflightRegion{reg.buf.data(), 64};
  Virtqueue vq;
  EXPECT_FALSE(vq.start(cfg).ok()) << "too small";
  reg.q()->version = kInflightVersion;
  reg.q()->desc_num = 16;
  cfg.inflight = reg.r();
  EXPECT_FALSE(vq.start(cfg).ok()) << "region of another queue size";
}

}  // namespace
}  // namespace vdpu::virtio
