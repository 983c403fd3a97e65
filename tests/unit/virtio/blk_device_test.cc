// BlkDevice end to end on a real runtime: data reactors, the main reactor
// on a test thread, a vector-backed bdev in the bdev Manager.
#include "virtio/blk/blk_device.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>
#include <thread>

#include "test_bdev.h"
#include "test_driver.h"

namespace vdpu::virtio::blk {
namespace {

using namespace std::chrono_literals;
using test::Buf;
using test::GuestMemory;
using test::TestDriverQueue;
using test::VecBdev;

// Generous: only catches hangs, never measures speed.
constexpr auto kDeadline = 20s;

class BlkDeviceTest : public ::testing::Test {
 protected:
  void start_runtime(bool event_mode = false) {
    rt::Options o;
    o.cores = {0, 1};
    o.pin = false;
    o.event_mode = event_mode;
    rt_ = std::make_unique<rt::Runtime>(o);
    ASSERT_TRUE(rt_->start().ok());
    main_ = std::thread([this] { rt_->run_main(); });
  }
  void SetUp() override { start_runtime(); }
  void TearDown() override {
    if (dev_) {
      wait<int>([&](auto done) { dev_->stop_all([done] { done(0); }); });
      on_main([&] { dev_.reset(); });
    }
    on_main([&] { bdev::Manager::get().clear(); });
    rt_->stop();
    main_.join();
    rt_.reset();
  }
  // Runs fn on the main reactor and waits.
  template <class F>
  void on_main(F fn) {
    std::promise<void> p;
    rt_->main().send_blocking([&] {
      fn();
      p.set_value();
    });
    ASSERT_EQ(p.get_future().wait_for(kDeadline), std::future_status::ready);
  }
  // Runs start(done) on main; waits for done(value).
  template <class T, class F>
  T wait(F start) {
    auto p = std::make_shared<std::promise<T>>();
    auto fut = p->get_future();
    rt_->main().send_blocking([p, start] { start([p](T v) { p->set_value(std::move(v)); }); });
    EXPECT_EQ(fut.wait_for(kDeadline), std::future_status::ready);
    return fut.get();
  }
  VecBdev* add_bdev(const std::string& name, uint32_t bs = 512, uint64_t nb = 4096) {
    VecBdev* b = nullptr;
    on_main([&] {
      auto u = std::make_unique<VecBdev>(name, bs, nb);
      b = u.get();
      ASSERT_TRUE(bdev::Manager::get().add(std::move(u)).ok());
    });
    return b;
  }
  void create(BlkOptions o, const std::string& bdev, bool suspended = false) {
    on_main([&] {
      auto d = BlkDevice::create(o, bdev, *rt_, suspended);
      ASSERT_TRUE(d.ok()) << d.error().message;
      dev_ = std::move(*d);
    });
  }
  Status start_queue(uint16_t qid, const QueueConfig& cfg) {
    return wait<Status>([&, cfg, qid](auto done) { dev_->start_queue(qid, cfg, [done](Status s) { done(s); }); });
  }
  // Driver side: one request, waits for its used entry.
  struct Req {
    uint64_t hdr, data, status;
  };
  // publish = false (split only): the chain is made available by drv.publish().
  Req add(GuestMemory& mem, TestDriverQueue& drv, uint32_t type, uint64_t sector, uint32_t len, bool wr,
          bool publish = true) {
    Req r{mem.alloc(16), len ? mem.alloc(len, 512) : 0, mem.alloc(1)};
    VirtioBlkOutHdr h{htole32(type), 0, htole64(sector)};
    mem.write(r.hdr, &h, 16);
    mem.fill(r.status, 0xff, 1);
    std::vector<Buf> b{{r.hdr, 16, false}};
    if (len) b.push_back({r.data, len, wr});
    b.push_back({r.status, 1, true});
    EXPECT_GE(drv.add(b, false, publish), 0);
    return r;
  }
  static bool wait_used(TestDriverQueue& drv, int n = 1) {
    auto end = std::chrono::steady_clock::now() + kDeadline;
    while (n > 0) {
      if (drv.get_used()) --n;
      else if (std::chrono::steady_clock::now() > end) return false;
      else std::this_thread::yield();
    }
    return true;
  }
  static uint8_t st(GuestMemory& mem, const Req& r) {
    uint8_t s;
    mem.read(r.status, &s, 1);
    return s;
  }

