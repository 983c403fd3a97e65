// RSS, hash report and notification coalescing: the Toeplitz hash against
// Microsoft's published verification vectors, RSS_CONFIG / HASH_CONFIG /
// NOTF_COAL command checks, the handoff ring, the v1_hash receive header,
// coalesced call counts (a fake clock: counts, never times), and steering of
// frames across two reactors by a device whose driver configured RSS.
#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <future>
#include <thread>

#include "dev_harness.h"
#include "test_driver.h"
#include "virtio/net/backend_mem.h"
#include "virtio/net/net_ctrl.h"
#include "virtio/net/net_device.h"
#include "virtio/net/net_queue.h"
#include "virtio/net/net_rss.h"

namespace vdpu::virtio::net {
namespace {

using test::Buf;
using test::DriverQueue;
using test::GuestMem;

// Microsoft "Verifying the RSS Hash Calculation" secret key.
const uint8_t kMsKey[40] = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
                            0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
                            0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

const MacAddr kMac = {0x02, 0xaa, 0, 0, 0, 1};

struct V4 {
  uint8_t dst[4];
  uint16_t dport;
  uint8_t src[4];
  uint16_t sport;
  uint32_t ip_only, with_tcp;
};
// The published IPv4 table (destination, source, IPv4 only, IPv4 with TCP).
const V4 kV4[] = {
    {{161, 142, 100, 80}, 1766, {66, 9, 149, 187}, 2794, 0x323e8fc2, 0x51ccc178},
    {{65, 69, 140, 83}, 4739, {199, 92, 111, 2}, 14230, 0xd718262a, 0xc626b0ea},
    {{12, 22, 207, 184}, 38024, {24, 19, 198, 95}, 12898, 0xd2d0a5de, 0x5c2b394a},
    {{209, 142, 163, 6}, 2217, {38, 27, 205, 30}, 48228, 0x82989176, 0xafc7327f},
    {{202, 188, 127, 2}, 1303, {153, 39, 163, 191}, 44251, 0x5d1809c5, 0x10e828a2},
};

struct V6 {
  uint8_t dst[16];
  uint16_t dport;
  uint8_t src[16];
  uint16_t sport;
  uint32_t ip_only, with_tcp;
};
const V6 kV6[] = {
    {{0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x00, 0x03, 0, 0, 0, 0, 0, 0, 0, 1}, 1766,
     {0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x1f, 0xff, 0, 0, 0, 0, 0, 0, 0, 7}, 2794, 0x2cc18cd5, 0x40207d3d},
    {{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 4739,
     {0x3f, 0xfe, 0x05, 0x01, 0x00, 0x08, 0, 0, 0x02, 0x60, 0x97, 0xff, 0xfe, 0x40, 0xef, 0xab}, 14230, 0x0f0c461c,
     0xdde51bbf},
    {{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0xf8, 0xff, 0xfe, 0x21, 0x67, 0xcf}, 38024,
     {0x3f, 0xfe, 0x19, 0x00, 0x45, 0x45, 0x00, 0x03, 0x02, 0x00, 0xf8, 0xff, 0xfe, 0x21, 0x67, 0xcf}, 44251,
     0x4b61e985, 0x02d1feef},
};

void put16(std::vector<uint8_t>& f, size_t off, uint16_t v) {
  f[off] = uint8_t(v >> 8);
  f[off + 1] = uint8_t(v);
}

// Ethernet + IPv4 (+ L4 ports) frame.
std::vector<uint8_t> v4_frame(const uint8_t src[4], const uint8_t dst[4], uint8_t proto, uint16_t sport,
                              uint16_t dport, uint32_t payload = 26, uint16_t frag = 0) {
  std::vector<uint8_t> f(14 + 20 + 8 + payload, 0);
  std::memcpy(f.data(), kMac.data(), 6);
  f[6] = 0x02;
  put16(f, 12, 0x0800);
  f[14] = 0x45;
  put16(f, 16, uint16_t(f.size() - 14));
  put16(f, 20, frag);
  f[22] = 64;
  f[23] = proto;
  std::memcpy(&f[26], src, 4);
  std::memcpy(&f[30], dst, 4);
  put16(f, 34, sport);
  put16(f, 36, dport);
  return f;
}

std::vector<uint8_t> v6_frame(const uint8_t src[16], const uint8_t dst[16], uint8_t proto, uint16_t sport,
                              uint16_t dport, bool with_hop_by_hop = false) {
  const uint32_t ext = with_hop_by_hop ? 8 : 0;
  std::vector<uint8_t> f(14 + 40 + ext + 8 + 20, 0);
  std::memcpy(f.data(), kMac.data(), 6);
  put16(f, 12, 0x86dd);
  f[14] = 0x60;
  put16(f, 18, uint16_t(f.size() - 54));
  f[20] = with_hop_by_hop ? 0 : proto;
  f[21] = 64;
  std::memcpy(&f[22], src, 16);
  std::memcpy(&f[38], dst, 16);
  if (with_hop_by_hop) {
    f[54] = proto;  // next header; length 0 = 8 bytes
    f[55] = 0;
  }
  put16(f, 54 + ext, sport);
  put16(f, 56 + ext, dport);
  return f;
}

RssConfig ms_config(uint32_t types) {
  RssConfig c;
  c.hash_types = types;
  c.key_len = 40;
  std::memcpy(c.key, kMsKey, 40);
  return c;
}

// ------------------------------------------------------------------ Toeplitz

TEST(Toeplitz, MicrosoftIpv4Vectors) {
  for (const V4& v : kV4) {
    uint8_t in[12];
    std::memcpy(in, v.src, 4);
    std::memcpy(in + 4, v.dst, 4);
    in[8] = uint8_t(v.sport >> 8), in[9] = uint8_t(v.sport);
    in[10] = uint8_t(v.dport >> 8), in[11] = uint8_t(v.dport);
    EXPECT_EQ(toeplitz(kMsKey, 40, in, 8), v.ip_only);
    EXPECT_EQ(toeplitz(kMsKey, 40, in, 12), v.with_tcp);
  }
}

TEST(Toeplitz, MicrosoftIpv6Vectors) {
  for (const V6& v : kV6) {
    uint8_t in[36];
    std::memcpy(in, v.src, 16);
    std::memcpy(in + 16, v.dst, 16);
    in[32] = uint8_t(v.sport >> 8), in[33] = uint8_t(v.sport);
    in[34] = uint8_t(v.dport >> 8), in[35] = uint8_t(v.dport);
    EXPECT_EQ(toeplitz(kMsKey, 40, in, 32), v.ip_only);
    EXPECT_EQ(toeplitz(kMsKey, 40, in, 36), v.with_tcp);
  }
}

TEST(HashFrame, Ipv4TypesAsSelected) {
  for (const V4& v : kV4) {
    auto tcp = v4_frame(v.src, v.dst, 6, v.sport, v.dport);
    auto udp = v4_frame(v.src, v.dst, 17, v.sport, v.dport);
    FrameHash h = hash_frame(ms_config(kHashTypesSupported), tcp.data(), uint32_t(tcp.size()));
    EXPECT_EQ(h.value, v.with_tcp);
    EXPECT_EQ(h.report, VIRTIO_NET_HASH_REPORT_TCPv4);
    h = hash_frame(ms_config(kHashTypesSupported), udp.data(), uint32_t(udp.size()));
    EXPECT_EQ(h.value, v.with_tcp) << "UDP hashes the same 4-tuple";
    EXPECT_EQ(h.report, VIRTIO_NET_HASH_REPORT_UDPv4);
    // TCP not selected: plain IPv4.
    h = hash_frame(ms_config(VIRTIO_NET_HASH_TYPE_IPv4 | VIRTIO_NET_HASH_TYPE_UDPv4), tcp.data(), uint32_t(tcp.size()));
    EXPECT_EQ(h.value, v.ip_only);
    EXPECT_EQ(h.report, VIRTIO_NET_HASH_REPORT_IPv4);
    // Only TCPv4 selected, a UDP frame: no hash.
    h = hash_frame(ms_config(VIRTIO_NET_HASH_TYPE_TCPv4), udp.data(), uint32_t(udp.size()));
    EXPECT_EQ(h.report, VIRTIO_NET_HASH_REPORT_NONE);
    EXPECT_EQ(h.value, 0u);
    // A fragment has no ports: plain IPv4 (MF set / offset set).
    for (uint16_t frag : {uint16_t(0x2000), uint16_t(0x0010)}) {
      auto fr = v4_frame(v.src, v.dst, 6, v.sport, v.dport, 26, frag);
      h = hash_frame(ms_config(kHashTypesSupported), fr.data(), uint32_t(fr.size()));
      EXPECT_EQ(h.value, v.ip_only);
      EXPECT_EQ(h.report, VIRTIO_NET_HASH_REPORT_IPv4);
    }
  }
}

TEST(HashFrame, Ipv6TypesAndExtensionHeaders) {
  for (const V6& v : kV6) {
    for (bool hbh : {false, true}) {
      auto tcp = v6_frame(v.src, v.dst, 6, v.sport, v.dport, hbh);
      FrameHash h = hash_frame(ms_config(kHashTypesSupported), tcp.data(), uint32_t(tcp.size()));
      EXPECT_EQ(h.value, v.with_tcp);
      EXPECT_EQ(h.report, VIRTIO_NET_HASH_REPORT_TCPv6);
      auto udp = v6_frame(v.src, v.dst, 17, v.sport, v.dport, hbh);
      h = hash_frame(ms_config(kHashTypesSupported), udp.data(), uint32_t(udp.size()));
      EXPECT_EQ(h.value, v.with_tcp);
      EXPECT_EQ(h.report, VIRTIO_NET_HASH_REPORT_UDPv6);
      h = hash_frame(ms_config(VIRTIO_NET_HASH_TYPE_IPv6), tcp.data(), uint32_t(tcp.size()));
      EXPECT_EQ(h.value, v.ip_only);
      EXPECT_EQ(h.report, VIRTIO_NET_HASH_REPORT_IPv6);
      // IPv4 types only: an IPv6 frame is not hashed.
      h = hash_frame(ms_config(0x7), tcp.data(), uint32_t(tcp.size()));
      EXPECT_EQ(h.report, VIRTIO_NET_HASH_REPORT_NONE);
    }
  }
}

TEST(HashFrame, VlanTaggedAndMalformed) {
  const V4& v = kV4[0];
  auto f = v4_frame(v.src, v.dst, 6, v.sport, v.dport);
  std::vector<uint8_t> tagged(f.begin(), f.begin() + 12);
  tagged.insert(tagged.end(), {0x81, 0x00, 0x00, 0x05});
  tagged.insert(tagged.end(), f.begin() + 12, f.end());
  FrameHash h = hash_frame(ms_config(kHashTypesSupported), tagged.data(), uint32_t(tagged.size()));
  EXPECT_EQ(h.value, v.with_tcp);
  // Truncated frames never read past the end: IP header cut → none;
  // ports cut → plain IP.
  h = hash_frame(ms_config(kHashTypesSupported), f.data(), 14 + 19);
  EXPECT_EQ(h.report, VIRTIO_NET_HASH_REPORT_NONE);
  h = hash_frame(ms_config(kHashTypesSupported), f.data(), 14 + 20 + 3);
  EXPECT_EQ(h.report, VIRTIO_NET_HASH_REPORT_IPv4);
  EXPECT_EQ(h.value, v.ip_only);
  f[14] = 0x44;  // IHL 4: invalid
  h = hash_frame(ms_config(kHashTypesSupported), f.data(), uint32_t(f.size()));
  EXPECT_EQ(h.report, VIRTIO_NET_HASH_REPORT_NONE);
  uint8_t arp[60] = {};
  arp[12] = 0x08, arp[13] = 0x06;
  EXPECT_EQ(hash_frame(ms_config(kHashTypesSupported), arp, 60).report, VIRTIO_NET_HASH_REPORT_NONE);
}

// ------------------------------------------------------------------ control commands

struct RssCmd {
  uint32_t types = kHashTypesSupported;
  std::vector<uint16_t> table = {0, 1, 2, 3};
  uint16_t mask = 3;
  uint16_t unclassified = 0;
  uint16_t max_tx_vq = 4;
  std::vector<uint8_t> key = std::vector<uint8_t>(kMsKey, kMsKey + 40);
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> d;
    auto le16 = [&](uint16_t v) { d.push_back(uint8_t(v)), d.push_back(uint8_t(v >> 8)); };
    for (int i = 0; i < 4; ++i) d.push_back(uint8_t(types >> (8 * i)));
    le16(mask);
    le16(unclassified);
    for (uint16_t q : table) le16(q);
    le16(max_tx_vq);
    d.push_back(uint8_t(key.size()));
    d.insert(d.end(), key.begin(), key.end());
    return d;
  }
};

constexpr uint64_t kRssF = VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_MQ | VIRTIO_NET_F_RSS;

CtrlResult rss(CtrlState& st, const RssCmd& c, uint64_t f = kRssF, const bool* en = nullptr) {
  CtrlLimits lim;
  lim.max_pairs = 4;
  lim.rx_enabled = en;
  auto d = c.bytes();
  return apply_ctrl(st, f, lim, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_RSS_CONFIG, d.data(), uint32_t(d.size()));
}

TEST(RssConfigCmd, AcceptsAValidConfig) {
  CtrlState st;
  RssCmd c;
  c.table = {3, 1, 2, 0, 1, 1, 2, 2};
  c.mask = 7;
  c.unclassified = 2;
  c.max_tx_vq = 2;
  CtrlResult r = rss(st, c);
  ASSERT_EQ(r.ack, VIRTIO_NET_OK);
  EXPECT_EQ(r.effects, uint32_t(kCtrlEffRss | kCtrlEffPairs));
  EXPECT_TRUE(st.rss.steer);
  EXPECT_EQ(st.rss.hash_types, kHashTypesSupported);
  EXPECT_EQ(st.rss.mask, 7);
  EXPECT_EQ(st.rss.unclassified, 2);
  EXPECT_EQ(st.rss.table[0], 3);
  EXPECT_EQ(st.rss.table[7], 2);
  EXPECT_EQ(st.rss.key_len, 40);
  EXPECT_EQ(0, std::memcmp(st.rss.key, kMsKey, 40));
  EXPECT_EQ(st.pairs, 4) << "every queue the table names runs";
  // A single-entry table and a shorter key are fine.
  RssCmd one;
  one.table = {1};
  one.mask = 0;
  one.key.resize(16);
  EXPECT_EQ(rss(st, one).ack, VIRTIO_NET_OK);
  EXPECT_EQ(st.rss.key_len, 16);
  EXPECT_EQ(st.rss.key[20], 0) << "key bytes past the length are zero";
  EXPECT_EQ(st.pairs, 4) << "max_tx_vq";
  // VQ_PAIRS_SET ends RSS steering.
  uint8_t two[2] = {2, 0};
  CtrlLimits lim;
  lim.max_pairs = 4;
  r = apply_ctrl(st, kRssF, lim, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, two, 2);
  EXPECT_EQ(r.ack, VIRTIO_NET_OK);
  EXPECT_TRUE(r.effects & kCtrlEffRss);
  EXPECT_FALSE(st.rss.steer);
}

TEST(RssConfigCmd, RefusesWhatTheSpecForbids) {
  auto refused = [](const RssCmd& c, uint64_t f = kRssF, const bool* en = nullptr) {
    CtrlState st;
    CtrlState before = st;
    CtrlResult r = rss(st, c, f, en);
    EXPECT_EQ(std::memcmp(&st.rss, &before.rss, sizeof(st.rss)), 0) << "state unchanged";
    EXPECT_EQ(st.pairs, before.pairs);
    return r.ack == VIRTIO_NET_ERR;
  };
  RssCmd c;
  EXPECT_TRUE(refused(c, kRssF & ~VIRTIO_NET_F_RSS)) << "RSS not negotiated";
  RssCmd three = c;
  three.table = {0, 1, 2};
  three.mask = 2;
  EXPECT_TRUE(refused(three)) << "table length not a power of two";
  RssCmd big = c;
  big.table.assign(256, 0);
  big.mask = 255;
  EXPECT_TRUE(refused(big)) << "above rss_max_indirection_table_length";
  RssCmd q = c;
  q.table[2] = 4;
  EXPECT_TRUE(refused(q)) << "queue index beyond max_virtqueue_pairs";
  RssCmd rsv = c;
  rsv.table[1] = 0x8001;
  EXPECT_TRUE(refused(rsv)) << "reserved bit 15 of rss_rq_id";
  RssCmd unc = c;
  unc.unclassified = 7;
  EXPECT_TRUE(refused(unc)) << "unclassified queue out of range";
  const bool en[4] = {true, true, false, true};
  EXPECT_TRUE(refused(c, kRssF, en)) << "table names a receive queue the driver did not enable";
  RssCmd unc2 = c;
  unc2.table = {0, 1, 3, 3};
  unc2.unclassified = 2;
  EXPECT_TRUE(refused(unc2, kRssF, en)) << "unclassified queue not enabled";
  RssCmd key = c;
  key.key.resize(41, 1);
  EXPECT_TRUE(refused(key)) << "key above rss_max_key_size";
  RssCmd types = c;
  types.types = VIRTIO_NET_HASH_TYPE_TCP_EX;
  EXPECT_TRUE(refused(types)) << "hash type not in supported_hash_types";
  RssCmd tx0 = c;
  tx0.max_tx_vq = 0;
  EXPECT_TRUE(refused(tx0)) << "max_tx_vq 0";
  RssCmd tx5 = c;
  tx5.max_tx_vq = 5;
  EXPECT_TRUE(refused(tx5)) << "max_tx_vq above max_virtqueue_pairs";
  // Lengths: table shorter than the mask says, trailing bytes, cut header.
  CtrlState st;
  CtrlLimits lim;
  lim.max_pairs = 4;
  auto d = c.bytes();
  EXPECT_EQ(apply_ctrl(st, kRssF, lim, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_RSS_CONFIG, d.data(), uint32_t(d.size() - 1)).ack,
            VIRTIO_NET_ERR);
  d.push_back(0);
  EXPECT_EQ(apply_ctrl(st, kRssF, lim, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_RSS_CONFIG, d.data(), uint32_t(d.size())).ack,
            VIRTIO_NET_ERR);
  EXPECT_EQ(apply_ctrl(st, kRssF, lim, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_RSS_CONFIG, d.data(), 7).ack,
            VIRTIO_NET_ERR);
  // A device whose supported_hash_types is narrower refuses the rest.
  lim.hash_types = VIRTIO_NET_HASH_TYPE_IPv4;
  d = c.bytes();
  EXPECT_EQ(apply_ctrl(st, kRssF, lim, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_RSS_CONFIG, d.data(), uint32_t(d.size())).ack,
            VIRTIO_NET_ERR);
  EXPECT_FALSE(st.rss.steer);
}

TEST(HashConfigCmd, GoodAndBad) {
  const uint64_t f = VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_HASH_REPORT;
  auto cmd = [](uint32_t types, uint32_t key_len) {
    std::vector<uint8_t> d;
    for (int i = 0; i < 4; ++i) d.push_back(uint8_t(types >> (8 * i)));
    d.insert(d.end(), 8, 0);  // reserved
    d.push_back(uint8_t(key_len));
    for (uint32_t i = 0; i < key_len; ++i) d.push_back(kMsKey[i % 40]);
    return d;
  };
  CtrlState st;
  CtrlLimits lim;
  auto run = [&](uint64_t feats, const std::vector<uint8_t>& d) {
    return apply_ctrl(st, feats, lim, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_HASH_CONFIG, d.data(), uint32_t(d.size()));
  };
  auto good = cmd(VIRTIO_NET_HASH_TYPE_TCPv4 | VIRTIO_NET_HASH_TYPE_IPv6, 40);
  EXPECT_EQ(run(f & ~VIRTIO_NET_F_HASH_REPORT, good).ack, VIRTIO_NET_ERR) << "HASH_REPORT not negotiated";
  EXPECT_EQ(run(f, cmd(0x40, 40)).ack, VIRTIO_NET_ERR) << "unsupported type";
  EXPECT_EQ(run(f, cmd(1, 41)).ack, VIRTIO_NET_ERR) << "key too long";
  auto cut = good;
  cut.pop_back();
  EXPECT_EQ(run(f, cut).ack, VIRTIO_NET_ERR) << "length mismatch";
  EXPECT_EQ(st.rss.hash_types, 0u);
  CtrlResult r = run(f, good);
  EXPECT_EQ(r.ack, VIRTIO_NET_OK);
  EXPECT_EQ(r.effects, uint32_t(kCtrlEffRss));
  EXPECT_EQ(st.rss.hash_types, VIRTIO_NET_HASH_TYPE_TCPv4 | VIRTIO_NET_HASH_TYPE_IPv6);
  EXPECT_FALSE(st.rss.steer) << "hash config reports, never steers";
  EXPECT_EQ(0, std::memcmp(st.rss.key, kMsKey, 40));
}

TEST(NotfCoalCmd, GoodAndBad) {
  CtrlState st;
  const uint64_t f = VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_NOTF_COAL;
  const uint8_t d[8] = {64, 0, 0, 0, 100, 0, 0, 0};  // max_packets 64, usecs 100
  EXPECT_EQ(apply_ctrl(st, f & ~VIRTIO_NET_F_NOTF_COAL, 1, VIRTIO_NET_CTRL_NOTF_COAL, VIRTIO_NET_CTRL_NOTF_COAL_RX_SET, d, 8).ack,
            VIRTIO_NET_ERR);
  EXPECT_EQ(apply_ctrl(st, f, 1, VIRTIO_NET_CTRL_NOTF_COAL, VIRTIO_NET_CTRL_NOTF_COAL_RX_SET, d, 7).ack, VIRTIO_NET_ERR);
  EXPECT_EQ(apply_ctrl(st, f, 1, VIRTIO_NET_CTRL_NOTF_COAL, 5, d, 8).ack, VIRTIO_NET_ERR);
  CtrlResult r = apply_ctrl(st, f, 1, VIRTIO_NET_CTRL_NOTF_COAL, VIRTIO_NET_CTRL_NOTF_COAL_RX_SET, d, 8);
  EXPECT_EQ(r.ack, VIRTIO_NET_OK);
  EXPECT_EQ(r.effects, uint32_t(kCtrlEffCoal));
  EXPECT_EQ(st.rx_coal.max_packets, 64u);
  EXPECT_EQ(st.rx_coal.usecs, 100u);
  EXPECT_EQ(st.tx_coal.max_packets, 0u);
  EXPECT_EQ(apply_ctrl(st, f, 1, VIRTIO_NET_CTRL_NOTF_COAL, VIRTIO_NET_CTRL_NOTF_COAL_TX_SET, d, 8).ack, VIRTIO_NET_OK);
  EXPECT_EQ(st.tx_coal.usecs, 100u);
}

// ------------------------------------------------------------------ handoff ring

TEST(HandoffRing, RecordsInOrderAcrossTheWrapAndFullIsRefused) {
  HandoffRing r(4096);
  std::vector<uint8_t> buf(1000);
  uint32_t pushed = 0, popped = 0;
  for (int round = 0; round < 50; ++round) {
    // Fill until full, then drain half: positions wrap many times.
    for (;;) {
      for (size_t i = 0; i < buf.size(); ++i) buf[i] = uint8_t(pushed + i);
      iovec v{buf.data(), buf.size()};
      uint32_t len = 100 + (pushed * 37) % 900;
      if (!r.push(&v, 1, len, FrameHash{pushed, 1})) break;
      ++pushed;
    }
    ASSERT_GT(pushed, popped) << "ring takes records";
    uint32_t target = popped + (pushed - popped + 1) / 2;
    while (popped < target) {
      const HandoffRing::RecHdr* h = r.front();
      ASSERT_NE(h, nullptr);
      EXPECT_EQ(h->hash_value, popped);
      EXPECT_EQ(h->len, 100 + (popped * 37) % 900);
      EXPECT_EQ(HandoffRing::payload(h)[5], uint8_t(popped + 5));
      r.pop();
      ++popped;
    }
  }
  while (r.front()) {
    r.pop();
    ++popped;
  }
  EXPECT_EQ(popped, pushed);
  EXPECT_TRUE(r.empty());
  std::vector<uint8_t> huge(8192);
  iovec v{huge.data(), huge.size()};
  EXPECT_FALSE(r.push(&v, 1, uint32_t(huge.size()), FrameHash{})) << "a record larger than the ring";
}

// ------------------------------------------------------------------ queue: hash header, coalescing

class ListBackend : public NetBackend {
 public:
  std::deque<std::vector<uint8_t>> rx;  // frames (without virtio header)
  BackendConfig cfg;
  BackendQueueStats st;
  const char* kind() const override { return "list"; }
  uint64_t offload_features() const override { return 0; }
  Status open_queue(uint16_t) override { return {}; }
  void close_queue(uint16_t) override {}
  Status configure(const BackendConfig& c) override {
    cfg = c;
    return {};
  }
  std::vector<std::pair<VirtioNetHdr, std::vector<uint8_t>>> tx;  // when capture_tx
  bool capture_tx = false;
  uint32_t tx_burst(uint16_t, TxPkt* p, uint32_t n) noexcept override {
    for (uint32_t i = 0; capture_tx && i < n; ++i) {
      std::vector<uint8_t> d(p[i].len);
      iov_to_buf(p[i].iov, p[i].iovcnt, 0, d.data(), p[i].len);
      tx.emplace_back(p[i].hdr, std::move(d));
    }
    return n;
  }
  uint32_t rx_burst(uint16_t, RxSlot* s, uint32_t n) noexcept override {
    uint32_t i = 0;
    for (; i < n && !rx.empty(); ++i) {
      auto& f = rx.front();
      std::vector<uint8_t> hdr(cfg.hdr_len, 0xcc);  // garbage in the hash fields: the device overwrites them
      std::memset(hdr.data(), 0, kNetHdrLen);
      iov_from_buf(s[i].iov, s[i].iovcnt, 0, hdr.data(), cfg.hdr_len);
      iov_from_buf(s[i].iov, s[i].iovcnt, cfg.hdr_len, f.data(), uint32_t(f.size()));
      s[i].len = uint32_t(cfg.hdr_len + f.size());
      rx.pop_front();
    }
    return i;
  }
  const BackendQueueStats& stats(uint16_t) const override { return st; }
};

struct RxRig {
  GuestMem mem;
  DriverQueue dq;
  ListBackend be;
  NetQueueCounters cnt;
  NetRxQueue q;
  explicit RxRig(NetQueueParams p) : dq(mem, 256), q((p.qid = 0, p), &be, &cnt) {
    be.cfg.hdr_len = p.hdr_len;
    EXPECT_TRUE(q.start(dq.config(kFVersion1)).ok());
  }
  std::vector<uint64_t> post(int n, uint32_t len = 2048) {
    std::vector<uint64_t> g;
    for (int i = 0; i < n; ++i) {
      g.push_back(mem.alloc(len));
      dq.add({{g.back(), len, true}});
    }
    return g;
  }
  // Used-buffer notifications signalled since the last call (eventfd count).
  uint64_t calls() {
    uint64_t v = 0;
    if (read(dq.config(0).call_fd, &v, sizeof(v)) != sizeof(v)) return 0;
    return v;
  }
};

TEST(HashReport, V1HashHeaderCarriesValueAndType) {
  NetQueueParams p;
  p.hdr_len = kNetHdrHashLen;
  p.max_frame = 1518;
  RxRig t(p);
  RssConfig c = ms_config(kHashTypesSupported);
  c.report = true;
  auto bufs = t.post(4);
  const V4& v = kV4[1];
  t.be.rx.push_back(v4_frame(v.src, v.dst, 6, v.sport, v.dport));
  uint8_t arp[60] = {};
  std::memcpy(arp, kMac.data(), 6);
  arp[12] = 0x08, arp[13] = 0x06;
  t.be.rx.emplace_back(arp, arp + 60);
  t.q.set_rss(c, nullptr);
  EXPECT_EQ(t.q.poll(), rt::Poll::kBusy);
  // Before any HASH_CONFIG: types 0, nothing hashed.
  t.be.rx.push_back(v4_frame(v.src, v.dst, 17, v.sport, v.dport));
  t.q.set_rss(RssConfig{}, nullptr);
  EXPECT_EQ(t.q.poll(), rt::Poll::kBusy);
  auto u = t.dq.all_used();
  ASSERT_EQ(u.size(), 3u);
  EXPECT_EQ(u[0].second, kNetHdrHashLen + 14 + 20 + 8 + 26);
  VirtioNetHdrHash h;
  std::memcpy(&h, t.mem.ptr(bufs[0]), sizeof(h));
  EXPECT_EQ(le32toh(h.hash_value), v.with_tcp);
  EXPECT_EQ(le16toh(h.hash_report), VIRTIO_NET_HASH_REPORT_TCPv4);
  EXPECT_EQ(h.padding_reserved, 0);
  EXPECT_EQ(le16toh(h.hdr.num_buffers), 1);
  EXPECT_EQ(t.mem.ptr(bufs[0])[kNetHdrHashLen + 12], 0x08) << "frame after the 20-byte header";
  std::memcpy(&h, t.mem.ptr(bufs[1]), sizeof(h));
  EXPECT_EQ(le16toh(h.hash_report), VIRTIO_NET_HASH_REPORT_NONE) << "ARP: not hashed";
  EXPECT_EQ(h.hash_value, 0u);
  std::memcpy(&h, t.mem.ptr(bufs[2]), sizeof(h));
  EXPECT_EQ(le16toh(h.hash_report), VIRTIO_NET_HASH_REPORT_NONE) << "no hash types configured";
  EXPECT_EQ(h.hash_value, 0u);
}

TEST(HashReport, TransmitStripsTheTwentyByteHeader) {
  GuestMem mem;
  DriverQueue dq(mem, 64);
  ListBackend be;
  be.capture_tx = true;
  NetQueueCounters cnt;
  NetQueueParams p;
  p.qid = 1;
  p.hdr_len = kNetHdrHashLen;
  p.host_gso = 0;
  NetTxQueue q(p, &be, &cnt);
  ASSERT_TRUE(q.start(dq.config(kFVersion1)).ok());
  const V4& v = kV4[0];
  auto f = v4_frame(v.src, v.dst, 17, 1, 2);
  VirtioNetHdrHash h{};
  h.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  h.hdr.csum_start = htole16(34);
  h.hdr.csum_offset = htole16(6);
  h.hash_value = 0xdeadbeef;  // meaningless on transmit
  std::vector<uint8_t> pkt(sizeof(h));
  std::memcpy(pkt.data(), &h, sizeof(h));
  pkt.insert(pkt.end(), f.begin(), f.end());
  // Header split across two descriptors at byte 16 (inside the hash fields).
  uint64_t a = mem.alloc(16), b = mem.alloc(pkt.size() - 16);
  mem.write(a, pkt.data(), 16);
  mem.write(b, pkt.data() + 16, pkt.size() - 16);
  dq.add({{a, 16, false}, {b, uint32_t(pkt.size() - 16), false}});
  EXPECT_EQ(q.poll(), rt::Poll::kBusy);
  ASSERT_EQ(be.tx.size(), 1u);
  EXPECT_EQ(be.tx[0].first.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
  EXPECT_EQ(le16toh(be.tx[0].first.csum_start), 34);
  EXPECT_EQ(be.tx[0].second, f) << "the frame starts after 20 bytes";
}

TEST(HashReport, InProcessBackendsWriteTheLongHeader) {
  const uint8_t dst[6] = {2, 0, 0, 0, 0, 1};
  GenBackend g(1, 100, dst);
  BackendConfig bc;
  bc.hdr_len = kNetHdrHashLen;
  ASSERT_TRUE(g.configure(bc).ok());
  std::vector<uint8_t> buf(256, 0xee);
  iovec iv{buf.data(), buf.size()};
  RxSlot s{&iv, 1, uint32_t(buf.size()), 0};
  ASSERT_EQ(g.rx_burst(0, &s, 1), 1u);
  EXPECT_EQ(s.len, kNetHdrHashLen + 100);
  for (uint32_t i = 0; i < kNetHdrHashLen; ++i) EXPECT_EQ(buf[i], 0) << i;
  EXPECT_EQ(0, std::memcmp(&buf[kNetHdrHashLen], dst, 6));
}

uint64_t g_fake_now = 0;
uint64_t fake_now() { return g_fake_now; }

// Polls `batches` times with 32 frames waiting each time; returns calls.
uint64_t run_batches(RxRig& t, int batches) {
  const V4& v = kV4[0];
  uint64_t calls = 0;
  for (int b = 0; b < batches; ++b) {
    for (uint32_t i = 0; i < NetQueueBase::kBatch; ++i) t.be.rx.push_back(v4_frame(v.src, v.dst, 17, 1, 2));
    EXPECT_EQ(t.q.poll(), rt::Poll::kBusy);
    auto u = t.dq.all_used();
    EXPECT_EQ(u.size(), NetQueueBase::kBatch);
    for (size_t i = 0; i < u.size(); ++i) t.dq.add({{t.mem.alloc(2048), 2048, true}});  // repost
    calls += t.calls();
  }
  return calls;
}

NetQueueParams coal_params(CoalParams c, bool dim) {
  NetQueueParams p;
  p.max_frame = 1518;
  p.coal = c;
  p.dim = dim;
  return p;
}

TEST(Coalescing, WithoutItEveryBusyPollNotifies) {
  RxRig t(coal_params({}, false));
  t.post(64);
  EXPECT_EQ(run_batches(t, 10), 10u);
  EXPECT_EQ(t.cnt.notifications.load(), 10u);
}

TEST(Coalescing, MaxPacketsBatchesNotifications) {
  g_fake_now = 1'000'000;
  RxRig t(coal_params({64, 1000}, false));
  t.q.set_clock(&fake_now);
  t.post(64);
  // 320 packets, 32 per poll, the clock standing still: one call per 64.
  EXPECT_EQ(run_batches(t, 10), 5u);
  // 32 more: pending until the deadline passes (a poll with nothing new).
  EXPECT_EQ(run_batches(t, 1), 0u);
  t.q.poll();  // nothing new (takes the reposted buffers)
  EXPECT_EQ(t.calls(), 0u) << "deadline not reached";
  g_fake_now += 1000 * 1000;
  t.q.poll();
  EXPECT_EQ(t.calls(), 1u) << "usecs elapsed: the pending packets are notified";
  // Before the reactor sleeps nothing stays un-notified.
  run_batches(t, 1);
  EXPECT_EQ(t.calls(), 0u);
  t.q.prepare_sleep();
  EXPECT_EQ(t.calls(), 1u);
}

TEST(Coalescing, ControlQueueParametersReachTheQueue) {
  g_fake_now = 5;
  RxRig t(coal_params({}, false));
  t.q.set_clock(&fake_now);
  t.post(64);
  t.q.set_coalescing({128, 50}, false);
  EXPECT_EQ(run_batches(t, 8), 2u);
  t.q.set_coalescing({}, false);  // off again: one per poll
  EXPECT_EQ(run_batches(t, 3), 3u);
}

TEST(Coalescing, DimAdaptsToLoad) {
  g_fake_now = 7;
  RxRig t(coal_params({}, true));
  t.q.set_clock(&fake_now);
  t.post(64);
  // Full batches: DIM climbs to its top level and notifies far less often.
  const uint64_t busy = run_batches(t, 16);
  EXPECT_LE(busy, 4u);
  EXPECT_GE(busy, 1u);
  EXPECT_EQ(t.q.dim_level(), kDimLevels - 1);
  t.q.prepare_sleep();
  t.calls();
  // Light load (one frame per poll): back to level 0, one call per poll.
  const V4& v = kV4[0];
  uint64_t calls = 0;
  for (int i = 0; i < 8; ++i) {
    t.be.rx.push_back(v4_frame(v.src, v.dst, 17, 1, 2));
    t.q.poll();
    t.dq.all_used();
    t.dq.add({{t.mem.alloc(2048), 2048, true}});
    calls += t.calls();
  }
  EXPECT_EQ(t.q.dim_level(), 0u);
  EXPECT_GE(calls, 5u) << "low rate: notifications are not delayed";
}

TEST(Coalescing, TxCompletionsToo) {
  g_fake_now = 9;
  GuestMem mem;
  DriverQueue dq(mem, 256);
  ListBackend be;
  be.cfg.hdr_len = kNetHdrLen;
  NetQueueCounters cnt;
  NetQueueParams p;
  p.qid = 1;
  p.coal = {64, 10};
  NetTxQueue q(p, &be, &cnt);
  q.set_clock(&fake_now);
  ASSERT_TRUE(q.start(dq.config(kFVersion1)).ok());
  const V4& v = kV4[0];
  auto f = v4_frame(v.src, v.dst, 17, 1, 2);
  std::vector<uint8_t> pkt(kNetHdrLen, 0);
  pkt.insert(pkt.end(), f.begin(), f.end());
  uint64_t calls = 0;
  for (int b = 0; b < 8; ++b) {
    for (uint32_t i = 0; i < NetQueueBase::kBatch; ++i) {
      uint64_t g = mem.alloc(pkt.size());
      mem.write(g, pkt.data(), pkt.size());
      dq.add({{g, uint32_t(pkt.size()), false}});
    }
    EXPECT_EQ(q.poll(), rt::Poll::kBusy);
    EXPECT_EQ(dq.all_used().size(), NetQueueBase::kBatch);
    uint64_t c = 0;
    if (read(dq.config(0).call_fd, &c, sizeof(c)) == sizeof(c)) calls += c;
  }
  EXPECT_EQ(calls, 4u);
}

// ------------------------------------------------------------------ steering across reactors

// Two data reactors (cores 0 and 1): RSS hands frames between them.
struct TwoReactorDev : test::DevHarness {
  TwoReactorDev(NetOptions o, std::unique_ptr<NetBackend> be)
      : DevHarness(std::move(o), std::move(be), kMac, {0, 1}) {}
};
using test::eventually;

uint8_t send_ctrl(GuestMem& mem, DriverQueue& cq, uint8_t cls, uint8_t cmd, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out = {cls, cmd};
  out.insert(out.end(), data.begin(), data.end());
  uint64_t g = mem.alloc(out.size());
  mem.write(g, out.data(), out.size());
  uint64_t ack = mem.alloc(1);
  mem.fill(ack, 0xee, 1);
  cq.add({{g, uint32_t(out.size()), false}, {ack, 1, true}});
  cq.kick();
  EXPECT_TRUE(eventually([&] { return cq.used().has_value(); }));
  return *mem.ptr(ack);
}

TEST(RssSteering, FramesLandOnTheQueueTheTableNamesAcrossReactors) {
  NetOptions o;
  o.max_queue_pairs = 2;
  o.packed = false;
  GuestMem mem(32 << 20);
  DriverQueue rx0(mem, 256), tx0(mem, 256), rx1(mem, 256), tx1(mem, 256), cq(mem, 16);
  TwoReactorDev d(o, LoopbackBackend::create_self(2, 1518));
  NetDevice& n = *d.dev;
  const uint64_t offered = n.device_features();
  ASSERT_TRUE(offered & VIRTIO_NET_F_RSS);
  ASSERT_TRUE(offered & VIRTIO_NET_F_HASH_REPORT);
  ASSERT_TRUE(offered & VIRTIO_NET_F_NOTF_COAL);
  VirtioNetConfig cfg;
  n.read_config(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&cfg), sizeof(cfg)));
  EXPECT_EQ(cfg.rss_max_key_size, 40);
  EXPECT_EQ(le16toh(cfg.rss_max_indirection_table_length), kRssMaxIndirLen);
  EXPECT_EQ(le32toh(cfg.supported_hash_types), kHashTypesSupported);

