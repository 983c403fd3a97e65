// `vdpu-perf blk-target`: serves vdpu's vhost-user-blk back-end (the
// virtio-blk device model behind the vhost-user Server) on a null or malloc
// bdev, with data reactors on the cores of --cpumask, until SIGINT/SIGTERM.
// A minimal back-end for `vdpu-perf blk` and QEMU when the daemon is not
// wanted. The control plane (main reactor) runs on the calling thread.
#if __has_include("virtio/blk/blk_device.h")
#include <cstdio>
#include <memory>
#include <string>

#include "perf.h"
#include "perf_target.h"
#include "runtime/runtime.h"
#include "transport/vhost_user/server.h"
#include "virtio/blk/blk_device.h"

namespace vdpu::perf {
namespace {

struct TargetConfig {
  TargetOptions t;
  uint16_t num_queues = 1;
  uint16_t queue_size = 256;
};

int run_blk_target(const TargetConfig& c) {
  std::unique_ptr<virtio::blk::BlkDevice> dev;
  std::unique_ptr<vhost_user::Server> server;
  TargetHooks h;
  h.start = [&](rt::Runtime& runtime) -> Status {
    virtio::blk::BlkOptions bo;
    bo.num_queues = c.num_queues;
    bo.queue_size = c.queue_size;
    bo.seg_max = uint32_t(c.queue_size - 2);
    bo.size_max = 1 << 20;
    auto d = virtio::blk::BlkDevice::create(bo, "Target0", runtime);
    if (!d) return make_error(d.error().code, "device: " + d.error().message);
    dev = std::move(*d);
    auto s = vhost_user::Server::listen(runtime.main(), *dev, c.t.socket);
    if (!s) return s.error();
    server = std::move(*s);
    std::printf("blk-target: serving %s (%s bdev, %.0f MiB, %u queues) on cores %s\n", c.t.socket.c_str(),
                c.t.bdev.c_str(), c.t.size_mib, c.num_queues, c.t.cpumask.c_str());
    return {};
  };
  // Orderly: stop the queues (drain), then the device, then the runtime.
  h.stop = [&](std::function<void()> done) {
    server->shutdown([&, done] { dev->stop_all(done); });
  };
  h.release = [&] {
    server.reset();
    dev.reset();
  };
  return run_target("blk-target", c.t, "Target0", std::move(h));
}

VDPU_PERF_SUBCOMMAND("blk-target", "serve vdpu's vhost-user-blk device on a null/malloc bdev (for blk)",
                     [](CLI::App& app) -> std::function<int()> {
                       auto c = std::make_shared<TargetConfig>();
                       add_target_options(app, c->t, "vhost-user socket to create");
                       app.add_option("--num-queues", c->num_queues, "virtqueues")->capture_default_str();
                       app.add_option("--queue-size", c->queue_size, "max queue size offered")
                           ->capture_default_str();
                       return [c] { return run_blk_target(*c); };
                     });

}  // namespace
}  // namespace vdpu::perf
#endif
