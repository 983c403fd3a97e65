// Control commands (§5.1.6.5) good and bad, and receive filtering.
#include "virtio/net/net_ctrl.h"

#include <gtest/gtest.h>

#include <vector>

namespace vdpu::virtio::net {
namespace {

constexpr uint64_t kAll = VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_CTRL_RX | VIRTIO_NET_F_CTRL_VLAN |
                          VIRTIO_NET_F_CTRL_MAC_ADDR | VIRTIO_NET_F_GUEST_ANNOUNCE | VIRTIO_NET_F_MQ |
                          VIRTIO_NET_F_CTRL_GUEST_OFFLOADS | VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4;

CtrlResult cmd(CtrlState& st, uint8_t cls, uint8_t c, std::vector<uint8_t> d, uint64_t f = kAll) {
  return apply_ctrl(st, f, 4, cls, c, d.data(), uint32_t(d.size()));
}
std::vector<uint8_t> le32(uint32_t v) { return {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)}; }
std::vector<uint8_t> cat(std::initializer_list<std::vector<uint8_t>> l) {
  std::vector<uint8_t> r;
  for (auto& x : l) r.insert(r.end(), x.begin(), x.end());
  return r;
}
const std::vector<uint8_t> kUni1 = {0x02, 1, 2, 3, 4, 5}, kUni2 = {0x02, 1, 2, 3, 4, 6};
const std::vector<uint8_t> kMul1 = {0x01, 0x00, 0x5e, 0, 0, 1};

TEST(NetCtrl, RxModePromiscAllmulti) {
  CtrlState st;
  EXPECT_TRUE(st.filter.promisc) << "reset value";
  auto r = cmd(st, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, {0});
  EXPECT_EQ(r.ack, VIRTIO_NET_OK);
  EXPECT_EQ(r.effects, uint32_t(kCtrlEffFilter));
  EXPECT_FALSE(st.filter.promisc);
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, {1}).ack, VIRTIO_NET_OK);
  EXPECT_TRUE(st.filter.allmulti);
}

TEST(NetCtrl, RxModeBad) {
  CtrlState st;
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, {}).ack, VIRTIO_NET_ERR) << "no data";
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, {0, 0}).ack, VIRTIO_NET_ERR) << "2 bytes";
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, {2}).ack, VIRTIO_NET_ERR) << "value 2";
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOBCAST, {1}).ack, VIRTIO_NET_ERR)
      << "needs CTRL_RX_EXTRA";
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_RX, 9, {1}).ack, VIRTIO_NET_ERR) << "unknown command";
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, {0}, VIRTIO_NET_F_CTRL_VQ).ack, VIRTIO_NET_ERR)
      << "CTRL_RX not negotiated";
  EXPECT_TRUE(st.filter.promisc) << "refused commands change nothing";
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOBCAST, {1}, kAll | VIRTIO_NET_F_CTRL_RX_EXTRA).ack,
            VIRTIO_NET_OK);
  EXPECT_TRUE(st.filter.nobcast);
}

TEST(NetCtrl, MacTableSet) {
  CtrlState st;
  auto r = cmd(st, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, cat({le32(2), kUni1, kUni2, le32(1), kMul1}));
  ASSERT_EQ(r.ack, VIRTIO_NET_OK);
  EXPECT_EQ(st.filter.n_uni, 2u);
  EXPECT_EQ(st.filter.n_multi, 1u);
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, cat({le32(0), le32(0)})).ack, VIRTIO_NET_OK);
  EXPECT_EQ(st.filter.n_uni, 0u);
}

