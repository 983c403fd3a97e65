// The NVMe manager (spec snap-storage §1.2, §6; nvme-emulation §9): owns the
// NVMe subsystems (nvme::Subsystem, with their namespaces) and the NVMe
// controllers, binds each controller to one emulated function of the
// emulation manager and serves it to the host through an Endpoint (a
// vfio-user socket, <emu_dir>/<vuid>). Two RPC dialects reach the same
// objects: SNAP's nvme_* methods and SPDK's nvmf_* methods, where the PCIe
// emulation is one NVMe-oF transport ("DOCA", alias "vfio_user") whose
// listener address is a function VUID. Subsystems know nothing about
// transports, so other transports (NVMe/TCP) can be added through
// register_transport().
//
// Threads: control plane (main reactor) only. Asynchronous operations report
// through `done` on the main reactor. Errors: kNotFound (subsystem,
// namespace, controller, function, bdev, transport), kExists (NQN, NSID,
// controller name, function already bound, listener), kInvalidArgument (bad
// or contradicting parameters), kState (controller not suspended / driver
// bound / not suspended for attach), kBusy (namespace attached, subsystem not
// empty, operation in progress), kTimeout (suspend timeout), kIo (files).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "nvme/controller.h"
#include "nvme/env.h"
#include "nvme/subsystem.h"
#include "service/emu/emu_manager.h"
#include "service/nvme/endpoint.h"
#include "service/nvme/nvme_params.h"

namespace vdpu::service::nvme {

using json = nlohmann::json;
using Done = std::function<void(Status)>;
namespace nv = ::vdpu::nvme;

// A listener address of nvmf_subsystem_add_listener (SPDK trid).
struct ListenAddress {
  std::string trtype;   // canonical (upper case): "DOCA", "TCP" ...
  std::string adrfam;   // "IPv4" ... (informational for DOCA)
  std::string traddr;   // DOCA: the function VUID
  std::string trsvcid;
  std::string ctrl;     // DOCA: the controller serving it
  json to_json() const;
};

// A transport other than the PCIe emulation (e.g. NVMe/TCP), plugged in by
// its module at start-up. Every callback runs on the main reactor.
struct TransportHandler {
  std::string trtype;                   // canonical, upper case ("TCP")
  std::vector<std::string> aliases;     // other accepted spellings (lower case)
  json default_opts = json::object();   // nvmf_get_transports fields
  // Validates and applies nvmf_create_transport options (defaults merged).
  std::function<Status(const json& opts)> create;
  std::function<void(nv::Subsystem&, const ListenAddress&, Done)> listen;
  std::function<void(nv::Subsystem&, const ListenAddress&, Done)> stop_listen;
  // Optional: disconnect every host of the subsystem (before one of its
  // namespaces goes away); done when nothing of it is in use.
  std::function<void(nv::Subsystem&, std::function<void()>)> disconnect;
  // Optional: this transport's entry of nvmf_get_stats "transports".
  std::function<json()> stats;
  // Optional: closes every listener and connection (daemon shutdown, before
  // the subsystems and bdevs go away).
  std::function<void(std::function<void()>)> shutdown;
};
// Start-up only (static registration). Duplicate trtype aborts.
void register_transport(TransportHandler h);

struct Subsys {
  std::unique_ptr<nv::Subsystem> s;
  // nvmf_create_subsystem extras (reported by nvmf_get_subsystems).
  bool nvmf = false;  // created by nvmf_create_subsystem (save_config dialect)
  bool allow_any_host = true;
  bool ana_reporting = false;
  uint32_t max_namespaces = 0;
  uint32_t min_cntlid = 1, max_cntlid = 0xffef;
  std::vector<ListenAddress> listeners;
  std::vector<std::string> hosts;  // nvmf_subsystem_add_host (NVMe-oF transports)
};

struct Ctrl {
  std::string name;
  std::string nqn;
  emu::Function* fn = nullptr;
  CtrlParams params;               // as created (list, save_config, modify)
  uint16_t num_msix = 0;           // MSI-X of the function when created
  std::unique_ptr<nv::Controller> ctrl;
  std::unique_ptr<Endpoint> ep;
  bool busy = false;               // an asynchronous operation runs
  bool user_suspended = false;     // created --suspended or suspend RPC
  bool listener = false;           // created by nvmf_subsystem_add_listener
};

struct SuspendOpts {
  std::optional<uint64_t> timeout_ms;  // unset: wait until nothing is in flight
  bool force = false;                  // answer at once, in-flight I/O finishes later
  bool admin_only = false;             // accepted: the whole controller is suspended
  bool live_update_notifier = false;   // accepted (live update, §10.5)
};

class Manager {
 public:
  Manager(emu::Manager& emu, nv::Env& env, EndpointFactory factory);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  emu::Manager& emu() { return emu_; }
  Subsys* find_subsys(const std::string& nqn);
  Ctrl* find_ctrl(const std::string& name);

  // ---- subsystems (§6.3) ----
  Status subsystem_create(nv::SubsystemOptions o);
  // force: destroy the controllers and namespaces first; else kBusy when
  // the subsystem has any.
  void subsystem_destroy(const std::string& nqn, bool force, Done done);
  json subsystem_list() const;

  // ---- namespaces (§6.4) ----
  // bdev_type: "spdk" (any bdev), "malloc" or "null" (the bdev must be of
  // that module). Claims the bdev.
  Status namespace_create(const std::string& nqn, const std::string& bdev, uint32_t nsid,
                          const std::string& uuid, const std::string& bdev_type);
  Status namespace_destroy(const std::string& nqn, uint32_t nsid);
  Result<json> namespace_list(const std::optional<std::string>& nqn) const;

