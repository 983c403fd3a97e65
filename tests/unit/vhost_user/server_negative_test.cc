// Negative tests: one or more per message. A malformed or refused request is
// answered with a non-zero ack when NEED_REPLY is set (vhost-user.rst
// "REPLY_ACK": "non-zero on failure"), or ends the connection when it cannot
// be answered (bad header, a malformed request whose reply has a body). The
// server never crashes and never leaks a file descriptor.
#include <sys/eventfd.h>
#include <sys/mman.h>

#include "fixture.h"

namespace vdpu::vhost_user::test {
namespace {

constexpr uint32_t kNeed = VHOST_USER_VERSION | VHOST_USER_NEED_REPLY_MASK;

class NegativeTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    baseline_fds_ = count_open_fds();
  }
  void TearDown() override {
    fe_.reset();
    mem_.reset();
    // Everything the front-end sent was closed by the server.
    EXPECT_TRUE(wait_for([&] { return server_->pending_ops() == 0 && !server_->connected(); }));
    EXPECT_EQ(count_open_fds(), baseline_fds_) << "fd leak";
    ServerTest::TearDown();
  }
  fe::Frontend& fe() {
    if (!fe_) fe_ = raw_frontend();
    return *fe_;
  }
  // Guest memory with a table already set.
  void setup_memory() {
    auto m = fe::GuestMemory::create(4 << 20);
    ASSERT_TRUE(m.ok());
    mem_ = std::move(*m);
    const MemRegion r = mem_->region();
    const int fd = mem_->fd();
    ASSERT_TRUE(fe().set_mem_table({&r, 1}, {&fd, 1}).ok());
    // With VHOST_USER_F_PROTOCOL_FEATURES rings wait for SET_VRING_ENABLE.
    ASSERT_TRUE(fe().set_features(virtio::kFVersion1 | VHOST_USER_F_PROTOCOL_FEATURES).ok());
  }
  bool closed() { return fe().peer_closed(5000); }

  int baseline_fds_ = 0;
  std::unique_ptr<fe::Frontend> fe_;
  std::unique_ptr<fe::GuestMemory> mem_;
};

// --- header ------------------------------------------------------------------

TEST_F(NegativeTest, BadVersionClosesTheConnection) {
  uint64_t v = 0;
  ASSERT_TRUE(fe().send(VHOST_USER_SET_FEATURES, &v, 8, {}, 0x2).ok());
  EXPECT_TRUE(closed());
}

TEST_F(NegativeTest, ReplyFlagInARequestClosesTheConnection) {
  ASSERT_TRUE(fe().send(VHOST_USER_GET_FEATURES, nullptr, 0, {}, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK).ok());
  EXPECT_TRUE(closed());
}

TEST_F(NegativeTest, UnknownFlagBitClosesTheConnection) {
  ASSERT_TRUE(fe().send(VHOST_USER_GET_FEATURES, nullptr, 0, {}, VHOST_USER_VERSION | 0x100).ok());
  EXPECT_TRUE(closed());
}

TEST_F(NegativeTest, OversizedPayloadClosesTheConnection) {
  Header h{VHOST_USER_SET_CONFIG, kNeed, kMaxPayload + 1};
  ASSERT_TRUE(fe().send_bytes(&h, sizeof(h)).ok());
  EXPECT_TRUE(closed());
}

TEST_F(NegativeTest, EofInsideAMessageIsADisconnect) {
  Header h{VHOST_USER_SET_FEATURES, kNeed, 8};
  ASSERT_TRUE(fe().send_bytes(&h, sizeof(h)).ok());
  ASSERT_TRUE(fe().send_bytes("abc", 3).ok());
  fe_.reset();  // the server sees EOF mid-payload
  EXPECT_TRUE(wait_for([&] { return server_->stats().disconnects == 1; }));
}

TEST_F(NegativeTest, UnknownRequestWithNeedReplyIsRefused) {
  uint64_t v = 0;
  EXPECT_NE(ack_of(fe(), 99, &v, 8), 0);
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_LOG_BASE, &v, 8), 0);  // wrong size and not offered
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_STATUS, &v, 8), 0);    // not offered
  EXPECT_EQ(ack_of(fe(), VHOST_USER_SET_OWNER, nullptr, 0), 0);  // still serving
}

TEST_F(NegativeTest, UnknownRequestWithAnFdClosesIt) {
  uint64_t v = 0;
  int efd = eventfd(0, EFD_CLOEXEC);
  EXPECT_NE(ack_of(fe(), 77, &v, 8, {&efd, 1}), 0);
  close(efd);
}

// --- features ------------------------------------------------------------------

TEST_F(NegativeTest, SetFeaturesShortPayload) {
  uint32_t v = 0;
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_FEATURES, &v, 4), 0);
}

