// `vdpu-perf blk-target`: serves vdpu's vhost-user-blk back-end (the
// virtio-blk device model behind the vhost-user Server) on a null or malloc
// bdev, with data reactors on the cores of --cpumask, until SIGINT/SIGTERM.
// A minimal back-end for `vdpu-perf blk` and QEMU when the daemon is not
// wanted. The control plane (main reactor) runs on the calling thread.
#if __has_include("virtio/blk/blk_device.h")
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "base/log.h"
#include "base/parse.h"
#include "bdev/malloc/malloc.h"
#include "bdev/null/null.h"
#include "perf.h"
#include "runtime/runtime.h"
#include "transport/vhost_user/server.h"
#include "virtio/blk/blk_device.h"

namespace vdpu::perf {
namespace {

struct TargetConfig {
  std::string socket;
  std::string bdev = "null";  // null | malloc
  double size_mib = 1024;
  uint32_t block_size = 512;
  std::string cpumask = "0x1";
  uint16_t num_queues = 1;
  uint16_t queue_size = 256;
  bool event_mode = false;
};

int run_target(const TargetConfig& c) {
  auto cores = parse_cpumask(c.cpumask);
  if (!cores || cores->empty()) {
    std::fprintf(stderr, "blk-target: bad --cpumask\n");
    return 2;
  }
  // SIGINT/SIGTERM arrive on a signalfd watched by the main reactor.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before the reactor threads inherit the mask
  int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);

  rt::Options ro;
  ro.cores = *cores;
  ro.event_mode = c.event_mode;
  rt::Runtime runtime(ro);
  if (auto st = runtime.start(); !st) {
    std::fprintf(stderr, "blk-target: %s\n", st.error().message.c_str());
    return 1;
  }
  std::unique_ptr<virtio::blk::BlkDevice> dev;
  std::unique_ptr<vhost_user::Server> server;
  int rc = 0;
  runtime.main().send_blocking([&] {
    const uint64_t blocks = uint64_t(c.size_mib * 1024 * 1024) / c.block_size;
    Result<bdev::Bdev*> b = c.bdev == "malloc"
                                ? bdev::malloc::create({"Target0", blocks, c.block_size, "", 0})
                                : bdev::null::create({"Target0", blocks, c.block_size, ""});
    if (!b) {
      std::fprintf(stderr, "blk-target: bdev: %s\n", b.error().message.c_str());
      rc = 1;
      runtime.stop();
      return;
    }
    virtio::blk::BlkOptions bo;
    bo.num_queues = c.num_queues;
    bo.queue_size = c.queue_size;
    bo.seg_max = uint32_t(c.queue_size - 2);
    bo.size_max = 1 << 20;
    auto d = virtio::blk::BlkDevice::create(bo, "Target0", runtime);
    if (!d) {
      std::fprintf(stderr, "blk-target: device: %s\n", d.error().message.c_str());
      rc = 1;
      runtime.stop();
      return;
    }
    dev = std::move(*d);
    auto s = vhost_user::Server::listen(runtime.main(), *dev, c.socket);
    if (!s) {
      std::fprintf(stderr, "blk-target: %s\n", s.error().message.c_str());
      rc = 1;
      runtime.stop();
      return;
    }
    server = std::move(*s);
    std::printf("blk-target: serving %s (%s bdev, %.0f MiB, %u queues) on cores %s\n", c.socket.c_str(),
                c.bdev.c_str(), c.size_mib, c.num_queues, c.cpumask.c_str());
    std::fflush(stdout);
    (void)runtime.main().add_fd(sfd, EPOLLIN, [&](uint32_t) {
      signalfd_siginfo si;
      [[maybe_unused]] ssize_t r = read(sfd, &si, sizeof(si));
      runtime.main().remove_fd(sfd);
      // Orderly: stop the queues (drain), then the device, then the runtime.
      server->shutdown([&] { dev->stop_all([&] { runtime.stop(); }); });
    });
  });
  runtime.run_main();
  server.reset();
  dev.reset();
  close(sfd);
  return rc;
}

VDPU_PERF_SUBCOMMAND("blk-target", "serve vdpu's vhost-user-blk device on a null/malloc bdev (for blk)",
                     [](CLI::App& app) -> std::function<int()> {
                       auto c = std::make_shared<TargetConfig>();
                       app.add_option("--socket", c->socket, "vhost-user socket to create")->required();
                       app.add_option("--bdev", c->bdev, "null | malloc")->capture_default_str();
                       app.add_option("--size-mib", c->size_mib, "bdev size")->capture_default_str();
                       app.add_option("--block-size", c->block_size, "bdev block size")->capture_default_str();
                       app.add_option("-m,--cpumask", c->cpumask, "data reactor cores")->capture_default_str();
                       app.add_option("--num-queues", c->num_queues, "virtqueues")->capture_default_str();
                       app.add_option("--queue-size", c->queue_size, "max queue size offered")
                           ->capture_default_str();
                       app.add_flag("--event-mode", c->event_mode, "reactors sleep when idle");
                       return [c] { return run_target(*c); };
                     });

}  // namespace
}  // namespace vdpu::perf
#endif
