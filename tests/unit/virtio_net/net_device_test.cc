// NetDevice on a real runtime (one data reactor + main reactor): features,
// config space, queues started through the virtio::Device seam, the control
// queue answering OK/ERR, MQ pair activation, loopback delivery, stats.
#include "virtio/net/net_device.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "dev_harness.h"
#include "test_driver.h"
#include "virtio/net/backend_mem.h"

namespace vdpu::virtio::net {
namespace {

using test::Buf;
using test::DriverQueue;
using test::GuestMem;

const MacAddr kMac = {0x02, 0xaa, 0, 0, 0, 1};

// One data reactor on core 0.
struct Dev : test::DevHarness {
  Dev(NetOptions o, std::unique_ptr<NetBackend> be) : DevHarness(std::move(o), std::move(be), kMac, {0}) {}
};
using test::eventually;

uint64_t feats(const NetDevice& d, uint64_t want) { return d.device_features() & want; }

TEST(NetDevice, FeaturesAndConfig) {
  NetOptions o;
  o.max_queue_pairs = 4;
  o.mtu = 9000;
  Dev d(o, std::make_unique<DropBackend>(4));
  NetDevice& n = *d.dev;
  EXPECT_EQ(n.device_id(), kVirtioIdNet);
  EXPECT_EQ(n.num_queues(), 9) << "4 pairs + control";
  const uint64_t want = kFVersion1 | VIRTIO_NET_F_MAC | VIRTIO_NET_F_MTU | VIRTIO_NET_F_STATUS | VIRTIO_NET_F_MQ |
                        VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_CTRL_RX | VIRTIO_NET_F_CTRL_VLAN |
                        VIRTIO_NET_F_MRG_RXBUF | VIRTIO_NET_F_CSUM | VIRTIO_NET_F_HOST_TSO4 |
                        VIRTIO_NET_F_SPEED_DUPLEX | kFRingPacked;
  EXPECT_EQ(feats(n, want), want);
  VirtioNetConfig c;
  n.read_config(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&c), sizeof(c)));
  EXPECT_EQ(0, std::memcmp(c.mac, kMac.data(), 6));
  EXPECT_EQ(le16toh(c.status), VIRTIO_NET_S_LINK_UP);
  EXPECT_EQ(le16toh(c.max_virtqueue_pairs), 4);
  EXPECT_EQ(le16toh(c.mtu), 9000);
  EXPECT_EQ(le32toh(c.speed), 100000u);
  EXPECT_EQ(c.duplex, DUPLEX_FULL);
  uint8_t tail[8];
  n.read_config(20, tail);  // past the end reads zero
  EXPECT_FALSE(n.write_config(0, std::span<const uint8_t>(tail, 6)).ok());
  // §5.1.3.1 dependencies and unoffered bits.
  EXPECT_FALSE(n.set_features(1ull << 50).ok());
  EXPECT_FALSE(n.set_features(kFVersion1 | VIRTIO_NET_F_MQ).ok()) << "MQ without CTRL_VQ";
  // QEMU's vhost-user-net runs the control queue itself and passes
  // GUEST_ANNOUNCE without CTRL_VQ: accepted, and not acted on.
  EXPECT_TRUE(n.set_features(kFVersion1 | VIRTIO_NET_F_GUEST_ANNOUNCE).ok());
  EXPECT_FALSE(n.set_features(kFVersion1 | VIRTIO_NET_F_HOST_TSO4).ok()) << "TSO without CSUM";
  EXPECT_TRUE(n.set_features(kFVersion1 | VIRTIO_NET_F_CSUM | VIRTIO_NET_F_HOST_TSO4).ok());
  EXPECT_EQ(n.hdr_len(), 12u);
  EXPECT_TRUE(n.set_features(VIRTIO_NET_F_MAC).ok());
  EXPECT_EQ(n.hdr_len(), 10u) << "legacy header without VERSION_1/MRG_RXBUF";
}

TEST(NetDevice, OptionsValidation) {
  NetOptions o;
  o.mtu = 9217;
  EXPECT_FALSE(validate(o).ok());
  o = {};
  o.queue_size = 100;
  EXPECT_FALSE(validate(o).ok());
  o = {};
  o.max_queue_pairs = 2;
  o.ctrl_vq = false;
  EXPECT_FALSE(validate(o).ok());
  o = {};
  o.mtu = 9216;
  EXPECT_TRUE(validate(o).ok());
}