  const uint64_t f = kFVersion1 | VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_MQ | VIRTIO_NET_F_RSS |
                     VIRTIO_NET_F_HASH_REPORT;
  ASSERT_TRUE(n.set_features(f).ok());
  EXPECT_EQ(n.hdr_len(), kNetHdrHashLen);
  ASSERT_TRUE(d.start(0, rx0.config(f)).ok());
  ASSERT_TRUE(d.start(1, tx0.config(f)).ok());
  ASSERT_TRUE(d.start(2, rx1.config(f)).ok());
  ASSERT_TRUE(d.start(3, tx1.config(f)).ok());
  ASSERT_TRUE(d.start(4, cq.config(f)).ok());
  auto st = d.on_main([&] { return n.vq_stats(); });
  ASSERT_EQ(st.size(), 4u);
  EXPECT_NE(st[0].core, st[2].core) << "the two pairs run on different reactors";

  std::vector<uint64_t> rb0, rb1;
  for (int i = 0; i < 128; ++i) {
    rb0.push_back(mem.alloc(2048));
    rx0.add({{rb0.back(), 2048, true}});
    rb1.push_back(mem.alloc(2048));
    rx1.add({{rb1.back(), 2048, true}});
  }
  // Bad config first (table names queue 2 of 2): refused, nothing changes.
  RssCmd bad;
  bad.table = {0, 2};
  bad.mask = 1;
  bad.max_tx_vq = 2;
  EXPECT_EQ(send_ctrl(mem, cq, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_RSS_CONFIG, bad.bytes()), VIRTIO_NET_ERR);
  RssCmd good;
  good.table = {0, 1, 1, 0, 1, 0, 0, 1};
  good.mask = 7;
  good.max_tx_vq = 2;
  EXPECT_EQ(send_ctrl(mem, cq, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_RSS_CONFIG, good.bytes()), VIRTIO_NET_OK);
  EXPECT_EQ(d.on_main([&] { return n.active_pairs(); }), 2);

