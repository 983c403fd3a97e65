// Data queues driven by the test driver: TX header/data splits, bad and
// malicious chains, RX plain / mergeable / jumbo, filtering, packed rings.
#include "virtio/net/net_queue.h"

#include <gtest/gtest.h>

#include <deque>

#include "test_driver.h"

namespace vdpu::virtio::net {
namespace {

using test::Buf;
using test::DriverQueue;
using test::GuestMem;

class CaptureBackend : public NetBackend {
 public:
  struct Pkt {
    VirtioNetHdr hdr{};
    std::vector<uint8_t> data;
  };
  std::vector<Pkt> tx;
  std::deque<Pkt> rx;
  uint32_t accept = UINT32_MAX;
  BackendConfig cfg;
  BackendQueueStats st;

  const char* kind() const override { return "capture"; }
  uint64_t offload_features() const override { return ~0ull; }
  Status open_queue(uint16_t) override { return {}; }
  void close_queue(uint16_t) override {}
  Status configure(const BackendConfig& c) override {
    cfg = c;
    return {};
  }
  uint32_t tx_burst(uint16_t, TxPkt* p, uint32_t n) noexcept override {
    uint32_t k = std::min(n, accept);
    for (uint32_t i = 0; i < k; ++i) {
      Pkt x;
      x.hdr = p[i].hdr;
      x.data.resize(p[i].len);
      iov_to_buf(p[i].iov, p[i].iovcnt, 0, x.data.data(), p[i].len);
      tx.push_back(std::move(x));
    }
    return k;
  }
  uint32_t rx_burst(uint16_t, RxSlot* s, uint32_t n) noexcept override {
    uint32_t i = 0;
    for (; i < n && !rx.empty(); ++i) {
      Pkt& p = rx.front();
      s[i].len = 0;
      if (s[i].cap >= cfg.hdr_len + p.data.size()) {
        iov_from_buf(s[i].iov, s[i].iovcnt, 0, &p.hdr, cfg.hdr_len);
        iov_from_buf(s[i].iov, s[i].iovcnt, cfg.hdr_len, p.data.data(), uint32_t(p.data.size()));
        s[i].len = uint32_t(cfg.hdr_len + p.data.size());
      }
      rx.pop_front();
    }
    return i;
  }
  const BackendQueueStats& stats(uint16_t) const override { return st; }
};

constexpr uint64_t kF = kFVersion1;
const MacAddr kMac = {0x02, 0, 0, 0, 0, 0x10};

std::vector<uint8_t> frame(uint32_t len, const MacAddr& dst = kMac, uint8_t seed = 1) {
  std::vector<uint8_t> f(len);
  for (uint32_t i = 0; i < len; ++i) f[i] = uint8_t(seed + i * 7);
  std::memcpy(f.data(), dst.data(), 6);
  f[12] = 0x08;
  f[13] = 0x00;
  return f;
}

struct TxFixture {
  GuestMem mem;
  DriverQueue dq;
  CaptureBackend be;
  NetQueueCounters cnt;
  NetTxQueue q;
  explicit TxFixture(NetQueueParams p = {}, bool packed = false)
      : dq(mem, 64, packed), q((p.qid = 1, p), &be, &cnt) {
    EXPECT_TRUE(q.start(dq.config(kF | kFIndirectDesc)).ok());
  }
  // Writes header+frame into guest memory split at the given cut points.
  std::vector<Buf> place(const VirtioNetHdr& h, const std::vector<uint8_t>& f, std::vector<uint32_t> cuts) {
    std::vector<uint8_t> all(sizeof(h) + f.size());
    std::memcpy(all.data(), &h, sizeof(h));
    std::memcpy(all.data() + sizeof(h), f.data(), f.size());
    cuts.push_back(uint32_t(all.size()));
    std::vector<Buf> v;
    uint32_t prev = 0;
    for (uint32_t c : cuts) {
      if (c == prev) continue;
      uint64_t g = mem.alloc(c - prev);
      mem.write(g, all.data() + prev, c - prev);
      v.push_back({g, c - prev, false});
      prev = c;
    }
    return v;
  }
};

TEST(NetTx, HeaderAndDataInVariousSplits) {
  TxFixture t;
  VirtioNetHdr h{};
  h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  h.csum_start = htole16(34);
  h.csum_offset = htole16(6);
  const std::vector<std::vector<uint32_t>> splits = {
      {},               // header + frame in one buffer
      {12},             // header | frame
      {5, 12},          // header split in two | frame
      {3, 7, 20, 40},   // header in 3, frame in 3
      {12, 13, 14, 15, 16, 17, 18, 19, 20, 21},  // many one-byte pieces
      {30},             // header and the frame's start together
  };
  for (size_t i = 0; i < splits.size(); ++i) t.dq.add(t.place(h, frame(100, kMac, uint8_t(i)), splits[i]));
  EXPECT_EQ(t.q.poll(), rt::Poll::kBusy);
  ASSERT_EQ(t.be.tx.size(), splits.size());
  for (size_t i = 0; i < splits.size(); ++i) {
    EXPECT_EQ(t.be.tx[i].data, frame(100, kMac, uint8_t(i))) << "split " << i;
    EXPECT_EQ(t.be.tx[i].hdr.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    EXPECT_EQ(le16toh(t.be.tx[i].hdr.csum_start), 34);
  }
  auto u = t.dq.all_used();
  ASSERT_EQ(u.size(), splits.size());
  for (auto& [id, len] : u) EXPECT_EQ(len, 0u) << "TX used length is 0";
  EXPECT_TRUE(t.dq.kicked_call());
  EXPECT_EQ(t.cnt.packets.load(), splits.size());
  EXPECT_EQ(t.cnt.total_bytes.load(), splits.size() * 100);
  EXPECT_EQ(t.cnt.received_desc.load(), splits.size());
  EXPECT_EQ(t.cnt.completed_desc.load(), splits.size());
  EXPECT_EQ(t.q.poll(), rt::Poll::kIdle);
}

TEST(NetTx, BatchesAtMost32PerPoll) {
  TxFixture t;
  VirtioNetHdr h{};
  for (int i = 0; i < 40; ++i) t.dq.add(t.place(h, frame(60), {}));
  t.q.poll();
  EXPECT_EQ(t.be.tx.size(), NetQueueBase::kBatch);
  t.q.poll();
  EXPECT_EQ(t.be.tx.size(), 40u);
  EXPECT_EQ(t.cnt.batch_number.load(), 2u);
  EXPECT_EQ(t.cnt.max_post_desc_number.load(), 32u);
}

TEST(NetTx, BadChainsAreCountedAndReturned) {
  TxFixture t;
  VirtioNetHdr h{};
  // 1: shorter than the header; 2: a writable buffer; 3: GSO not negotiated;
  // 4: frame above the MTU limit; then a good one.
  uint64_t g = t.mem.alloc(8);
  t.dq.add({{g, 8, false}});
  auto w = t.place(h, frame(64), {});
  w.push_back({t.mem.alloc(64), 64, true});
  t.dq.add(w);
  VirtioNetHdr gso{};
  gso.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
  t.dq.add(t.place(gso, frame(64), {}));
  t.dq.add(t.place(h, frame(4000), {}));
  t.dq.add(t.place(h, frame(64), {}));
  t.q.poll();
  EXPECT_EQ(t.cnt.bad_desc_errors.load(), 4u);
  ASSERT_EQ(t.be.tx.size(), 1u);
  EXPECT_EQ(t.dq.all_used().size(), 5u) << "bad chains are returned too";
  EXPECT_FALSE(t.q.vq().broken());
}

TEST(NetTx, BackendBackpressureCountsDrops) {
  TxFixture t;
  t.be.accept = 2;
  VirtioNetHdr h{};
  for (int i = 0; i < 5; ++i) t.dq.add(t.place(h, frame(64), {}));
  t.q.poll();
  EXPECT_EQ(t.cnt.packets.load(), 2u);
  EXPECT_EQ(t.cnt.dropped.load(), 3u);
  EXPECT_EQ(t.dq.all_used().size(), 5u);
}

TEST(NetTx, MaliciousLoopBreaksQueueWithoutCrash) {
  TxFixture t;
  uint64_t g = t.mem.alloc(64);
  t.dq.raw_desc(0, g, 64, VIRTQ_DESC_F_NEXT, 1);
  t.dq.raw_desc(1, g, 64, VIRTQ_DESC_F_NEXT, 0);  // 0 -> 1 -> 0 ...
  t.dq.publish(0);
  t.q.poll();
  EXPECT_TRUE(t.q.vq().broken());
  EXPECT_EQ(t.cnt.exceed_max_chain.load(), 1u);
  t.q.poll();  // stays broken, counted once
  EXPECT_EQ(t.cnt.exceed_max_chain.load(), 1u);
  EXPECT_TRUE(t.be.tx.empty());
}

TEST(NetTx, AddressOutsideGuestMemoryIsInvalidBuffer) {
  TxFixture t;
  t.dq.raw_desc(0, 0xdead0000000ull, 64, 0, 0);
  t.dq.publish(0);
  t.q.poll();
  EXPECT_TRUE(t.q.vq().broken());
  EXPECT_EQ(t.cnt.invalid_buffer.load(), 1u);
}

TEST(NetTx, HeadOutOfRangeIsBadDescriptor) {
  TxFixture t;
  t.dq.publish(1000);
  t.q.poll();
  EXPECT_EQ(t.cnt.bad_desc_errors.load(), 1u);
}

TEST(NetTx, PackedRing) {
  TxFixture t({}, /*packed=*/true);
  VirtioNetHdr h{};
  for (int i = 0; i < 70; ++i) {  // wraps the 64-entry ring
    t.dq.add(t.place(h, frame(80, kMac, uint8_t(i)), {12}));
    t.q.poll();
    ASSERT_EQ(t.dq.all_used().size(), 1u) << i;
  }
  ASSERT_EQ(t.be.tx.size(), 70u);
  EXPECT_EQ(t.be.tx[69].data, frame(80, kMac, 69));
}

// ------------------------------------------------------------------ RX

struct RxFixture {
  GuestMem mem;
  DriverQueue dq;
  CaptureBackend be;
  NetQueueCounters cnt;
  NetRxQueue q;
  RxFixture(NetQueueParams p, bool packed = false, uint16_t size = 64) : dq(mem, size, packed), q(p, &be, &cnt) {
    be.cfg.hdr_len = p.hdr_len;
    EXPECT_TRUE(q.start(dq.config(kF)).ok());
    RxFilter f;
    f.mac = kMac;
    q.set_filter(f);
  }
  std::vector<uint64_t> post(int n, uint32_t len) {
    std::vector<uint64_t> v;
    for (int i = 0; i < n; ++i) {
      uint64_t g = mem.alloc(len);
      mem.fill(g, 0xee, len);
      dq.add({{g, len, true}});
      v.push_back(g);
    }
    return v;
  }
  void inject(std::vector<uint8_t> f) { be.rx.push_back({VirtioNetHdr{}, std::move(f)}); }
};

NetQueueParams rx_params(bool mrg, uint32_t max_frame = 1518) {
  NetQueueParams p;
  p.qid = 0;
  p.mrg_rxbuf = mrg;
  p.max_frame = max_frame;
  p.count_sizes = true;
  return p;
}

TEST(NetRx, PlainBuffersOneFrameEach) {
  RxFixture t(rx_params(false));
  auto bufs = t.post(4, 1526 + 12);
  t.inject(frame(64));
  t.inject(frame(1514));
  EXPECT_EQ(t.q.poll(), rt::Poll::kBusy);
  auto u = t.dq.all_used();
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(u[0].second, 12u + 64);
  EXPECT_EQ(u[1].second, 12u + 1514);
  VirtioNetHdr h;
  std::memcpy(&h, t.mem.ptr(bufs[1]), 12);
  EXPECT_EQ(le16toh(h.num_buffers), 1) << "§5.1.6.4.1: 1 without MRG_RXBUF";
  EXPECT_EQ(0, std::memcmp(t.mem.ptr(bufs[1]) + 12, frame(1514).data(), 1514));
  EXPECT_EQ(t.cnt.hist[0].load(), 1u);
  EXPECT_EQ(t.cnt.hist[5].load(), 1u);
  EXPECT_EQ(t.q.stashed(), 2u) << "unused buffers stay popped for the next frames";
}

TEST(NetRx, MergeableAcrossSeveralBuffers) {
  // Slots cover the largest frame (here 4000 bytes: 4 buffers of 1024).
  RxFixture t(rx_params(true, 4000));
  auto bufs = t.post(8, 1024);
  auto f = frame(3000);
  t.inject(f);
  t.inject(frame(100, kMac, 9));
  t.q.poll();
  auto u = t.dq.all_used();
  ASSERT_EQ(u.size(), 4u) << "3012 bytes in 3 buffers of 1024, then one";
  EXPECT_EQ(u[0].second, 1024u);
  EXPECT_EQ(u[1].second, 1024u);
  EXPECT_EQ(u[2].second, 3012u - 2048);
  EXPECT_EQ(u[3].second, 112u);
  VirtioNetHdr h;
  std::memcpy(&h, t.mem.ptr(bufs[0]), 12);
  EXPECT_EQ(le16toh(h.num_buffers), 3);
  std::vector<uint8_t> got;
  got.insert(got.end(), t.mem.ptr(bufs[0]) + 12, t.mem.ptr(bufs[0]) + 1024);
  got.insert(got.end(), t.mem.ptr(bufs[1]), t.mem.ptr(bufs[1]) + 1024);
  got.insert(got.end(), t.mem.ptr(bufs[2]), t.mem.ptr(bufs[2]) + 3012 - 2048);
  EXPECT_EQ(got, f);
  // The second frame went to the next slot's first buffer; the slot's unused
  // fourth buffer stays popped for later (used order need not be avail order).
  std::memcpy(&h, t.mem.ptr(bufs[4]), 12);
  EXPECT_EQ(le16toh(h.num_buffers), 1);
  EXPECT_EQ(t.q.stashed(), 4u);
}

TEST(NetRx, JumboFrameMergeable) {
  RxFixture t(rx_params(true, 9216 + 18), false, 64);
  auto bufs = t.post(12, 2048);
  auto f = frame(9000);
  t.inject(f);
  t.q.poll();
  auto u = t.dq.all_used();
  ASSERT_EQ(u.size(), 5u);  // 9012 bytes / 2048
  VirtioNetHdr h;
  std::memcpy(&h, t.mem.ptr(bufs[0]), 12);
  EXPECT_EQ(le16toh(h.num_buffers), 5);
  EXPECT_EQ(0, std::memcmp(t.mem.ptr(bufs[4]), f.data() + 2036 + 3 * 2048, 9012 - 4 * 2048));
  EXPECT_EQ(t.cnt.hist[9].load(), 1u) << "8192-9022 bucket";
}

TEST(NetRx, JumboFrameSingleBigBuffer) {
  RxFixture t(rx_params(false, 9216 + 18));
  auto bufs = t.post(2, 9300);
  t.inject(frame(9216));
  t.q.poll();
  auto u = t.dq.all_used();
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].second, 12u + 9216);
}

TEST(NetRx, FrameTooBigForPlainBufferIsDropped) {
  RxFixture t(rx_params(false));
  t.post(2, 600);
  t.inject(frame(1000));  // does not fit: dropped by the backend
  t.inject(frame(100));
  t.q.poll();
  auto u = t.dq.all_used();
  ASSERT_EQ(u.size(), 1u) << "the buffer is reused for the next frame";
  EXPECT_EQ(u[0].second, 112u);
}

TEST(NetRx, FilterDropsOtherUnicastAndReusesBuffer) {
  RxFixture t(rx_params(false));
  RxFilter f;
  f.mac = kMac;
  f.promisc = false;
  t.q.set_filter(f);
  t.post(2, 1600);
  const MacAddr other = {0x02, 0, 0, 0, 0, 0x99};
  t.inject(frame(64, other));
  t.inject(frame(64, kMac));
  const MacAddr bcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  t.inject(frame(64, bcast));
  t.q.poll();  // slot 0: filtered (buffer kept), slot 1: own MAC
  EXPECT_EQ(t.dq.all_used().size(), 1u);
  t.q.poll();  // the kept buffer takes the broadcast frame
  EXPECT_EQ(t.dq.all_used().size(), 1u);
  EXPECT_EQ(t.cnt.filtered.load(), 1u);
}

TEST(NetRx, NoBuffersMeansNothingTaken) {
  RxFixture t(rx_params(false));
  t.inject(frame(64));
  EXPECT_EQ(t.q.poll(), rt::Poll::kIdle);
  EXPECT_EQ(t.be.rx.size(), 1u) << "the backend keeps the frame until buffers come";
  t.post(1, 1600);
  t.q.poll();
  EXPECT_EQ(t.dq.all_used().size(), 1u);
}

TEST(NetRx, ReadOnlyBufferIsBadDescriptor) {
  RxFixture t(rx_params(false));
  uint64_t g = t.mem.alloc(1600);
  t.dq.add({{g, 1600, false}});
  t.post(1, 1600);
  t.inject(frame(64));
  t.q.poll();
  EXPECT_EQ(t.cnt.bad_desc_errors.load(), 1u);
  auto u = t.dq.all_used();
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(u[0].second, 0u);
  EXPECT_EQ(u[1].second, 76u);
}

TEST(NetRx, ReleaseReturnsStashedBuffers) {
  RxFixture t(rx_params(false));
  t.post(5, 1600);
  t.q.poll();
  EXPECT_EQ(t.q.stashed(), 5u);
  t.q.release();
  EXPECT_EQ(t.dq.all_used().size(), 5u);
  EXPECT_EQ(t.q.vq().outstanding(), 0u);
}

TEST(NetRx, PackedRingMergeable) {
  RxFixture t(rx_params(true), /*packed=*/true, 16);
  for (int round = 0; round < 10; ++round) {  // wraps the 16-entry ring
    auto bufs = t.post(3, 1024);
    t.inject(frame(2000, kMac, uint8_t(round)));
    t.q.poll();
    auto u = t.dq.all_used();
    ASSERT_EQ(u.size(), 2u) << round;
    VirtioNetHdr h;
    std::memcpy(&h, t.mem.ptr(bufs[0]), 12);
    EXPECT_EQ(le16toh(h.num_buffers), 2);
    t.q.release();  // the third buffer
    t.dq.all_used();
  }
}

TEST(NetRxHist, Buckets) {
  EXPECT_EQ(rx_hist_bucket(60), 0u);
  EXPECT_EQ(rx_hist_bucket(64), 0u);
  EXPECT_EQ(rx_hist_bucket(65), 1u);
  EXPECT_EQ(rx_hist_bucket(1522), 5u);
  EXPECT_EQ(rx_hist_bucket(1523), 6u);
  EXPECT_EQ(rx_hist_bucket(9022), 9u);
  EXPECT_EQ(rx_hist_bucket(65000), 9u);
}

}  // namespace
}  // namespace vdpu::virtio::net
