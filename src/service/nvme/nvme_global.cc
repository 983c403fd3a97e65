// The process-wide NVMe manager of the daemon (vfio-user endpoints, the
// runtime's reactors), its save_config writer and its shutdown hook.
#include "nvme/env.h"
#include "rpc/rpc.h"
#include "runtime/runtime.h"
#include "service/nvme/nvme_manager.h"

namespace vdpu::service::nvme {

namespace {
std::unique_ptr<Manager>& global() {
  static std::unique_ptr<Manager> m;
  return m;
}
}  // namespace

Manager& manager() {
  auto& g = global();
  if (!g) {
    // The daemon's runtime exists before any RPC runs.
    static nv::RuntimeEnv env(*rt::Runtime::get());
    g = std::make_unique<Manager>(emu::manager(), env, vfio_endpoint_factory());
  }
  return *g;
}

void set_manager(std::unique_ptr<Manager> m) { global() = std::move(m); }

namespace {
struct Registrations {
  Registrations() {
    // save_config: subsystems, namespaces, controllers (created suspended,
    // attached, resumed) and listeners, after the bdevs they use.
    rpc::register_config_writer("nvme", [] { return global() ? manager().write_config() : json::array(); });
    // Stop serving (sockets, queues) and close the bdevs before the reactors stop.
    rpc::register_shutdown_hook("nvme", [](rpc::DoneFn done) {
      if (!global()) return done();
      manager().shutdown([done] {
        set_manager(nullptr);
        done();
      });
    });
  }
} registrations;
}  // namespace

}  // namespace vdpu::service::nvme