  // Guest memory outlives the test body: queues run until TearDown stops them.
  GuestMemory mem{32 << 20};
  std::unique_ptr<rt::Runtime> rt_;
  std::thread main_;
  std::unique_ptr<BlkDevice> dev_;
};

TEST(BlkOptions, Validate) {
  BlkOptions o;
  EXPECT_TRUE(validate(o).ok());
  o.num_queues = 65;
  EXPECT_FALSE(validate(o).ok());
  o = {};
  o.queue_size = 257;
  EXPECT_FALSE(validate(o).ok());
  o = {};
  o.seg_max = 255;
  EXPECT_FALSE(validate(o).ok()) << "seg_max <= queue_size - 2";
  o = {};
  o.serial = std::string(21, 'x');
  EXPECT_FALSE(validate(o).ok());
  o = {};
  o.size_max = 0;
  EXPECT_FALSE(validate(o).ok());
}

TEST_F(BlkDeviceTest, FeaturesAndConfig) {
  add_bdev("vb0", 4096, 1000);
  BlkOptions o;
  o.num_queues = 4;
  o.seg_max = 32;
  o.size_max = 65536;
  o.indirect_desc = true;
  create(o, "vb0");
  uint64_t f = dev_->device_features();
  EXPECT_TRUE(f & kFVersion1);
  EXPECT_TRUE(f & kFIndirectDesc);
  EXPECT_TRUE(f & kFEventIdx);
  EXPECT_TRUE(f & kFRingPacked);
  EXPECT_FALSE(f & kFInOrder);
  EXPECT_FALSE(f & VIRTIO_BLK_F_RO);
  for (uint64_t b : {VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH,
                     VIRTIO_BLK_F_MQ, VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES})
    EXPECT_TRUE(f & b) << b;
  EXPECT_EQ(dev_->device_id(), 2u);
  VirtioBlkConfig c;
  dev_->read_config(0, {reinterpret_cast<uint8_t*>(&c), sizeof(c)});
  EXPECT_EQ(le64toh(c.capacity), 1000u * 8) << "capacity in 512-byte sectors";
  EXPECT_EQ(le32toh(c.blk_size), 4096u);
  EXPECT_EQ(le32toh(c.seg_max), 32u);
  EXPECT_EQ(le32toh(c.size_max), 65536u);
  EXPECT_EQ(le16toh(c.num_queues), 4);
  EXPECT_EQ(le32toh(c.max_discard_seg), 1u);
  EXPECT_EQ(le32toh(c.discard_sector_alignment), 8u);
  uint8_t tail[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  dev_->read_config(92, tail);
  EXPECT_EQ(tail[4], 0) << "bytes past the config read as zero";
  EXPECT_FALSE(dev_->set_features(f | (1ull << 50)).ok()) << "feature not offered";
  EXPECT_FALSE(dev_->set_features(f | VIRTIO_BLK_F_CONFIG_WCE).ok()) << "device feature not offered";
  EXPECT_TRUE(dev_->set_features(f | (1ull << 30)).ok()) << "vhost-user PROTOCOL_FEATURES is the transport's";
  EXPECT_TRUE(dev_->set_features(f).ok());
  uint8_t one = 1;
  EXPECT_FALSE(dev_->write_config(32, {&one, 1}).ok());

  BlkOptions ro;
  ro.read_only = true;
  ro.force_in_order = true;
  std::unique_ptr<BlkDevice> d2;
  on_main([&] { d2 = std::move(*BlkDevice::create(ro, "none", *rt_)); });
  EXPECT_TRUE(d2->device_features() & VIRTIO_BLK_F_RO);
  EXPECT_TRUE(d2->device_features() & kFInOrder);
  EXPECT_EQ(d2->bdev_name(), "");
  on_main([&] { d2.reset(); });
  on_main([&] { EXPECT_FALSE(BlkDevice::create(BlkOptions{}, "nope", *rt_).ok()); });
}

TEST_F(BlkDeviceTest, TwoQueuesEndToEnd) {
  VecBdev* b = add_bdev("vb0");
  BlkOptions o;
  o.num_queues = 2;
  o.serial = "VBLK-1";
  create(o, "vb0");
  TestDriverQueue q0(mem, 64, false, kFEventIdx), q1(mem, 64, true, kFRingPacked | kFEventIdx);
  ASSERT_TRUE(start_queue(0, q0.config()).ok());
  ASSERT_TRUE(start_queue(1, q1.config()).ok());
  EXPECT_FALSE(start_queue(1, q1.config()).ok()) << "already started";
  EXPECT_FALSE(start_queue(2, q1.config()).ok()) << "no such queue";
  // The payload is written before the chain is published.
  Req w = add(mem, q0, VIRTIO_BLK_T_OUT, 16, 8192, false, /*publish=*/false);
  mem.fill(w.data, 0x3c, 8192);
  q0.publish();
  ASSERT_TRUE(wait_used(q0));
  EXPECT_EQ(st(mem, w), VIRTIO_BLK_S_OK);
  Req r = add(mem, q1, VIRTIO_BLK_T_IN, 16, 8192, true);
  ASSERT_TRUE(wait_used(q1));
  EXPECT_EQ(st(mem, r), VIRTIO_BLK_S_OK);
  EXPECT_EQ(*mem.hva(r.data + 100), 0x3c);
  Req id = add(mem, q1, VIRTIO_BLK_T_GET_ID, 0, 20, true);
  ASSERT_TRUE(wait_used(q1));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(mem.hva(id.data, 20))), "VBLK-1");
  Req fl = add(mem, q0, VIRTIO_BLK_T_FLUSH, 0, 0, false);
  ASSERT_TRUE(wait_used(q0));
  EXPECT_EQ(st(mem, fl), VIRTIO_BLK_S_OK);
  // Many requests to both queues.
  for (int i = 0; i < 200; ++i) {
    add(mem, i % 2 ? q1 : q0, VIRTIO_BLK_T_IN, uint64_t(i), 512, true);
    ASSERT_TRUE(wait_used(i % 2 ? q1 : q0));
  }
  EXPECT_EQ(b->channels.load(), 2) << "one channel per reactor (pick() spread the two queues)";