  // Everything is sent on pair 0 (so the loopback receives it on reactor
  // 0's backend queue); RSS spreads it by the UDP source port.
  RssConfig ref = ms_config(kHashTypesSupported);
  ref.steer = true;
  ref.mask = 7;
  for (int i = 0; i < 8; ++i) ref.table[i] = good.table[i];
  const V4& v = kV4[2];
  constexpr int kFrames = 64;
  std::vector<int> want(kFrames);
  int per_q[2] = {0, 0};
  for (int i = 0; i < kFrames; ++i) {
    auto fr = v4_frame(v.src, v.dst, 17, uint16_t(1000 + i), 53);
    fr[14 + 28] = uint8_t(i);  // payload tag
    FrameHash h = hash_frame(ref, fr.data(), uint32_t(fr.size()));
    want[i] = rss_queue(ref, h);
    ++per_q[want[i]];
    std::vector<uint8_t> pkt(kNetHdrHashLen, 0);
    pkt.insert(pkt.end(), fr.begin(), fr.end());
    uint64_t g = mem.alloc(pkt.size());
    mem.write(g, pkt.data(), pkt.size());
    tx0.add({{g, uint32_t(pkt.size()), false}});
  }
  ASSERT_GT(per_q[0], 0);
  ASSERT_GT(per_q[1], 0) << "the flows spread over both queues";
  tx0.kick();
  std::vector<std::pair<uint16_t, uint32_t>> got0, got1;
  ASSERT_TRUE(eventually([&] {
    for (auto& u : rx0.all_used()) got0.push_back(u);
    for (auto& u : rx1.all_used()) got1.push_back(u);
    return int(got0.size()) == per_q[0] && int(got1.size()) == per_q[1];
  })) << got0.size() << " / " << got1.size();
  // Each frame on the queue its hash selects, with the hash reported.
  auto check = [&](const std::vector<std::pair<uint16_t, uint32_t>>& got, const std::vector<uint64_t>& bufs,
                   DriverQueue& dq, int q) {
    (void)dq;
    for (auto& [id, len] : got) {
      // Split ring: the id is the head descriptor index = posting order here.
      const uint8_t* b = mem.ptr(bufs[id]);
      EXPECT_EQ(len, kNetHdrHashLen + 14 + 20 + 8 + 26);
      const int tag = b[kNetHdrHashLen + 14 + 28];
      ASSERT_LT(tag, kFrames);
      EXPECT_EQ(want[tag], q) << "frame " << tag;
      VirtioNetHdrHash h;
      std::memcpy(&h, b, sizeof(h));
      EXPECT_EQ(le16toh(h.hash_report), VIRTIO_NET_HASH_REPORT_UDPv4);
      auto fr = v4_frame(v.src, v.dst, 17, uint16_t(1000 + tag), 53);
      EXPECT_EQ(le32toh(h.hash_value), hash_frame(ref, fr.data(), uint32_t(fr.size())).value);
    }
  };
  check(got0, rb0, rx0, 0);
  check(got1, rb1, rx1, 1);
  auto st2 = d.on_main([&] { return n.vq_stats(); });
  EXPECT_EQ(st2[0].rss_steered, uint64_t(per_q[1])) << "queue 0 handed queue 1's flows over";
  EXPECT_EQ(st2[0].rss_dropped, 0u);
  EXPECT_EQ(st2[2].packets, uint64_t(per_q[1]));

  // VQ_PAIRS_SET turns steering off: pair 0's frames stay on queue 0.
  EXPECT_EQ(send_ctrl(mem, cq, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, {2, 0}), VIRTIO_NET_OK);
  for (int i = 0; i < 8; ++i) {
    auto fr = v4_frame(v.src, v.dst, 17, uint16_t(1000 + i), 53);
    std::vector<uint8_t> pkt(kNetHdrHashLen, 0);
    pkt.insert(pkt.end(), fr.begin(), fr.end());
    uint64_t g = mem.alloc(pkt.size());
    mem.write(g, pkt.data(), pkt.size());
    tx0.add({{g, uint32_t(pkt.size()), false}});
  }
  tx0.kick();
  size_t n0 = 0;
  ASSERT_TRUE(eventually([&] { return (n0 += rx0.all_used().size()) == 8; }));
  EXPECT_TRUE(rx1.all_used().empty());
}

}  // namespace
}  // namespace vdpu::virtio::net
