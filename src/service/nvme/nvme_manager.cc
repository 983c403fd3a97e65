// NVMe manager: subsystems, namespaces and controllers (spec snap-storage §6).
#include "service/nvme/nvme_manager.h"

#include <algorithm>
#include <fstream>

#include "base/log.h"
#include "bdev/bdev.h"
#include "runtime/reactor.h"

namespace vdpu::service::nvme {

Manager::Manager(emu::Manager& emu, nv::Env& env, EndpointFactory factory)
    : emu_(emu), env_(env), factory_(std::move(factory)) {}

Manager::~Manager() {
  // Process exit: drop everything without waiting. Endpoints first (they
  // reference the controllers), then controllers, then subsystems.
  for (auto& [n, c] : ctrls_) {
    if (c->ep) c->ep->unbind();
    c->ep.reset();
    c->ctrl.reset();
    if (c->fn) emu_.unbind(*c->fn);
  }
  ctrls_.clear();
  subsys_.clear();
}

Subsys* Manager::find_subsys(const std::string& nqn) {
  auto it = subsys_.find(nqn);
  return it == subsys_.end() ? nullptr : &it->second;
}

Ctrl* Manager::find_ctrl(const std::string& name) {
  auto it = ctrls_.find(name);
  return it == ctrls_.end() ? nullptr : it->second.get();
}

Result<Ctrl*> Manager::get(const std::string& ctrl, bool idle) const {
  auto it = ctrls_.find(ctrl);
  if (it == ctrls_.end()) return make_error(Errc::kNotFound, "NVMe controller " + ctrl + " not found");
  if (idle && it->second->busy)
    return make_error(Errc::kBusy, "controller " + ctrl + " has an operation in progress");
  return it->second.get();
}

std::string Manager::next_name() const {
  for (uint32_t id = 1;; ++id) {
    std::string n = "NVMeCtrl" + std::to_string(id);
    if (!ctrls_.count(n)) return n;
  }
}

// ------------------------------------------------------------ subsystems (§6.3)

Status Manager::subsystem_create(nv::SubsystemOptions o) {
  if (subsys_.count(o.nqn)) return make_error(Errc::kExists, "subsystem " + o.nqn + " already exists");
  auto s = nv::Subsystem::create(std::move(o));
  if (!s) return s.error();
  std::string nqn = (*s)->nqn();
  (*s)->on_ns_hot_remove = [nqn](nv::Namespace& ns) {
    VDPU_WARN("nvme subsystem {}: bdev {} of namespace {} was removed: I/O fails with Namespace "
              "Not Ready until the namespace is destroyed", nqn, ns.bdev_name(), ns.nsid());
  };
  Subsys rec;
  rec.s = std::move(*s);
  subsys_.emplace(nqn, std::move(rec));
  VDPU_INFO("nvme subsystem {} created", nqn);
  return {};
}

void Manager::destroy_ctrls(std::vector<std::string> names, Done done) {
  if (names.empty()) return done({});
  std::string n = names.back();
  names.pop_back();
  controller_destroy(n, true, false, [this, names = std::move(names), done](Status s) mutable {
    if (!s) return done(s);
    destroy_ctrls(std::move(names), std::move(done));
  });
}

void Manager::subsystem_destroy(const std::string& nqn, bool force, Done done) {
  Subsys* s = find_subsys(nqn);
  if (!s) return done(make_error(Errc::kNotFound, "subsystem " + nqn + " not found"));
  std::vector<std::string> names;
  for (auto& [n, c] : ctrls_)
    if (c->nqn == nqn) {
      if (c->busy) return done(make_error(Errc::kBusy, "controller " + n + " has an operation in progress"));
      names.push_back(n);
    }
  size_t others = 0;  // listeners of other transports (no controller of ours)
  for (auto& l : s->listeners) others += l.trtype != kEmuTransport;
  size_t nns = s->s->namespaces().size();
  // §6.3: without force a subsystem with controllers or namespaces stays.
  if (!force && (!names.empty() || nns || others))
    return done(make_error(Errc::kBusy, "subsystem " + nqn + " has " + std::to_string(names.size()) +
                                            " controller(s), " + std::to_string(nns) +
                                            " namespace(s) and " + std::to_string(others) +
                                            " listener(s): destroy them first or use force"));
  // Other transports' listeners first (their controllers use the namespaces).
  std::vector<ListenAddress> foreign;
  for (auto& l : s->listeners)
    if (l.trtype != kEmuTransport) foreign.push_back(l);
  stop_listeners(nqn, std::move(foreign), [this, nqn, names, done](Status) {
    destroy_ctrls(names, [this, nqn, done](Status st) {
      if (!st) return done(st);
      Subsys* s = find_subsys(nqn);
      if (!s) return done({});
      for (nv::Namespace* ns : s->s->namespaces()) (void)s->s->remove_namespace(ns->nsid());
      subsys_.erase(nqn);
      VDPU_INFO("nvme subsystem {} destroyed", nqn);
      done({});
    });
  });
}

void Manager::stop_listeners(const std::string& nqn, std::vector<ListenAddress> ls, Done done) {
  if (ls.empty()) return done({});
  ListenAddress a = ls.back();
  ls.pop_back();
  nvmf_remove_listener(nqn, a, [this, nqn, a, ls = std::move(ls), done](Status st) mutable {
    if (!st) VDPU_WARN("stop listener {} {}: {}", a.trtype, a.traddr, st.error().message);
    stop_listeners(nqn, std::move(ls), std::move(done));
  });
}

json Manager::subsystem_list() const {
  json a = json::array();
  for (auto& [n, s] : subsys_) a.push_back(s.s->info());
  return a;
}

// ------------------------------------------------------------ namespaces (§6.4)

Status Manager::namespace_create(const std::string& nqn, const std::string& bdev, uint32_t nsid,
                                 const std::string& uuid, const std::string& bdev_type) {
  Subsys* s = find_subsys(nqn);
  if (!s) return make_error(Errc::kNotFound, "subsystem " + nqn + " not found");
  // §12: bdev_type picks the bdev plugin; every bdev lives in one registry
  // here, so "malloc"/"null" only check the bdev's module.
  if (bdev_type != "spdk" && bdev_type != "malloc" && bdev_type != "null")
    return make_error(Errc::kInvalidArgument, "bdev_type must be spdk, malloc or null");
  if (bdev_type != "spdk")
    if (bdev::Bdev* b = bdev::Manager::get().find(bdev); b && b->module() != bdev_type)
      return make_error(Errc::kInvalidArgument, "bdev " + bdev + " is a " + b->module() +
                                                    " bdev, not " + bdev_type);
  // §6.1/§6.4: NSID unique in the subsystem and <= nn; the bdev must exist
  // and is claimed (nvme::Subsystem::add_namespace checks all of it).
  auto ns = s->s->add_namespace(nsid, bdev, uuid);
  if (!ns) return ns.error();
  VDPU_INFO("nvme subsystem {}: namespace {} on bdev {} (uuid {})", nqn, nsid, bdev,
            (*ns)->uuid_str());
  return {};
}

Status Manager::namespace_destroy(const std::string& nqn, uint32_t nsid) {
  Subsys* s = find_subsys(nqn);
  if (!s) return make_error(Errc::kNotFound, "subsystem " + nqn + " not found");
  return s->s->remove_namespace(nsid);
}

Result<json> Manager::namespace_list(const std::optional<std::string>& nqn) const {
  json a = json::array();
  if (nqn && !subsys_.count(*nqn)) return make_error(Errc::kNotFound, "subsystem " + *nqn + " not found");
  for (auto& [n, s] : subsys_) {
    if (nqn && n != *nqn) continue;
    for (nv::Namespace* ns : s.s->namespaces()) {
      json j = ns->info();
      // SNAP field (public client); no per-namespace weights here: 0 = no limit.
      j["max inflights per weight"] = 0;
      j["bdev_name"] = ns->bdev_name();
      a.push_back(std::move(j));
    }
  }
  return a;
}

// ------------------------------------------------------------ controllers (§6.5)

Result<std::unique_ptr<nv::Controller>> Manager::make_controller(nv::Subsystem& s,
                                                                 const CtrlParams& p,
                                                                 const std::string& name,
                                                                 uint16_t num_msix, bool suspended) {
  nv::ControllerOptions o;
  o.name = name;
  o.num_queues = p.num_queues;
  o.mdts = uint8_t(p.mdts);
  o.fw_slots = uint8_t(p.fw_slots);
  o.compare = p.compare;
  o.write_zeroes = p.write_zeroes;
  o.compare_write = p.compare_write;
  o.write_uncor = p.write_uncor;
  o.admin_only = p.admin_only;
  o.suspended = suspended;
  o.quirks = p.quirks;
  o.num_msix = num_msix;
  o.max_queue_entries = p.max_queue_entries;
  return nv::Controller::create(s, std::move(o), env_);
}

Result<std::unique_ptr<Endpoint>> Manager::make_endpoint(const Ctrl& c) {
  EndpointSpec spec;
  spec.name = c.name + "@" + c.fn->vuid;
  spec.vuid = c.fn->vuid;
  spec.num_msix = c.num_msix;
  return factory_(spec);
}

Result<std::string> Manager::controller_create(CtrlParams p) {
  Subsys* s = find_subsys(p.nqn);
  if (!s) return make_error(Errc::kNotFound, "subsystem " + p.nqn + " not found");
  if (p.fn.empty())
    return make_error(Errc::kInvalidArgument, "give the function: vuid, pf_id [vf_id], vhca_id or pci_bdf");
  auto fnr = emu_.select(emu::EmuType::kNvme, p.fn);
  if (!fnr) return fnr.error();
  emu::Function& fn = **fnr;
  std::string name = p.ctrl ? *p.ctrl : next_name();
  if (ctrls_.count(name)) return make_error(Errc::kExists, "controller " + name + " already exists");
  // §1.4 / §6.1: one controller per function.
  if (!fn.ctrl_id.empty())
    return make_error(Errc::kExists, "function " + fn.vuid + " already has controller " + fn.ctrl_id);
  // §6.5: dynamic_msix on a PF (with VFs), vf_num_msix on a VF.
  if (p.vf_num_msix && !fn.is_vf())
    return make_error(Errc::kInvalidArgument, "vf_num_msix is valid on a VF only (§6.5)");
  if (p.dynamic_msix && fn.is_vf())
    return make_error(Errc::kInvalidArgument, "dynamic_msix is valid on a PF only (§6.5)");
  if (p.dynamic_msix && fn.vfs.empty())
    return make_error(Errc::kInvalidArgument, "dynamic_msix: PF " + fn.vuid + " has no VFs");
  bool took = false;
  auto fail = [&](Error e) -> Result<std::string> {
    if (took) emu_.release_vf_resources(fn);
    return e;
  };
  if (p.vf_num_msix) {
    // §9: vf_num_msix and num_queues both come from the PF pool.
    Status st = emu_.take_vf_resources(fn, *p.vf_num_msix, p.admin_only ? 0 : p.num_queues);
    if (!st) return st.error();
    took = true;
  }
  uint32_t msix = fn.num_msix;
  if (msix == 0)
    return fail(make_error(Errc::kInvalidArgument, "function " + fn.vuid +
                                                       " has no MSI-X vectors (reclaimed): give vf_num_msix"));
  if (msix > 256) {
    VDPU_WARN("function {}: {} MSI-X vectors, the NVMe BAR0 layout holds 256", fn.vuid, msix);
    msix = 256;
  }
  auto ctrl = make_controller(*s->s, p, name, uint16_t(msix), p.suspended);
  if (!ctrl) return fail(ctrl.error());
  auto c = std::make_unique<Ctrl>();
  c->name = name;
  c->nqn = p.nqn;
  c->fn = &fn;
  c->num_msix = uint16_t(msix);
  c->ctrl = std::move(*ctrl);
  c->user_suspended = p.suspended;
  c->params = p;
  c->params.ctrl = name;
  auto ep = make_endpoint(*c);
  if (!ep) return fail(ep.error());
  c->ep = std::move(*ep);
  if (Status st = c->ep->bind(c->ctrl.get()); !st) return fail(st.error());
  if (fn.state == emu::HotplugState::kPowerOn) {
    if (Status st = c->ep->plug(fn.socket); !st) {
      c->ep->unbind();
      return fail(st.error());
    }
  }
  (void)emu_.bind(fn, name);
  VDPU_INFO("NVMe controller {} created on {} (subsystem {}, {} I/O queues, mdts {}{}{})", name,
            fn.vuid, p.nqn, p.admin_only ? 0 : p.num_queues, p.mdts,
            c->ep->plugged() ? ", socket " + fn.socket : "", p.suspended ? ", suspended" : "");
  ctrls_.emplace(name, std::move(c));
  return name;
}

void Manager::controller_destroy(const std::string& ctrl, bool force, bool release_msix, Done done) {
  auto cr = get(ctrl);
  if (!cr) return done(cr.error());
  Ctrl* c = *cr;
  (void)force;  // §6.6: accepted; the host loses the function either way
  if (c->fn->hotplugged && c->fn->state == emu::HotplugState::kPowerOn && !c->listener)
    VDPU_WARN("controller {} destroyed while function {} is exposed: the function is faulty "
              "until a new controller is created (§1.4)", ctrl, c->fn->vuid);
  c->busy = true;
  auto release = [this, ctrl, release_msix, done] {
    Ctrl* c = find_ctrl(ctrl);
    if (!c) return done({});
    c->ep->unbind();
    c->ep.reset();
    c->ctrl.reset();
    if (release_msix) emu_.release_vf_resources(*c->fn);  // §9 step 4 (VF only)
    emu_.unbind(*c->fn);
    if (Subsys* s = find_subsys(c->nqn))
      std::erase_if(s->listeners, [&](const ListenAddress& a) { return a.ctrl == ctrl; });
    ctrls_.erase(ctrl);
    VDPU_INFO("NVMe controller {} destroyed", ctrl);
    done({});
  };
  auto destroy = [this, ctrl, release] {
    Ctrl* c = find_ctrl(ctrl);
    if (!c) return;
    // The controller may still run its own callbacks after `done`: free it
    // from a fresh main-reactor turn.
    c->ctrl->destroy([this, release] { env_.post(nv::kMainReactor, release); });
  };
  if (c->ep->plugged())
    c->ep->unplug(destroy);
  else
    destroy();
}

void Manager::controller_suspend(const std::string& ctrl, SuspendOpts o, Done done) {
  auto cr = get(ctrl);
  if (!cr) return done(cr.error());
  Ctrl* c = *cr;
  if (o.admin_only || o.live_update_notifier)
    VDPU_INFO("controller {}: suspend admin_only/live_update_notifier: the whole controller is "
              "suspended", ctrl);
  c->busy = true;
  c->user_suspended = true;
  struct State {
    bool replied = false;
  };
  auto st = std::make_shared<State>();
  auto reply = [this, ctrl, st, done](Status s) {
    if (st->replied) return;
    st->replied = true;
    if (Ctrl* c = find_ctrl(ctrl)) c->busy = false;
    done(s);
  };
  // §6.6: stop fetching new commands; pending ones run after resume.
  c->ctrl->suspend([reply] { reply({}); });
  if (st->replied) return;
  if (o.force) return reply({});  // in-flight I/O completes in the background
  if (o.timeout_ms) {
    // §6.6: with I/O still pending at the timeout the suspend fails and the
    // controller resumes.
    if (rt::Reactor* r = rt::this_reactor())
      (void)r->add_timer(*o.timeout_ms * 1000, [this, ctrl, st, reply, ms = *o.timeout_ms] {
        if (st->replied) return;
        if (Ctrl* c = find_ctrl(ctrl)) {
          c->user_suspended = false;
          c->ctrl->resume();  // runs after the pending suspend flow
        }
        reply(make_error(Errc::kTimeout, "controller " + ctrl + ": I/O still in flight after " +
                                             std::to_string(ms) + " ms; resumed"));
      });
  }
}

Status Manager::controller_resume(const std::string& ctrl) {
  auto cr = get(ctrl);
  if (!cr) return cr.error();
  Ctrl* c = *cr;
  c->user_suspended = false;
  // §6.6: for a controller created suspended this starts the first
  // communication with the host driver (CC.EN is honoured from now on).
  c->ctrl->resume();
  return {};
}

void Manager::controller_ns_change(const std::string& ctrl, uint32_t nsid, bool attach, Done done) {
  auto cr = get(ctrl);
  if (!cr) return done(cr.error());
  Ctrl* c = *cr;
  // nvme::Controller::attach_ns/detach_ns act on a suspended controller and
  // check the §6.1 rules (no namespace shared by two controllers).
  auto apply = [c, nsid, attach] { return attach ? c->ctrl->attach_ns(nsid) : c->ctrl->detach_ns(nsid); };
  if (c->ctrl->suspended()) return done(apply());
  // A running controller (the spec's cleanup detaches from one): quiesce its
  // queues so no command is in flight on the namespace, change it, resume.
  // The host learns of the change by the Namespace Attribute Changed event.
  c->busy = true;
  c->ctrl->suspend([this, ctrl, apply, done] {
    Ctrl* c = find_ctrl(ctrl);
    if (!c) return done(make_error(Errc::kNotFound, "NVMe controller " + ctrl + " not found"));
    Status s = apply();
    c->ctrl->resume();
    c->busy = false;
    done(s);
  });
}

Result<json> Manager::controller_list(const std::optional<std::string>& nqn,
                                      const std::optional<std::string>& ctrl) const {
  if (ctrl && !ctrls_.count(*ctrl)) return make_error(Errc::kNotFound, "NVMe controller " + *ctrl + " not found");
  if (nqn && !subsys_.count(*nqn)) return make_error(Errc::kNotFound, "subsystem " + *nqn + " not found");
  json a = json::array();
  for (auto& [n, c] : ctrls_) {
    if ((ctrl && n != *ctrl) || (nqn && c->nqn != *nqn)) continue;
    json j = c->ctrl->info();
    const emu::Function& f = *c->fn;
    j["vhca_id"] = f.vhca_id;
    j["vuid"] = f.vuid;
    j["pci_bdf"] = f.pci_bdf;
    j["pf_index"] = f.pf_index;
    if (f.is_vf()) j["vf_index"] = f.vf_index;
    j["emulation_manager"] = emu_.name();
    j["socket"] = c->ep->plugged() ? f.socket : "";
    j["connected"] = c->ep->connected();
    j["mdts"] = c->params.mdts;
    j["num_queues"] = c->params.admin_only ? 0 : c->params.num_queues;
    j["dynamic_msix"] = c->params.dynamic_msix;
    if (c->listener) j["listener"] = true;
    if (!f.is_vf() && !f.vfs.empty()) {  // §9 step 2: PF pool limits
      const emu::MsixPool& p = f.pool;
      j["free_msix"] = p.free_msix;
      j["free_queues"] = p.free_queues;
      j["vf_min_msix"] = p.vf_min_msix;
      j["vf_max_msix"] = p.vf_max_msix;
      j["vf_min_queues"] = p.vf_min_queues;
      j["vf_max_queues"] = p.vf_max_queues;
    }
    a.push_back(std::move(j));
  }
  return a;
}

}  // namespace vdpu::service::nvme
