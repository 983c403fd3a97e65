// A NetDevice on a real runtime for the device-level tests: data reactors on
// the given cores (unpinned) plus the main reactor on its own thread, the
// device created and torn down on the main reactor (every queue stopped
// before the device goes away), and helpers to run code there.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>
#include <type_traits>
#include <vector>

#include "runtime/runtime.h"
#include "virtio/net/net_device.h"

namespace vdpu::virtio::test {

using net::MacAddr;
using net::NetBackend;
using net::NetDevice;
using net::NetOptions;

class DevHarness {
 public:
  DevHarness(NetOptions o, std::unique_ptr<NetBackend> be, const MacAddr& mac, std::vector<uint32_t> cores)
      : rt_(make_opts(std::move(cores))) {
    EXPECT_TRUE(rt_.start().ok());
    main_ = std::thread([this] { rt_.run_main(); });
    o.mac = mac;
    auto d = on_main([&] { return NetDevice::create(o, std::move(be), rt_); });
    EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().message);
    if (d.ok()) dev = std::move(*d);
  }
  ~DevHarness() {
    if (dev) {
      std::promise<void> p;
      rt_.main().send_blocking([&] { dev->stop_all([&] { p.set_value(); }); });
      p.get_future().wait();
      on_main([&] {
        dev.reset();
        return 0;
      });
    }
    rt_.stop();
    main_.join();
  }
  template <class F>
  auto on_main(F&& f) -> std::invoke_result_t<F> {
    std::promise<std::invoke_result_t<F>> p;
    rt_.main().send_blocking([&] { p.set_value(f()); });
    return p.get_future().get();
  }
  Status start(uint16_t qid, const QueueConfig& c) {
    std::promise<Status> p;
    rt_.main().send_blocking([&] { dev->start_queue(qid, c, [&](Status s) { p.set_value(s); }); });
    return p.get_future().get();
  }
  QueueState stop(uint16_t qid) {
    std::promise<QueueState> p;
    rt_.main().send_blocking([&] { dev->stop_queue(qid, [&](QueueState s) { p.set_value(s); }); });
    return p.get_future().get();
  }
  std::unique_ptr<NetDevice> dev;

 private:
  static rt::Options make_opts(std::vector<uint32_t> cores) {
    rt::Options o;
    o.cores = std::move(cores);
    o.pin = false;
    return o;
  }
  rt::Runtime rt_;
  std::thread main_;
};

// Waits (bounded, 10 s) until pred() holds; returns whether it did.
template <class P>
bool eventually(P pred) {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return pred();
}

}  // namespace vdpu::virtio::test