TEST_F(NegativeTest, SetFeaturesNotOffered) {
  uint64_t v = virtio::kFVersion1 | virtio::kFAccessPlatform;
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_FEATURES, &v, 8), 0);
  v = 1ull << 63;
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_FEATURES, &v, 8), 0);
}

TEST_F(NegativeTest, SetProtocolFeaturesNotOffered) {
  uint64_t v = pf_bit(VHOST_USER_PROTOCOL_F_LOG_SHMFD);
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_PROTOCOL_FEATURES, &v, 8), 0);
}

TEST_F(NegativeTest, GetFeaturesWithPayloadClosesTheConnection) {
  uint64_t v = 0;
  ASSERT_TRUE(fe().send(VHOST_USER_GET_FEATURES, &v, 8).ok());
  EXPECT_TRUE(closed());
}

// --- memory table ------------------------------------------------------------

TEST_F(NegativeTest, SetMemTableMissingFd) {
  auto m = fe::GuestMemory::create(2 << 20);
  ASSERT_TRUE(m.ok());
  MemoryTable t{};
  t.nregions = 1;
  t.regions[0] = (*m)->region();
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_MEM_TABLE, &t, 8 + 32), 0);
}

TEST_F(NegativeTest, SetMemTableTooManyRegions) {
  MemoryTable t{};
  t.nregions = 9;
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_MEM_TABLE, &t, sizeof(t)), 0);
}

TEST_F(NegativeTest, SetMemTablePayloadShorterThanRegions) {
  auto m = fe::GuestMemory::create(2 << 20);
  ASSERT_TRUE(m.ok());
  MemoryTable t{};
  t.nregions = 2;
  t.regions[0] = (*m)->region();
  const int fds[2] = {(*m)->fd(), (*m)->fd()};
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, fds), 0);
}

TEST_F(NegativeTest, TooManyFdsAreAllClosed) {
  int fds[12];
  for (int& f : fds) f = eventfd(0, EFD_CLOEXEC);
  MemoryTable t{};
  t.nregions = 1;
  Header h{VHOST_USER_SET_MEM_TABLE, kNeed, 8 + 32};
  uint8_t buf[sizeof(h) + 40] = {};
  std::memcpy(buf, &h, sizeof(h));
  std::memcpy(buf + sizeof(h), &t, 40);
  ASSERT_TRUE(fe().send_bytes(buf, sizeof(buf), fds).ok());
  auto r = fe().recv(5000);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->u64(), 0u);
  for (int f : fds) close(f);
}

TEST_F(NegativeTest, SetMemTableRegionBeyondTheFile) {
  auto m = fe::GuestMemory::create(2 << 20);
  ASSERT_TRUE(m.ok());
  MemRegion r = (*m)->region();
  r.memory_size = 4 << 20;  // the memfd has 2 MiB: touching the rest would SIGBUS
  const int fd = (*m)->fd();
  MemoryTable t{};
  t.nregions = 1;
  t.regions[0] = r;
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, {&fd, 1}), 0);
  r.memory_size = 2 << 20;
  r.mmap_offset = 4096;  // offset + size beyond the end
  t.regions[0] = r;
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, {&fd, 1}), 0);
}

TEST_F(NegativeTest, SetMemTableNotARegularFile) {
  int efd = eventfd(0, EFD_CLOEXEC);
  MemoryTable t{};
  t.nregions = 1;
  t.regions[0] = {0, 4096, 0x10000, 0};
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, {&efd, 1}), 0);
  close(efd);
}

TEST_F(NegativeTest, SetMemTableOverlapAndWrap) {
  auto m = fe::GuestMemory::create(2 << 20);
  ASSERT_TRUE(m.ok());
  const int fds[2] = {(*m)->fd(), (*m)->fd()};
  MemoryTable t{};
  t.nregions = 2;
  t.regions[0] = (*m)->region();
  t.regions[1] = (*m)->region();  // same guest range twice
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_MEM_TABLE, &t, 8 + 64, fds), 0);
  t.nregions = 1;
  t.regions[0].guest_phys_addr = ~0ull - 4095;  // wraps
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, {fds, 1}), 0);
  t.regions[0] = (*m)->region();
  t.regions[0].memory_size = 0;
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_MEM_TABLE, &t, 8 + 32, {fds, 1}), 0);
}

TEST_F(NegativeTest, AddMemRegWithoutFdAndRemWithFd) {
  auto m = fe::GuestMemory::create(2 << 20);
  ASSERT_TRUE(m.ok());
  SingleMemRegion s{0, (*m)->region()};
  EXPECT_NE(ack_of(fe(), VHOST_USER_ADD_MEM_REG, &s, sizeof(s)), 0);
  const int fd = (*m)->fd();
  EXPECT_NE(ack_of(fe(), VHOST_USER_ADD_MEM_REG, &s, 32, {&fd, 1}), 0);  // short payload
  ASSERT_EQ(ack_of(fe(), VHOST_USER_ADD_MEM_REG, &s, sizeof(s), {&fd, 1}), 0);
  // REM_MEM_REG with an fd: accepted, fd closed unused (spec MAY/MUST).
  EXPECT_EQ(ack_of(fe(), VHOST_USER_REM_MEM_REG, &s, sizeof(s), {&fd, 1}), 0);
}

