// vhost-user Server against a fake device, over a real unix socket, driven by
// the front-end library: negotiation, memory, vring start/stop, the
// asynchronous GET_VRING_BASE, reconnect and the inflight buffer.
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "fixture.h"

namespace vdpu::vhost_user::test {
namespace {

fe::BlkClientOptions small_opts() {
  fe::BlkClientOptions o;
  o.num_queues = 2;
  o.queue_size = 64;
  o.depth = 8;
  o.max_io = 4096;
  return o;
}

TEST_F(ServerTest, NegotiatesFeaturesAndConfig) {
  auto fe = raw_frontend();
  auto f = fe->get_features();
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(*f & VHOST_USER_F_PROTOCOL_FEATURES);
  EXPECT_TRUE(*f & virtio::kFVersion1);
  EXPECT_FALSE(*f & virtio::kFAccessPlatform) << "no IOTLB: ACCESS_PLATFORM must be hidden";
  auto pf = fe->get_protocol_features();
  ASSERT_TRUE(pf.ok());
  EXPECT_EQ(*pf, kServerProtocolFeatures);
  auto nq = fe->get_queue_num();
  ASSERT_TRUE(nq.ok());
  EXPECT_EQ(*nq, FakeDevice::kQueues);
  auto slots = fe->get_max_mem_slots();
  ASSERT_TRUE(slots.ok());
  EXPECT_EQ(*slots, MemTable::kMaxSlots);
  auto cfg = fe->get_config(0, 60);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  vb::VirtioBlkConfig c{};
  std::memcpy(&c, cfg->data(), 60);
  EXPECT_EQ(c.capacity, FakeDevice::kCapacity);
  EXPECT_EQ(c.blk_size, 512u);
  // Writable field accepted, read-only one refused (device decides).
  const uint8_t wce = 1;
  EXPECT_TRUE(fe->set_config(offsetof(vb::VirtioBlkConfig, writeback), {&wce, 1}).ok());
  EXPECT_FALSE(fe->set_config(0, {&wce, 1}).ok());
  EXPECT_TRUE(fe->set_features(virtio::kFVersion1 | VHOST_USER_F_PROTOCOL_FEATURES).ok());
  EXPECT_TRUE(wait_for([&] { return dev_.features == virtio::kFVersion1; }));
  EXPECT_EQ(dev_.writeback, 1);
}

TEST_F(ServerTest, StartsQueuesWithTranslatedRings) {
  auto c = fe::BlkClient::connect(path_, small_opts());
  ASSERT_TRUE(c.ok()) << c.error().message;
  auto& cl = **c;
  ASSERT_TRUE(cl.start().ok());
  ASSERT_EQ(dev_.num_starts(), 2u);
  for (uint16_t q = 0; q < 2; ++q) {
    auto& s = dev_.starts[q];
    EXPECT_EQ(s.qid, q);
    EXPECT_EQ(s.cfg.size, 64);
    EXPECT_FALSE(s.cfg.packed);
    EXPECT_GE(s.cfg.kick_fd, 0);
    EXPECT_GE(s.cfg.call_fd, 0);
    ASSERT_TRUE(s.cfg.mem);
    // The server's pointers alias the client's ring memory (same memfd).
    auto& vq = cl.queue(q).vq();
    const uint8_t* client_desc = reinterpret_cast<const uint8_t*>(vq.desc_uva());
    EXPECT_EQ(std::memcmp(s.cfg.desc, client_desc, 16 * 64), 0);
    static_cast<uint8_t*>(s.cfg.used)[2] = uint8_t(0x50 + q);  // used->idx low byte
    EXPECT_EQ(vq.used_idx(), 0x50 + q);
    static_cast<uint8_t*>(s.cfg.used)[2] = 0;
    // Data buffers translate by guest-physical address.
    auto& d1 = vq.desc(1);
    EXPECT_EQ(s.cfg.mem->translate(d1.addr, d1.len), s.cfg.mem->translate_uva(cl.mem().uva(cl.queue(q).data(0)), 1));
  }
  EXPECT_EQ(server_->running_queues(), 2u);
}

TEST_F(ServerTest, GetVringBaseWaitsForTheDrain) {
  auto c = fe::BlkClient::connect(path_, small_opts());
  ASSERT_TRUE(c.ok());
  auto& fe = (*c)->fe();
  ASSERT_TRUE((*c)->start().ok());
  {
    std::lock_guard g(dev_.mu);
    dev_.hold_stop = true;
    dev_.state = {1234, 1234};
  }
  VringState s{0, 0};
  ASSERT_TRUE(fe.send(VHOST_USER_GET_VRING_BASE, &s, sizeof(s)).ok());
  ASSERT_TRUE(wait_for([&] {
    std::lock_guard g(dev_.mu);
    return dev_.held.size() == 1;
  }));
  // The device has not reported back: no reply may be sent yet.
  auto early = fe.recv(50);
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().code, Errc::kTimeout);
  on_reactor([&] {
    dev_.release_stops();
    return 0;
  });
  auto r = fe.recv(5000);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->hdr.request, VHOST_USER_GET_VRING_BASE);
  VringState out;
  std::memcpy(&out, r->payload.data(), sizeof(out));
  EXPECT_EQ(out.index, 0u);
  EXPECT_EQ(out.num, 1234u);
  EXPECT_FALSE(dev_.is_running(0));
  EXPECT_EQ(server_->running_queues(), 1u);
  // The stopped ring restarts from the returned base after a new kick.
  {
    std::lock_guard g(dev_.mu);
    dev_.hold_stop = false;
  }
  auto& vq = (*c)->queue(0);
  ASSERT_TRUE(fe.set_vring_base(0, 1234).ok());
  ASSERT_TRUE(fe.set_vring_kick(0, vq.kick_fd()).ok());
  ASSERT_EQ(dev_.num_starts(), 3u);
  EXPECT_EQ(dev_.starts[2].cfg.last_avail_idx, 1234);
}