  std::vector<BlkQueueIoStats> s;
  on_main([&] { s = dev_->io_stats(); });
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].write_io_count, 1u);
  EXPECT_EQ(s[0].flush_io_count, 1u);
  EXPECT_EQ(s[0].read_io_count + s[1].read_io_count, 201u);
  EXPECT_NE(s[0].core_id, s[1].core_id);
  auto j = io_stats_json(s);
  EXPECT_EQ(j["read_io_count"], 201);
  EXPECT_EQ(j["queues"].size(), 2u);
  auto d = wait<std::vector<BlkQueueDebugStats>>([&](auto done) { dev_->debug_stats(done); });
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].state, "RUNNING");
  EXPECT_EQ(d[0].hw_available_index, d[0].sw_available_index);
  EXPECT_EQ(d[0].hw_used_index, 102);
  EXPECT_EQ(d[0].hw_received_descs, 102u);
  EXPECT_EQ(d[1].hw_completed_descs, 102u);
  EXPECT_EQ(debug_stats_json(d)["queues"][1]["state"], "RUNNING");
}

TEST_F(BlkDeviceTest, SuspendWaitsForInflightThenResume) {
  VecBdev* b = add_bdev("vb0");
  create(BlkOptions{}, "vb0");
  TestDriverQueue q(mem, 32, false);
  ASSERT_TRUE(start_queue(0, q.config()).ok());
  b->hold = true;
  Req a = add(mem, q, VIRTIO_BLK_T_IN, 0, 512, true);
  Req c = add(mem, q, VIRTIO_BLK_T_OUT, 1, 512, false);
  while (b->submitted.load() < 2) std::this_thread::yield();
  auto p = std::make_shared<std::promise<void>>();
  auto suspended = p->get_future();
  on_main([&] { dev_->suspend([p] { p->set_value(); }); });
  EXPECT_NE(suspended.wait_for(50ms), std::future_status::ready) << "two requests still in flight";
  b->hold = false;  // the bdev completes them now
  ASSERT_EQ(suspended.wait_for(kDeadline), std::future_status::ready);
  // Suspend finished only after both requests were completed and used.
  EXPECT_EQ(st(mem, a), VIRTIO_BLK_S_OK);
  EXPECT_EQ(st(mem, c), VIRTIO_BLK_S_OK);
  EXPECT_EQ(q.used_idx(), 2);
  ASSERT_TRUE(wait_used(q, 2));
  Req late = add(mem, q, VIRTIO_BLK_T_IN, 2, 512, true);
  std::this_thread::sleep_for(20ms);  // give a misbehaving queue the chance to pop it
  EXPECT_EQ(b->submitted.load(), 2u) << "nothing popped while suspended";
  EXPECT_EQ(st(mem, late), 0xff);
  auto d = wait<std::vector<BlkQueueDebugStats>>([&](auto done) { dev_->debug_stats(done); });
  EXPECT_EQ(d[0].state, "SUSPENDED");
  on_main([&] { dev_->resume(); });
  ASSERT_TRUE(wait_used(q));
  EXPECT_EQ(st(mem, late), VIRTIO_BLK_S_OK);
}

