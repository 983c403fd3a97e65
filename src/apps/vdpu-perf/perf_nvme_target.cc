// `vdpu-perf nvme-target`: serves one emulated NVMe function (the
// nvme::Controller behind nvme::NvmePciFunction) over vfio-user on a null or
// malloc bdev, with data reactors on the cores of --cpumask, until
// SIGINT/SIGTERM. The device side of `vdpu-perf nvme` when the daemon is not
// wanted (benchmarks). The control plane (main reactor: vfio-user messages,
// admin queue) runs on the calling thread.
#if __has_include("nvme/pci_nvme.h") && __has_include("transport/vfio_user/server.h")
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "base/log.h"
#include "base/parse.h"
#include "bdev/malloc/malloc.h"
#include "bdev/null/null.h"
#include "nvme/controller.h"
#include "nvme/env.h"
#include "nvme/pci_nvme.h"
#include "nvme/subsystem.h"
#include "perf.h"
#include "runtime/runtime.h"
#include "transport/vfio_user/server.h"

namespace vdpu::perf {
namespace {

struct NvmeTargetConfig {
  std::string socket;
  std::string bdev = "null";  // null | malloc
  double size_mib = 1024;
  uint32_t block_size = 512;
  std::string cpumask = "0x1";
  uint32_t num_queues = 4;
  uint32_t queue_entries = 1024;  // CAP.MQES + 1
  uint32_t mdts = 7;
  uint64_t admin_poll_us = 1000;
  bool event_mode = false;
};

int run_nvme_target(const NvmeTargetConfig& c) {
  auto cores = parse_cpumask(c.cpumask);
  if (!cores || cores->empty()) {
    std::fprintf(stderr, "nvme-target: bad --cpumask\n");
    return 2;
  }
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
    std::fprintf(stderr, "nvme-target: %s\n", st.error().message.c_str());
    return 1;
  }
  nvme::RuntimeEnv env(runtime);
  std::unique_ptr<nvme::Subsystem> subsys;
  std::unique_ptr<nvme::Controller> ctrl;
  std::unique_ptr<nvme::NvmePciFunction> fn;
  std::unique_ptr<vfio_user::Server> server;
  int rc = 0;
  auto fail = [&](const std::string& what, const Error& e) {
    std::fprintf(stderr, "nvme-target: %s: %s\n", what.c_str(), e.message.c_str());
    rc = 1;
    runtime.stop();
  };
  runtime.main().send_blocking([&] {
    const uint64_t blocks = uint64_t(c.size_mib * 1024 * 1024) / c.block_size;
    Result<bdev::Bdev*> b = c.bdev == "malloc"
                                ? bdev::malloc::create({"Nvme0", blocks, c.block_size, "", 0})
                                : bdev::null::create({"Nvme0", blocks, c.block_size, ""});
    if (!b) return fail("bdev", b.error());
    auto s = nvme::Subsystem::create({"nqn.2024-01.io.vdpu:perf", "VDPUPERF0001", "", 0xfffffffe, 1024});
    if (!s) return fail("subsystem", s.error());
    subsys = std::move(*s);
    if (auto ns = subsys->add_namespace(1, "Nvme0"); !ns) return fail("namespace", ns.error());
    // SNAP §6.1 ordering: created suspended, namespace attached, resumed.
    nvme::ControllerOptions o;
    o.name = "NVMeCtrl1";
    o.num_queues = c.num_queues;
    o.mdts = uint8_t(c.mdts);
    o.max_queue_entries = c.queue_entries;
    o.num_msix = c.num_queues + 1;
    o.suspended = true;
    o.admin_poll_us = c.admin_poll_us;
    auto k = nvme::Controller::create(*subsys, o, env);
    if (!k) return fail("controller", k.error());
    ctrl = std::move(*k);
    if (auto st = ctrl->attach_ns(1); !st) return fail("attach", st.error());
    ctrl->resume();
    pci::FunctionOptions fo;
    fo.name = "nvme-target";
    fo.config = pci::nvme_config_options(pci::Identity{}, uint16_t(o.num_msix), "VDPUPERFNVMES0D0F0");
    auto f = nvme::NvmePciFunction::create(std::move(fo));
    if (!f) return fail("function", f.error());
    fn = std::move(*f);
    if (auto st = fn->bind(ctrl.get()); !st) return fail("bind", st.error());
    server = std::make_unique<vfio_user::Server>(c.socket, *fn, runtime.main());
    if (auto st = server->start(); !st) return fail("vfio-user", st.error());
    std::printf("nvme-target: serving %s (%s bdev, %.0f MiB, %u I/O queues of up to %u) on cores %s\n",
                c.socket.c_str(), c.bdev.c_str(), c.size_mib, c.num_queues, c.queue_entries,
                c.cpumask.c_str());
    std::fflush(stdout);
    (void)runtime.main().add_fd(sfd, EPOLLIN, [&](uint32_t) {
      signalfd_siginfo si;
      [[maybe_unused]] ssize_t r = read(sfd, &si, sizeof(si));
      runtime.main().remove_fd(sfd);
      // Orderly: drop the client (controller reset: queues drained and
      // freed), destroy the controller, then stop the runtime.
      server->stop();
      ctrl->destroy([&] {
        fn->unbind();
        runtime.stop();
      });
    });
  });
  runtime.run_main();
  server.reset();
  fn.reset();
  ctrl.reset();
  subsys.reset();
  close(sfd);
  return rc;
}

VDPU_PERF_SUBCOMMAND("nvme-target", "serve an emulated NVMe function over vfio-user on a null/malloc bdev (for nvme)",
                     [](CLI::App& app) -> std::function<int()> {
                       auto c = std::make_shared<NvmeTargetConfig>();
                       app.add_option("--socket", c->socket, "vfio-user socket to create")->required();
                       app.add_option("--bdev", c->bdev, "null | malloc")
                           ->check(CLI::IsMember({"null", "malloc"}))
                           ->capture_default_str();
                       app.add_option("--size-mib", c->size_mib, "bdev size")->capture_default_str();
                       app.add_option("--block-size", c->block_size, "bdev block size")->capture_default_str();
                       app.add_option("-m,--cpumask", c->cpumask, "data reactor cores")->capture_default_str();
                       app.add_option("--num-queues", c->num_queues, "I/O queue pairs (1-31)")
                           ->check(CLI::Range(1, 31))
                           ->capture_default_str();
                       app.add_option("--queue-entries", c->queue_entries, "max queue entries (CAP.MQES+1)")
                           ->check(CLI::Range(2, 4096))
                           ->capture_default_str();
                       app.add_option("--mdts", c->mdts, "MDTS (1-7)")->check(CLI::Range(1, 7))->capture_default_str();
                       app.add_option("--admin-poll-us", c->admin_poll_us, "admin queue poll period")
                           ->capture_default_str();
                       app.add_flag("--event-mode", c->event_mode, "reactors sleep when idle");
                       return [c] { return run_nvme_target(*c); };
                     });

}  // namespace
}  // namespace vdpu::perf
#endif