TEST(NetDevice, LinkAnnounceMacMtu) {
  Dev d(NetOptions{}, std::make_unique<DropBackend>(1));
  NetDevice& n = *d.dev;
  int hooks = 0;
  d.on_main([&] {
    n.set_config_change_hook([&] { ++hooks; });
    n.set_link(false);
    return 0;
  });
  VirtioNetConfig c;
  n.read_config(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&c), sizeof(c)));
  EXPECT_EQ(le16toh(c.status), 0);
  EXPECT_EQ(hooks, 1);
  EXPECT_FALSE(d.on_main([&] { return n.announce(); }).ok()) << "GUEST_ANNOUNCE not negotiated";
  EXPECT_TRUE(n.set_features(kFVersion1 | VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_GUEST_ANNOUNCE).ok());
  EXPECT_TRUE(d.on_main([&] { return n.announce(); }).ok());
  n.read_config(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&c), sizeof(c)));
  EXPECT_EQ(le16toh(c.status), VIRTIO_NET_S_ANNOUNCE);
  EXPECT_TRUE(d.on_main([&] { return n.set_mtu(9216); }).ok());
  EXPECT_FALSE(d.on_main([&] { return n.set_mtu(10000); }).ok());
  MacAddr m2 = {0x02, 0, 0, 0, 0, 2};
  EXPECT_TRUE(d.on_main([&] { return n.set_mac(m2); }).ok());
  n.read_config(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&c), sizeof(c)));
  EXPECT_EQ(c.mac[5], 2);
}

struct Frame {
  std::vector<uint8_t> bytes;
};
std::vector<uint8_t> tx_buf(uint32_t len, uint8_t seed, const MacAddr& dst = kMac) {
  std::vector<uint8_t> b(12 + len, 0);
  for (uint32_t i = 0; i < len; ++i) b[12 + i] = uint8_t(seed + i);
  std::memcpy(&b[12], dst.data(), 6);
  return b;
}

// Sends one control command on dq; returns the ack byte (0xee: none).
uint8_t ctrl(Dev& d, GuestMem& mem, DriverQueue& dq, uint8_t cls, uint8_t cmd, std::vector<uint8_t> data) {
  std::vector<uint8_t> out = {cls, cmd};
  out.insert(out.end(), data.begin(), data.end());
  uint64_t g = mem.alloc(out.size());
  mem.write(g, out.data(), out.size());
  uint64_t ack = mem.alloc(1);
  mem.fill(ack, 0xee, 1);
  dq.add({{g, uint32_t(out.size()), false}, {ack, 1, true}});
  dq.kick();
  std::optional<std::pair<uint16_t, uint32_t>> u;
  EXPECT_TRUE(eventually([&] { return (u = dq.used()).has_value(); }));
  if (u) {
    EXPECT_EQ(u->second, 1u);
  }
  return *mem.ptr(ack);
}

