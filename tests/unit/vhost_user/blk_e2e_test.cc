// End to end over a real unix socket: vhost-user Server + the virtio-blk
// device model (BlkDevice) on a malloc bdev, driven by the front-end
// library: write, read back, verify; flush; errors; stop/restart; reconnect.
#include <gtest/gtest.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "bdev/malloc/malloc.h"
#include "runtime/runtime.h"
#include "transport/vhost_user/frontend/blk_client.h"
#include "transport/vhost_user/server.h"
#include "virtio/blk/blk_device.h"

namespace vdpu::vhost_user::test {
namespace {

namespace vb = virtio::blk;

class BlkE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = "/tmp/vdpu-vu-e2e-" + std::to_string(getpid()) + ".sock";
    rt::Options o;
    o.cores = {0};
    o.pin = false;
    o.event_mode = true;  // the machine is shared: sleep when idle
    rt_ = std::make_unique<rt::Runtime>(o);
    ASSERT_TRUE(rt_->start().ok());
    main_ = std::thread([this] { rt_->run_main(); });
    Status st = on_main([this]() -> Status {
      auto b = bdev::malloc::create({"E2eMalloc", 8192, 512, "", 0});  // 4 MiB
      if (!b) return b.error();
      vb::BlkOptions bo;
      bo.num_queues = 2;
      bo.queue_size = 128;
      bo.seg_max = 126;
      bo.size_max = 1 << 20;
      auto d = vb::BlkDevice::create(bo, "E2eMalloc", *rt_);
      if (!d) return d.error();
      dev_ = std::move(*d);
      auto s = Server::listen(rt_->main(), *dev_, path_);
      if (!s) return s.error();
      server_ = std::move(*s);
      return {};
    });
    ASSERT_TRUE(st.ok()) << st.error().message;
  }

  void TearDown() override {
    std::promise<void> done;
    rt_->main().send_blocking([&] {
      server_->shutdown([&] {
        dev_->stop_all([&] {
          server_.reset();
          dev_.reset();
          (void)bdev::malloc::destroy("E2eMalloc");
          done.set_value();
        });
      });
    });
    done.get_future().wait();
    rt_->stop();
    main_.join();
    rt_.reset();
  }

  template <class F>
  auto on_main(F&& fn) -> decltype(fn()) {
    std::promise<decltype(fn())> p;
    auto fut = p.get_future();
    rt_->main().send_blocking([&] { p.set_value(fn()); });
    return fut.get();
  }

  static fe::BlkClientOptions opts(uint32_t descs = 3) {
    fe::BlkClientOptions o;
    o.num_queues = 2;
    o.queue_size = 128;
    o.depth = 16;
    o.max_io = 65536;
    o.descs = descs;
    return o;
  }

  void write_read_verify(fe::BlkClient& c, uint16_t q, uint64_t sector, uint32_t len, uint8_t seed) {
    std::vector<uint8_t> out(len), in(len, 0);
    for (uint32_t i = 0; i < len; ++i) out[i] = uint8_t(seed + i * 7);
    auto w = c.io(q, vb::VIRTIO_BLK_T_OUT, sector, out.data(), len);
    ASSERT_TRUE(w.ok()) << w.error().message;
    ASSERT_EQ(*w, vb::VIRTIO_BLK_S_OK);
    auto r = c.io(q, vb::VIRTIO_BLK_T_IN, sector, in.data(), len);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(*r, vb::VIRTIO_BLK_S_OK);
    EXPECT_EQ(in, out);
  }

  std::string path_;
  std::unique_ptr<rt::Runtime> rt_;
  std::thread main_;
  std::unique_ptr<vb::BlkDevice> dev_;
  std::unique_ptr<Server> server_;
};

TEST_F(BlkE2eTest, WriteReadVerifyOnBothQueues) {
  auto c = fe::BlkClient::connect(path_, opts());
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ((*c)->capacity_sectors(), 8192u);
  ASSERT_TRUE((*c)->start().ok());
  write_read_verify(**c, 0, 0, 4096, 1);
  write_read_verify(**c, 1, 100, 65536, 2);
  write_read_verify(**c, 0, 8192 - 8, 4096, 3);  // last 4 KiB
  // Queue 0 reads what queue 1 wrote.
  std::vector<uint8_t> in(512);
  auto r = (*c)->io(0, vb::VIRTIO_BLK_T_IN, 100, in.data(), 512);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(in[1], uint8_t(2 + 7));
  ASSERT_TRUE((*c)->stop().ok());
}

TEST_F(BlkE2eTest, TwoDescriptorLayout) {
  auto c = fe::BlkClient::connect(path_, opts(2));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->start().ok());
  write_read_verify(**c, 0, 8, 4096, 9);
  write_read_verify(**c, 1, 16, 8192, 10);
}

TEST_F(BlkE2eTest, FlushAndErrors) {
  auto c = fe::BlkClient::connect(path_, opts());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->start().ok());
  auto f = (*c)->io(0, vb::VIRTIO_BLK_T_FLUSH, 0, nullptr, 0);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(*f == vb::VIRTIO_BLK_S_OK || *f == vb::VIRTIO_BLK_S_UNSUPP);
  std::vector<uint8_t> buf(4096);
  auto r = (*c)->io(0, vb::VIRTIO_BLK_T_IN, 8192, buf.data(), 4096);  // beyond the end
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, vb::VIRTIO_BLK_S_IOERR);
  auto u = (*c)->io(0, 0x7777, 0, nullptr, 0);  // unknown type
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(*u, vb::VIRTIO_BLK_S_UNSUPP);
}

TEST_F(BlkE2eTest, ReconnectKeepsTheDataAndServes) {
  {
    auto c = fe::BlkClient::connect(path_, opts());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->start().ok());
    write_read_verify(**c, 0, 512, 4096, 42);
  }  // front-end gone without GET_VRING_BASE (crash)
  auto c = fe::BlkClient::connect(path_, opts());
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE((*c)->start().ok());
  std::vector<uint8_t> in(4096);
  auto r = (*c)->io(1, vb::VIRTIO_BLK_T_IN, 512, in.data(), 4096);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(*r, vb::VIRTIO_BLK_S_OK);
  EXPECT_EQ(in[5], uint8_t(42 + 35));
}

TEST_F(BlkE2eTest, StopAndRestartFromVringBase) {
  auto c = fe::BlkClient::connect(path_, opts());
  ASSERT_TRUE(c.ok());
  auto& cl = **c;
  ASSERT_TRUE(cl.start().ok());
  write_read_verify(cl, 0, 0, 4096, 5);
  ASSERT_TRUE(cl.fe().set_vring_enable(0, false).ok());
  auto base = cl.fe().get_vring_base(0);
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(*base, cl.queue(0).vq().avail_idx()) << "every request consumed";
  ASSERT_TRUE(cl.fe().set_vring_base(0, *base).ok());
  ASSERT_TRUE(cl.fe().set_vring_kick(0, cl.queue(0).kick_fd()).ok());
  ASSERT_TRUE(cl.fe().set_vring_enable(0, true).ok());
  write_read_verify(cl, 0, 64, 4096, 6);
}

}  // namespace
}  // namespace vdpu::vhost_user::test