TEST_F(BlkDeviceTest, DetachStallsAttachResumes) {
  add_bdev("vb0");
  VecBdev* b1 = add_bdev("vb1");
  b1->data[0] = 0x99;
  create(BlkOptions{}, "vb0");
  TestDriverQueue q(mem, 32, false);
  ASSERT_TRUE(start_queue(0, q.config()).ok());
  wait<int>([&](auto done) { dev_->detach_bdev([done] { done(0); }); });
  EXPECT_TRUE(dev_->suspended());
  EXPECT_EQ(dev_->bdev_name(), "");
  Req r = add(mem, q, VIRTIO_BLK_T_IN, 0, 512, true);
  Status busy = wait<Status>([&](auto done) { dev_->attach_bdev("nope", true, [done](Status s) { done(s); }); });
  EXPECT_FALSE(busy.ok());
  EXPECT_EQ(st(mem, r), 0xff) << "stalled while detached";
  Status s = wait<Status>([&](auto done) { dev_->attach_bdev("vb1", true, [done](Status s) { done(s); }); });
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_TRUE(wait_used(q));
  EXPECT_EQ(st(mem, r), VIRTIO_BLK_S_OK);
  EXPECT_EQ(*mem.hva(r.data), 0x99) << "served by the new bdev";
  Status again = wait<Status>([&](auto done) { dev_->attach_bdev("vb0", true, [done](Status s) { done(s); }); });
  EXPECT_EQ(again.error().code, Errc::kBusy);
}

TEST_F(BlkDeviceTest, AttachRefusesOtherBlockSizeWhileRunning) {
  add_bdev("vb0", 512);
  add_bdev("vb4k", 4096);
  create(BlkOptions{}, "vb0");
  TestDriverQueue q(mem, 32, false);
  ASSERT_TRUE(start_queue(0, q.config()).ok());
  wait<int>([&](auto done) { dev_->detach_bdev([done] { done(0); }); });
  Status s = wait<Status>([&](auto done) { dev_->attach_bdev("vb4k", true, [done](Status s) { done(s); }); });
  EXPECT_EQ(s.error().code, Errc::kBusy);
}

TEST_F(BlkDeviceTest, HotRemoveFailsIoWithIoerr) {
  add_bdev("vb0");
  create(BlkOptions{}, "vb0");
  TestDriverQueue q(mem, 32, false);
  ASSERT_TRUE(start_queue(0, q.config()).ok());
  Req ok = add(mem, q, VIRTIO_BLK_T_IN, 0, 512, true);
  ASSERT_TRUE(wait_used(q));
  EXPECT_EQ(st(mem, ok), VIRTIO_BLK_S_OK);
  wait<int>([&](auto done) {
    ASSERT_TRUE(bdev::Manager::get().remove("vb0", [done] { done(0); }).ok());
  });
  on_main([&] { EXPECT_EQ(bdev::Manager::get().find("vb0"), nullptr); });
  // The device resumes without a bdev shortly after the removal.
  Req bad = add(mem, q, VIRTIO_BLK_T_IN, 0, 512, true);
  ASSERT_TRUE(wait_used(q));
  EXPECT_EQ(st(mem, bad), VIRTIO_BLK_S_IOERR);
  EXPECT_FALSE(dev_->suspended());
}

TEST_F(BlkDeviceTest, StopQueueReportsStateAndRestarts) {
  add_bdev("vb0");
  create(BlkOptions{}, "vb0");
  TestDriverQueue q(mem, 16, false);
  ASSERT_TRUE(start_queue(0, q.config()).ok());
  for (int i = 0; i < 20; ++i) {
    add(mem, q, VIRTIO_BLK_T_IN, 0, 512, true);
    ASSERT_TRUE(wait_used(q));
  }
  QueueState s = wait<QueueState>([&](auto done) { dev_->stop_queue(0, done); });
  EXPECT_EQ(s.last_avail_idx, 20);
  EXPECT_EQ(s.last_used_idx, 20);
  EXPECT_FALSE(dev_->queue_started(0));
  Req r = add(mem, q, VIRTIO_BLK_T_IN, 0, 512, true);
  QueueConfig cfg = q.config();
  cfg.last_avail_idx = s.last_avail_idx;
  ASSERT_TRUE(start_queue(0, cfg).ok());
  ASSERT_TRUE(wait_used(q));
  EXPECT_EQ(st(mem, r), VIRTIO_BLK_S_OK);
  std::vector<BlkQueueIoStats> st;
  on_main([&] { st = dev_->io_stats(); });
  EXPECT_EQ(st[0].read_io_count, 21u) << "counters survive a queue restart";
}

