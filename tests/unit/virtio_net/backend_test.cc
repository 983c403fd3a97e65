// Backends: representor naming, drop/gen/loopback, and the TAP backend on a
// real TAP (skipped when /dev/net/tun or CAP_NET_ADMIN is missing).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "virtio/net/backend_mem.h"
#include "virtio/net/backend_tap.h"

namespace vdpu::virtio::net {
namespace {

TEST(Representor, Names) {
  EXPECT_EQ(*sf_number(FunctionKind::kStaticPf, 0), 1000u);
  EXPECT_EQ(*sf_number(FunctionKind::kHotplugPf, 1), 2001u);
  EXPECT_EQ(*sf_number(FunctionKind::kVf, 0), 3000u);
  EXPECT_FALSE(sf_number(FunctionKind::kHotplugPf, 1000).ok());
  EXPECT_EQ(*representor_name(kRepresentorPrefix, 1000), "en3f0pf0sf1000");
  EXPECT_EQ(*representor_name(kRepresentorPrefix, 10000), "en3f0pf0sf10000") << "15 characters fit";
  EXPECT_FALSE(representor_name(kRepresentorPrefix, 100000).ok()) << "IFNAMSIZ";
  EXPECT_FALSE(representor_name("", 1).ok());
  EXPECT_FALSE(representor_name("a/b", 1).ok());
}

struct Slot {
  std::vector<uint8_t> buf;
  iovec iov;
  RxSlot s;
  explicit Slot(uint32_t n) : buf(n) {
    iov = {buf.data(), n};
    s = {&iov, 1, n, 0};
  }
};

TxPkt pkt(std::vector<uint8_t>& f, iovec& v) {
  v = {f.data(), f.size()};
  TxPkt p{};
  p.iov = &v;
  p.iovcnt = 1;
  p.len = uint32_t(f.size());
  return p;
}

TEST(MemBackends, DropAndGen) {
  DropBackend d(1);
  std::vector<uint8_t> f(64, 1);
  iovec v;
  TxPkt p = pkt(f, v);
  EXPECT_EQ(d.tx_burst(0, &p, 1), 1u);
  EXPECT_EQ(d.stats(0).tx_packets.load(), 1u);
  Slot s(2048);
  EXPECT_EQ(d.rx_burst(0, &s.s, 1), 0u);
  EXPECT_FALSE(d.open_queue(1).ok());

  const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
  GenBackend g(1, 1500, mac);
  ASSERT_TRUE(g.configure(BackendConfig{}).ok());
  Slot a(2048), b(100);
  RxSlot ss[2] = {a.s, b.s};
  EXPECT_EQ(g.rx_burst(0, ss, 2), 2u);
  EXPECT_EQ(ss[0].len, 12u + 1500);
  EXPECT_EQ(ss[1].len, 0u) << "too small: dropped";
  EXPECT_EQ(0, std::memcmp(a.buf.data() + 12, mac, 6));
  EXPECT_EQ(g.stats(0).rx_dropped.load(), 1u);
}

TEST(MemBackends, LoopbackPairAndChecksum) {
  auto [a, b] = LoopbackBackend::create_pair(1, 1518, 4);
  ASSERT_TRUE(a->configure(BackendConfig{}).ok());
  ASSERT_TRUE(b->configure(BackendConfig{}).ok());
  // A UDP-ish frame with a partial checksum: completed for a receiver
  // without GUEST_CSUM.
  std::vector<uint8_t> f(80, 0);
  for (size_t i = 14; i < f.size(); ++i) f[i] = uint8_t(i);
  iovec v;
  TxPkt p = pkt(f, v);
  p.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  p.hdr.csum_start = htole16(34);
  p.hdr.csum_offset = htole16(6);
  EXPECT_EQ(a->tx_burst(0, &p, 1), 1u);
  Slot s(2048);
  EXPECT_EQ(b->rx_burst(0, &s.s, 1), 1u);
  ASSERT_EQ(s.s.len, 12u + 80);
  VirtioNetHdr h;
  std::memcpy(&h, s.buf.data(), 12);
  EXPECT_EQ(h.flags, 0) << "checksum completed in software";
  // ones' complement sum over [34, 80) including the stored checksum is 0xffff
  uint32_t sum = 0;
  for (size_t i = 34; i < 80; i += 2) sum += uint32_t(s.buf[12 + i] << 8 | s.buf[12 + i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  EXPECT_EQ(sum, 0xffffu);
  EXPECT_EQ(a->rx_burst(0, &s.s, 1), 0u) << "a receives what b sends, not its own";
  // Ring of 4: the fifth frame in a burst is dropped and counted at the receiver.
  TxPkt ps[5] = {p, p, p, p, p};
  EXPECT_EQ(a->tx_burst(0, ps, 5), 5u);
  EXPECT_EQ(b->stats(0).rx_dropped.load(), 1u);
  // Oversize frames are refused.
  std::vector<uint8_t> big(2000, 0);
  iovec vb;
  TxPkt pb = pkt(big, vb);
  a->tx_burst(0, &pb, 1);
  EXPECT_EQ(a->stats(0).tx_errors.load(), 1u);
}

TEST(MemBackends, CompleteCsumBounds) {
  uint8_t f[20] = {};
  EXPECT_FALSE(complete_csum(f, 20, 30, 0));
  EXPECT_FALSE(complete_csum(f, 20, 10, 9));
  EXPECT_TRUE(complete_csum(f, 20, 10, 8));
}

// ------------------------------------------------------------------ TAP

class TapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/net/tun missing";
    TapOptions o;
    o.ifname = "vdput" + std::to_string(getpid() % 100000);
    o.pairs = 2;
    o.mtu = 9000;
    o.up = true;
    auto t = TapBackend::create(o);
    if (!t.ok() && t.error().code == Errc::kPermission) GTEST_SKIP() << t.error().message;
    ASSERT_TRUE(t.ok()) << t.error().message;
    tap = std::move(*t);
    BackendConfig c;
    c.hdr_len = 12;
    c.guest_offloads = VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4;
    c.active_pairs = 2;
    ASSERT_TRUE(tap->configure(c).ok());
    ASSERT_TRUE(tap->open_queue(0).ok());
    // A raw socket on the TAP sees what we write and injects what we read.
    sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(kProto));
    ASSERT_GE(sock, 0);
    sockaddr_ll sa{};
    sa.sll_family = AF_PACKET;
    sa.sll_protocol = htons(kProto);
    sa.sll_ifindex = tap->ifindex();
    ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  }
  void TearDown() override {
    if (sock >= 0) close(sock);
  }
  std::vector<uint8_t> frame(uint32_t len, uint8_t seed) {
    std::vector<uint8_t> f(len);
    for (uint32_t i = 0; i < len; ++i) f[i] = uint8_t(seed + i);
    const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x42}, src[6] = {0x02, 0, 0, 0, 0, 0x43};
    std::memcpy(f.data(), dst, 6);
    std::memcpy(f.data() + 6, src, 6);
    f[12] = kProto >> 8;
    f[13] = kProto & 0xff;
    return f;
  }
  // Reads frames from the TAP queue until one of ours (kProto) arrives: the
  // kernel may send its own (IPv6 autoconfiguration) on a TAP that is up.
  uint32_t read_ours(RxSlot& s, const std::vector<uint8_t>& b) {
    for (int i = 0; i < 50; ++i) {
      pollfd pf{tap->rx_wake_fd(0), POLLIN, 0};
      if (poll(&pf, 1, 5000) != 1) return 0;
      s.len = 0;
      if (tap->rx_burst(0, &s, 1) == 0) continue;
      if (s.len == 0) return 0;
      if (s.len >= 12 + 14 && b[12 + 12] == (kProto >> 8) && b[12 + 13] == (kProto & 0xff)) return s.len;
    }
    return 0;
  }
  static constexpr uint16_t kProto = 0x88b5;  // IEEE local experimental
  std::unique_ptr<TapBackend> tap;
  int sock = -1;
};

