// `vdpu-perf nvme-target`: serves one emulated NVMe function (the
// nvme::Controller behind nvme::NvmePciFunction) over vfio-user on a null or
// malloc bdev, with data reactors on the cores of --cpumask, until
// SIGINT/SIGTERM. The device side of `vdpu-perf nvme` when the daemon is not
// wanted (benchmarks). The control plane (main reactor: vfio-user messages,
// admin queue) runs on the calling thread.
#if __has_include("nvme/pci_nvme.h") && __has_include("transport/vfio_user/server.h")
#include <cstdio>
#include <memory>
#include <string>

#include "nvme/controller.h"
#include "nvme/env.h"
#include "nvme/pci_nvme.h"
#include "nvme/subsystem.h"
#include "perf.h"
#include "perf_target.h"
#include "runtime/runtime.h"
#include "transport/vfio_user/server.h"

namespace vdpu::perf {
namespace {

struct NvmeTargetConfig {
  TargetOptions t;
  uint32_t num_queues = 4;
  uint32_t queue_entries = 1024;  // CAP.MQES + 1
  uint32_t mdts = 7;
  uint64_t admin_poll_us = 1000;
};

Error at(const char* what, const Error& e) { return make_error(e.code, std::string(what) + ": " + e.message); }

int run_nvme_target(const NvmeTargetConfig& c) {
  std::unique_ptr<nvme::RuntimeEnv> env;
  std::unique_ptr<nvme::Subsystem> subsys;
  std::unique_ptr<nvme::Controller> ctrl;
  std::unique_ptr<nvme::NvmePciFunction> fn;
  std::unique_ptr<vfio_user::Server> server;
  TargetHooks h;
  h.start = [&](rt::Runtime& runtime) -> Status {
    env = std::make_unique<nvme::RuntimeEnv>(runtime);
    auto s = nvme::Subsystem::create({"nqn.2024-01.io.vdpu:perf", "VDPUPERF0001", "", 0xfffffffe, 1024});
    if (!s) return at("subsystem", s.error());
    subsys = std::move(*s);
    if (auto ns = subsys->add_namespace(1, "Nvme0"); !ns) return at("namespace", ns.error());
    // SNAP §6.1 ordering: created suspended, namespace attached, resumed.
    nvme::ControllerOptions o;
    o.name = "NVMeCtrl1";
    o.num_queues = c.num_queues;
    o.mdts = uint8_t(c.mdts);
    o.max_queue_entries = c.queue_entries;
    o.num_msix = c.num_queues + 1;
    o.suspended = true;
    o.admin_poll_us = c.admin_poll_us;
    auto k = nvme::Controller::create(*subsys, o, *env);
    if (!k) return at("controller", k.error());
    ctrl = std::move(*k);
    if (auto st = ctrl->attach_ns(1); !st) return at("attach", st.error());
    ctrl->resume();
    pci::FunctionOptions fo;
    fo.name = "nvme-target";
    fo.config = pci::nvme_config_options(pci::Identity{}, uint16_t(o.num_msix), "VDPUPERFNVMES0D0F0");
    auto f = nvme::NvmePciFunction::create(std::move(fo));
    if (!f) return at("function", f.error());
    fn = std::move(*f);
    if (auto st = fn->bind(ctrl.get()); !st) return at("bind", st.error());
    server = std::make_unique<vfio_user::Server>(c.t.socket, *fn, runtime.main());
    if (auto st = server->start(); !st) return at("vfio-user", st.error());
    std::printf("nvme-target: serving %s (%s bdev, %.0f MiB, %u I/O queues of up to %u) on cores %s\n",
                c.t.socket.c_str(), c.t.bdev.c_str(), c.t.size_mib, c.num_queues, c.queue_entries,
                c.t.cpumask.c_str());
    return {};
  };
  // Orderly: drop the client (controller reset: queues drained and freed),
  // destroy the controller, then stop the runtime.
  h.stop = [&](std::function<void()> done) {
    server->stop();
    ctrl->destroy([&, done] {
      fn->unbind();
      done();
    });
  };
  h.release = [&] {
    server.reset();
    fn.reset();
    ctrl.reset();
    subsys.reset();
    env.reset();
  };
  return run_target("nvme-target", c.t, "Nvme0", std::move(h));
}

VDPU_PERF_SUBCOMMAND("nvme-target", "serve an emulated NVMe function over vfio-user on a null/malloc bdev (for nvme)",
                     [](CLI::App& app) -> std::function<int()> {
                       auto c = std::make_shared<NvmeTargetConfig>();
                       add_target_options(app, c->t, "vfio-user socket to create");
                       app.add_option("--num-queues", c->num_queues, "I/O queue pairs (1-31)")
                           ->check(CLI::Range(1, 31))
                           ->capture_default_str();
                       app.add_option("--queue-entries", c->queue_entries, "max queue entries (CAP.MQES+1)")
                           ->check(CLI::Range(2, 4096))
                           ->capture_default_str();
                       app.add_option("--mdts", c->mdts, "MDTS (1-7)")->check(CLI::Range(1, 7))->capture_default_str();
                       app.add_option("--admin-poll-us", c->admin_poll_us, "admin queue poll period")
                           ->capture_default_str();
                       return [c] { return run_nvme_target(*c); };
                     });

}  // namespace
}  // namespace vdpu::perf
#endif