TEST_F(BlkDeviceTest, CreatedSuspended) {
  add_bdev("vb0");
  create(BlkOptions{}, "vb0", /*suspended=*/true);
  TestDriverQueue q(mem, 16, false);
  ASSERT_TRUE(start_queue(0, q.config()).ok());
  Req r = add(mem, q, VIRTIO_BLK_T_IN, 0, 512, true);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(st(mem, r), 0xff);
  on_main([&] { dev_->resume(); });
  ASSERT_TRUE(wait_used(q));
}

class BlkDeviceEventTest : public BlkDeviceTest {
 protected:
  void SetUp() override { start_runtime(/*event_mode=*/true); }
};

TEST_F(BlkDeviceEventTest, KickWakesSleepingReactorAndCallFires) {
  add_bdev("vb0");
  create(BlkOptions{}, "vb0");
  TestDriverQueue q(mem, 16, false, kFEventIdx);
  int kick = eventfd(0, EFD_NONBLOCK), call = eventfd(0, EFD_NONBLOCK);
  ASSERT_TRUE(start_queue(0, q.config(kick, call)).ok());
  for (int i = 0; i < 5; ++i) {
    // Let the reactor go idle and sleep with kicks armed.
    std::this_thread::sleep_for(30ms);
    q.set_used_event(q.used_idx());  // a driver re-enabling interrupts (EVENT_IDX)
    uint16_t old = q.avail_idx();
    Req r = add(mem, q, VIRTIO_BLK_T_IN, 0, 512, true);
    if (q.kick_needed(old)) {
      uint64_t one = 1;
      ASSERT_EQ(write(kick, &one, 8), 8);
    }
    pollfd pf{call, POLLIN, 0};
    ASSERT_EQ(poll(&pf, 1, 20000), 1) << "interrupt expected";
    uint64_t v;
    ASSERT_EQ(read(call, &v, 8), 8);
    ASSERT_TRUE(wait_used(q));
    EXPECT_EQ(st(mem, r), VIRTIO_BLK_S_OK);
  }
  wait<int>([&](auto done) { dev_->stop_all([done] { done(0); }); });
  close(kick);
  close(call);
}

// bdev_attach of a controller the user suspended (snap spec §5.4: attach
// resumes what bdev_detach suspended, nothing more): the device stays
// suspended through the attach and takes no request until resumed.
TEST_F(BlkDeviceTest, AttachWithoutResumeStaysSuspended) {
  add_bdev("vb0");
  VecBdev* b1 = add_bdev("vb1");
  create(BlkOptions{}, "vb0");
  TestDriverQueue q(mem, 32, false);
  ASSERT_TRUE(start_queue(0, q.config()).ok());
  wait<int>([&](auto done) { dev_->suspend([done] { done(0); }); });      // the user's suspend
  wait<int>([&](auto done) { dev_->detach_bdev([done] { done(0); }); });
  Req r = add(mem, q, VIRTIO_BLK_T_IN, 0, 512, true);
  Status s = wait<Status>([&](auto done) { dev_->attach_bdev("vb1", false, [done](Status s) { done(s); }); });
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_TRUE(dev_->suspended());
  EXPECT_EQ(dev_->bdev_name(), "vb1");
  // debug_stats runs on the queue's reactor after the attach: by then a
  // resumed queue would have been running.
  auto d = wait<std::vector<BlkQueueDebugStats>>([&](auto done) { dev_->debug_stats(done); });
  EXPECT_EQ(d[0].state, "SUSPENDED");
  EXPECT_EQ(b1->submitted.load(), 0u);
  EXPECT_EQ(st(mem, r), 0xff);
  on_main([&] { dev_->resume(); });
  ASSERT_TRUE(wait_used(q));
  EXPECT_EQ(st(mem, r), VIRTIO_BLK_S_OK);
  EXPECT_EQ(b1->submitted.load(), 1u);
}