TEST(NetCtrl, MacTableBad) {
  CtrlState st;
  auto set = [&](std::vector<uint8_t> d) { return cmd(st, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, d).ack; };
  EXPECT_EQ(set({}), VIRTIO_NET_ERR);
  EXPECT_EQ(set(cat({le32(2), kUni1, le32(0)})), VIRTIO_NET_ERR) << "count larger than the data";
  EXPECT_EQ(set(cat({le32(1), kUni1, le32(0), {0}})), VIRTIO_NET_ERR) << "trailing byte";
  EXPECT_EQ(set(cat({le32(1), kUni1})), VIRTIO_NET_ERR) << "multicast count missing";
  EXPECT_EQ(set(cat({le32(1), kMul1, le32(0)})), VIRTIO_NET_ERR) << "multicast in the unicast list";
  EXPECT_EQ(set(cat({le32(0), le32(1), kUni1})), VIRTIO_NET_ERR) << "unicast in the multicast list";
  EXPECT_EQ(set(cat({le32(0xffffffff), le32(0)})), VIRTIO_NET_ERR) << "huge count";
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, cat({le32(0), le32(0)}), VIRTIO_NET_F_CTRL_VQ).ack,
            VIRTIO_NET_ERR)
      << "CTRL_RX not negotiated";
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_MAC, 7, {}).ack, VIRTIO_NET_ERR);
}

TEST(NetCtrl, MacTableOverflowAcceptsClass) {
  CtrlState st;
  std::vector<uint8_t> d = le32(RxFilter::kMacTableMax + 1);
  for (uint32_t i = 0; i <= RxFilter::kMacTableMax; ++i) d.insert(d.end(), {0x02, 0, 0, 0, 1, uint8_t(i)});
  d = cat({d, le32(0)});
  ASSERT_EQ(cmd(st, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, d).ack, VIRTIO_NET_OK);
  EXPECT_TRUE(st.filter.uni_overflow);
}

TEST(NetCtrl, MacAddrSet) {
  CtrlState st;
  auto r = cmd(st, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, kUni2);
  EXPECT_EQ(r.ack, VIRTIO_NET_OK);
  EXPECT_TRUE(r.effects & kCtrlEffMac);
  EXPECT_EQ(st.filter.mac[5], 6);
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, {1, 2, 3}).ack, VIRTIO_NET_ERR);
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, kUni1, kAll & ~VIRTIO_NET_F_CTRL_MAC_ADDR).ack,
            VIRTIO_NET_ERR);
}

TEST(NetCtrl, Vlan) {
  CtrlState st;
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD, {100, 0}).ack, VIRTIO_NET_OK);
  EXPECT_TRUE(st.filter.vlans.test(100));
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_DEL, {100, 0}).ack, VIRTIO_NET_OK);
  EXPECT_FALSE(st.filter.vlans.test(100));
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD, {0x00, 0x10}).ack, VIRTIO_NET_ERR) << "VID 4096";
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD, {1}).ack, VIRTIO_NET_ERR) << "short";
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_VLAN, 2, {1, 0}).ack, VIRTIO_NET_ERR);
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD, {1, 0}, VIRTIO_NET_F_CTRL_VQ).ack, VIRTIO_NET_ERR);
}

TEST(NetCtrl, Announce) {
  CtrlState st;
  st.status = VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE;
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK, {}).ack, VIRTIO_NET_OK);
  EXPECT_EQ(st.status, VIRTIO_NET_S_LINK_UP);
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK, {0}).ack, VIRTIO_NET_ERR);
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_ANNOUNCE, 1, {}).ack, VIRTIO_NET_ERR);
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK, {}, VIRTIO_NET_F_CTRL_VQ).ack,
            VIRTIO_NET_ERR);
}

TEST(NetCtrl, MqPairsSet) {
  CtrlState st;
  auto r = cmd(st, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, {3, 0});
  EXPECT_EQ(r.ack, VIRTIO_NET_OK);
  EXPECT_EQ(r.effects, uint32_t(kCtrlEffPairs));
  EXPECT_EQ(st.pairs, 3);
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, {0, 0}).ack, VIRTIO_NET_ERR) << "0 pairs";
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, {5, 0}).ack, VIRTIO_NET_ERR) << "> max";
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, {1}).ack, VIRTIO_NET_ERR) << "short";
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_RSS_CONFIG, {}).ack, VIRTIO_NET_ERR) << "no RSS";
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, {1, 0}, kAll & ~VIRTIO_NET_F_MQ).ack,
            VIRTIO_NET_ERR);
  EXPECT_EQ(st.pairs, 3);
}

