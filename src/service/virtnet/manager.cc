// Function lifecycle of the virtnet manager: static PFs (§1.1), hotplug /
// unplug (§4.1, §4.2), SR-IOV VFs (§1, §15), recovery (§13), selection.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <iterator>

#include "base/log.h"
#include "service/virtnet/dev.h"
#include "service/virtnet/errors.h"
#include "service/virtnet/params.h"

namespace vdpu::service::virtnet {

namespace vn = virtio::net;

namespace {

// Fingerprint of the static emulation config: a different one at start means
// a new config took effect and every recovery file is deleted (§13).
std::string emu_signature(const StaticConf& e) {
  return fmt::format("num_pf={} num_vf={} sriov={} msix={} vf_msix={} switch={} ports={}", e.num_pf, e.num_vf,
                     e.sriov_en, e.num_msix, e.vf_msix(), e.pci_switch_enable, e.pci_switch_num_port);
}

}  // namespace

Manager::Manager(Options o, EndpointFactory f)
    : opts_(std::move(o)), factory_(std::move(f)), store_(opts_.recovery_dir, opts_.conf.recovery) {}

Manager::~Manager() = default;

vn::NetOptions Manager::net_defaults(Kind k) const {
  vn::NetOptions o;
  o.mtu = 1500;
  o.queue_size = 256;
  o.max_queue_pairs = 1;
  o.ctrl_vq = true;
  o.mrg_rxbuf = opts_.conf.mrg_rxbuf;  // §2 mrg_rxbuf
  o.packed = opts_.conf.packed_vq;     // §2 packed_vq
  if (k == Kind::kStaticPf && opts_.conf.static_pf.features) o.features_mask = *opts_.conf.static_pf.features;
  if (k == Kind::kVf) {
    const VfDefaults& v = opts_.conf.vf;
    if (v.features) o.features_mask = *v.features;
    if (v.max_queue_pairs) o.max_queue_pairs = *v.max_queue_pairs;
    if (v.max_queue_size) o.queue_size = *v.max_queue_size;
  }
  return o;
}

// ------------------------------------------------------------- start / stop

std::unique_ptr<Manager::Dev> Manager::new_static_pf(uint32_t i) const {
  auto d = std::make_unique<Dev>();
  d->kind = Kind::kStaticPf;
  d->pf_id = i;
  d->pf_index = i;
  d->pf_num = i;
  d->ib_dev = opts_.conf.ib_dev_for_static_pf;
  d->vuid = vuid_of(opts_.serial, Kind::kStaticPf, i, 0, 0);
  d->bdf = bdf_of(Kind::kStaticPf, i, 0, 0);
  d->sf_num = kSfStaticBase + i;
  d->net = net_defaults(Kind::kStaticPf);
  // §2 static_pf.mac_base: pf_0 = mac_base, pf_1 = mac_base + 1 ...
  d->net.mac = opts_.conf.static_pf.mac_base ? mac_add(*opts_.conf.static_pf.mac_base, i)
                                             : vn::MacAddr{0x02, 0x56, 0x44, 0x00, 0x10, uint8_t(i)};
  d->num_msix = opts_.emu.num_msix;
  d->max_vfs = opts_.emu.sriov_en ? opts_.emu.num_vf : 0;
  return d;
}

namespace {

void apply_record(Manager::Dev& d, const RecoveryRecord& r) {
  if (auto m = parse_mac(r.mac)) d.net.mac = *m;
  d.net.mtu = r.mtu;
  d.net.max_queue_pairs = r.max_queue_pairs;
  d.net.queue_size = r.max_queue_size;
  d.net.ctrl_vq = r.ctrl_vq;
  d.net.features_mask = r.features;
  d.net.speed = r.speed;
  d.net.link_up = r.link_up;
  d.transitional = r.transitional;
  if (r.num_msix) d.num_msix = r.num_msix;
  const json& x = r.extra;
  d.net.dim = x.value("dim", d.net.dim);
  d.netdim = x.value("netdim", d.netdim);
  d.aarfs = x.value("aarfs", d.aarfs);
  d.drop_counter = x.value("drop_counter", d.drop_counter);
  d.net.packet_counters = x.value("packet_counters", d.net.packet_counters);
  d.rss_max_key_size = x.value("rss_max_key_size", d.rss_max_key_size);
  d.net.hash_types = x.value("supported_hash_types", d.net.hash_types);
  d.rq_period_mode = x.value("rq_period_mode", d.rq_period_mode);
  d.rq_period = x.value("rq_period", d.rq_period);
  d.rq_max_count = x.value("rq_max_count", d.rq_max_count);
  d.net.rx_moderation = {d.rq_max_count, d.rq_period};
  d.rx_dma_q_num = x.value("rx_dma_q_num", d.rx_dma_q_num);
  d.recover_counter = x.value("recover_counter", 0u) + 1;
}

}  // namespace

Status Manager::start() {
  // §13: a new static emulation config deletes every recovery file.
  if (store_.enabled()) {
    std::string sig_path = opts_.recovery_dir + "/.emu-signature", sig = emu_signature(opts_.emu);
    std::ifstream in(sig_path);
    std::string old(std::istreambuf_iterator<char>(in), {});
    if (old != sig) {
      if (!old.empty()) VDPU_INFO("virtnet: static emulation config changed: deleting recovery files");
      store_.clear();
      std::error_code ec;
      std::filesystem::create_directories(opts_.recovery_dir, ec);
      std::ofstream(sig_path, std::ios::trunc) << sig;
    }
  }
  std::vector<std::string> bad;
  auto recs = store_.load_all(&bad);
  for (auto& b : bad) VDPU_WARN("virtnet: recovery: {}", b);

  for (uint32_t i = 0; i < opts_.emu.num_pf; ++i) {
    auto d = new_static_pf(i);
    for (auto& r : recs)
      if (r.function_type == "pf" && r.device_type == "static" && r.vuid == d->vuid) {
        apply_record(*d, r);
        VDPU_INFO("virtnet: static PF {} restored from recovery", i);
      }
    auto c = create(std::move(d), true);
    if (!c) return make_error(c.error().code, fmt::format("static PF {}: {}", i, c.error().message));
  }
  for (auto& r : recs)
    if (r.function_type == "pf" && r.device_type == "hotplug")
      if (auto s = restore(r); !s) VDPU_ERR("virtnet: cannot restore hotplug PF {}: {}", r.vuid, s.error().message);
  for (auto& r : recs)
    if (r.function_type == "vf")
      if (auto s = restore(r); !s) VDPU_ERR("virtnet: cannot restore VF {}: {}", r.vuid, s.error().message);
  VDPU_INFO("virtnet: {} device(s) ready", devs_.size());
  return {};
}

Status Manager::restore(const RecoveryRecord& r) {
  auto d = std::make_unique<Dev>();
  d->vuid = r.vuid;
  d->ib_dev = r.port_ib_dev;
  d->pf_id = r.pf_id;
  d->bdf = r.bdf_raw;
  d->sf_num = r.sf_num;
  d->pf_num = r.pf_num;
  if (r.function_type == "pf") {
    d->kind = Kind::kHotplugPf;
    uint32_t bus = r.bdf_raw >> 8;
    if (bus < 0x40 || bus - 0x40 >= opts_.emu.max_hotplug())
      return make_error(Errc::kInvalidArgument, "hotplug slot out of range");
    d->pf_index = bus - 0x40;
    if (find_pf(r.pf_id)) return make_error(Errc::kExists, "pf_id in use");
    d->net = net_defaults(Kind::kHotplugPf);
    d->num_msix = opts_.emu.num_msix;
  } else {
    Dev* pf = find_pf(r.pf_id);
    if (!pf || pf->kind != Kind::kStaticPf || !r.vf_id || *r.vf_id >= pf->max_vfs)
      return make_error(Errc::kNotFound, "parent PF missing or VF id out of range");
    d->kind = Kind::kVf;
    d->vf_id = r.vf_id;
    d->pf_index = pf->pf_index;
    d->net = net_defaults(Kind::kVf);
    d->num_msix = opts_.emu.vf_msix();
    pf->enabled_vfs = std::max(pf->enabled_vfs, *r.vf_id + 1);
  }
  apply_record(*d, r);
  auto c = create(std::move(d), true);
  if (!c) return c.error();
  VDPU_INFO("virtnet: {} restored from recovery ({})", r.vuid, (*c)->rep);
  return {};
}

void Manager::shutdown(std::function<void()> done) {
  // Tear down one by one; files stay for the next start.
  if (devs_.empty()) return done();
  Dev* d = devs_.back().get();
  d->ep->destroy([this, d, done = std::move(done)] {
    auto it = std::find_if(devs_.begin(), devs_.end(), [d](auto& x) { return x.get() == d; });
    if (it != devs_.end()) devs_.erase(it);
    shutdown(done);
  });
}

// ------------------------------------------------------------------ helpers

Result<Manager::Dev*> Manager::create(std::unique_ptr<Dev> d, bool save_file) {
  auto rep = rep_name(opts_.rep_prefix, d->sf_num);
  if (!rep) return rep.error();
  d->rep = *rep;
  d->socket = opts_.socket_dir + "/" + d->vuid;
  static uint32_t next_vhca = 1;
  d->vhca_id = next_vhca++;
  EndpointConfig cfg{d->vuid, d->socket, d->rep, d->net};
  auto ep = factory_(cfg);
  if (!ep) return ep.error();
  d->ep = std::move(*ep);
  if (d->net.packet_counters) d->ep->set_packet_counters(true);
  Dev* raw = d.get();
  auto pos = std::upper_bound(devs_.begin(), devs_.end(), raw, [](Dev* a, const std::unique_ptr<Dev>& b) {
    return std::pair(a->pf_id, a->vf_id ? int64_t(*a->vf_id) : -1) <
           std::pair(b->pf_id, b->vf_id ? int64_t(*b->vf_id) : -1);
  });
  devs_.insert(pos, std::move(d));
  if (save_file) {
    if (int e = save(*raw); e) VDPU_WARN("virtnet {}: {}", raw->vuid, errstr(e));
  }
  return raw;
}

RecoveryRecord Manager::record_of(const Dev& d) const {
  RecoveryRecord r;
  r.port_ib_dev = d.ib_dev;
  r.pf_id = d.pf_id;
  r.vf_id = d.vf_id;
  r.function_type = d.is_pf() ? "pf" : "vf";
  r.bdf_raw = d.bdf;
  r.device_type = d.kind == Kind::kHotplugPf ? "hotplug" : "static";
  r.mac = format_mac(d.net.mac, false);
  r.pf_num = d.pf_num;
  r.sf_num = d.sf_num;
  r.mq = d.num_queues();
  r.vuid = d.vuid;
  r.mtu = d.net.mtu;
  r.max_queue_pairs = d.net.max_queue_pairs;
  r.max_queue_size = d.net.queue_size;
  r.ctrl_vq = d.net.ctrl_vq;
  r.features = d.net.features_mask;
  r.speed = d.net.speed;
  r.link_up = d.net.link_up;
  r.transitional = d.transitional;
  r.num_msix = d.num_msix;
  r.extra = {{"dim", d.net.dim}, {"netdim", d.netdim}, {"aarfs", d.aarfs}, {"drop_counter", d.drop_counter},
             {"packet_counters", d.net.packet_counters}, {"rss_max_key_size", d.rss_max_key_size},
             {"supported_hash_types", d.net.hash_types}, {"rq_period_mode", d.rq_period_mode},
             {"rq_period", d.rq_period}, {"rq_max_count", d.rq_max_count}, {"rx_dma_q_num", d.rx_dma_q_num},
             {"recover_counter", d.recover_counter}};
  return r;
}

int Manager::save(const Dev& d) const {
  if (auto s = store_.save(record_of(d)); !s) {
    VDPU_ERR("virtnet {}: {}", d.vuid, s.error().message);
    return VIRTNET_ERR_RECOVERY_SAVE_CFG;
  }
  return 0;
}

Manager::Dev* Manager::find_pf(uint32_t pf_id) const {
  for (auto& d : devs_)
    if (d->is_pf() && d->pf_id == pf_id) return d.get();
  return nullptr;
}

std::vector<Manager::Dev*> Manager::select(const json& p, int* err) const {
  *err = 0;
  std::vector<Dev*> out;
  auto pf = opt_uint(p, "pf"), vf = opt_uint(p, "vf");
  auto vuid = opt_str(p, "vuid");
  bool all = flag(p, "all");
  // §3: -p/-v/-u/-a are mutually exclusive except --pf + --vf; one is required.
  if (int(all) + int(pf.has_value() || vf.has_value()) + int(vuid.has_value()) != 1 || (vf && !pf)) {
    *err = -EINVAL;
    return out;
  }
  if (all) {
    for (auto& d : devs_) out.push_back(d.get());
    return out;
  }
  for (auto& d : devs_) {
    bool hit = vuid ? d->vuid == *vuid
                    : d->pf_id == *pf && (vf ? d->vf_id == vf : !d->vf_id.has_value());
    if (hit) out.push_back(d.get());
  }
  if (out.empty()) *err = vuid && vuid->empty() ? VIRTNET_ERR_INVALID_VUID : VIRTNET_ERR_DEV_NOT_FOUND;
  return out;
}

// ------------------------------------------------------------ hotplug §4.1

json Manager::hotplug(const json& p) {
  auto fail = [](int e) { return err_json(e); };
  if (flag(p, "legacy")) return fail(VIRTNET_ERR_OPT_NOT_SUPPORTED);  // §14: only transitional VFs
  std::string ib = opt_str(p, "ib_device").value_or("");
  if (!opts_.conf.is_port_device(ib)) return fail(VIRTNET_ERR_PORT_CTX_NOT_FOUND);
  auto mac = parse_mac(opt_str(p, "mac").value_or(""));
  if (!mac) return fail(VIRTNET_ERR_INVALID_MAC);
  for (auto& d : devs_)  // §4.1: the MAC must be unique
    if (d->net.mac == *mac) return fail(VIRTNET_ERR_INVALID_MAC);
  auto mtu = opt_uint(p, "mtu");
  if (!mtu || *mtu < vn::kMinMtu || *mtu > vn::kMaxMtu) return fail(VIRTNET_ERR_INVALID_MTU);
  auto qs = opt_uint(p, "max_queue_size");
  if (int e = check_queue_size(qs); e) return fail(e);
  // -n counts TX, RX and ctrl (3 = 1 pair + ctrl); -qp counts data pairs.
  auto nq = opt_uint(p, "num_queues"), qp = opt_uint(p, "max_queue_pairs");
  uint32_t max_q = std::min<uint32_t>(opts_.emu.num_msix, kMaxVirtQueues);
  uint16_t pairs = 0;
  bool ctrl = true;
  if (nq.has_value() == qp.has_value()) return fail(VIRTNET_ERR_INVALID_QUEUES);
  if (nq) {
    if (*nq < 2 || *nq > max_q) return fail(VIRTNET_ERR_INVALID_QUEUES);
    pairs = uint16_t(*nq / 2);
    ctrl = *nq % 2 == 1;
    if (pairs > 1 && !ctrl) return fail(VIRTNET_ERR_INVALID_QUEUES);  // MQ needs the control queue
  } else {
    if (*qp < 1 || 2 * *qp + 1 > max_q) return fail(VIRTNET_ERR_INVALID_QUEUES);
    pairs = uint16_t(*qp);
  }
  auto feat = opt_uint(p, "features");
  if (feat && *feat && (*feat & ~opts_.supported_features)) return fail(VIRTNET_ERR_FEATURE_VALIDATE);
  // Slot, id and SF number.
  uint32_t used = 0;
  std::vector<bool> slot_used(opts_.emu.max_hotplug(), false);
  for (auto& d : devs_)
    if (d->kind == Kind::kHotplugPf) {
      ++used;
      if (d->pf_index < slot_used.size()) slot_used[d->pf_index] = true;
    }
  if (used >= opts_.emu.max_hotplug()) {
    VDPU_WARN("virtnet: hotplug refused: {} of {} hotplug ports in use", used, opts_.emu.max_hotplug());
    return fail(-ENOSPC);
  }
  uint32_t slot = uint32_t(std::find(slot_used.begin(), slot_used.end(), false) - slot_used.begin());
  uint32_t sf = 0;
  if (auto want = opt_uint(p, "sf_num")) {
    if (*want < kSfHotplugBase || *want > kSfHotplugMax) return fail(VIRTNET_ERR_HOTPLUG_SF_NUM_RANGE);
    sf = uint32_t(*want);
    for (auto& d : devs_)
      if (d->sf_num == sf) return fail(VIRTNET_ERR_SF_NUM_IN_USE);
  } else {
    for (sf = kSfHotplugBase; sf <= kSfHotplugMax; ++sf)
      if (std::none_of(devs_.begin(), devs_.end(), [sf](auto& d) { return d->sf_num == sf; })) break;
    if (sf > kSfHotplugMax) return fail(VIRTNET_ERR_SF_NUM_IN_USE);
  }
  uint32_t id = opts_.emu.num_pf;
  while (find_pf(id)) ++id;

  auto d = std::make_unique<Dev>();
  d->kind = Kind::kHotplugPf;
  d->pf_id = id;
  d->pf_index = slot;
  d->ib_dev = ib;
  d->vuid = vuid_of(opts_.serial, Kind::kHotplugPf, 0, slot, 0);
  d->bdf = bdf_of(Kind::kHotplugPf, 0, slot, 0);
  d->sf_num = sf;
  d->net = net_defaults(Kind::kHotplugPf);
  d->net.mac = *mac;
  d->net.mtu = uint16_t(*mtu);
  d->net.queue_size = uint16_t(*qs);
  d->net.max_queue_pairs = pairs;
  d->net.ctrl_vq = ctrl;
  if (feat && *feat) d->net.features_mask = *feat;
  d->num_msix = opts_.emu.num_msix;
  if (auto s = vn::validate(d->net); !s) {
    VDPU_WARN("virtnet hotplug: {}", s.error().message);
    return fail(VIRTNET_ERR_INVALID_QUEUES);
  }
  auto c = create(std::move(d), false);
  if (!c) {
    VDPU_ERR("virtnet hotplug: {}", c.error().message);
    return fail(VIRTNET_ERR_SNAP_HOTPLUG);
  }
  Dev* dev = *c;
  if (int e = save(*dev); e) {
    destroy(dev, true, [] {});
    return fail(VIRTNET_ERR_RECOVERY_CREATE);
  }
  VDPU_INFO("virtnet: hotplug PF {} ({}) on {}, representor {}", dev->pf_id, dev->vuid, dev->socket, dev->rep);
  json r = err_json(0);
  r["bdf"] = bdf_str(dev->bdf);
  r["vuid"] = dev->vuid;
  r["id"] = dev->pf_id;
  r["transitional"] = dev->transitional ? 1 : 0;
  r["sf_rep_net_device"] = dev->rep;
  r["mac"] = format_mac(dev->net.mac);
  r["vhost_user_socket"] = dev->socket;  // vdpu: where the front-end connects
  return r;
}

// ------------------------------------------------------------- unplug §4.2

void Manager::unplug(const json& p, std::function<void(json)> done) {
  auto id = opt_uint(p, "id");
  auto vuid = opt_str(p, "vuid");
  if (id.has_value() == vuid.has_value()) return done(err_json(-EINVAL));
  Dev* d = nullptr;
  for (auto& x : devs_)
    if (x->is_pf() && (id ? x->pf_id == *id : x->vuid == *vuid)) d = x.get();
  if (!d) return done(err_json(VIRTNET_ERR_DEV_NOT_FOUND));
  if (d->kind != Kind::kHotplugPf) return done(err_json(VIRTNET_ERR_DEV_NOT_HOTPLUG));
  // §4.2: the host must have released the device (driver unbound).
  if (d->ep->info().driver_bound) return done(err_json(VIRTNET_ERR_DEV_NOT_READY_UNPLUG));
  VDPU_INFO("virtnet: unplug PF {} ({})", d->pf_id, d->vuid);
  destroy(d, true, [done = std::move(done)] { done(err_json(0)); });
}

void Manager::destroy(Dev* d, bool delete_file, std::function<void()> done) {
  auto finish = [this, d, delete_file, done = std::move(done)] {
    d->ep->destroy([this, d, delete_file, done] {
      if (delete_file) {
        if (auto s = store_.remove(d->vuid); !s) VDPU_WARN("virtnet: {}", s.error().message);
      }
      auto it = std::find_if(devs_.begin(), devs_.end(), [d](auto& x) { return x.get() == d; });
      if (it != devs_.end()) devs_.erase(it);
      done();
    });
  };
  if (d->is_pf() && d->enabled_vfs) return destroy_vfs(*d, std::move(finish));
  finish();
}

// ---------------------------------------------------------------- VFs §15

void Manager::destroy_vfs(Dev& pf, std::function<void()> done) {
  for (auto& x : devs_)
    if (x->kind == Kind::kVf && x->pf_id == pf.pf_id)
      return destroy(x.get(), true, [this, &pf, done = std::move(done)] { destroy_vfs(pf, done); });
  pf.enabled_vfs = 0;
  done();
}

int Manager::set_num_vfs(Dev& pf, uint32_t n) {
  if (pf.kind != Kind::kStaticPf) return VIRTNET_ERR_OPT_NOT_SUPPORTED;  // §1: hotplug PFs have no SR-IOV
  if (n > pf.max_vfs) return VIRTNET_ERR_ID_OUT_OF_RANGE;
  if (pf.enabled_vfs && n) return -EBUSY;  // §1: X -> 0 or 0 -> X only
  const VfDefaults& vd = opts_.conf.vf;
  for (uint32_t j = 0; j < n; ++j) {
    auto d = std::make_unique<Dev>();
    d->kind = Kind::kVf;
    d->pf_id = pf.pf_id;
    d->vf_id = j;
    d->pf_index = pf.pf_index;
    d->pf_num = pf.pf_num;
    d->ib_dev = pf.ib_dev;
    d->vuid = vuid_of(opts_.serial, Kind::kVf, pf.pf_index, 0, j);
    d->bdf = bdf_of(Kind::kVf, pf.pf_index, 0, j);
    uint32_t sf = kSfVfBase;
    while (std::any_of(devs_.begin(), devs_.end(), [sf](auto& x) { return x->sf_num == sf; })) ++sf;
    d->sf_num = sf;
    d->net = net_defaults(Kind::kVf);
    // §2 vf.mac_base: vf_0 = base, +1 ...; numbering restarts every vfs_per_pf.
    d->net.mac = vd.mac_base ? mac_add(*vd.mac_base, uint64_t(pf.pf_index) * vd.vfs_per_pf + j % vd.vfs_per_pf)
                             : vn::MacAddr{0x02, 0x56, 0x44, uint8_t(0x80 | pf.pf_index), uint8_t(j >> 8), uint8_t(j)};
    d->num_msix = opts_.emu.vf_msix();
    auto c = create(std::move(d), true);
    if (!c) {
      VDPU_ERR("virtnet: VF {} of PF {}: {}", j, pf.pf_id, c.error().message);
      pf.enabled_vfs = j;
      return VIRTNET_ERR_GET_VF_DEV;
    }
  }
  pf.enabled_vfs = n;
  return 0;
}

void Manager::debug(const json& p, std::function<void(json)> done) {
  if (p.contains("sriov_numvfs")) {
    auto pf_id = opt_uint(p, "pf");
    Dev* pf = pf_id ? find_pf(uint32_t(*pf_id)) : nullptr;
    if (!pf) return done(err_json(VIRTNET_ERR_DEV_NOT_FOUND));
    uint32_t n = uint32_t(opt_uint(p, "sriov_numvfs").value_or(0));
    if (n == 0) {
      // §13: host destroys VFs -> VFs destroyed, files deleted.
      return destroy_vfs(*pf, [done] { done(err_json(0)); });
    }
    return done(err_json(set_num_vfs(*pf, n)));
  }
  json r = err_json(0);
  json devs = json::array();
  for (auto& d : devs_)
    devs.push_back({{"vuid", d->vuid}, {"socket", d->socket}, {"rep", d->rep},
                    {"recovery_file", store_.enabled() ? store_.path_of(d->vuid) : ""},
                    {"connected", d->ep->info().connected}, {"driver_bound", d->ep->info().driver_bound}});
  r["devices"] = devs;
  r["recovery_dir"] = opts_.recovery_dir;
  r["socket_dir"] = opts_.socket_dir;
  r["pid"] = ::getpid();  // the controller process (restart / HA checks)
  done(r);
}

}  // namespace vdpu::service::virtnet
