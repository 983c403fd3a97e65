// JSON-RPC glue of the NVMe manager, NVMe-oF target dialect (nvme-emulation
// spec §9): SPDK's nvmf_* methods, where the PCIe emulation is the transport
// "DOCA" (alias "vfio_user") and a listener address is a function VUID, and
// the emulation-function methods of the NVMe emulation app (§9.1).
// Parameters arrive validated against src/rpc/schema/nvmf_emu.json. SPDK
// nests some parameters (namespace, listen_address); the flat spellings of
// our CLI are accepted too.
#include "rpc/rpc.h"
#include "service/emu/params.h"
#include "service/nvme/nvme_manager.h"

namespace vdpu::service::nvme {
namespace {

using rpc::Responder;

Result<std::string> req_str(const json& p, const char* key) {
  auto v = get_str(p, key);
  if (!v) return v.error();
  if (!*v) return make_error(Errc::kInvalidArgument, std::string("missing parameter '") + key + "'");
  return **v;
}

// The sub-object `key` (SPDK nesting) or the params themselves (flat).
const json& nested(const json& p, const char* key) {
  if (p.is_object() && p.contains(key) && p[key].is_object()) return p[key];
  return p;
}

std::function<void(Status)> reply_status(Responder r) {
  auto rp = std::make_shared<Responder>(std::move(r));
  return [rp](Status s) { rp->status(s); };
}

// §9.1 error convention of the emulation-function methods.
void doca_error(Responder& r, const Error& e) {
  if (e.message == "Couldn't find supported devices") return r.error(rpc::kInternalError, e.message);
  r.error(e);
}

Result<std::string> dev_name(const json& p) {
  auto v = get_str_alias(p, "dev-name", "dev_name");
  if (!v) return v.error();
  if (!*v) return make_error(Errc::kInvalidArgument, "Invalid parameters");
  return **v;
}

// ---------------------------------------------------------------- transports

void create_transport(const json& p, Responder r) {
  VDPU_RPC_GET(t, req_str(p, "trtype"));
  r.status(manager().nvmf_create_transport(t, p));
}

void delete_transport(const json& p, Responder r) {
  VDPU_RPC_GET(t, req_str(p, "trtype"));
  r.status(manager().nvmf_delete_transport(t));
}

void get_transports(const json& p, Responder r) {
  VDPU_RPC_GET(t, get_str(p, "trtype"));
  VDPU_RPC_GET(list, manager().nvmf_get_transports(t));
  r.result(std::move(list));
}

// ---------------------------------------------------------------- subsystems

void create_subsystem(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, req_str(p, "nqn"));
  VDPU_RPC_GET(sn, get_str(p, "serial_number"));
  VDPU_RPC_GET(mn, get_str(p, "model_number"));
  VDPU_RPC_GET(any, get_flag(p, "allow_any_host"));
  VDPU_RPC_GET(ana, get_flag(p, "ana_reporting"));
  VDPU_RPC_GET(maxns, get_uint(p, "max_namespaces", 0, 0xfffffffe));
  VDPU_RPC_GET(minc, get_uint(p, "min_cntlid", 1, 0xffef));
  VDPU_RPC_GET(maxc, get_uint(p, "max_cntlid", 1, 0xffef));
  r.status(manager().nvmf_create_subsystem(nqn, sn.value_or(""), mn.value_or(""), any,
                                           uint32_t(maxns.value_or(0)), ana,
                                           uint32_t(minc.value_or(1)), uint32_t(maxc.value_or(0xffef))));
}

void delete_subsystem(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, req_str(p, "nqn"));
  manager().subsystem_destroy(nqn, true, reply_status(std::move(r)));
}

void get_subsystems(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, get_str(p, "nqn"));
  VDPU_RPC_GET(list, manager().nvmf_get_subsystems(nqn));
  r.result(std::move(list));
}

void add_ns(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, req_str(p, "nqn"));
  const json& ns = nested(p, "namespace");
  VDPU_RPC_GET(bdev, req_str(ns, "bdev_name"));
  VDPU_RPC_GET(nsid, get_uint(ns, "nsid", 0, 0xfffffffe));
  VDPU_RPC_GET(uuid, get_str(ns, "uuid"));
  auto rp = std::make_shared<Responder>(std::move(r));
  manager().nvmf_add_ns(nqn, bdev, uint32_t(nsid.value_or(0)), uuid.value_or(""),
                        [rp](Result<uint32_t> id) {
                          if (!id) return rp->error(id.error());
                          rp->result(*id);  // SPDK answers the NSID
                        });
}

void remove_ns(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, req_str(p, "nqn"));
  VDPU_RPC_GET(nsid, get_uint(p, "nsid", 1, 0xfffffffe));
  if (!nsid) return r.error(rpc::kInvalidParams, "missing parameter 'nsid'");
  manager().nvmf_remove_ns(nqn, uint32_t(*nsid), reply_status(std::move(r)));
}

// ---------------------------------------------------------------- hosts

