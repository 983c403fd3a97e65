// Shared test fixture: a fake virtio::Device, a reactor thread running a
// vhost-user Server on a real unix socket, and helpers to wait for the
// reactor's side effects without timed assertions (we wait for a condition
// with a generous deadline; the deadline only stops a hung test).
#pragma once

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/reactor.h"
#include "transport/vhost_user/frontend/blk_client.h"
#include "transport/vhost_user/frontend/frontend.h"
#include "transport/vhost_user/server.h"
#include "virtio/blk/blk_spec.h"
#include "virtio/device.h"

namespace vdpu::vhost_user::test {

namespace vb = virtio::blk;

class FakeDevice : public virtio::Device {
 public:
  static constexpr uint16_t kQueues = 2;
  static constexpr uint64_t kCapacity = 2048;

  uint32_t device_id() const override { return 2; }
  uint64_t device_features() const override {
    // ACCESS_PLATFORM is offered to check that the server hides it.
    return virtio::kFVersion1 | virtio::kFAccessPlatform | virtio::kFEventIdx | vb::VIRTIO_BLK_F_FLUSH |
           vb::VIRTIO_BLK_F_BLK_SIZE;
  }
  uint16_t num_queues() const override { return kQueues; }
  uint16_t max_queue_size() const override { return 256; }
  void read_config(uint32_t offset, std::span<uint8_t> out) const override {
    vb::VirtioBlkConfig c{};
    c.capacity = kCapacity;
    c.blk_size = 512;
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = offset + i < sizeof(c) ? reinterpret_cast<const uint8_t*>(&c)[offset + i] : 0;
  }
  Status write_config(uint32_t offset, std::span<const uint8_t> in) override {
    std::lock_guard g(mu);
    if (offset != offsetof(vb::VirtioBlkConfig, writeback) || in.size() != 1)
      return make_error(Errc::kInvalidArgument, "read-only");
    writeback = in[0];
    return {};
  }
  Status set_features(uint64_t f) override {
    std::lock_guard g(mu);
    features = f;
    return {};
  }
  void start_queue(uint16_t qid, const virtio::QueueConfig& cfg, std::function<void(Status)> done) override {
    {
      std::lock_guard g(mu);
      starts.push_back({qid, cfg});
      running[qid] = true;
    }
    done(fail_start ? Status(make_error(Errc::kIo, "injected")) : Status());
    if (fail_start) {
      std::lock_guard g(mu);
      running[qid] = false;
    }
  }
  void stop_queue(uint16_t qid, std::function<void(virtio::QueueState)> done) override {
    std::unique_lock g(mu);
    ++stops;
    if (hold_stop) {
      held.push_back({qid, std::move(done)});
      return;
    }
    running[qid] = false;
    g.unlock();
    done(state);
  }
  void update_memory(hostmem::MemoryMapPtr mem) override {
    std::lock_guard g(mu);
    ++mem_updates;
    last_mem = std::move(mem);
  }
  void reset() override {
    std::lock_guard g(mu);
    ++resets;
  }
  // Completes held stop_queue calls (call on the reactor thread).
  void release_stops() {
    std::vector<std::pair<uint16_t, std::function<void(virtio::QueueState)>>> h;
    {
      std::lock_guard g(mu);
      h.swap(held);
      for (auto& e : h) running[e.first] = false;
    }
    for (auto& e : h) e.second(state);
  }

  struct Start {
    uint16_t qid;
    virtio::QueueConfig cfg;
  };
  std::mutex mu;
  std::vector<Start> starts;
  std::map<uint16_t, bool> running;
  uint64_t features = 0;
  int stops = 0, resets = 0, mem_updates = 0;
  uint8_t writeback = 0;
  hostmem::MemoryMapPtr last_mem;
  bool hold_stop = false;
  bool fail_start = false;
  virtio::QueueState state{42, 42};
  std::vector<std::pair<uint16_t, std::function<void(virtio::QueueState)>>> held;

  size_t num_starts() {
    std::lock_guard g(mu);
    return starts.size();
  }
  int num_resets() {
    std::lock_guard g(mu);
    return resets;
  }
  bool is_running(uint16_t q) {
    std::lock_guard g(mu);
    return running[q];
  }
};

// Waits (up to 10 s) for pred; returns its final value.
template <class P>
bool wait_for(P pred) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

inline int count_open_fds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    path_ = "/tmp/vdpu-vu-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ".sock";
    reactor_ = std::make_unique<rt::Reactor>(0, -1, /*event_mode=*/true);
    ASSERT_TRUE(reactor_->start_thread().ok());
    auto s = on_reactor([&] { return Server::listen(*reactor_, dev_, path_); });
    ASSERT_TRUE(s.ok()) << s.error().message;
    server_ = std::move(*s);
  }
  void TearDown() override {
    on_reactor([&] {
      server_.reset();
      return 0;
    });
    reactor_->request_stop();
    reactor_->join();
    EXPECT_NE(access(path_.c_str(), F_OK), 0) << "socket not unlinked";
  }

  template <class F>
  auto on_reactor(F&& fn) -> decltype(fn()) {
    using R = decltype(fn());
    std::promise<R> p;
    auto fut = p.get_future();
    reactor_->send_blocking([&] { p.set_value(fn()); });
    return fut.get();
  }

  // A raw front-end that negotiated REPLY_ACK (so every request is acked).
  std::unique_ptr<fe::Frontend> raw_frontend(bool reply_ack = true) {
    auto f = fe::Frontend::connect(path_);
    EXPECT_TRUE(f.ok());
    auto fe = std::move(*f);
    EXPECT_TRUE(fe->set_owner().ok());
    EXPECT_TRUE(fe->get_features().ok());
    EXPECT_TRUE(fe->get_protocol_features().ok());
    if (reply_ack) {
      EXPECT_TRUE(fe->set_protocol_features(kServerProtocolFeatures).ok());
    }
    return fe;
  }

  // Sends a request with NEED_REPLY and returns the ack value (0 = ok), or
  // -1 if the connection was closed instead.
  int64_t ack_of(fe::Frontend& f, uint32_t req, const void* p, uint32_t size, std::span<const int> fds = {}) {
    if (!f.send(req, p, size, fds, VHOST_USER_VERSION | VHOST_USER_NEED_REPLY_MASK).ok()) return -1;
    auto r = f.recv(5000);
    if (!r.ok()) return -1;
    EXPECT_EQ(r->hdr.request, req);
    EXPECT_EQ(r->hdr.size, 8u);
    return int64_t(r->u64());
  }

  FakeDevice dev_;
  std::string path_;
  std::unique_ptr<rt::Reactor> reactor_;
  std::unique_ptr<Server> server_;
};

}  // namespace vdpu::vhost_user::test