TEST_F(ServerTest, RingNeedsEnableWithProtocolFeatures) {
  auto c = fe::BlkClient::connect(path_, small_opts());
  ASSERT_TRUE(c.ok());
  auto& cl = **c;
  auto& fe = cl.fe();
  ASSERT_TRUE(fe.set_features(cl.features()).ok());
  const MemRegion r = cl.mem().region();
  const int mfd = cl.mem().fd();
  ASSERT_TRUE(fe.set_mem_table({&r, 1}, {&mfd, 1}).ok());
  auto& vq = cl.queue(0).vq();
  ASSERT_TRUE(fe.set_vring_num(0, vq.size()).ok());
  ASSERT_TRUE(fe.set_vring_addr(0, vq.desc_uva(), vq.used_uva(), vq.avail_uva()).ok());
  ASSERT_TRUE(fe.set_vring_kick(0, -1).ok());  // polling
  EXPECT_EQ(dev_.num_starts(), 0u) << "started before SET_VRING_ENABLE";
  ASSERT_TRUE(fe.set_vring_enable(0, true).ok());
  ASSERT_EQ(dev_.num_starts(), 1u);
  EXPECT_EQ(dev_.starts[0].cfg.kick_fd, -1);
  // Disable stops it in the device; enable starts it again.
  ASSERT_TRUE(fe.set_vring_enable(0, false).ok());
  EXPECT_FALSE(dev_.is_running(0));
  ASSERT_TRUE(fe.set_vring_enable(0, true).ok());
  EXPECT_EQ(dev_.num_starts(), 2u);
  EXPECT_EQ(dev_.starts[1].cfg.last_avail_idx, 42) << "restarts from the drained state";
}

