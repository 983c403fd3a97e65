#include "service/emu/emu_manager.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "base/log.h"
#include "pci/emu_config.h"
#include "pci/vuid.h"

namespace vdpu::service::emu {

namespace fs = std::filesystem;

namespace {

uint32_t default_msix(EmuType t) { return t == EmuType::kNvme ? 32 : 33; }
uint32_t default_vf_msix(EmuType t) { return t == EmuType::kNvme ? 4 : 5; }
// Queues a VF's MSI-X vectors can serve: virtio keeps one vector for config
// changes (§9 best practice: virtio num_queues = vf_num_msix - 1).
uint32_t queues_for_msix(EmuType t, uint32_t msix) {
  if (t == EmuType::kNvme) return msix;
  return msix > 1 ? msix - 1 : 0;
}

std::string bdf(uint32_t bus, uint32_t dev, uint32_t fn) {
  char b[16];
  snprintf(b, sizeof(b), "%02x:%02x.%x", bus & 0xff, dev & 0x1f, fn & 7);
  return b;
}

std::string random_serial() {
  static const char kHex[] = "0123456789ABCDEF";
  std::mt19937_64 rng{std::random_device{}()};
  std::string s = "VDPU";
  for (int i = 0; i < 8; ++i) s += kHex[rng() % 16];
  return s;
}

const char* env_or(const char* name, const char* def) {
  const char* v = getenv(name);
  return v && *v ? v : def;
}

}  // namespace

Layout default_layout() {
  Layout l;
  l.static_pfs.push_back(PfConfig{EmuType::kVblk, 0, 0, 0});
  l.static_pfs.push_back(PfConfig{EmuType::kNvme, 0, 0, 0});
  l.hotplug_slots = 31;
  return l;
}

Layout layout_from_config(const pci::EmuConfig& c) {
  Layout l;
  auto add = [&](EmuType t, const pci::EmuTypeConfig& tc) {
    if (!tc.enable) return;
    for (uint32_t i = 0; i < tc.num_pf; ++i)
      l.static_pfs.push_back(PfConfig{t, tc.num_msix, c.sriov_en ? tc.num_vf : 0, tc.num_vf_msix});
  };
  add(EmuType::kNvme, c.nvme);
  add(EmuType::kVblk, c.virtio_blk);
  l.hotplug_slots = c.hotplug_slots();
  return l;
}

Result<Options> options_from_env() {
  Options o;
  o.name = env_or("SNAP_EMULATION_MANAGER", "emu0");
  o.state_dir = env_or("VDPU_STATE_DIR", "/var/lib/vdpu");
  o.emu_dir = env_or("VDPU_EMU_DIR", "/var/tmp/vdpu");
  const char* cfg = getenv("VDPU_EMU_CONFIG");
  std::string path = cfg && *cfg ? cfg : "";
  if (path.empty() && access("/etc/vdpu/emu.conf", R_OK) == 0) path = "/etc/vdpu/emu.conf";
  if (!path.empty()) {
    auto c = pci::load_emu_config(path);
    if (!c) return make_error(c.error().code, "emulation config " + path + ": " + c.error().message);
    o.layout = layout_from_config(*c);
    VDPU_INFO("emulation manager {}: static config {}", o.name, path);
  }
  return o;
}

Result<std::unique_ptr<Manager>> Manager::create(Options opts) {
  std::unique_ptr<Manager> m(new Manager(std::move(opts)));
  std::error_code ec;
  fs::create_directories(m->opts_.emu_dir, ec);
  if (ec) return make_error(Errc::kIo, "cannot create " + m->opts_.emu_dir + ": " + ec.message());
  VDPU_TRY(m->load_state());
  m->build_static();
  return m;
}

std::string Manager::make_vuid(EmuType t, uint32_t s, uint32_t d, uint32_t f, int32_t vf) const {
  pci::VuidParts p;
  p.serial = serial_;
  p.type = t == EmuType::kNvme ? pci::FunctionType::kNvme
           : t == EmuType::kVblk ? pci::FunctionType::kVirtioBlk
                                 : pci::FunctionType::kVirtioNet;
  p.s = s, p.d = d, p.f = f;
  if (vf >= 0) p.vf = uint32_t(vf);
  return pci::make_vuid(p);
}

void Manager::build_static() {
  uint32_t per_type[3] = {0, 0, 0};
  uint32_t ordinal = 0;
  next_vhca_ = 1;
  std::vector<Function*> pfs;
  for (const PfConfig& c : opts_.layout.static_pfs) {
    auto f = std::make_unique<Function>();
    f->type = c.type;
    f->pf_index = per_type[size_t(c.type)]++;
    f->vhca_id = next_vhca_++;
    f->vuid = make_vuid(c.type, 0, 0, f->pf_index, -1);
    uint32_t bus = 0x10 + 16 * ordinal++;
    f->pci_bdf = bdf(bus, 0, 0);
    f->state = HotplugState::kPowerOn;
    f->num_msix = c.num_msix ? c.num_msix : default_msix(c.type);
    f->socket = opts_.emu_dir + "/" + f->vuid;
    uint32_t vf_msix = c.vf_num_msix ? c.vf_num_msix : default_vf_msix(c.type);
    f->pool.vf_max_queues = c.type == EmuType::kNvme ? 31 : 64;
    for (uint32_t i = 0; i < c.num_vfs; ++i) {
      auto v = std::make_unique<Function>();
      v->type = c.type;
      v->pf_index = f->pf_index;
      v->vf_index = int32_t(i);
      v->vuid = make_vuid(c.type, 0, 0, f->pf_index, int32_t(i));
      uint32_t rid = i + 1;  // SR-IOV: first VF offset 1, stride 1
      v->pci_bdf = bdf(bus + rid / 256, (rid % 256) / 8, rid % 8);
      v->state = HotplugState::kPowerOn;
      v->num_msix = vf_msix;
      v->active = false;
      v->socket = opts_.emu_dir + "/" + v->vuid;
      v->parent = f.get();
      f->vfs.push_back(std::move(v));
    }
    pfs.push_back(f.get());
    static_.push_back(std::move(f));
  }
  // VF vhca ids after every PF so that PF ids do not move with VF counts.
  for (Function* pf : pfs)
    for (auto& v : pf->vfs) v->vhca_id = next_vhca_++;
  // Hotplug functions (reloaded before build_static) take ids after statics.
  for (auto& h : hotplug_) h->vhca_id = next_vhca_ + h->slot - 1;
  // Hotplug pf_index continues after the static PFs of the same type.
  for (auto& h : hotplug_) h->pf_index = per_type[size_t(h->type)] + h->slot - 1;
}

Function* Manager::add_hotplug(EmuType type, uint32_t slot, uint32_t vhca_id, HotplugState st) {
  auto f = std::make_unique<Function>();
  f->type = type;
  f->hotplugged = true;
  f->slot = slot;
  f->vhca_id = vhca_id;
  f->vuid = make_vuid(type, slot, 0, 0, -1);
  f->pci_bdf = bdf(0xa0 + slot, 0, 0);
  f->state = st;
  f->num_msix = default_msix(type);
  f->socket = opts_.emu_dir + "/" + f->vuid;
  uint32_t per_type = 0;
  for (auto& s : static_) per_type += s->type == type ? 1 : 0;
  f->pf_index = per_type + slot - 1;
  Function* raw = f.get();
  auto it = hotplug_.begin();
  while (it != hotplug_.end() && (*it)->slot < slot) ++it;
  hotplug_.insert(it, std::move(f));
  return raw;
}

template <class Fn>
void Manager::for_each(Fn&& fn) const {
  for (auto& f : static_) {
    fn(*f);
    for (auto& v : f->vfs) fn(*v);
  }
  for (auto& f : hotplug_) fn(*f);
}

Function* Manager::find_vuid(const std::string& vuid) const {
  Function* r = nullptr;
  for_each([&](Function& f) {
    if (!r && f.vuid == vuid) r = &f;
  });
  return r;
}

Function* Manager::find_vhca(uint32_t id) const {
  Function* r = nullptr;
  for_each([&](Function& f) {
    if (!r && f.vhca_id == id) r = &f;
  });
  return r;
}

Function* Manager::find_index(EmuType type, uint32_t pf, std::optional<uint32_t> vf) const {
  Function* r = nullptr;
  for_each([&](Function& f) {
    if (r || f.type != type || f.pf_index != pf) return;
    if (vf ? f.vf_index == int32_t(*vf) : !f.is_vf()) r = &f;
  });
  return r;
}

Function* Manager::find_bdf(const std::string& b) const {
  // Accept an optional "0000:" domain prefix.
  std::string key = b.size() == 12 && b[4] == ':' ? b.substr(5) : b;
  Function* r = nullptr;
  for_each([&](Function& f) {
    if (!r && f.pci_bdf == key) r = &f;
  });
  return r;
}

Result<Function*> Manager::select(EmuType type, const Selector& s) const {
  if (s.empty())
    return make_error(Errc::kInvalidArgument,
                      "a function is required: give vuid, vhca_id, pf_id [+ vf_id] or pci_bdf");
  if (s.vf_id && !s.pf_id) return make_error(Errc::kInvalidArgument, "vf_id requires pf_id");
  Function* found = nullptr;
  auto agree = [&](Function* f, const std::string& what) -> Status {
    if (!f) return make_error(Errc::kNotFound, "no emulation function with " + what);
    if (found && found != f)
      return make_error(Errc::kInvalidArgument, "function identifiers designate different functions");
    found = f;
    return {};
  };
  if (s.vuid) VDPU_TRY(agree(find_vuid(*s.vuid), "vuid " + *s.vuid));
  if (s.vhca_id) VDPU_TRY(agree(find_vhca(*s.vhca_id), "vhca_id " + std::to_string(*s.vhca_id)));
  if (s.pf_id) {
    std::string what = std::string(emu_type_name(type)) + " pf_id " + std::to_string(*s.pf_id);
    if (s.vf_id) what += " vf_id " + std::to_string(*s.vf_id);
    VDPU_TRY(agree(find_index(type, *s.pf_id, s.vf_id), what));
  }
  if (s.pci_bdf) VDPU_TRY(agree(find_bdf(*s.pci_bdf), "pci_bdf " + *s.pci_bdf));
  if (found->type != type)
    return make_error(Errc::kInvalidArgument, "function " + found->vuid + " is of type " +
                                                  emu_type_name(found->type) + ", not " +
                                                  emu_type_name(type));
  return found;
}

Result<Function*> Manager::create_hotplug(EmuType type) {
  uint32_t slot = 1;
  for (auto& h : hotplug_) {
    if (h->slot != slot) break;
    ++slot;
  }
  if (slot > opts_.layout.hotplug_slots)
    return make_error(Errc::kBusy, "no free hotplug slot (" +
                                       std::to_string(opts_.layout.hotplug_slots) + " in use)");
  Function* f = add_hotplug(type, slot, next_vhca_ + slot - 1, HotplugState::kPowerOff);
  save_state();
  VDPU_INFO("emulation function {} created (hotplug slot {}, vhca_id {})", f->vuid, slot, f->vhca_id);
  return f;
}

Status Manager::destroy_hotplug(const std::string& vuid_in, bool force) {
  const std::string vuid = vuid_in;  // vuid_in may be the function's own field
  Function* f = find_vuid(vuid);
  if (!f) return make_error(Errc::kNotFound, "no emulation function with vuid " + vuid);
  if (!f->hotplugged)
    return make_error(Errc::kInvalidArgument, "function " + vuid + " is static, not a hotplug function");
  if (!f->ctrl_id.empty() && !force)
    return make_error(Errc::kBusy, "function " + vuid + " still has controller " + f->ctrl_id);
  for (auto it = hotplug_.begin(); it != hotplug_.end(); ++it) {
    if (it->get() == f) {
      hotplug_.erase(it);
      break;
    }
  }
  save_state();
  VDPU_INFO("emulation function {} destroyed", vuid);
  return {};
}

void Manager::set_state(Function& f, HotplugState s) {
  if (f.state == s) return;
  f.state = s;
  if (f.hotplugged) save_state();
}

Status Manager::bind(Function& f, const std::string& ctrl) {
  if (!f.ctrl_id.empty())
    return make_error(Errc::kExists, "function " + f.vuid + " already has controller " + f.ctrl_id);
  f.ctrl_id = ctrl;
  return {};
}

void Manager::unbind(Function& f) { f.ctrl_id.clear(); }

Status Manager::set_vfs_enabled(Function& pf, uint32_t n) {
  if (pf.is_vf() || n > pf.vfs.size())
    return make_error(Errc::kInvalidArgument, "cannot enable " + std::to_string(n) + " VFs on " + pf.vuid);
  for (size_t i = 0; i < pf.vfs.size(); ++i) pf.vfs[i]->active = i < n;
  return {};
}

Status Manager::reclaim_vfs_msix(Function& pf) {
  if (pf.is_vf() || pf.vfs.empty())
    return make_error(Errc::kInvalidArgument, "function " + pf.vuid + " is not a PF with VFs");
  for (auto& v : pf.vfs) {
    // §9: reclaim only when no VF is enabled.
    if (v->active) return make_error(Errc::kBusy, "VF " + v->vuid + " is enabled (sriov_numvfs > 0)");
    if (!v->ctrl_id.empty())
      return make_error(Errc::kBusy, "VF " + v->vuid + " has controller " + v->ctrl_id);
  }
  for (auto& v : pf.vfs) {
    pf.pool.free_msix += v->num_msix;
    pf.pool.free_queues += queues_for_msix(pf.type, v->num_msix);
    v->num_msix = 0;
    v->assigned_msix = v->assigned_queues = 0;
  }
  pf.pool.reclaimed = true;
  return {};
}

Status Manager::take_vf_resources(Function& vf, uint32_t msix, uint32_t queues) {
  Function* pf = vf.parent;
  if (!pf) return make_error(Errc::kInvalidArgument, "function " + vf.vuid + " is not a VF");
  MsixPool& p = pf->pool;
  if (!p.reclaimed)
    return make_error(Errc::kState, "PF " + pf->vuid + " has no MSI-X pool: reclaim VF MSI-X on the "
                                    "PF controller first (vfs_msix_reclaim, dynamic_msix)");
  // §9 validation MUST: range and availability of both resources.
  if (msix < p.vf_min_msix || msix > p.vf_max_msix)
    return make_error(Errc::kInvalidArgument, "vf_num_msix " + std::to_string(msix) + " outside [" +
                                                  std::to_string(p.vf_min_msix) + ", " +
                                                  std::to_string(p.vf_max_msix) + "]");
  if (msix > p.free_msix)
    return make_error(Errc::kInvalidArgument, "vf_num_msix " + std::to_string(msix) +
                                                  " exceeds free_msix " + std::to_string(p.free_msix));
  if (queues < p.vf_min_queues || queues > p.vf_max_queues)
    return make_error(Errc::kInvalidArgument, "num_queues " + std::to_string(queues) + " outside [" +
                                                  std::to_string(p.vf_min_queues) + ", " +
                                                  std::to_string(p.vf_max_queues) + "]");
  if (queues > p.free_queues)
    return make_error(Errc::kInvalidArgument, "num_queues " + std::to_string(queues) +
                                                  " exceeds free_queues " + std::to_string(p.free_queues));
  release_vf_resources(vf);
  p.free_msix -= msix;
  p.free_queues -= queues;
  vf.assigned_msix = msix;
  vf.assigned_queues = queues;
  vf.num_msix = msix;
  return {};
}

void Manager::release_vf_resources(Function& vf) {
  if (!vf.parent || (!vf.assigned_msix && !vf.assigned_queues)) return;
  vf.parent->pool.free_msix += vf.assigned_msix;
  vf.parent->pool.free_queues += vf.assigned_queues;
  vf.num_msix = 0;
  vf.assigned_msix = vf.assigned_queues = 0;
}

json Manager::entry(const Function& f) const {
  json j = {{"hotplugged", f.hotplugged},
            {"hotplug state", hotplug_state_name(f.state)},
            {"emulation_type", emu_type_name(f.type)},
            {"pf_index", f.pf_index}};
  if (f.is_vf()) j["vf_index"] = f.vf_index;
  j["pci_bdf"] = f.pci_bdf;
  j["vhca_id"] = f.vhca_id;
  j["vuid"] = f.vuid;
  if (!f.ctrl_id.empty()) j["ctrl_id"] = f.ctrl_id;
  j["socket"] = f.socket;  // vdpu extension: the transport endpoint
  return j;
}

json Manager::list(bool all) const {
  json a = json::array();
  auto add = [&](const Function& pf) {
    json j = entry(pf);
    json vfs = json::array();
    for (auto& v : pf.vfs)
      if (all || v->active) vfs.push_back(entry(*v));
    j["num_vfs"] = pf.num_vfs_enabled();
    j["vfs"] = std::move(vfs);
    a.push_back(std::move(j));
  };
  for (auto& f : static_) add(*f);
  for (auto& f : hotplug_) add(*f);
  return a;
}

std::vector<Function*> Manager::pfs() const {
  std::vector<Function*> v;
  for (auto& f : static_) v.push_back(f.get());
  for (auto& f : hotplug_) v.push_back(f.get());
  return v;
}

// ------------------------------------------------------------ persistence

std::string Manager::state_path() const {
  return opts_.state_dir.empty() ? "" : opts_.state_dir + "/emu-" + opts_.name + ".json";
}

Status Manager::load_state() {
  std::string p = state_path();
  json j;
  if (!p.empty()) {
    std::ifstream f(p);
    if (f) {
      j = json::parse(f, nullptr, false);
      if (j.is_discarded() || !j.is_object())
        return make_error(Errc::kIo, "corrupt emulation state file " + p);
    }
  }
  // The instance serial (first part of every VUID, §1.6) is shared by all
  // managers of the instance: <state_dir>/serial.
  if (opts_.state_dir.empty()) {
    serial_ = random_serial();
  } else {
    std::error_code ec;
    fs::create_directories(opts_.state_dir, ec);
    auto s = pci::load_or_create_serial(opts_.state_dir + "/serial");
    if (!s) return s.error();
    serial_ = *s;
  }
  if (j.is_object() && j.contains("hotplug") && j["hotplug"].is_array()) {
    for (auto& h : j["hotplug"]) {
      EmuType t;
      uint32_t slot = h.value("slot", 0u);
      if (!parse_emu_type(h.value("type", ""), &t) || slot == 0 ||
          slot > opts_.layout.hotplug_slots) {
        VDPU_WARN("emulation state {}: ignoring bad hotplug entry {}", p, h.dump());
        continue;
      }
      HotplugState st = h.value("state", "") == "POWER_ON" ? HotplugState::kPowerOn
                                                           : HotplugState::kPowerOff;
      add_hotplug(t, slot, 0, st);
    }
  }
  if (!j.is_object()) save_state();
  return {};
}

void Manager::save_state() const {
  std::string p = state_path();
  if (p.empty()) return;
  json h = json::array();
  for (auto& f : hotplug_)
    h.push_back({{"slot", f->slot}, {"type", emu_type_name(f->type)},
                 {"state", hotplug_state_name(f->state)}, {"vuid", f->vuid}});
  json j = {{"hotplug", h}};
  std::error_code ec;
  fs::create_directories(opts_.state_dir, ec);
  std::string tmp = p + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) {
      VDPU_WARN("cannot write emulation state {} (VUIDs of hotplug functions not persisted)", p);
      return;
    }
    f << j.dump(2) << "\n";
  }
  fs::rename(tmp, p, ec);
  if (ec) VDPU_WARN("cannot write emulation state {}: {}", p, ec.message());
}

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
    auto o = options_from_env();
    if (!o) {
      VDPU_ERR("emulation config: {}; using the embedded default", o.error().message);
      o = Options{};
    }
    auto m = Manager::create(*o);
    if (!m) {
      VDPU_ERR("emulation manager: {}; state not persisted", m.error().message);
      Options d = *o;
      d.state_dir.clear();
      m = Manager::create(d);
    }
    if (!m) {
      VDPU_CRIT("emulation manager cannot start: {}", m.error().message);
      abort();  // emu_dir unusable: no function can ever be exposed
    }
    g = std::move(*m);
    VDPU_INFO("emulation manager {} ready (serial {}, {} PFs)", g->name(), g->serial(), g->pfs().size());
  }
  return *g;
}

void set_manager(std::unique_ptr<Manager> m) { global() = std::move(m); }

}  // namespace vdpu::service::emu
