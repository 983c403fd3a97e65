// virtio-blk request handling on one queue, driven single-threaded: the
// test plays the driver, a vector-backed bdev plays the backend.
#include "virtio/blk/blk_queue.h"

#include <gtest/gtest.h>

#include <cstring>

#include "test_bdev.h"
#include "test_driver.h"

namespace vdpu::virtio::blk {
namespace {

using test::Buf;
using test::GuestMemory;
using test::TestDriverQueue;
using test::VecBdev;
using test::VecChannel;

struct Harness {
  GuestMemory mem{16 << 20};
  TestDriverQueue drv;
  VecBdev bdev;
  std::unique_ptr<bdev::Channel> ch;
  BlkQueue q;

  explicit Harness(bool packed = false, uint32_t bs = 512, BlkQueueParams p = params(), uint64_t features = 0)
      : drv(mem, 16, packed, features), bdev("vec", bs, 2048), q(p) {
    EXPECT_TRUE(q.start(drv.config()).ok());
    ch = bdev.create_channel();
    Backend b;
    b.channel = ch.get();
    b.block_size = bs;
    b.num_blocks = bdev.num_blocks();
    b.flush = b.unmap = b.write_zeroes = true;
    q.set_backend(b);
  }
  static BlkQueueParams params() {
    BlkQueueParams p;
    p.seg_max = 8;
    std::memcpy(p.serial.data(), "serial-123", 10);
    p.max_discard_sectors = 1u << 22;
    p.max_write_zeroes_sectors = 1u << 22;
    return p;
  }
  VecChannel& vch() { return static_cast<VecChannel&>(*ch); }