TEST_F(ServerTest, RingStartsEnabledWithoutProtocolFeatures) {
  auto c = fe::BlkClient::connect(path_, small_opts());
  ASSERT_TRUE(c.ok());
  auto& cl = **c;
  auto& fe = cl.fe();
  ASSERT_TRUE(fe.set_features(cl.features() & ~VHOST_USER_F_PROTOCOL_FEATURES).ok());
  const MemRegion r = cl.mem().region();
  const int mfd = cl.mem().fd();
  ASSERT_TRUE(fe.set_mem_table({&r, 1}, {&mfd, 1}).ok());
  auto& vq = cl.queue(1).vq();
  ASSERT_TRUE(fe.set_vring_num(1, vq.size()).ok());
  ASSERT_TRUE(fe.set_vring_addr(1, vq.desc_uva(), vq.used_uva(), vq.avail_uva()).ok());
  ASSERT_TRUE(fe.set_vring_kick(1, cl.queue(1).kick_fd()).ok());
  EXPECT_EQ(dev_.num_starts(), 1u);
}

TEST_F(ServerTest, CallFdChangeRestartsTheRing) {
  auto c = fe::BlkClient::connect(path_, small_opts());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->start().ok());
  UniqueFd efd(::eventfd(0, EFD_CLOEXEC));
  ASSERT_TRUE((*c)->fe().set_vring_call(1, efd.get()).ok());
  ASSERT_EQ(dev_.num_starts(), 3u);
  EXPECT_EQ(dev_.starts[2].qid, 1);
  EXPECT_GE(dev_.stops, 1);
}

TEST_F(ServerTest, DisconnectStopsQueuesAndReconnectWorks) {
  {
    auto c = fe::BlkClient::connect(path_, small_opts());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->start().ok());
    EXPECT_EQ(server_->running_queues(), 2u);
  }  // closes the socket
  ASSERT_TRUE(wait_for([&] { return dev_.num_resets() == 1; }));
  EXPECT_FALSE(dev_.is_running(0));
  EXPECT_FALSE(dev_.is_running(1));
  EXPECT_EQ(server_->stats().disconnects, 1u);
  auto c = fe::BlkClient::connect(path_, small_opts());
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE((*c)->start().ok());
  EXPECT_EQ(dev_.num_starts(), 4u);
  EXPECT_EQ(server_->stats().connections, 2u);
}

TEST_F(ServerTest, SecondFrontendIsRefused) {
  auto c = fe::BlkClient::connect(path_, small_opts());
  ASSERT_TRUE(c.ok());
  auto second = fe::Frontend::connect(path_);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE((*second)->peer_closed(5000));
  EXPECT_TRUE(wait_for([&] { return server_->stats().refused == 1; }));
  // The first one is unaffected.
  EXPECT_TRUE((*c)->fe().get_queue_num().ok());
}

TEST_F(ServerTest, InflightBufferIsKeptAcrossReconnects) {
  auto o = small_opts();
  o.inflight = true;
  {
    auto c = fe::BlkClient::connect(path_, o);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->start().ok());
    ASSERT_EQ(dev_.num_starts(), 2u);
    auto& inf = dev_.starts[1].cfg.inflight;
    ASSERT_NE(inf.base, nullptr);
    EXPECT_EQ(inf.size, inflight_queue_stride(64));
    // The device marks something inflight.
    static_cast<QueueRegionSplit*>(inf.base)->version = 1;
    static_cast<QueueRegionSplit*>(inf.base)->desc[3].inflight = 1;
  }
  ASSERT_TRUE(wait_for([&] { return dev_.num_resets() == 1; }));
  // A new connection that does not send the buffer again still gets it.
  auto c = fe::BlkClient::connect(path_, small_opts());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->start().ok());
  ASSERT_EQ(dev_.num_starts(), 4u);
  auto& inf = dev_.starts[3].cfg.inflight;
  ASSERT_NE(inf.base, nullptr);
  EXPECT_EQ(static_cast<QueueRegionSplit*>(inf.base)->desc[3].inflight, 1);
}

