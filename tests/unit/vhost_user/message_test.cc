// Framing and per-request rules (message.h) and the memory table (memory.h),
// without a server.
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "transport/vhost_user/memory.h"
#include "transport/vhost_user/message.h"

namespace vdpu::vhost_user {
namespace {

Message make(uint32_t req, uint32_t size, uint32_t nfds = 0) {
  Message m;
  m.hdr = {req, VHOST_USER_VERSION, size};
  for (uint32_t i = 0; i < nfds; ++i) m.fds[m.nfds++].reset(eventfd(0, EFD_CLOEXEC));
  return m;
}

TEST(CheckMessage, SizesPerRequest) {
  EXPECT_TRUE(check_message(make(VHOST_USER_GET_FEATURES, 0)).ok());
  EXPECT_FALSE(check_message(make(VHOST_USER_GET_FEATURES, 8)).ok());
  EXPECT_TRUE(check_message(make(VHOST_USER_SET_FEATURES, 8)).ok());
  EXPECT_FALSE(check_message(make(VHOST_USER_SET_FEATURES, 7)).ok());
  EXPECT_TRUE(check_message(make(VHOST_USER_SET_VRING_ADDR, 40)).ok());
  EXPECT_FALSE(check_message(make(VHOST_USER_SET_VRING_ADDR, 48)).ok());
  // QEMU sends its unpacked VhostUserInflight (24 bytes), rust-vmm 20.
  EXPECT_TRUE(check_message(make(VHOST_USER_GET_INFLIGHT_FD, 20)).ok());
  EXPECT_TRUE(check_message(make(VHOST_USER_GET_INFLIGHT_FD, 24)).ok());
  EXPECT_FALSE(check_message(make(VHOST_USER_GET_INFLIGHT_FD, 22)).ok());
  EXPECT_FALSE(check_message(make(VHOST_USER_GET_INFLIGHT_FD, 28)).ok());
  EXPECT_TRUE(check_message(make(12345, 100)).ok()) << "unknown requests are refused by the handler";
}

TEST(CheckMessage, FdCounts) {
  EXPECT_FALSE(check_message(make(VHOST_USER_SET_VRING_NUM, 8, 1)).ok());
  auto k = make(VHOST_USER_SET_VRING_KICK, 8, 1);
  EXPECT_TRUE(check_message(k).ok());
  uint64_t nofd = VHOST_USER_VRING_NOFD_MASK;
  std::memcpy(k.payload, &nofd, 8);
  EXPECT_FALSE(check_message(k).ok());
  auto k0 = make(VHOST_USER_SET_VRING_KICK, 8, 0);
  std::memcpy(k0.payload, &nofd, 8);
  EXPECT_TRUE(check_message(k0).ok());
  EXPECT_TRUE(check_message(make(VHOST_USER_REM_MEM_REG, 40, 0)).ok());
  EXPECT_TRUE(check_message(make(VHOST_USER_REM_MEM_REG, 40, 1)).ok());
  EXPECT_FALSE(check_message(make(VHOST_USER_REM_MEM_REG, 40, 2)).ok());
  EXPECT_FALSE(check_message(make(VHOST_USER_ADD_MEM_REG, 40, 0)).ok());
  auto t = make(VHOST_USER_SET_MEM_TABLE, 8 + 64, 2);
  uint32_t n = 2;
  std::memcpy(t.payload, &n, 4);
  EXPECT_TRUE(check_message(t).ok());
  n = 3;
  std::memcpy(t.payload, &n, 4);
  EXPECT_FALSE(check_message(t).ok()) << "payload shorter than 3 regions";
  auto tr = make(VHOST_USER_SET_VRING_NUM, 8);
  tr.fds_truncated = true;
  EXPECT_FALSE(check_message(tr).ok());
}

TEST(CheckMessage, ConfigSizeMatchesPayload) {
  auto m = make(VHOST_USER_GET_CONFIG, 12 + 60);
  ConfigHeader ch{0, 60, 0};
  std::memcpy(m.payload, &ch, sizeof(ch));
  EXPECT_TRUE(check_message(m).ok());
  ch.size = 61;
  std::memcpy(m.payload, &ch, sizeof(ch));
  EXPECT_FALSE(check_message(m).ok());
  ch.size = 0xffffffff;
  std::memcpy(m.payload, &ch, sizeof(ch));
  EXPECT_FALSE(check_message(m).ok());
}

TEST(Receiver, ReassemblesSplitMessagesWithFds) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  Receiver rx;
  std::string err;
  EXPECT_EQ(rx.read(a.get(), &err), Receiver::Rx::kAgain);
  // Header in two pieces, the fd on the first byte, payload later.
  Header h{VHOST_USER_SET_VRING_KICK, VHOST_USER_VERSION, 8};
  int efd = eventfd(0, EFD_CLOEXEC);
  {
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
    iovec iov{&h, 5};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof(cbuf);
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &efd, sizeof(int));
    ASSERT_EQ(sendmsg(b.get(), &mh, 0), 5);
  }
  close(efd);
  EXPECT_EQ(rx.read(a.get(), &err), Receiver::Rx::kAgain);
  ASSERT_EQ(write(b.get(), reinterpret_cast<char*>(&h) + 5, 7), 7);
  EXPECT_EQ(rx.read(a.get(), &err), Receiver::Rx::kAgain);
  uint64_t idx = 1;
  ASSERT_EQ(write(b.get(), &idx, 8), 8);
  ASSERT_EQ(rx.read(a.get(), &err), Receiver::Rx::kMessage);
  EXPECT_EQ(rx.msg().hdr.request, VHOST_USER_SET_VRING_KICK);
  EXPECT_EQ(rx.msg().nfds, 1u);
  EXPECT_EQ(rx.msg().u64(), 1u);
  EXPECT_TRUE(check_message(rx.msg()).ok());
  rx.reset();
  b.reset();
  EXPECT_EQ(rx.read(a.get(), &err), Receiver::Rx::kClosed);
}