TEST_F(TapTest, NameQueuesAndAttach) {
  EXPECT_EQ(tap->ifname().substr(0, 5), "vdput");
  EXPECT_GT(tap->ifindex(), 0);
  EXPECT_TRUE(tap->attached(0));
  EXPECT_FALSE(tap->attached(1)) << "not opened yet";
  ASSERT_TRUE(tap->open_queue(1).ok());
  EXPECT_TRUE(tap->attached(1));
  BackendConfig c;
  c.active_pairs = 1;  // CTRL_MQ down to one pair
  ASSERT_TRUE(tap->configure(c).ok());
  EXPECT_FALSE(tap->attached(1));
  c.active_pairs = 2;
  ASSERT_TRUE(tap->configure(c).ok());
  tap->close_queue(1);
  EXPECT_FALSE(tap->attached(1));
  EXPECT_FALSE(tap->open_queue(7).ok());
}

TEST_F(TapTest, TransmitReachesTheTap) {
  auto f = frame(1000, 5);
  // header and frame split over two iovecs, as guest memory would be
  iovec v[2] = {{f.data(), 100}, {f.data() + 100, 900}};
  TxPkt p{};
  p.iov = v;
  p.iovcnt = 2;
  p.len = 1000;
  EXPECT_EQ(tap->tx_burst(0, &p, 1), 1u);
  pollfd pf{sock, POLLIN, 0};
  ASSERT_EQ(poll(&pf, 1, 5000), 1);
  std::vector<uint8_t> got(2000);
  ssize_t n = recv(sock, got.data(), got.size(), 0);
  ASSERT_EQ(n, 1000);
  got.resize(1000);
  EXPECT_EQ(got, f);
  EXPECT_EQ(tap->stats(0).tx_packets.load(), 1u);
}