TEST_F(ServerTest, SetInflightFdMapsTheFrontendsBuffer) {
  auto fe = raw_frontend();
  UniqueFd fd;
  auto d = fe->get_inflight_fd(2, 64, &fd);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->mmap_size, 2 * inflight_queue_stride(64));
  EXPECT_EQ(d->mmap_offset, 0u);
  // What the back-end sees is what the front-end keeps.
  void* p = mmap(nullptr, d->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(p, MAP_FAILED);
  static_cast<uint8_t*>(p)[inflight_queue_stride(64) + 16] = 7;  // queue 1, desc[0].inflight
  ASSERT_TRUE(fe->set_inflight_fd(*d, fd.get()).ok());
  munmap(p, d->mmap_size);
  // The packed 20-byte form is answered in kind.
  InflightDesc req{0, 0, 1, 32, 0};
  ASSERT_TRUE(fe->send(VHOST_USER_GET_INFLIGHT_FD, &req, kInflightDescPacked).ok());
  auto r = fe->recv(5000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->hdr.size, kInflightDescPacked);
  EXPECT_EQ(r->fds.size(), 1u);
}

TEST_F(ServerTest, MemSlotsAddAndRemove) {
  auto o = small_opts();
  o.mem_slots = true;
  o.extra_mem = 0;
  auto c = fe::BlkClient::connect(path_, o);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->start().ok());
  ASSERT_EQ(dev_.num_starts(), 2u);
  auto extra = fe::GuestMemory::create(2 << 20, 0x100000000ull);
  ASSERT_TRUE(extra.ok());
  auto& fe = (*c)->fe();
  const MemRegion r2 = (*extra)->region();
  ASSERT_TRUE(fe.add_mem_reg(r2, (*extra)->fd()).ok());
  {
    std::lock_guard g(dev_.mu);
    ASSERT_TRUE(dev_.last_mem);
    EXPECT_EQ(dev_.last_mem->regions().size(), 2u);
    EXPECT_NE(dev_.last_mem->translate(0x100000000ull, 4096), nullptr);
  }
  // Overlapping region refused; removal of an unknown one refused.
  EXPECT_FALSE(fe.add_mem_reg(r2, (*extra)->fd()).ok());
  ASSERT_TRUE(fe.rem_mem_reg(r2).ok());
  EXPECT_FALSE(fe.rem_mem_reg(r2).ok());
  {
    std::lock_guard g(dev_.mu);
    EXPECT_EQ(dev_.last_mem->regions().size(), 1u);
  }
  // Rings keep running on their memory.
  EXPECT_EQ(server_->running_queues(), 2u);
}

TEST_F(ServerTest, ResetDeviceStopsEverything) {
  auto c = fe::BlkClient::connect(path_, small_opts());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->start().ok());
  ASSERT_TRUE((*c)->fe().reset_device().ok());
  EXPECT_EQ(server_->running_queues(), 0u);
  EXPECT_EQ(dev_.num_resets(), 1);
  EXPECT_TRUE((*c)->fe().get_queue_num().ok());  // still connected
}

TEST_F(ServerTest, ShutdownStopsAndUnlinks) {
  auto c = fe::BlkClient::connect(path_, small_opts());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->start().ok());
  std::promise<void> done;
  on_reactor([&] {
    server_->shutdown([&] { done.set_value(); });
    return 0;
  });
  done.get_future().wait();
  EXPECT_EQ(server_->running_queues(), 0u);
  EXPECT_TRUE((*c)->fe().peer_closed(5000));
  EXPECT_NE(access(path_.c_str(), F_OK), 0);
}

TEST_F(ServerTest, AdoptedSocketPair) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  FakeDevice dev2;
  auto s = on_reactor([&] { return Server::adopt(*reactor_, dev2, UniqueFd(sv[0])); });
  ASSERT_TRUE(s.ok());
  auto c = fe::BlkClient::attach(std::make_unique<fe::Frontend>(UniqueFd(sv[1])), small_opts());
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE((*c)->start().ok());
  EXPECT_EQ(dev2.num_starts(), 2u);
  on_reactor([&] {
    s->reset();
    return 0;
  });
}

}  // namespace
}  // namespace vdpu::vhost_user::test
