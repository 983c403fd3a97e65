// JSON-RPC glue of the NVMe manager, SNAP dialect: every nvme_* RPC of spec
// snap-storage §6 and the legacy nvme_emulation_device_attach (§4.3).
// Parameters arrive validated against src/rpc/schema/nvme.json (ctrl_id is
// an alias of ctrl everywhere); the manager enforces the rules that need
// state.
#include "rpc/rpc.h"
#include "service/emu/params.h"
#include "service/nvme/nvme_manager.h"

namespace vdpu::service::nvme {
namespace {

using rpc::Responder;

Result<std::string> req_str(const json& p, const char* key, const char* alias = nullptr) {
  auto v = alias ? get_str_alias(p, key, alias) : get_str(p, key);
  if (!v) return v.error();
  if (!*v) return make_error(Errc::kInvalidArgument, std::string("missing parameter '") + key + "'");
  return **v;
}

Result<uint32_t> req_u32(const json& p, const char* key, uint64_t lo, uint64_t hi) {
  auto v = get_uint(p, key, lo, hi);
  if (!v) return v.error();
  if (!*v) return make_error(Errc::kInvalidArgument, std::string("missing parameter '") + key + "'");
  return uint32_t(**v);
}

Result<std::string> ctrl_of(const json& p) { return req_str(p, "ctrl", "ctrl_id"); }

std::function<void(Status)> reply_status(Responder r) {
  auto rp = std::make_shared<Responder>(std::move(r));
  return [rp](Status s) { rp->status(s); };
}

// ---------------------------------------------------------------- §6.3

void subsystem_create(const json& p, Responder r) {
  nv::SubsystemOptions o;
  VDPU_RPC_GET(nqn, req_str(p, "nqn"));
  VDPU_RPC_GET(sn, get_str(p, "serial_number"));
  VDPU_RPC_GET(mn, get_str(p, "model_number"));
  VDPU_RPC_GET(nn, get_uint(p, "nn", 1, 0xfffffffe));
  VDPU_RPC_GET(mnan, get_uint(p, "mnan", 1, 0xfffffffe));
  o.nqn = nqn;
  o.serial_number = sn.value_or("");
  o.model_number = mn.value_or("");
  if (nn) o.nn = uint32_t(*nn);
  if (mnan) o.mnan = uint32_t(*mnan);
  r.status(manager().subsystem_create(std::move(o)));
}

void subsystem_destroy(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, req_str(p, "nqn"));
  VDPU_RPC_GET(force, get_flag(p, "force"));
  manager().subsystem_destroy(nqn, force, reply_status(std::move(r)));
}

void subsystem_list(const json&, Responder r) { r.result(manager().subsystem_list()); }

// ---------------------------------------------------------------- §6.4

void namespace_create(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, req_str(p, "nqn"));
  VDPU_RPC_GET(bdev, req_str(p, "bdev_name"));
  VDPU_RPC_GET(nsid, req_u32(p, "nsid", 1, 0xfffffffe));
  VDPU_RPC_GET(uuid, get_str(p, "uuid"));
  VDPU_RPC_GET(type, get_str(p, "bdev_type"));
  r.status(manager().namespace_create(nqn, bdev, nsid, uuid.value_or(""), type.value_or("spdk")));
}

void namespace_destroy(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, req_str(p, "nqn"));
  VDPU_RPC_GET(nsid, req_u32(p, "nsid", 1, 0xfffffffe));
  // A namespace no controller of ours holds may still be used by hosts of
  // an NVMe-oF transport (TCP): nvmf_remove_ns disconnects them first.
  Subsys* s = manager().find_subsys(nqn);
  nv::Namespace* ns = s ? s->s->find_namespace(nsid) : nullptr;
  if (ns && !ns->controller() && !s->listeners.empty())
    return manager().nvmf_remove_ns(nqn, nsid, reply_status(std::move(r)));
  r.status(manager().namespace_destroy(nqn, nsid));
}

void namespace_list(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, get_str(p, "nqn"));
  VDPU_RPC_GET(list, manager().namespace_list(nqn));
  r.result(std::move(list));
}

// ---------------------------------------------------------------- §6.5, §6.6

void controller_create(const json& p, Responder r) {
  CtrlParams base;
  VDPU_RPC_GET(snap, get_str(p, "snapshot"));
  if (snap) {
    // A snapshot supplies the configuration the request leaves out.
    VDPU_RPC_GET(sp, load_snapshot(*snap));
    base = sp;
    base.fn = {};
    base.ctrl.reset();
  }
  VDPU_RPC_GET(req, parse_ctrl_params(p, base));
  VDPU_RPC_GET(name, manager().controller_create(std::move(req)));
  r.result(json{{"ctrl_id", name}});
}

