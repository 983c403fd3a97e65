// NVMe manager: the NVMe-oF target dialect (nvme-emulation spec §5, §7.1,
// §9): transports, nvmf subsystems/namespaces/listeners over the same
// objects as the SNAP dialect, the emulation-function RPCs of the NVMe
// emulation app, save_config and shutdown.
#include <algorithm>
#include <bit>
#include <cctype>

#include "base/log.h"
#include "service/nvme/nvme_manager.h"

namespace vdpu::service::nvme {

namespace {

std::vector<TransportHandler>& handlers() {
  static std::vector<TransportHandler> v;
  return v;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// nvme-emulation §5 opts_init defaults of the emulation transport.
json emu_transport_defaults() {
  return {{"max_queue_depth", 512},    {"max_io_qpairs_per_ctrlr", 127},
          {"in_capsule_data_size", 4096}, {"max_io_size", 131072},
          {"io_unit_size", 128},       {"max_aq_depth", 256},
          {"num_shared_buffers", 1},   {"buf_cache_size", 0},
          {"dif_insert_or_strip", false}, {"abort_timeout_sec", 1},
          {"zcopy", true}};
}

json hosts_json(const std::vector<std::string>& hosts) {
  json a = json::array();
  for (auto& h : hosts) a.push_back({{"nqn", h}});
  return a;
}

uint64_t num(const json& o, const char* k, uint64_t def) {
  if (!o.contains(k) || !o[k].is_number_integer() || o[k].get<int64_t>() < 0) return def;
  return o[k].get<uint64_t>();
}

}  // namespace

void register_transport(TransportHandler h) {
  for (auto& x : handlers())
    if (x.trtype == h.trtype) {
      fprintf(stderr, "vdpu: NVMe-oF transport %s registered twice\n", h.trtype.c_str());
      abort();
    }
  handlers().push_back(std::move(h));
}

json ListenAddress::to_json() const {
  return {{"trtype", trtype}, {"transport", trtype}, {"adrfam", adrfam}, {"traddr", traddr},
          {"trsvcid", trsvcid}};
}

std::string Manager::canonical_trtype(const std::string& t) {
  std::string l = lower(t);
  if (l == "doca" || l == "vfio_user" || l == "vfiouser" || l == "vfio-user") return kEmuTransport;
  for (auto& h : handlers()) {
    if (lower(h.trtype) == l) return h.trtype;
    for (auto& a : h.aliases)
      if (lower(a) == l) return h.trtype;
  }
  return "";
}

const TransportHandler* Manager::handler(const std::string& trtype) const {
  for (auto& h : handlers())
    if (h.trtype == trtype) return &h;
  return nullptr;
}

// ------------------------------------------------------------ transports

Status Manager::nvmf_create_transport(const std::string& trtype, const json& opts) {
  std::string t = canonical_trtype(trtype);
  if (t.empty()) return make_error(Errc::kInvalidArgument, "unknown transport type '" + trtype + "'");
  if (transports_.count(t)) return make_error(Errc::kExists, "Transport type " + t + " already exists");
  const TransportHandler* h = t == kEmuTransport ? nullptr : handler(t);
  json merged = h ? h->default_opts : emu_transport_defaults();
  for (auto& [k, v] : opts.items())
    if (k != "trtype" && k != "tgt_name" && !v.is_null()) merged[k] = v;
  if (merged.contains("max_qpairs_per_ctrlr")) {
    uint64_t q = num(merged, "max_qpairs_per_ctrlr", 128);  // deprecated: admin + I/O
    merged["max_io_qpairs_per_ctrlr"] = q > 1 ? q - 1 : 1;
    merged.erase("max_qpairs_per_ctrlr");
  }
  if (t == kEmuTransport) {
    uint64_t qd = num(merged, "max_queue_depth", 512), io = num(merged, "max_io_size", 131072);
    if (qd < 2 || qd > 4096)
      return make_error(Errc::kInvalidArgument, "max_queue_depth must be 2-4096 (CAP.MQES)");
    if (io < 4096) return make_error(Errc::kInvalidArgument, "max_io_size must be >= 4096");
    if (num(merged, "max_io_qpairs_per_ctrlr", 127) < 1)
      return make_error(Errc::kInvalidArgument, "max_io_qpairs_per_ctrlr must be >= 1");
  } else if (h && h->create) {
    VDPU_TRY(h->create(merged));
  }
  transports_[t] = merged;
  VDPU_INFO("nvmf: transport {} created", t);
  return {};
}

Status Manager::nvmf_delete_transport(const std::string& trtype) {
  std::string t = canonical_trtype(trtype);
  if (t.empty() || !transports_.count(t))
    return make_error(Errc::kNotFound, "transport " + trtype + " not found");
  for (auto& [n, s] : subsys_)
    for (auto& l : s.listeners)
      if (l.trtype == t) return make_error(Errc::kBusy, "subsystem " + n + " listens on " + t);
  transports_.erase(t);
  return {};
}

Result<json> Manager::nvmf_get_transports(const std::optional<std::string>& trtype) const {
  json a = json::array();
  std::string want = trtype ? canonical_trtype(*trtype) : "";
  if (trtype && (want.empty() || !transports_.count(want)))
    return make_error(Errc::kNotFound, "transport " + *trtype + " not found");
  for (auto& [t, o] : transports_) {
    if (trtype && t != want) continue;
    json j = {{"trtype", t}};
    j.update(o);
    a.push_back(std::move(j));
  }
  return a;
}

Status Manager::check_transport(const std::string& t) const {
  if (!transports_.count(t))
    return make_error(Errc::kNotFound, "transport " + t + " not created (nvmf_create_transport -t " + t + ")");
  return {};
}

// ------------------------------------------------------------ subsystems / namespaces

Status Manager::nvmf_create_subsystem(const std::string& nqn, const std::string& sn,
                                      const std::string& mn, bool allow_any_host,
                                      uint32_t max_namespaces, bool ana_reporting,
                                      uint32_t min_cntlid, uint32_t max_cntlid) {
  if (min_cntlid < 1 || max_cntlid > 0xffef || min_cntlid > max_cntlid)
    return make_error(Errc::kInvalidArgument, "need 1 <= min_cntlid <= max_cntlid <= 65519");
  nv::SubsystemOptions o;
  o.nqn = nqn;
  o.serial_number = sn;
  o.model_number = mn;
  if (max_namespaces) o.nn = o.mnan = max_namespaces;  // SPDK: NSIDs 1..max_namespaces
  VDPU_TRY(subsystem_create(std::move(o)));
  Subsys& s = *find_subsys(nqn);
  s.nvmf = true;
  s.allow_any_host = allow_any_host;
  s.max_namespaces = max_namespaces;
  s.ana_reporting = ana_reporting;
  s.min_cntlid = min_cntlid;
  s.max_cntlid = max_cntlid;
  return {};
}

void Manager::nvmf_add_ns(const std::string& nqn, const std::string& bdev, uint32_t nsid,
                          const std::string& uuid, std::function<void(Result<uint32_t>)> done) {
  Subsys* s = find_subsys(nqn);
  if (!s) return done(make_error(Errc::kNotFound, "subsystem " + nqn + " not found"));
  if (nsid == 0) {  // SPDK: the lowest free NSID
    nsid = 1;
    while (s->s->find_namespace(nsid) && nsid < s->s->nn()) ++nsid;
  }
  if (Status st = namespace_create(nqn, bdev, nsid, uuid, "spdk"); !st) return done(st.error());
  // The subsystem's emulation controllers see it at once (suspend, attach,
  // resume: the host gets a Namespace Attribute Changed event).
  std::string ctrl;
  for (auto& [n, c] : ctrls_)
    if (c->listener && c->nqn == nqn) ctrl = n;
  if (ctrl.empty()) return done(nsid);
  with_suspended(ctrl, [nsid](Ctrl& c) { return c.ctrl->attach_ns(nsid); },
                 [done, nsid](Status st) {
                   if (!st) return done(st.error());
                   done(nsid);
                 });
}

void Manager::nvmf_remove_ns(const std::string& nqn, uint32_t nsid, Done done) {
  Subsys* s = find_subsys(nqn);
  if (!s) return done(make_error(Errc::kNotFound, "subsystem " + nqn + " not found"));
  nv::Namespace* ns = s->s->find_namespace(nsid);
  if (!ns) return done(make_error(Errc::kNotFound, "namespace " + std::to_string(nsid) + " not found"));
  nv::Controller* owner = ns->controller();
  if (!owner) {
    // Hosts of other transports use every namespace of the subsystem: they
    // are disconnected first (they reconnect and see the new list).
    std::vector<const TransportHandler*> hs;
    for (auto& l : s->listeners)
      if (const TransportHandler* h = handler(l.trtype); h && h->disconnect &&
                                                          std::find(hs.begin(), hs.end(), h) == hs.end())
        hs.push_back(h);
    if (hs.empty()) return done(namespace_destroy(nqn, nsid));
    auto left = std::make_shared<size_t>(hs.size());
    for (const TransportHandler* h : hs)
      h->disconnect(*s->s, [this, left, nqn, nsid, done] {
        if (--*left == 0) done(namespace_destroy(nqn, nsid));
      });
    return;
  }
  std::string ctrl = owner->name();
  with_suspended(ctrl, [nsid](Ctrl& c) { return c.ctrl->detach_ns(nsid); },
                 [this, nqn, nsid, done](Status st) {
                   if (!st) return done(st);
                   done(namespace_destroy(nqn, nsid));
                 });
}

Result<json> Manager::nvmf_get_namespaces(const std::string& nqn) const {
  auto it = subsys_.find(nqn);
  if (it == subsys_.end()) return make_error(Errc::kNotFound, "subsystem " + nqn + " not found");
  json a = json::array();
  for (nv::Namespace* ns : it->second.s->namespaces()) {
    json j = {{"nsid", ns->nsid()}, {"bdev_name", ns->bdev_name()}, {"name", ns->bdev_name()},
              {"uuid", ns->uuid_str()}};
    char nguid[33];
    for (int i = 0; i < 16; ++i) snprintf(nguid + 2 * i, 3, "%02X", ns->nguid()[i]);
    j["nguid"] = nguid;
    a.push_back(std::move(j));
  }
  return a;
}

// ------------------------------------------------------------ listeners (§7.1)

void Manager::nvmf_add_listener(const std::string& nqn, ListenAddress a, Done done) {
  Subsys* s = find_subsys(nqn);
  if (!s) return done(make_error(Errc::kNotFound, "subsystem " + nqn + " not found"));
  std::string t = canonical_trtype(a.trtype);
  if (t.empty()) return done(make_error(Errc::kInvalidArgument, "unknown transport type '" + a.trtype + "'"));
  a.trtype = t;
  if (Status st = check_transport(t); !st) return done(st);
  // An emulation function serves one subsystem; a network address may serve
  // several (as in SPDK), but each subsystem only once.
  for (auto& [n, x] : subsys_)
    for (auto& l : x.listeners)
      if (l.trtype == t && l.traddr == a.traddr && l.trsvcid == a.trsvcid &&
          (t == kEmuTransport || n == nqn))
        return done(make_error(Errc::kExists, "listener " + t + " " + a.traddr + " exists (subsystem " + n + ")"));
  if (t != kEmuTransport) {
    const TransportHandler* h = handler(t);
    if (!h || !h->listen) return done(make_error(Errc::kUnsupported, "transport " + t + " cannot listen"));
    // SPDK spells the address family IPv4 / IPv6 in its answers.
    std::string fam = lower(a.adrfam);
    if (fam.empty() || fam == "ipv4") a.adrfam = "IPv4";
    else if (fam == "ipv6") a.adrfam = "IPv6";
    else return done(make_error(Errc::kInvalidArgument, "adrfam must be ipv4 or ipv6 for " + t));
    return h->listen(*s->s, a, [this, nqn, a, done](Status st) {
      if (st) {
        if (Subsys* s = find_subsys(nqn)) s->listeners.push_back(a);
      }
      done(st);
    });
  }
  // The emulation transport (§5 listen): traddr is the function's VUID; a
  // controller is created on it and the function exposed (hot plug).
  emu::Function* fn = emu_.find_vuid(a.traddr);
  if (!fn || fn->type != emu::EmuType::kNvme)
    return done(make_error(Errc::kNotFound, "device representor with requested vuid doesn't exist"));
  const json& o = transports_[t];
  CtrlParams p;
  p.nqn = nqn;
  p.fn.vuid = fn->vuid;
  p.num_queues = uint32_t(std::clamp<uint64_t>(num(o, "max_io_qpairs_per_ctrlr", 127), 1, nv::kMaxIoQueues));
  if (fn->is_vf() && fn->assigned_queues) p.num_queues = std::max(1u, fn->assigned_queues);
  p.max_queue_entries = uint32_t(std::clamp<uint64_t>(num(o, "max_queue_depth", 512), 2, 4096));
  uint64_t pages = std::max<uint64_t>(num(o, "max_io_size", 131072) / 4096, 2);
  p.mdts = uint32_t(std::clamp<int>(int(std::bit_width(pages)) - 1, 1, 7));
  p.suspended = true;
  bool plug_fn = fn->hotplugged && fn->state != emu::HotplugState::kPowerOn;
  if (plug_fn) emu_.set_state(*fn, emu::HotplugState::kPowerOn);
  auto name = controller_create(p);
  if (!name) {
    if (plug_fn) emu_.set_state(*fn, emu::HotplugState::kPowerOff);
    return done(name.error());
  }
  Ctrl* c = find_ctrl(*name);
  c->listener = true;
  c->user_suspended = false;
  // In NVMe-oF every controller sees the subsystem's namespaces; here a
  // namespace is attached to at most one controller (§6.1).
  for (nv::Namespace* ns : s->s->namespaces()) {
    if (ns->controller()) {
      VDPU_WARN("listener {}: namespace {} stays with controller {} (no shared namespaces)",
                a.traddr, ns->nsid(), ns->controller()->name());
      continue;
    }
    (void)c->ctrl->attach_ns(ns->nsid());
  }
  c->ctrl->resume();
  a.ctrl = *name;
  if (a.adrfam.empty()) a.adrfam = "IPv4";
  s->listeners.push_back(a);
  VDPU_INFO("nvmf: subsystem {} listens on {} {} (controller {}, socket {})", nqn, t, a.traddr, *name,
            fn->socket);
  done({});
}

void Manager::nvmf_remove_listener(const std::string& nqn, const ListenAddress& in, Done done) {
  Subsys* s = find_subsys(nqn);
  if (!s) return done(make_error(Errc::kNotFound, "subsystem " + nqn + " not found"));
  std::string t = canonical_trtype(in.trtype);
  auto it = std::find_if(s->listeners.begin(), s->listeners.end(), [&](const ListenAddress& l) {
    return l.trtype == t && l.traddr == in.traddr && (in.trsvcid.empty() || l.trsvcid == in.trsvcid);
  });
  if (it == s->listeners.end())
    return done(make_error(Errc::kNotFound, "subsystem " + nqn + " has no listener " + in.trtype + " " + in.traddr));
  ListenAddress a = *it;
  if (t != kEmuTransport) {
    const TransportHandler* h = handler(t);
    s->listeners.erase(it);
    if (!h || !h->stop_listen) return done({});
    return h->stop_listen(*s->s, a, std::move(done));
  }
  // §7.1: hot-unplug and destroy (the admin queue goes with the reset).
  emu::Function* fn = emu_.find_vuid(a.traddr);
  controller_destroy(a.ctrl, true, false, [this, nqn, a, fn, done](Status st) {
    if (!st) return done(st);
    if (fn && fn->hotplugged) emu_.set_state(*fn, emu::HotplugState::kPowerOff);
    if (Subsys* s = find_subsys(nqn))
      std::erase_if(s->listeners, [&](const ListenAddress& l) { return l.traddr == a.traddr && l.trtype == a.trtype; });
    done({});
  });
}

Result<json> Manager::nvmf_get_subsystems(const std::optional<std::string>& nqn) const {
  if (nqn && !subsys_.count(*nqn) && *nqn != "nqn.2014-08.org.nvmexpress.discovery")
    return make_error(Errc::kNotFound, "subsystem " + *nqn + " not found");
  json a = json::array();
  // SPDK always lists its discovery subsystem first.
  if (!nqn || *nqn == "nqn.2014-08.org.nvmexpress.discovery")
    a.push_back({{"nqn", "nqn.2014-08.org.nvmexpress.discovery"}, {"subtype", "Discovery"},
                 {"listen_addresses", json::array()}, {"allow_any_host", true},
                 {"hosts", json::array()}});
  for (auto& [n, s] : subsys_) {
    if (nqn && n != *nqn) continue;
    json la = json::array();
    for (auto& l : s.listeners) la.push_back(l.to_json());
    auto ns = nvmf_get_namespaces(n);
    a.push_back({{"nqn", n},
                 {"subtype", "NVMe"},
                 {"listen_addresses", la},
                 {"allow_any_host", s.allow_any_host},
                 {"hosts", hosts_json(s.hosts)},
                 {"serial_number", s.s->serial_number()},
                 {"model_number", s.s->model_number()},
                 {"max_namespaces", s.max_namespaces ? s.max_namespaces : s.s->mnan()},
                 {"min_cntlid", s.min_cntlid},
                 {"max_cntlid", s.max_cntlid},
                 {"namespaces", ns ? *ns : json::array()}});
  }
  return a;
}

Status Manager::nvmf_add_host(const std::string& nqn, const std::string& host) {
  Subsys* s = find_subsys(nqn);
  if (!s) return make_error(Errc::kNotFound, "subsystem " + nqn + " not found");
  if (host.empty() || host.size() > 223)
    return make_error(Errc::kInvalidArgument, "host NQN must be 1-223 bytes");
  if (std::find(s->hosts.begin(), s->hosts.end(), host) != s->hosts.end())
    return make_error(Errc::kExists, "host " + host + " already allowed into " + nqn);
  s->hosts.push_back(host);
  return {};
}

Status Manager::nvmf_remove_host(const std::string& nqn, const std::string& host) {
  Subsys* s = find_subsys(nqn);
  if (!s) return make_error(Errc::kNotFound, "subsystem " + nqn + " not found");
  auto it = std::find(s->hosts.begin(), s->hosts.end(), host);
  if (it == s->hosts.end()) return make_error(Errc::kNotFound, "host " + host + " not in " + nqn);
  s->hosts.erase(it);
  return {};
}

Status Manager::nvmf_allow_any_host(const std::string& nqn, bool allow) {
  Subsys* s = find_subsys(nqn);
  if (!s) return make_error(Errc::kNotFound, "subsystem " + nqn + " not found");
  s->allow_any_host = allow;
  return {};
}

bool Manager::host_allowed(const std::string& nqn, const std::string& host) const {
  auto it = subsys_.find(nqn);
  if (it == subsys_.end()) return false;
  const Subsys& s = it->second;
  return s.allow_any_host || std::find(s.hosts.begin(), s.hosts.end(), host) != s.hosts.end();
}

json Manager::nvmf_get_stats() const {
  // One aggregate poll group: the controllers' queues are spread over every
  // data reactor and their counters are per queue, not per reactor; sums
  // over poll groups (what tools compute) are exact.
  uint64_t admin = 0, io = 0, done = 0;
  for (auto& [n, c] : ctrls_) {
    if (c->ctrl->state() == nv::CtrlState::kEnabled) ++admin;
    json s = c->ctrl->io_stats();
    io += s["queues"].size();
    done += s.value("read_ios", uint64_t(0)) + s.value("write_ios", uint64_t(0)) +
            s.value("flush_ios", uint64_t(0));
    for (auto& q : s["queues"]) done += q.value("other_ios", uint64_t(0));
  }
  json tr = json::array();
  for (auto& [t, o] : transports_) {
    const TransportHandler* h = t == kEmuTransport ? nullptr : handler(t);
    if (h && h->stats) {
      json j = h->stats();
      j["trtype"] = t;
      admin += j.value("admin_qpairs", uint64_t(0));
      io += j.value("io_qpairs", uint64_t(0));
      done += j.value("completed_nvme_io", uint64_t(0));
      tr.push_back(std::move(j));
    } else {
      tr.push_back({{"trtype", t}});
    }
  }
  json g = {{"name", "nvmf_tgt_poll_group_000"}, {"admin_qpairs", admin}, {"io_qpairs", io},
            {"current_admin_qpairs", admin},     {"current_io_qpairs", io},
            {"pending_bdev_io", 0},              {"completed_nvme_io", done},
            {"transports", tr}};
  return {{"tick_rate", 1000000000}, {"poll_groups", json::array({g})}};
}

// ------------------------------------------------------------ emulation functions (§9.1)

json Manager::doca_get_managers() const { return json::array({{{"name", emu_.name()}}}); }

Result<json> Manager::doca_create_function(const std::string& dev) {
  if (dev != emu_.name()) return make_error(Errc::kNotFound, "Couldn't find supported devices");
  auto f = emu_.create_hotplug(emu::EmuType::kNvme);
  if (!f) return f.error();
  return json{{"Created a function with vuid", (*f)->vuid}};
}

Status Manager::doca_destroy_function(const std::string& dev, const std::string& vuid) {
  if (dev != emu_.name()) return make_error(Errc::kNotFound, "Couldn't find supported devices");
  emu::Function* f = emu_.find_vuid(vuid);
  if (!f || f->type != emu::EmuType::kNvme || !f->hotplugged)
    return make_error(Errc::kInvalidArgument, "device representor with requested vuid doesn't exist");
  if (!f->ctrl_id.empty())
    return make_error(Errc::kBusy, "function " + vuid + " is served by controller " + f->ctrl_id +
                                       ": remove its listener first");
  return emu_.destroy_hotplug(vuid);
}

Result<json> Manager::doca_list_functions(const std::string& dev) const {
  if (dev != emu_.name()) return make_error(Errc::kNotFound, "Couldn't find supported devices");
  json a = json::array();
  for (emu::Function* pf : emu_.pfs()) {
    if (pf->type != emu::EmuType::kNvme) continue;
    a.push_back({{"Function VUID: ", pf->vuid}, {"PCI Address: ", pf->pci_bdf}});
    for (auto& v : pf->vfs) a.push_back({{"Function VUID: ", v->vuid}, {"PCI Address: ", v->pci_bdf}});
  }
  return a;
}

// ------------------------------------------------------------ shutdown, save_config

void Manager::shutdown(std::function<void()> done) {
  std::vector<std::string> names;
  for (auto& [n, c] : ctrls_) names.push_back(n);
  auto rest = [this, names, done] {
    destroy_ctrls(names, [done](Status st) {
      if (!st) VDPU_WARN("nvme shutdown: {}", st.error().message);
      done();
    });
  };
  // Other transports first: their connections use the subsystems' bdevs.
  std::vector<const TransportHandler*> hs;
  for (auto& h : handlers())
    if (h.shutdown) hs.push_back(&h);
  if (hs.empty()) return rest();
  auto left = std::make_shared<size_t>(hs.size());
  for (const TransportHandler* h : hs)
    h->shutdown([left, rest] {
      if (--*left == 0) rest();
    });
}

json Manager::write_config() const {
  json a = json::array();
  auto add = [&](const char* m, json p) { a.push_back({{"method", m}, {"params", std::move(p)}}); };
  for (auto& [t, o] : transports_) {
    json p = {{"trtype", t}};
    p.update(o);
    add("nvmf_create_transport", p);
  }
  for (auto& [n, s] : subsys_) {
    if (s.nvmf)
      add("nvmf_create_subsystem", {{"nqn", n},
                                     {"serial_number", s.s->serial_number()},
                                     {"model_number", s.s->model_number()},
                                     {"allow_any_host", s.allow_any_host},
                                     {"max_namespaces", s.max_namespaces},
                                     {"ana_reporting", s.ana_reporting},
                                     {"min_cntlid", s.min_cntlid},
                                     {"max_cntlid", s.max_cntlid}});
    else
      add("nvme_subsystem_create", {{"nqn", n},
                                     {"serial_number", s.s->serial_number()},
                                     {"model_number", s.s->model_number()},
                                     {"nn", s.s->nn()},
                                     {"mnan", s.s->mnan()}});
    for (nv::Namespace* ns : s.s->namespaces())
      add("nvme_namespace_create", {{"nqn", n}, {"bdev_name", ns->bdev_name()},
                                    {"nsid", ns->nsid()}, {"uuid", ns->uuid_str()}});
    for (auto& h : s.hosts) add("nvmf_subsystem_add_host", {{"nqn", n}, {"host", h}});
  }
  // §6.1 ordering rule (and §10.1 recovery): suspended, attach, resume.
  for (auto& [n, c] : ctrls_) {
    if (c->listener) continue;
    json p = c->params.to_json(c->fn->vuid, n);
    p["suspended"] = true;
    add("nvme_controller_create", p);
    for (nv::Namespace* ns : c->ctrl->attached_namespaces())
      add("nvme_controller_attach_ns", {{"ctrl", n}, {"nsid", ns->nsid()}});
    if (!c->user_suspended) add("nvme_controller_resume", {{"ctrl", n}});
  }
  for (auto& [n, s] : subsys_)
    for (auto& l : s.listeners)
      add("nvmf_subsystem_add_listener",
          {{"nqn", n},
           {"listen_address", {{"trtype", l.trtype}, {"adrfam", l.adrfam}, {"traddr", l.traddr},
                               {"trsvcid", l.trsvcid}}}});
  return a;
}

}  // namespace vdpu::service::nvme