TEST(Receiver, RefusesBadHeaders) {
  for (uint32_t flags : {0u, 2u, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK, VHOST_USER_VERSION | 0x10u}) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    UniqueFd a(sv[0]), b(sv[1]);
    Header h{1, flags, 0};
    ASSERT_EQ(write(b.get(), &h, sizeof(h)), ssize_t(sizeof(h)));
    Receiver rx;
    std::string err;
    EXPECT_EQ(rx.read(a.get(), &err), Receiver::Rx::kError) << flags;
  }
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  Header h{1, VHOST_USER_VERSION, kMaxPayload + 1};
  ASSERT_EQ(write(b.get(), &h, sizeof(h)), ssize_t(sizeof(h)));
  Receiver rx;
  std::string err;
  EXPECT_EQ(rx.read(a.get(), &err), Receiver::Rx::kError);
}

// --- MemTable ---------------------------------------------------------------

UniqueFd memfd(size_t size) {
  UniqueFd fd(memfd_create("t", MFD_CLOEXEC));
  EXPECT_EQ(ftruncate(fd.get(), off_t(size)), 0);
  return fd;
}

TEST(MemTable, MapsWithOffsetAndKeepsMappingsAliveInMaps) {
  auto fd = memfd(1 << 20);
  void* mine = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(mine, MAP_FAILED);
  static_cast<uint8_t*>(mine)[0x10000 + 5] = 0xab;
  MemTable t;
  MemRegion r{0x1000000, 0x20000, 0x7000000, 0x10000};
  UniqueFd fds[1] = {UniqueFd(dup(fd.get()))};
  ASSERT_TRUE(t.set(&r, fds, 1).ok());
  auto map = t.build();
  ASSERT_EQ(map->regions().size(), 1u);
  uint8_t* p = map->translate(0x1000000 + 5, 1);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 0xab);
  EXPECT_EQ(map->translate_uva(0x7000000 + 5, 1), p);
  EXPECT_EQ(map->translate(0x1000000 + 0x20000, 1), nullptr);
  // Clearing the table does not unmap what a live map points into.
  t.clear();
  EXPECT_EQ(*p, 0xab);
  map.reset();
  munmap(mine, 1 << 20);
}

TEST(MemTable, SlotsLimitAndRemove) {
  MemTable t;
  for (uint32_t i = 0; i < MemTable::kMaxSlots; ++i) {
    MemRegion r{uint64_t(i) << 20, 4096, (uint64_t(i) + 1) << 32, 0};
    ASSERT_TRUE(t.add(r, memfd(4096)).ok()) << i;
  }
  MemRegion extra{uint64_t(100) << 20, 4096, uint64_t(100) << 32, 0};
  auto st = t.add(extra, memfd(4096));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kNoMemory);
  MemRegion r0{0, 4096, 1ull << 32, 12345};  // mmap offset ignored
  EXPECT_TRUE(t.remove(r0).ok());
  EXPECT_FALSE(t.remove(r0).ok());
  EXPECT_EQ(t.size(), MemTable::kMaxSlots - 1);
}

TEST(Inflight, CreateAndMapAgree) {
  UniqueFd fd;
  auto a = create_inflight(3, 128, &fd);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size, 3 * inflight_queue_stride(128));
  EXPECT_EQ(inflight_queue_stride(128), 16u + 128 * 16 + 48);  // rounded to 64
  auto q2 = a->queue(2, 128);
  ASSERT_NE(q2.base, nullptr);
  static_cast<uint8_t*>(q2.base)[0] = 9;
  EXPECT_EQ(a->queue(3, 128).base, nullptr);
  EXPECT_EQ(a->queue(0, 256).base, nullptr) << "ring larger than the buffer";
  auto b = map_inflight(fd.get(), InflightDesc{a->size, 0, 3, 128});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(static_cast<uint8_t*>(b->queue(2, 128).base)[0], 9);
  // The buffer we create is sealed against shrinking.
  EXPECT_NE(ftruncate(fd.get(), 0), 0);
}

}  // namespace
}  // namespace vdpu::vhost_user