// --- vrings --------------------------------------------------------------------

TEST_F(NegativeTest, VringNumBadValues) {
  VringState s{0, 0};
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_NUM, &s, sizeof(s)), 0);  // zero
  s.num = 512;                                                           // > max_queue_size
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_NUM, &s, sizeof(s)), 0);
  s = {FakeDevice::kQueues, 64};  // queue index >= num queues
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_NUM, &s, sizeof(s)), 0);
  s = {0, 64};
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_NUM, &s, 4), 0);  // short
  uint8_t big[12] = {};
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_NUM, big, 12), 0);  // bad size
}

TEST_F(NegativeTest, VringNumWithUnexpectedFd) {
  VringState s{0, 64};
  int efd = eventfd(0, EFD_CLOEXEC);
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_NUM, &s, sizeof(s), {&efd, 1}), 0);
  close(efd);
}

TEST_F(NegativeTest, VringBaseBadIndexAndRange) {
  VringState s{200, 0};
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_BASE, &s, sizeof(s)), 0);
  s = {0, 0x10000};  // split ring: 16-bit index
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_BASE, &s, sizeof(s)), 0);
}

TEST_F(NegativeTest, VringAddrBadIndexFlagsSize) {
  VringAddr a{FakeDevice::kQueues, 0, 0, 0, 0, 0};
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_ADDR, &a, sizeof(a)), 0);
  a = {0, VHOST_VRING_F_LOG, 0, 0, 0, 0};  // logging never offered
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_ADDR, &a, sizeof(a)), 0);
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_ADDR, &a, 32), 0);
}

TEST_F(NegativeTest, RingOutsideMemoryIsNotStarted) {
  setup_memory();
  const uint64_t base = mem_->uva(mem_->base());
  VringState n{0, 64};
  ASSERT_EQ(ack_of(fe(), VHOST_USER_SET_VRING_NUM, &n, sizeof(n)), 0);
  // Used ring ends past the region.
  VringAddr a{0, 0, base, base + mem_->size() - 8, base + 4096, 0};
  ASSERT_EQ(ack_of(fe(), VHOST_USER_SET_VRING_ADDR, &a, sizeof(a)), 0);
  uint64_t kick = 0 | VHOST_USER_VRING_NOFD_MASK;
  VringState en{0, 1};
  ASSERT_EQ(ack_of(fe(), VHOST_USER_SET_VRING_KICK, &kick, 8), 0);
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_ENABLE, &en, sizeof(en)), 0);
  // Descriptor table unaligned.
  a = {0, 0, base + 8, base + 8192, base + 4096, 0};
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_ADDR, &a, sizeof(a)), 0);
  // Completely outside.
  a = {0, 0, 0xdead0000, base + 8192, base + 4096, 0};
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_ADDR, &a, sizeof(a)), 0);
  EXPECT_EQ(dev_.num_starts(), 0u);
}

TEST_F(NegativeTest, SplitRingSizeNotPowerOfTwo) {
  setup_memory();
  const uint64_t base = mem_->uva(mem_->base());
  VringState n{0, 100};
  ASSERT_EQ(ack_of(fe(), VHOST_USER_SET_VRING_NUM, &n, sizeof(n)), 0);
  VringAddr a{0, 0, base, base + 8192, base + 4096, 0};
  ASSERT_EQ(ack_of(fe(), VHOST_USER_SET_VRING_ADDR, &a, sizeof(a)), 0);
  uint64_t kick = VHOST_USER_VRING_NOFD_MASK;
  ASSERT_EQ(ack_of(fe(), VHOST_USER_SET_VRING_KICK, &kick, 8), 0);
  VringState en{0, 1};
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_ENABLE, &en, sizeof(en)), 0);
  EXPECT_EQ(dev_.num_starts(), 0u);
}

TEST_F(NegativeTest, VringKickFdRules) {
  uint64_t u = 0;  // no NOFD bit, no fd
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_KICK, &u, 8), 0);
  int efd = eventfd(0, EFD_CLOEXEC);
  u = VHOST_USER_VRING_NOFD_MASK;  // NOFD but an fd came
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_CALL, &u, 8, {&efd, 1}), 0);
  u = FakeDevice::kQueues;  // bad index
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_ERR, &u, 8, {&efd, 1}), 0);
  u = 1ull << 20;  // unknown bits
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_KICK, &u, 8, {&efd, 1}), 0);
  const int two[2] = {efd, efd};
  u = 0;
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_KICK, &u, 8, two), 0);
  close(efd);
}

