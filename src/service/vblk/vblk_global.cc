// The process-wide VBLK manager of the daemon (real vhost-user backend).
#include "rpc/rpc.h"
#include "service/vblk/vblk_manager.h"

namespace vdpu::service::vblk {

// ------------------------------------------------------------ process-wide

namespace {
std::unique_ptr<Manager>& global() {
  static std::unique_ptr<Manager> m;
  return m;
}
}  // namespace

Manager& manager() {
  auto& g = global();
  if (!g) {
    BackendFactory f = vhost_backend_factory();
    if (!f)
      f = [](const std::string&, const CtrlConfig&, const std::string&,
             bool) -> Result<std::unique_ptr<Backend>> {
        return make_error(Errc::kUnsupported, "virtio-blk device model not built");
      };
    g = std::make_unique<Manager>(emu::manager(), std::move(f));
    // §10.4: vdpu-snap keeps <SNAP_RPC_INIT_CONF_JSON>/snap_config.json
    // current after every state-changing RPC (apps/vdpu-snap/startup.cc)
    // from the config writer below, and replays it at start.
  }
  return *g;
}

void set_manager(std::unique_ptr<Manager> m) { global() = std::move(m); }

namespace {
// save_config: the controllers, after the bdevs they use (SNAP subsystems
// come after SPDK's). The manager is created on first use at run time.
struct ConfigWriter {
  ConfigWriter() {
    rpc::register_config_writer("vblk", [] { return manager().write_config(); });
    // Destroy controllers (stop queues, close bdevs) before the reactors stop.
    rpc::register_shutdown_hook("vblk", [](rpc::DoneFn done) {
      if (!global()) return done();
      manager().shutdown([done] {
        set_manager(nullptr);
        done();
      });
    });
  }
} config_writer;
}  // namespace

}  // namespace vdpu::service::vblk