  // ---- controllers (§6.5, §6.6) ----
  // Returns the controller name.
  Result<std::string> controller_create(CtrlParams p);
  void controller_destroy(const std::string& ctrl, bool force, bool release_msix, Done done);
  void controller_suspend(const std::string& ctrl, SuspendOpts o, Done done);
  Status controller_resume(const std::string& ctrl);
  // Attaches (attach) or detaches a namespace. On a running controller the
  // queues are quiesced around the change and the host gets a Namespace
  // Attribute Changed event.
  void controller_ns_change(const std::string& ctrl, uint32_t nsid, bool attach, Done done);
  Result<json> controller_list(const std::optional<std::string>& nqn,
                               const std::optional<std::string>& ctrl) const;
  // Only while no driver is bound (CC.EN = 0). num_msix: VF with dynamic
  // MSI-X only; changing it re-creates the endpoint (a connected client is
  // dropped).
  void controller_modify(const std::optional<std::string>& ctrl,
                         std::optional<uint32_t> num_queues, std::optional<uint32_t> num_msix,
                         Done done);
  Status controller_vfs_msix_reclaim(const std::string& ctrl);
  Result<json> controller_io_stats(const std::string& ctrl) const;
  // Writes the controller's configuration and register state (suspended only).
  Status controller_snapshot_get(const std::string& ctrl, const std::string& filename) const;

  // ---- legacy hotplug (§4.3) ----
  Result<json> emulation_device_attach(uint32_t num_msix);

  // ---- nvmf dialect (nvme-emulation §9) ----
  Status nvmf_create_transport(const std::string& trtype, const json& opts);
  Status nvmf_delete_transport(const std::string& trtype);
  Result<json> nvmf_get_transports(const std::optional<std::string>& trtype) const;
  // max_namespaces 0: unlimited (nn/mnan defaults).
  Status nvmf_create_subsystem(const std::string& nqn, const std::string& sn,
                               const std::string& mn, bool allow_any_host, uint32_t max_namespaces,
                               bool ana_reporting, uint32_t min_cntlid, uint32_t max_cntlid);
  // nsid 0: the lowest free one. Attaches it to the subsystem's emulation
  // controllers (suspend, attach, resume). Returns the nsid.
  void nvmf_add_ns(const std::string& nqn, const std::string& bdev, uint32_t nsid,
                   const std::string& uuid, std::function<void(Result<uint32_t>)> done);
  void nvmf_remove_ns(const std::string& nqn, uint32_t nsid, Done done);
  void nvmf_add_listener(const std::string& nqn, ListenAddress a, Done done);
  void nvmf_remove_listener(const std::string& nqn, const ListenAddress& a, Done done);
  Result<json> nvmf_get_subsystems(const std::optional<std::string>& nqn) const;
  // Host access of NVMe-oF transports (SPDK nvmf_subsystem_add_host,
  // _remove_host, _allow_any_host). kNotFound, kExists, kInvalidArgument.
  Status nvmf_add_host(const std::string& nqn, const std::string& host);
  Status nvmf_remove_host(const std::string& nqn, const std::string& host);
  Status nvmf_allow_any_host(const std::string& nqn, bool allow);
  bool host_allowed(const std::string& nqn, const std::string& host) const;
  json nvmf_get_stats() const;
  Result<json> nvmf_get_namespaces(const std::string& nqn) const;
  // Canonical trtype of a user spelling ("doca", "vfio_user" -> "DOCA"), or "".
  static std::string canonical_trtype(const std::string& t);
  static constexpr const char* kEmuTransport = "DOCA";

  // ---- emulation functions of the NVMe emulation app (nvme-emulation §9.1) ----
  json doca_get_managers() const;
  Result<json> doca_create_function(const std::string& dev);
  Status doca_destroy_function(const std::string& dev, const std::string& vuid);
  Result<json> doca_list_functions(const std::string& dev) const;

  // Graceful shutdown: destroys every controller without touching the saved
  // configuration.
  void shutdown(std::function<void()> done);
  // save_config: the RPCs that recreate every object, in replay order.
  json write_config() const;

 private:
  Result<Ctrl*> get(const std::string& ctrl, bool idle = true) const;
  std::string next_name() const;
  Result<std::unique_ptr<nv::Controller>> make_controller(nv::Subsystem& s, const CtrlParams& p,
                                                          const std::string& name,
                                                          uint16_t num_msix, bool suspended);
  Result<std::unique_ptr<Endpoint>> make_endpoint(const Ctrl& c);
  void destroy_ctrls(std::vector<std::string> names, Done done);
  void stop_listeners(const std::string& nqn, std::vector<ListenAddress> ls, Done done);
  void with_suspended(const std::string& ctrl, std::function<Status(Ctrl&)> fn, Done done);
  Status check_transport(const std::string& trtype) const;
  const TransportHandler* handler(const std::string& trtype) const;

  emu::Manager& emu_;
  nv::Env& env_;
  EndpointFactory factory_;
  std::map<std::string, Subsys> subsys_;
  std::map<std::string, std::unique_ptr<Ctrl>> ctrls_;
  std::map<std::string, json> transports_;  // created transports: trtype -> opts
};

// The process-wide manager (vfio-user endpoints, runtime env, emu manager).
Manager& manager();
void set_manager(std::unique_ptr<Manager> m);

}  // namespace vdpu::service::nvme