TEST_F(NegativeTest, VringEnableBadValues) {
  VringState s{0, 2};
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_ENABLE, &s, sizeof(s)), 0);
  s = {FakeDevice::kQueues, 1};
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_VRING_ENABLE, &s, sizeof(s)), 0);
}

TEST_F(NegativeTest, GetVringBaseBadIndexClosesTheConnection) {
  VringState s{FakeDevice::kQueues, 0};
  ASSERT_TRUE(fe().send(VHOST_USER_GET_VRING_BASE, &s, sizeof(s)).ok());
  EXPECT_TRUE(closed());
}

TEST_F(NegativeTest, GetVringBaseOfAStoppedRingReturnsItsBase) {
  VringState s{1, 77};
  ASSERT_EQ(ack_of(fe(), VHOST_USER_SET_VRING_BASE, &s, sizeof(s)), 0);
  auto b = fe().get_vring_base(1);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, 77u);
}

// --- config ----------------------------------------------------------------------

TEST_F(NegativeTest, GetConfigOutOfRangeRepliesEmpty) {
  uint8_t buf[12 + 16] = {};
  ConfigHeader ch{250, 16, 0};
  std::memcpy(buf, &ch, sizeof(ch));
  ASSERT_TRUE(fe().send(VHOST_USER_GET_CONFIG, buf, sizeof(buf)).ok());
  auto r = fe().recv(5000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->hdr.size, 0u) << "zero-length payload signals the error";
}

TEST_F(NegativeTest, GetConfigSizeMismatchClosesTheConnection) {
  uint8_t buf[12 + 16] = {};
  ConfigHeader ch{0, 60, 0};  // claims 60 bytes, carries 16
  std::memcpy(buf, &ch, sizeof(ch));
  ASSERT_TRUE(fe().send(VHOST_USER_GET_CONFIG, buf, sizeof(buf)).ok());
  EXPECT_TRUE(closed());
}

TEST_F(NegativeTest, SetConfigBadFlagsAndReadOnly) {
  uint8_t buf[12 + 1] = {};
  ConfigHeader ch{offsetof(vb::VirtioBlkConfig, writeback), 1, 2};
  std::memcpy(buf, &ch, sizeof(ch));
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_CONFIG, buf, sizeof(buf)), 0);
  ch = {0, 1, 0};  // capacity: read-only
  std::memcpy(buf, &ch, sizeof(ch));
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_CONFIG, buf, sizeof(buf)), 0);
}

// --- inflight ----------------------------------------------------------------

TEST_F(NegativeTest, GetInflightFdBadGeometryClosesTheConnection) {
  InflightDesc d{0, 0, 0, 64};
  ASSERT_TRUE(fe().send(VHOST_USER_GET_INFLIGHT_FD, &d, sizeof(d)).ok());
  EXPECT_TRUE(closed());
}

TEST_F(NegativeTest, SetInflightFdMissingFdAndTooSmall) {
  InflightDesc d{4096, 0, 2, 64};
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_INFLIGHT_FD, &d, sizeof(d)), 0);  // no fd
  int mfd = memfd_create("x", MFD_CLOEXEC);
  ASSERT_EQ(ftruncate(mfd, 4096), 0);
  // 2 queues of 64 need 2 * 1088 bytes... but mmap_size says less.
  d = {1024, 0, 2, 64};
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_INFLIGHT_FD, &d, sizeof(d), {&mfd, 1}), 0);
  d = {8192, 0, 2, 64};  // beyond the file
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_INFLIGHT_FD, &d, sizeof(d), {&mfd, 1}), 0);
  d = {4096, 0, 2, 64};
  EXPECT_EQ(ack_of(fe(), VHOST_USER_SET_INFLIGHT_FD, &d, sizeof(d), {&mfd, 1}), 0);
  close(mfd);
}

// --- misc ----------------------------------------------------------------------

TEST_F(NegativeTest, SetOwnerWithPayload) {
  uint64_t v = 0;
  EXPECT_NE(ack_of(fe(), VHOST_USER_SET_OWNER, &v, 8), 0);
}

TEST_F(NegativeTest, GarbageStreamNeverCrashes) {
  uint8_t junk[4096];
  uint32_t x = 12345;
  for (auto& b : junk) b = uint8_t((x = x * 1103515245 + 12345) >> 16);
  (void)fe().send_bytes(junk, sizeof(junk));
  EXPECT_TRUE(closed());
  // And the server still serves the next front-end.
  fe_.reset();
  EXPECT_TRUE(wait_for([&] { return !server_->connected() && server_->pending_ops() == 0; }));
  fe_ = raw_frontend();
  EXPECT_TRUE(fe_->get_queue_num().ok());
}

}  // namespace
}  // namespace vdpu::vhost_user::test