TEST(NetCtrl, GuestOffloads) {
  CtrlState st;
  std::vector<uint8_t> v = {uint8_t(VIRTIO_NET_F_GUEST_CSUM), 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, v).ack, VIRTIO_NET_OK);
  EXPECT_EQ(st.guest_offloads, VIRTIO_NET_F_GUEST_CSUM);
  std::vector<uint8_t> tso6 = {0, 1, 0, 0, 0, 0, 0, 0};  // bit 8: GUEST_TSO6, not negotiated
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, tso6).ack, VIRTIO_NET_ERR);
  std::vector<uint8_t> mq = {0, 0, 0x40, 0, 0, 0, 0, 0};  // bit 22: not an offload
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, mq).ack, VIRTIO_NET_ERR);
  EXPECT_EQ(cmd(st, VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, {1}).ack, VIRTIO_NET_ERR);
}

TEST(NetCtrl, UnknownClass) {
  CtrlState st;
  EXPECT_EQ(cmd(st, 6, 0, {}).ack, VIRTIO_NET_ERR) << "NOTF_COAL not offered";
  EXPECT_EQ(cmd(st, 200, 0, {1, 2, 3}).ack, VIRTIO_NET_ERR);
}

// ------------------------------------------------------------------ filter

std::vector<uint8_t> eth(std::vector<uint8_t> dst, int vid = -1) {
  std::vector<uint8_t> f(dst);
  f.insert(f.end(), {0x02, 9, 9, 9, 9, 9});
  if (vid >= 0) f.insert(f.end(), {0x81, 0x00, uint8_t(vid >> 8), uint8_t(vid)});
  f.insert(f.end(), {0x08, 0x00});
  f.resize(64);
  return f;
}

TEST(NetFilter, Semantics) {
  RxFilter r;
  r.mac = {0x02, 1, 2, 3, 4, 5};
  const std::vector<uint8_t> bcast(6, 0xff), other = {0x02, 7, 7, 7, 7, 7};
  auto ok = [&](const std::vector<uint8_t>& f) { return r.accept(f.data(), uint32_t(f.size())); };
  EXPECT_TRUE(ok(eth(other))) << "promiscuous after reset";
  r.promisc = false;
  EXPECT_TRUE(ok(eth(kUni1)));
  EXPECT_FALSE(ok(eth(other)));
  EXPECT_TRUE(ok(eth(bcast)));
  EXPECT_FALSE(ok(eth(kMul1)));
  r.allmulti = true;
  EXPECT_TRUE(ok(eth(kMul1)));
  r.nomulti = true;
  EXPECT_FALSE(ok(eth(kMul1)));
  r.nobcast = true;
  EXPECT_FALSE(ok(eth(bcast)));
  r.uni[0] = {0x02, 7, 7, 7, 7, 7};
  r.n_uni = 1;
  EXPECT_TRUE(ok(eth(other)));
  r.nouni = true;
  EXPECT_FALSE(ok(eth(kUni1)));
  r.nouni = false;
  // VLAN table (CTRL_VLAN negotiated): tagged frames need their VID.
  r.vlan_filtering = true;
  EXPECT_FALSE(ok(eth(kUni1, 10)));
  r.vlans.set(10);
  EXPECT_TRUE(ok(eth(kUni1, 10)));
  EXPECT_TRUE(ok(eth(kUni1))) << "untagged frames pass";
  EXPECT_FALSE(r.accept(eth(kUni1).data(), 10)) << "runt";
}

}  // namespace
}  // namespace vdpu::virtio::net