// state_save / state_restore: a queue started again by a front-end that
// knows nothing of the ring (base 0) continues from the saved state instead
// of redoing the requests it had completed.
TEST_F(BlkDeviceTest, RestoredStateContinuesWhereTheQueueStopped) {
  VecBdev* b = add_bdev("vb0");
  create(BlkOptions{}, "vb0");
  TestDriverQueue q(mem, 32, false);
  ASSERT_TRUE(start_queue(0, q.config()).ok());
  for (int i = 0; i < 3; ++i) {
    add(mem, q, VIRTIO_BLK_T_IN, uint64_t(i), 512, true);
    ASSERT_TRUE(wait_used(q));
  }
  // Saving needs a suspended device.
  auto running = wait<Result<std::vector<BlkQueueState>>>([&](auto done) { dev_->save_state(done); });
  EXPECT_EQ(running.error().code, Errc::kState);
  wait<int>([&](auto done) { dev_->suspend([done] { done(0); }); });
  auto saved = wait<Result<std::vector<BlkQueueState>>>([&](auto done) { dev_->save_state(done); });
  ASSERT_TRUE(saved.ok()) << saved.error().message;
  ASSERT_EQ(saved->size(), 1u);
  EXPECT_TRUE((*saved)[0].started);
  EXPECT_EQ((*saved)[0].ring.pos.last_avail_idx, 3);
  EXPECT_EQ((*saved)[0].ring.pos.last_used_idx, 3);
  EXPECT_TRUE((*saved)[0].ring.resubmit.empty());

  // The transport goes away and comes back with base 0 (a new front-end).
  wait<QueueState>([&](auto done) { dev_->stop_queue(0, done); });
  Status rs = wait<Status>([&](auto done) { dev_->restore_state(*saved, done); });
  ASSERT_TRUE(rs.ok()) << rs.error().message;
  ASSERT_TRUE(start_queue(0, q.config()).ok());  // config(): last_avail_idx 0
  on_main([&] { dev_->resume(); });
  Req r = add(mem, q, VIRTIO_BLK_T_IN, 7, 512, true);
  ASSERT_TRUE(wait_used(q));
  EXPECT_EQ(st(mem, r), VIRTIO_BLK_S_OK);
  auto d = wait<std::vector<BlkQueueDebugStats>>([&](auto done) { dev_->debug_stats(done); });
  EXPECT_EQ(d[0].sw_available_index, 4);
  EXPECT_EQ(d[0].sw_used_index, 4);
  EXPECT_EQ(b->submitted.load(), 4u) << "requests 0..2 were redone";
  EXPECT_EQ(dev_->io_stats()[0].read_io_count, 4u);
}

TEST_F(BlkDeviceTest, RestoreRefusesStatesThatDoNotFit) {
  add_bdev("vb0");
  BlkOptions o;
  o.num_queues = 2;
  create(o, "vb0");
  TestDriverQueue q(mem, 32, false);
  ASSERT_TRUE(start_queue(0, q.config()).ok());
  add(mem, q, VIRTIO_BLK_T_IN, 0, 512, true);
  ASSERT_TRUE(wait_used(q));
  auto restore = [&](std::vector<BlkQueueState> st) {
    return wait<Status>([&](auto done) { dev_->restore_state(st, done); });
  };
  BlkQueueState q0{0, true, {{1, 1}, {}}}, q1{1, false, {{0, 0}, {}}};
  EXPECT_EQ(restore({q0, q1}).error().code, Errc::kState);  // running
  wait<int>([&](auto done) { dev_->suspend([done] { done(0); }); });
  EXPECT_EQ(restore({q0}).error().code, Errc::kInvalidArgument);      // queue count
  EXPECT_EQ(restore({q0, q0}).error().code, Errc::kInvalidArgument);  // repeated id
  BlkQueueState stale{0, true, {{0, 0}, {}}};  // saved before the ring moved on
  EXPECT_EQ(restore({stale, q1}).error().code, Errc::kInvalidArgument);
  EXPECT_TRUE(restore({q0, q1}).ok());
  // The queue that was not running takes its state when it starts.
  auto s = wait<Result<std::vector<BlkQueueState>>>([&](auto done) { dev_->save_state(done); });
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE((*s)[1].started);
  EXPECT_EQ((*s)[0].ring.pos.last_avail_idx, 1);
}

}  // namespace
}  // namespace vdpu::virtio::blk