void controller_destroy(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  VDPU_RPC_GET(force, get_flag(p, "force"));
  VDPU_RPC_GET(release, get_flag(p, "release_msix"));
  manager().controller_destroy(ctrl, force, release, reply_status(std::move(r)));
}

void controller_suspend(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  SuspendOpts o;
  VDPU_RPC_GET(t, get_uint(p, "timeout_ms", 0, 86400000));
  VDPU_RPC_GET(force, get_flag(p, "force"));
  VDPU_RPC_GET(admin, get_flag(p, "admin_only"));
  VDPU_RPC_GET(lu, get_flag(p, "live_update_notifier"));
  if (t) o.timeout_ms = *t;
  o.force = force;
  o.admin_only = admin;
  o.live_update_notifier = lu;
  manager().controller_suspend(ctrl, o, reply_status(std::move(r)));
}

void controller_resume(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  VDPU_RPC_GET(lu, get_flag(p, "live_update_resume"));  // accepted (§6.6)
  (void)lu;
  r.status(manager().controller_resume(ctrl));
}

void controller_attach_ns(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  VDPU_RPC_GET(nsid, req_u32(p, "nsid", 1, 0xfffffffe));
  manager().controller_ns_change(ctrl, nsid, true, [r](Status s) mutable { r.status(s); });
}

void controller_detach_ns(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  VDPU_RPC_GET(nsid, req_u32(p, "nsid", 1, 0xfffffffe));
  manager().controller_ns_change(ctrl, nsid, false, [r](Status s) mutable { r.status(s); });
}

void controller_list(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, get_str(p, "nqn"));
  VDPU_RPC_GET(ctrl, get_str_alias(p, "ctrl", "ctrl_id"));
  VDPU_RPC_GET(list, manager().controller_list(nqn, ctrl));
  r.result(std::move(list));
}

void controller_modify(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, get_str_alias(p, "ctrl", "ctrl_id"));
  VDPU_RPC_GET(nq, get_uint(p, "num_queues", 1, 31));
  VDPU_RPC_GET(nm, get_uint(p, "num_msix", 1, 4095));
  std::optional<uint32_t> q, m;
  if (nq) q = uint32_t(*nq);
  if (nm) m = uint32_t(*nm);
  manager().controller_modify(ctrl, q, m, reply_status(std::move(r)));
}

void controller_vfs_msix_reclaim(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  r.status(manager().controller_vfs_msix_reclaim(ctrl));
}

void controller_snapshot_get(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  VDPU_RPC_GET(file, req_str(p, "filename"));
  r.status(manager().controller_snapshot_get(ctrl, file));
}

void controller_io_stats(const json& p, Responder r) {
  VDPU_RPC_GET(ctrl, ctrl_of(p));
  VDPU_RPC_GET(s, manager().controller_io_stats(ctrl));
  r.result(std::move(s));
}

// ---------------------------------------------------------------- §4.3

void emulation_device_attach(const json& p, Responder r) {
  VDPU_RPC_GET(nm, get_uint(p, "num_msix", 0, 256));
  VDPU_RPC_GET(res, manager().emulation_device_attach(uint32_t(nm.value_or(0))));
  r.result(std::move(res));
}

VDPU_RPC_REGISTER("nvme_subsystem_create", subsystem_create, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_subsystem_destroy", subsystem_destroy, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_subsystem_list", subsystem_list, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_namespace_create", namespace_create, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_namespace_destroy", namespace_destroy, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_namespace_list", namespace_list, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_controller_create", controller_create, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_controller_destroy", controller_destroy, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_controller_suspend", controller_suspend, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_controller_resume", controller_resume, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_controller_snapshot_get", controller_snapshot_get, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_controller_list", controller_list, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_controller_modify", controller_modify, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_controller_attach_ns", controller_attach_ns, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_controller_detach_ns", controller_detach_ns, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_controller_vfs_msix_reclaim", controller_vfs_msix_reclaim, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_controller_dbg_io_stats_get", controller_io_stats, rpc::kRuntime);
VDPU_RPC_REGISTER("nvme_emulation_device_attach", emulation_device_attach, rpc::kRuntime);

}  // namespace
}  // namespace vdpu::service::nvme