  struct R {
    uint64_t hdr, data, status;
    int id;
  };
  // Builds and publishes a request: header, optional data (device-writable
  // for reads), status byte (pre-set to 0xff).
  R add(uint32_t type, uint64_t sector, uint32_t data_len, bool data_writable, bool indirect = false) {
    R r;
    r.hdr = mem.alloc(16);
    r.data = data_len ? mem.alloc(data_len, 512) : 0;
    r.status = mem.alloc(1);
    VirtioBlkOutHdr h{htole32(type), 0, htole64(sector)};
    mem.write(r.hdr, &h, 16);
    mem.fill(r.status, 0xff, 1);
    std::vector<Buf> bufs{{r.hdr, 16, false}};
    if (data_len) bufs.push_back({r.data, data_len, data_writable});
    bufs.push_back({r.status, 1, true});
    r.id = drv.add(bufs, indirect);
    return r;
  }
  uint8_t status(const R& r) {
    uint8_t s;
    mem.read(r.status, &s, 1);
    return s;
  }
  // Polls until one used entry shows up.
  test::Used run() {
    for (int i = 0; i < 10; ++i) {
      q.poll();
      if (auto u = drv.get_used()) return *u;
    }
    ADD_FAILURE() << "no used entry";
    return {};
  }
  uint8_t roundtrip(uint32_t type, uint64_t sector, uint32_t len, bool writable) {
    R r = add(type, sector, len, writable);
    run();
    return status(r);
  }
  R dwz(uint32_t type, uint64_t sector, uint32_t ns, uint32_t flags) {
    VirtioBlkDiscardWriteZeroes seg{htole64(sector), htole32(ns), htole32(flags)};
    R r = add(type, 0, 16, false);
    mem.write(r.data, &seg, 16);
    return r;
  }
};

TEST(BlkQueue, WriteThenReadBack) {
  Harness h;
  Harness::R w = h.add(VIRTIO_BLK_T_OUT, 8, 4096, false);
  for (int i = 0; i < 4096; ++i) *h.mem.hva(w.data + i) = uint8_t(i * 7);
  auto u = h.run();
  EXPECT_EQ(u.id, uint32_t(w.id));
  EXPECT_EQ(u.len, 1u) << "a write returns only the status byte";
  EXPECT_EQ(h.status(w), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h.bdev.data[8 * 512 + 5], uint8_t(5 * 7));
  Harness::R r = h.add(VIRTIO_BLK_T_IN, 8, 4096, true);
  u = h.run();
  EXPECT_EQ(u.len, 4097u) << "data + status written";
  EXPECT_EQ(h.status(r), VIRTIO_BLK_S_OK);
  EXPECT_EQ(std::memcmp(h.mem.hva(r.data, 4096), h.mem.hva(w.data, 4096), 4096), 0);
  EXPECT_EQ(h.q.counters().read.load(), 1u);
  EXPECT_EQ(h.q.counters().write.load(), 1u);
}

TEST(BlkQueue, PackedAndIndirect) {
  for (bool packed : {false, true}) {
    Harness h(packed, 512, Harness::params(), kFIndirectDesc);
    Harness::R w = h.add(VIRTIO_BLK_T_OUT, 0, 1024, false, /*indirect=*/true);
    h.mem.fill(w.data, 0x5a, 1024);
    h.run();
    EXPECT_EQ(h.status(w), VIRTIO_BLK_S_OK);
    EXPECT_EQ(h.bdev.data[1023], 0x5a);
  }
}

TEST(BlkQueue, AnyFraming) {
  // §2.6.4: header split across descriptors, status sharing a descriptor
  // with the read data.
  Harness h;
  uint64_t a = h.mem.alloc(8), b = h.mem.alloc(8), d = h.mem.alloc(513);
  VirtioBlkOutHdr hdr{htole32(VIRTIO_BLK_T_IN), 0, htole64(0)};
  h.mem.write(a, &hdr, 8);
  h.mem.write(b, reinterpret_cast<uint8_t*>(&hdr) + 8, 8);
  h.bdev.data[0] = 0x42;
  h.mem.fill(d + 512, 0xff, 1);
  h.drv.add({{a, 8, false}, {b, 8, false}, {d, 513, true}});
  auto u = h.run();
  EXPECT_EQ(u.len, 513u);
  EXPECT_EQ(*h.mem.hva(d), 0x42);
  EXPECT_EQ(*h.mem.hva(d + 512), VIRTIO_BLK_S_OK);
}

TEST(BlkQueue, FlushGetIdDiscardWriteZeroes) {
  Harness h;
  EXPECT_EQ(h.roundtrip(VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
  Harness::R id = h.add(VIRTIO_BLK_T_GET_ID, 0, 20, true);
  auto u = h.run();
  EXPECT_EQ(h.status(id), VIRTIO_BLK_S_OK);
  EXPECT_EQ(u.len, 21u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(h.mem.hva(id.data, 20))), "serial-123");
  std::memset(h.bdev.data.data(), 0xee, 4096);
  Harness::R wz = h.dwz(VIRTIO_BLK_T_WRITE_ZEROES, 2, 2, kDwzFlagUnmap);
  h.run();
  EXPECT_EQ(h.status(wz), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h.bdev.data[2 * 512], 0);
  EXPECT_EQ(h.bdev.data[4 * 512], 0xee);
  Harness::R dc = h.dwz(VIRTIO_BLK_T_DISCARD, 8, 1, 0);
  h.run();
  EXPECT_EQ(h.status(dc), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h.q.counters().flush.load(), 1u);
  EXPECT_EQ(h.q.counters().discard.load(), 1u);
  EXPECT_EQ(h.q.counters().write_zeroes.load(), 1u);
}

// ---------------------------------------------------------------- bad requests

TEST(BlkQueue, UnknownTypeIsUnsupp) {
  Harness h;
  EXPECT_EQ(h.roundtrip(0x1234, 0, 0, false), VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(h.roundtrip(VIRTIO_BLK_T_GET_LIFETIME, 0, 8, true), VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(h.q.counters().unsupported.load(), 2u);
}

TEST(BlkQueue, ShortHeaderIsIoerr) {
  Harness h;
  uint64_t a = h.mem.alloc(8), s = h.mem.alloc(1);
  h.mem.fill(s, 0xff, 1);
  h.drv.add({{a, 8, false}, {s, 1, true}});
  auto u = h.run();
  EXPECT_EQ(u.len, 1u);
  EXPECT_EQ(*h.mem.hva(s), VIRTIO_BLK_S_IOERR);
}

TEST(BlkQueue, NoStatusByteReturnsLengthZero) {
  Harness h;
  uint64_t a = h.mem.alloc(16);
  h.drv.add({{a, 16, false}});
  auto u = h.run();
  EXPECT_EQ(u.len, 0u);
  EXPECT_EQ(h.q.counters().errors.load(), 1u);
}

TEST(BlkQueue, LengthNotMultipleOf512IsIoerr) {
  Harness h;
  EXPECT_EQ(h.roundtrip(VIRTIO_BLK_T_IN, 0, 100, true), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h.roundtrip(VIRTIO_BLK_T_OUT, 0, 700, false), VIRTIO_BLK_S_IOERR);
}

TEST(BlkQueue, MisalignedFor4kBlocksIsIoerr) {
  Harness h(false, 4096);
  EXPECT_EQ(h.roundtrip(VIRTIO_BLK_T_IN, 1, 4096, true), VIRTIO_BLK_S_IOERR) << "sector not 4k aligned";
  EXPECT_EQ(h.roundtrip(VIRTIO_BLK_T_IN, 8, 512, true), VIRTIO_BLK_S_IOERR) << "length not a block";
  EXPECT_EQ(h.roundtrip(VIRTIO_BLK_T_IN, 8, 4096, true), VIRTIO_BLK_S_OK);
}

TEST(BlkQueue, BeyondCapacityIsIoerr) {
  Harness h;  // 2048 blocks of 512
  EXPECT_EQ(h.roundtrip(VIRTIO_BLK_T_IN, 2047, 1024, true), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h.roundtrip(VIRTIO_BLK_T_IN, ~0ull, 512, true), VIRTIO_BLK_S_IOERR) << "sector*512 overflows";
  EXPECT_EQ(h.roundtrip(VIRTIO_BLK_T_IN, 2047, 512, true), VIRTIO_BLK_S_OK);
}

TEST(BlkQueue, WriteToReadOnlyIsIoerrAndWritesNothing) {
  BlkQueueParams p = Harness::params();
  p.read_only = true;
  Harness h(false, 512, p);
  Harness::R w = h.add(VIRTIO_BLK_T_OUT, 0, 512, false);
  h.mem.fill(w.data, 0x77, 512);
  h.run();
  EXPECT_EQ(h.status(w), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h.bdev.data[0], 0) << "§5.2.6.2: MUST NOT write any data";
  EXPECT_EQ(h.status(h.dwz(VIRTIO_BLK_T_WRITE_ZEROES, 0, 1, 0)), 0xff);  // not yet run
  h.run();
  EXPECT_EQ(h.roundtrip(VIRTIO_BLK_T_IN, 0, 512, true), VIRTIO_BLK_S_OK) << "reads still work";
}

TEST(BlkQueue, DiscardFlags) {
  Harness h;
  Harness::R a = h.dwz(VIRTIO_BLK_T_DISCARD, 0, 1, kDwzFlagUnmap);
  h.run();
  EXPECT_EQ(h.status(a), VIRTIO_BLK_S_UNSUPP) << "§5.2.6.2: unmap set on discard";
  Harness::R b = h.dwz(VIRTIO_BLK_T_WRITE_ZEROES, 0, 1, 0x4);
  h.run();
  EXPECT_EQ(h.status(b), VIRTIO_BLK_S_UNSUPP) << "§5.2.6.2: unknown flag";
  Harness::R c = h.add(VIRTIO_BLK_T_DISCARD, 0, 32, false);  // two segments, max is one
  h.run();
  EXPECT_EQ(h.status(c), VIRTIO_BLK_S_IOERR);
  Harness::R d = h.dwz(VIRTIO_BLK_T_DISCARD, 2047, 2, 0);
  h.run();
  EXPECT_EQ(h.status(d), VIRTIO_BLK_S_IOERR) << "beyond capacity";
}

TEST(BlkQueue, BackendErrorAndNoBackend) {
  Harness h;
  h.bdev.fail_next = 1;
  EXPECT_EQ(h.roundtrip(VIRTIO_BLK_T_IN, 0, 512, true), VIRTIO_BLK_S_IOERR);
  h.q.set_backend(Backend{});
  EXPECT_EQ(h.roundtrip(VIRTIO_BLK_T_IN, 0, 512, true), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h.roundtrip(VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h.roundtrip(VIRTIO_BLK_T_GET_ID, 0, 20, true), VIRTIO_BLK_S_OK) << "GET_ID needs no bdev";
}

TEST(BlkQueue, MalformedChainBreaksQueue) {
  Harness h;
  h.drv.raw_desc(5, 0x10, 16, 0, 0);  // outside guest memory
  h.drv.raw_avail(5);
  EXPECT_EQ(h.q.poll(), rt::Poll::kIdle);
  EXPECT_TRUE(h.q.vq().broken());
  h.add(VIRTIO_BLK_T_IN, 0, 512, true);
  h.q.poll();
  EXPECT_FALSE(h.drv.get_used()) << "nothing more is taken from a broken queue";
}

// ---------------------------------------------------------------- deferred completion

TEST(BlkQueue, SuspendWaitsForInflight) {
  Harness h;
  h.bdev.hold = true;
  Harness::R a = h.add(VIRTIO_BLK_T_IN, 0, 512, true);
  Harness::R b = h.add(VIRTIO_BLK_T_OUT, 1, 512, false);
  EXPECT_EQ(h.q.poll(), rt::Poll::kBusy);
  EXPECT_EQ(h.q.inflight(), 2u);
  EXPECT_FALSE(h.q.prepare_sleep()) << "in-flight I/O must be polled";
  h.q.set_running(false);  // suspend
  Harness::R c = h.add(VIRTIO_BLK_T_IN, 2, 512, true);
  h.q.poll();
  EXPECT_EQ(h.vch().held(), 2u) << "no new request taken while suspended";
  h.bdev.hold = false;
  h.ch->poll();
  h.q.poll();
  EXPECT_EQ(h.q.inflight(), 0u);
  EXPECT_EQ(h.status(a), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h.status(b), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h.status(c), 0xff);
  EXPECT_TRUE(h.drv.get_used());
  EXPECT_TRUE(h.drv.get_used());
  EXPECT_FALSE(h.drv.get_used());
  h.q.set_running(true);  // resume
  h.run();
  EXPECT_EQ(h.status(c), VIRTIO_BLK_S_OK);
}

TEST(BlkQueue, ForcedInOrderCompletion) {
  BlkQueueParams p = Harness::params();
  p.force_in_order = true;
  Harness h(false, 512, p);
  h.bdev.hold = true;
  int ids[3];
  for (int i = 0; i < 3; ++i) ids[i] = h.add(VIRTIO_BLK_T_IN, uint64_t(i), 512, true).id;
  h.q.poll();
  h.vch().release_all(/*reverse=*/true);
  h.q.poll();
  for (int id : ids) EXPECT_EQ(h.drv.get_used()->id, uint32_t(id));
}

TEST(BlkQueue, EventModeArmsAndDisarms) {
  Harness h;
  EXPECT_TRUE(h.q.prepare_sleep());
  EXPECT_FALSE(h.drv.device_no_notify()) << "armed before sleeping";
  h.add(VIRTIO_BLK_T_FLUSH, 0, 0, false);
  EXPECT_FALSE(h.q.prepare_sleep()) << "work pending: do not sleep";
  h.run();
  EXPECT_TRUE(h.drv.device_no_notify()) << "polling again: kicks off";
}

TEST(BlkQueue, ManyRequestsAcrossWrap) {
  Harness h(true);  // packed ring of 16
  uint64_t n = 0;
  for (int round = 0; round < 50; ++round) {
    std::vector<Harness::R> rs;
    for (int i = 0; i < 5; ++i) rs.push_back(h.add(VIRTIO_BLK_T_IN, uint64_t(i), 512, true));
    h.q.poll();
    for (auto& r : rs) {
      ASSERT_TRUE(h.drv.get_used());
      EXPECT_EQ(h.status(r), VIRTIO_BLK_S_OK);
      ++n;
    }
  }
  EXPECT_EQ(h.q.counters().read.load(), n);
}

}  // namespace
}  // namespace vdpu::virtio::blk