void add_host(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, req_str(p, "nqn"));
  VDPU_RPC_GET(host, req_str(p, "host"));
  VDPU_RPC_GET(psk, get_str(p, "psk"));
  if (psk && !psk->empty())
    return r.error(Error{Errc::kUnsupported, "TLS (psk) is not supported by this target"});
  r.status(manager().nvmf_add_host(nqn, host));
}

void remove_host(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, req_str(p, "nqn"));
  VDPU_RPC_GET(host, req_str(p, "host"));
  r.status(manager().nvmf_remove_host(nqn, host));
}

void allow_any_host(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, req_str(p, "nqn"));
  VDPU_RPC_GET(any, get_flag(p, "allow_any_host"));
  r.status(manager().nvmf_allow_any_host(nqn, any));
}

void get_namespaces(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, req_str(p, "nqn"));
  VDPU_RPC_GET(list, manager().nvmf_get_namespaces(nqn));
  r.result(std::move(list));
}

void get_ns_stats(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, req_str(p, "nqn"));
  VDPU_RPC_GET(list, manager().nvmf_get_namespaces(nqn));
  // Per-namespace counters are the bdev's (bdev_get_iostat has the detail).
  r.result(json{{"nqn", nqn}, {"namespaces", std::move(list)}});
}

Result<ListenAddress> listen_address(const json& p) {
  const json& la = nested(p, "listen_address");
  ListenAddress a;
  auto t = req_str(la, "trtype");
  if (!t) return t.error();
  auto addr = req_str(la, "traddr");
  if (!addr) return addr.error();
  auto fam = get_str(la, "adrfam");
  if (!fam) return fam.error();
  auto svc = get_str(la, "trsvcid");
  if (!svc) return svc.error();
  a.trtype = *t;
  a.traddr = *addr;
  a.adrfam = fam->value_or("");
  a.trsvcid = svc->value_or("");
  return a;
}

void add_listener(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, req_str(p, "nqn"));
  VDPU_RPC_GET(a, listen_address(p));
  manager().nvmf_add_listener(nqn, a, reply_status(std::move(r)));
}

void remove_listener(const json& p, Responder r) {
  VDPU_RPC_GET(nqn, req_str(p, "nqn"));
  VDPU_RPC_GET(a, listen_address(p));
  manager().nvmf_remove_listener(nqn, a, reply_status(std::move(r)));
}

void get_stats(const json&, Responder r) { r.result(manager().nvmf_get_stats()); }

// ---------------------------------------------------------------- §9.1

void doca_get_managers(const json&, Responder r) { r.result(manager().doca_get_managers()); }

void doca_create_function(const json& p, Responder r) {
  auto dev = dev_name(p);
  if (!dev) return r.error(rpc::kInvalidParams, "Invalid parameters");
  auto res = manager().doca_create_function(*dev);
  if (!res) return doca_error(r, res.error());
  r.result(std::move(*res));
}

void doca_destroy_function(const json& p, Responder r) {
  auto dev = dev_name(p);
  auto vuid = get_str(p, "vuid");
  if (!dev || !vuid || !*vuid) return r.error(rpc::kInvalidParams, "Invalid parameters");
  Status s = manager().doca_destroy_function(*dev, **vuid);
  if (!s) return doca_error(r, s.error());
  r.result(true);
}

void doca_list_functions(const json& p, Responder r) {
  auto dev = dev_name(p);
  if (!dev) return r.error(rpc::kInvalidParams, "Invalid parameters");
  auto res = manager().doca_list_functions(*dev);
  if (!res) return doca_error(r, res.error());
  r.result(std::move(*res));
}

VDPU_RPC_REGISTER("nvmf_create_transport", create_transport, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_delete_transport", delete_transport, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_get_transports", get_transports, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_create_subsystem", create_subsystem, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_delete_subsystem", delete_subsystem, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_get_subsystems", get_subsystems, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_subsystem_add_ns", add_ns, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_subsystem_remove_ns", remove_ns, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_subsystem_get_namespaces", get_namespaces, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_subsystem_get_ns_stats", get_ns_stats, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_subsystem_add_listener", add_listener, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_subsystem_remove_listener", remove_listener, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_get_stats", get_stats, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_subsystem_add_host", add_host, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_subsystem_remove_host", remove_host, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_subsystem_allow_any_host", allow_any_host, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_doca_get_managers", doca_get_managers, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_doca_create_function", doca_create_function, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_doca_destroy_function", doca_destroy_function, rpc::kRuntime);
VDPU_RPC_REGISTER("nvmf_doca_list_functions", doca_list_functions, rpc::kRuntime);

// Names the NVMe emulation guide lists that are not SPDK's (§9.2, "sic").
struct Aliases {
  Aliases() {
    rpc::register_method_alias("nvmf_delete_listener", "nvmf_subsystem_remove_listener");
    rpc::register_method_alias("nvmf_subsystem_get_ns", "nvmf_subsystem_get_namespaces");
  }
} aliases;

}  // namespace
}  // namespace vdpu::service::nvme