TEST_F(TapTest, InjectedFramesAreReceivedWithHeader) {
  auto f = frame(9000, 7);  // jumbo (TAP MTU 9000)
  sockaddr_ll sa{};
  sa.sll_family = AF_PACKET;
  sa.sll_ifindex = tap->ifindex();
  sa.sll_halen = 6;
  std::memcpy(sa.sll_addr, f.data(), 6);
  ASSERT_EQ(sendto(sock, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), ssize_t(f.size()));
  // The receive buffer is split in three, like guest buffers.
  std::vector<uint8_t> b(12 + 9000 + 100);
  iovec v[3] = {{b.data(), 7}, {b.data() + 7, 5000}, {b.data() + 5007, b.size() - 5007}};
  RxSlot s{v, 3, uint32_t(b.size()), 0};
  ASSERT_EQ(read_ours(s, b), 12u + 9000);
  VirtioNetHdr h;
  std::memcpy(&h, b.data(), 12);
  EXPECT_EQ(h.gso_type, VIRTIO_NET_HDR_GSO_NONE);
  EXPECT_EQ(0, std::memcmp(b.data() + 12, f.data(), f.size()));
}

TEST_F(TapTest, SmallBufferDropsFrame) {
  auto f = frame(1000, 9);
  sockaddr_ll sa{};
  sa.sll_family = AF_PACKET;
  sa.sll_ifindex = tap->ifindex();
  sa.sll_halen = 6;
  ASSERT_EQ(sendto(sock, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 1000);
  // Drain until the TAP is empty: our 1000-byte frame must not come out
  // truncated into the 200-byte buffer.
  std::vector<uint8_t> b(200);
  iovec v{b.data(), b.size()};
  RxSlot s{&v, 1, 200, 0};
  bool ours_seen = false;
  for (int i = 0; i < 50; ++i) {
    pollfd pf{tap->rx_wake_fd(0), POLLIN, 0};
    if (poll(&pf, 1, 500) != 1) break;
    s.len = 0;
    if (tap->rx_burst(0, &s, 1) && s.len >= 26 && b[24] == (kProto >> 8) && b[25] == (kProto & 0xff))
      ours_seen = true;
  }
  EXPECT_FALSE(ours_seen);
  EXPECT_GE(tap->stats(0).rx_dropped.load(), 1u);
}

TEST(TapCreate, BadNames) {
  TapOptions o;
  o.ifname = "this-name-is-way-too-long";
  EXPECT_FALSE(TapBackend::create(o).ok());
  o.ifname = "ok";
  o.pairs = 0;
  EXPECT_FALSE(TapBackend::create(o).ok());
}

}  // namespace
}  // namespace vdpu::virtio::net