TEST(NetDevice, ControlQueueAndMultiQueueLoopback) {
  NetOptions o;
  o.max_queue_pairs = 2;
  // Guest memory and rings outlive the device: its reactors poll them until
  // ~Dev has stopped every queue.
  GuestMem mem;
  DriverQueue rx0(mem, 64), tx0(mem, 64), rx1(mem, 64), tx1(mem, 64), cq(mem, 16);
  Dev d(o, LoopbackBackend::create_self(2, 1518));
  NetDevice& n = *d.dev;
  const uint64_t f = kFVersion1 | VIRTIO_NET_F_MRG_RXBUF | VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_CTRL_RX |
                     VIRTIO_NET_F_MQ | VIRTIO_NET_F_CTRL_VLAN | VIRTIO_NET_F_CTRL_MAC_ADDR;
  ASSERT_TRUE(n.set_features(f).ok());
  ASSERT_TRUE(d.start(0, rx0.config(f)).ok());
  ASSERT_TRUE(d.start(1, tx0.config(f)).ok());
  ASSERT_TRUE(d.start(2, rx1.config(f)).ok());
  ASSERT_TRUE(d.start(3, tx1.config(f)).ok());
  ASSERT_TRUE(d.start(4, cq.config(f)).ok());
  EXPECT_FALSE(d.start(4, cq.config(f)).ok()) << "already started";
  EXPECT_FALSE(d.start(9, cq.config(f)).ok()) << "no such queue";
  EXPECT_EQ(n.active_pairs(), 1) << "§5.1.6.5.5: one pair after reset";

  std::vector<uint64_t> rb;
  for (auto* q : {&rx0, &rx1})
    for (int i = 0; i < 8; ++i) {
      uint64_t g = mem.alloc(2048);
      rb.push_back(g);
      q->add({{g, 2048, true}});
    }
  // Pair 0 loops back.
  auto b = tx_buf(100, 1);
  uint64_t g = mem.alloc(b.size());
  mem.write(g, b.data(), b.size());
  tx0.add({{g, uint32_t(b.size()), false}});
  tx0.kick();
  ASSERT_TRUE(eventually([&] { return tx0.used().has_value(); }));
  std::optional<std::pair<uint16_t, uint32_t>> u;
  ASSERT_TRUE(eventually([&] { return (u = rx0.used()).has_value(); }));
  EXPECT_EQ(u->second, 112u);
  EXPECT_EQ(0, std::memcmp(mem.ptr(rb[0]) + 12, b.data() + 12, 100));

  // Pair 1 is inactive: its RX queue takes nothing until VQ_PAIRS_SET 2.
  auto b2 = tx_buf(200, 2);
  uint64_t g2 = mem.alloc(b2.size());
  mem.write(g2, b2.data(), b2.size());
  tx1.add({{g2, uint32_t(b2.size()), false}});
  ASSERT_TRUE(eventually([&] { return tx1.used().has_value(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(rx1.used().has_value());

  EXPECT_EQ(ctrl(d, mem, cq, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, {3, 0}), VIRTIO_NET_ERR);
  EXPECT_EQ(ctrl(d, mem, cq, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, {2, 0}), VIRTIO_NET_OK);
  EXPECT_EQ(d.on_main([&] { return n.active_pairs(); }), 2);
  ASSERT_TRUE(eventually([&] { return (u = rx1.used()).has_value(); }));
  EXPECT_EQ(u->second, 212u);

  // Filtering through the control queue: promiscuous off, frames to another
  // MAC are dropped, own MAC passes.
  EXPECT_EQ(ctrl(d, mem, cq, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, {0}), VIRTIO_NET_OK);
  const MacAddr other = {0x02, 0xbb, 0, 0, 0, 9};
  for (auto& dst : {other, kMac}) {
    auto x = tx_buf(60, 3, dst);
    uint64_t gx = mem.alloc(x.size());
    mem.write(gx, x.data(), x.size());
    tx0.add({{gx, uint32_t(x.size()), false}});
  }
  tx0.kick();
  ASSERT_TRUE(eventually([&] { return (u = rx0.used()).has_value(); }));
  EXPECT_EQ(u->second, 72u);
  auto st = d.on_main([&] { return n.vq_stats(0); });
  ASSERT_EQ(st.size(), 1u);
  EXPECT_TRUE(eventually([&] { return d.on_main([&] { return n.vq_stats(0)[0].filtered; }) == 1; }));

  // Bad commands: unknown class, short data, malformed (no ack byte).
  EXPECT_EQ(ctrl(d, mem, cq, 99, 0, {}), VIRTIO_NET_ERR);
  EXPECT_EQ(ctrl(d, mem, cq, VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD, {1}), VIRTIO_NET_ERR);
  EXPECT_EQ(ctrl(d, mem, cq, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, {2, 0, 0, 0, 0, 7}), VIRTIO_NET_OK);
  VirtioNetConfig c;
  n.read_config(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&c), sizeof(c)));
  EXPECT_EQ(c.mac[5], 7) << "config mac follows MAC_ADDR_SET";
  uint64_t only = mem.alloc(2);
  cq.add({{only, 2, false}});
  cq.kick();
  ASSERT_TRUE(eventually([&] { return cq.used().has_value(); }));
  auto cc = d.on_main([&] { return n.ctrl_counters(); });
  EXPECT_EQ(cc.bad, 1u);
  EXPECT_EQ(cc.err, 3u);
  EXPECT_EQ(cc.ok, 3u);

  // Stop: nothing left popped, state reported.
  QueueState s0 = d.stop(0);
  EXPECT_EQ(s0.last_avail_idx, s0.last_used_idx);
  EXPECT_FALSE(n.queue_started(0));
}

TEST(NetDevice, StatsJsonShape) {
  Dev d(NetOptions{}, std::make_unique<DropBackend>(1));
  auto v = d.on_main([&] { return d.dev->vq_stats(); });
  ASSERT_EQ(v.size(), 2u);
  auto j = stats_json(v, true);
  EXPECT_EQ(j["packet_counters"], "Enabled");
  ASSERT_EQ(j["queues-stats"].size(), 2u);
  EXPECT_EQ(j["queues-stats"][0]["VQ Index"], 0);
  EXPECT_EQ(j["queues-stats"][0]["rx_64_or_less_octet_packets"], 0);
  EXPECT_EQ(j["queues-stats"][0]["received_desc"], "0");
  EXPECT_FALSE(j["queues-stats"][1].contains("rx_64_or_less_octet_packets")) << "SQ has no RX histogram";
  EXPECT_EQ(stats_json(v, false)["packet_counters"], "Disabled");
}

}  // namespace
}  // namespace vdpu::virtio::net
