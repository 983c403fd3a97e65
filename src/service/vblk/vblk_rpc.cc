// JSON-RPC glue of the VBLK manager: every virtio-blk RPC of spec
// snap-storage §4.2 (two-step hotplug), §4.3 (legacy attach/detach) and §5.
// Parameters arrive validated against src/rpc/schema/vblk.json; the manager
// enforces the rules that need state.
#include "rpc/rpc.h"
#include "service/emu/params.h"
#include "service/vblk/vblk_manager.h"

namespace vdpu::service::vblk {
namespace {

using rpc::Responder;

Result<std::string> ctrl_of(const json& p) {
  auto c = get_str_alias(p, "ctrl", "ctrl_id");
  if (!c) return c.error();
  if (!*c) return make_error(Errc::kInvalidArgument, "missing parameter 'ctrl'");
  return **c;
}

std::function<void(Status)> reply_status(Responder r) {
  auto rp = std::make_shared<Responder>(std::move(r));
  return [rp](Status s) { rp->status(s); };
}

// ---------------------------------------------------------------- §5

void controller_create(const json& p, Responder r) {
  VDPU_RPC_GET(req, parse_create(p));
  VDPU_RPC_GET(name, manager().create(req));
  r.result(name);
}

void controller_destroy(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  VDPU_RPC_GET(force, get_flag(p, "force"));
  VDPU_RPC_GET(release, get_flag(p, "release_msix"));
  manager().destroy(ctrl, force, release, reply_status(std::move(r)));
}

void controller_suspend(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  VDPU_RPC_GET(events_only, get_flag(p, "events_only"));
  VDPU_RPC_GET(lu, get_flag(p, "live_update"));  // accepted (§5.4): live update not yet implemented
  (void)lu;
  manager().suspend(ctrl, events_only, reply_status(std::move(r)));
}

void controller_resume(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  manager().resume(ctrl, reply_status(std::move(r)));
}

void controller_bdev_attach(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  VDPU_RPC_GET(bdev, get_str(p, "bdev"));
  if (!bdev) return r.error(rpc::kInvalidParams, "missing parameter 'bdev'");
  VDPU_RPC_GET(vblk_id, get_str(p, "vblk_id"));
  manager().bdev_attach(ctrl, *bdev, vblk_id, reply_status(std::move(r)));
}

void controller_bdev_detach(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  manager().bdev_detach(ctrl, reply_status(std::move(r)));
}

void controller_list(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, get_str_alias(p, "ctrl", "ctrl_id"));
  VDPU_RPC_GET(list, manager().list(ctrl));
  r.result(std::move(list));
}

void controller_modify(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, get_str_alias(p, "ctrl", "ctrl_id"));
  VDPU_RPC_GET(nq, get_uint(p, "num_queues"));
  VDPU_RPC_GET(nm, get_uint(p, "num_msix"));
  manager().modify(ctrl, nq, nm, reply_status(std::move(r)));
}

void controller_io_stats(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  VDPU_RPC_GET(s, manager().io_stats(ctrl));
  r.result(std::move(s));
}

void controller_debug_stats(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  auto rp = std::make_shared<Responder>(std::move(r));
  manager().debug_stats(ctrl, [rp](Result<json> s) {
    if (!s) return rp->error(s.error());
    rp->result(std::move(*s));
  });
}

void controller_state_save(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  VDPU_RPC_GET(file, get_str(p, "filename"));
  if (!file) return r.error(rpc::kInvalidParams, "missing parameter 'filename'");
  manager().state_save(ctrl, *file, reply_status(std::move(r)));
}

void controller_state_restore(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  VDPU_RPC_GET(file, get_str(p, "filename"));
  if (!file) return r.error(rpc::kInvalidParams, "missing parameter 'filename'");
  manager().state_restore(ctrl, *file, reply_status(std::move(r)));
}

void controller_vfs_msix_reclaim(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  r.status(manager().vfs_msix_reclaim(ctrl));
}

// ---------------------------------------------------------------- §4.2

void function_create(const json& p, Responder r) {
  VDPU_RPC_GET(mgr, get_str(p, "manager"));  // §4.2: accepted, unused
  (void)mgr;
  VDPU_RPC_GET(res, manager().function_create());
  r.result(std::move(res));
}

void function_destroy(const json& p, Responder r) {
  VDPU_RPC_GET(vuid, get_str(p, "vuid"));
  if (!vuid) return r.error(rpc::kInvalidParams, "missing parameter 'vuid'");
  r.status(manager().function_destroy(*vuid));
}

void controller_hotplug(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  VDPU_RPC_GET(wait, get_flag(p, "wait_for_done"));
  VDPU_RPC_GET(timeout, get_uint(p, "timeout"));
  manager().hotplug(ctrl, wait, timeout, reply_status(std::move(r)));
}

void controller_hotunplug(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  VDPU_RPC_GET(wait, get_flag(p, "wait_for_done"));
  manager().hotunplug(ctrl, wait, reply_status(std::move(r)));
}

// ---------------------------------------------------------------- §4.3

void emulation_device_attach(const json& p, Responder r) {
  // PCI identity and queue parameters are accepted for compatibility; the
  // controller created next defines the device (num_queues etc.).
  VDPU_RPC_GET(nm, get_uint(p, "num_msix", 0, 2048));
  VDPU_RPC_GET(res, manager().device_attach(uint32_t(nm.value_or(0))));
  r.result(std::move(res));
}

void device_detach_prepare(const json& p, Responder r) {
  VDPU_RPC_GET(sel, get_selector(p));
  VDPU_RPC_GET(ctrl, get_str_alias(p, "ctrl", "ctrl_id"));
  manager().detach_prepare(sel, ctrl, reply_status(std::move(r)));
}

void device_detach(const json& p, Responder r) {
  VDPU_RPC_GET(sel, get_selector(p));
  VDPU_RPC_GET(force, get_flag(p, "force"));
  r.status(manager().device_detach(sel, force));
}

VDPU_RPC_REGISTER("virtio_blk_controller_create", controller_create, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_controller_destroy", controller_destroy, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_controller_suspend", controller_suspend, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_controller_resume", controller_resume, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_controller_bdev_attach", controller_bdev_attach, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_controller_bdev_detach", controller_bdev_detach, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_controller_list", controller_list, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_controller_modify", controller_modify, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_controller_dbg_io_stats_get", controller_io_stats, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_controller_dbg_debug_stats_get", controller_debug_stats, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_controller_state_save", controller_state_save, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_controller_state_restore", controller_state_restore, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_controller_vfs_msix_reclaim", controller_vfs_msix_reclaim, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_function_create", function_create, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_function_destroy", function_destroy, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_controller_hotplug", controller_hotplug, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_controller_hotunplug", controller_hotunplug, rpc::kRuntime);
VDPU_RPC_REGISTER("virtio_blk_emulation_device_attach", emulation_device_attach, rpc::kRuntime);
VDPU_RPC_REGISTER("emulation_device_detach_prepare", device_detach_prepare, rpc::kRuntime);
VDPU_RPC_REGISTER("emulation_device_detach", device_detach, rpc::kRuntime);

}  // namespace
}  // namespace vdpu::service::vblk
