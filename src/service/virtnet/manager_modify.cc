// `virtnet modify` (§4.6, §7, §9, §15): device and queue options. Every
// option is checked on every selected device before anything changes; the
// options the spec reserves for an unbound driver (mac, mtu, features,
// msix_num, max_queue_size, max_queue_pairs; dim/netdim) are refused with
// VIRTNET_ERR_DRIVER_LOADED while the guest driver uses the device.
#include <algorithm>
#include <cerrno>

#include "base/log.h"
#include "service/virtnet/dev.h"
#include "service/virtnet/errors.h"
#include "service/virtnet/params.h"

namespace vdpu::service::virtnet {

namespace vn = virtio::net;

namespace {

constexpr uint32_t kSubcmdDevice = 0, kSubcmdQueue = 1;

// §4.6 -e: link speeds (Mb/s) a virtio-net device may report.
bool valid_speed(uint64_t v) {
  constexpr uint64_t kSpeeds[] = {10, 100, 1000, 2500, 5000, 10000, 20000, 25000, 40000,
                                  50000, 56000, 100000, 200000, 400000, 800000};
  return std::find(std::begin(kSpeeds), std::end(kSpeeds), v) != std::end(kSpeeds);
}

// virtio 1.2 §5.1.6.4.3.1 VIRTIO_NET_HASH_TYPE_* bits 0-8; the device
// hashes the six without IPv6 extension-header addresses (0x3f).
constexpr uint64_t kHashTypesMask = vn::kHashTypesSupported;
constexpr uint32_t kRssKeySize = vn::kRssMaxKeySize;

bool has(const json& p, const char* k) { return p.is_object() && p.contains(k) && !p[k].is_null(); }

// Options that need the guest driver unbound.
// supported_hash_types too: it decides whether RSS / HASH_REPORT are offered.
constexpr const char* kUnboundOnly[] = {"mac", "mtu", "features", "msix_num", "max_queue_size",
                                        "max_queue_pairs", "dim_config", "net_dim_config",
                                        "supported_hash_types"};
// Options that rebuild the device model.
constexpr const char* kRebuild[] = {"features", "max_queue_size", "max_queue_pairs"};

}  // namespace

int Manager::check_modify(const Dev& d, const json& p) const {
  uint64_t subcmd = opt_uint(p, "subcmd").value_or(kSubcmdDevice);
  if (subcmd == kSubcmdQueue) {
    auto mode = opt_str(p, "period_mode");
    if (mode && *mode != "event" && *mode != "cqe") return -EINVAL;
    if (!mode && !has(p, "period") && !has(p, "max_count")) return -EINVAL;
    return 0;
  }
  if (subcmd != kSubcmdDevice) return -EINVAL;
  static constexpr const char* kDeviceOpts[] = {
      "mac", "mtu", "speed", "link", "state", "features", "supported_hash_types", "rss_max_key_size",
      "rx_mode", "msix_num", "max_queue_size", "dst_port", "rx_dma_q_num", "drop_counter", "packet_counter",
      "aarfs", "max_queue_pairs", "dim_config", "net_dim_config"};
  if (std::none_of(std::begin(kDeviceOpts), std::end(kDeviceOpts), [&](const char* k) { return has(p, k); }))
    return -EINVAL;
  // Not offered by this implementation: device status writes, RX mode
  // override, IPv4 destination-port steering (to be deprecated).
  for (const char* k : {"state", "rx_mode", "dst_port"})
    if (has(p, k)) return VIRTNET_ERR_OPT_NOT_SUPPORTED;
  if (has(p, "mac")) {
    auto m = parse_mac(opt_str(p, "mac").value_or(""));
    if (!m) return VIRTNET_ERR_INVALID_MAC;
    for (auto& x : devs_)
      if (x.get() != &d && x->net.mac == *m) return VIRTNET_ERR_INVALID_MAC;
  }
  if (has(p, "mtu")) {
    auto v = opt_uint(p, "mtu");
    if (!v || *v < vn::kMinMtu || *v > vn::kMaxMtu) return VIRTNET_ERR_INVALID_MTU;
  }
  if (has(p, "speed") && !valid_speed(opt_uint(p, "speed").value_or(0))) return VIRTNET_ERR_INVALID_SPEED;
  if (has(p, "link") && opt_uint(p, "link").value_or(2) > 1) return -EINVAL;
  if (has(p, "features")) {
    auto f = opt_uint(p, "features");
    if (!f || (*f & ~opts_.supported_features)) return VIRTNET_ERR_FEATURE_VALIDATE;
  }
  if (has(p, "supported_hash_types") && (opt_uint(p, "supported_hash_types").value_or(~0ull) & ~kHashTypesMask))
    return VIRTNET_ERR_INVALID_HASH_TYPES;
  if (has(p, "rss_max_key_size") && opt_uint(p, "rss_max_key_size") != kRssKeySize)
    return VIRTNET_ERR_INVALID_RSS_KEY_SIZE;
  if (has(p, "aarfs") && !d.is_pf()) return VIRTNET_ERR_OPT_NOT_SUPPORTED;  // §4.6: PFs only
  // §15: MSI-X and QP cannot change in the same command.
  if (has(p, "msix_num") && has(p, "max_queue_pairs")) return -EINVAL;
  const Dev* parent = d.is_pf() ? nullptr : find_pf(d.pf_id);
  if (has(p, "msix_num")) {
    if (d.is_pf()) return VIRTNET_ERR_OPT_NOT_SUPPORTED;  // dynamic MSI-X is a VF pool (§15)
    auto n = opt_uint(p, "msix_num");
    // §15: even and >= 4, or 0 (non-functional); within pool + current and the cap.
    if (!n || (*n != 0 && (*n < 4 || *n % 2))) return VIRTNET_ERR_INVALID_MSIX;
    uint64_t avail = d.num_msix + (parent ? parent->msix_pool : 0);
    if (*n > avail || *n > opts_.emu.vf_msix()) return VIRTNET_ERR_INVALID_MSIX;
  }
  if (has(p, "max_queue_size")) {
    if (int e = check_queue_size(opt_uint(p, "max_queue_size")); e) return e;
  }
  if (has(p, "max_queue_pairs")) {
    auto n = opt_uint(p, "max_queue_pairs");
    uint32_t max_q = std::min<uint32_t>(d.num_msix ? d.num_msix : kMaxVirtQueues, kMaxVirtQueues);
    if (!n || *n < 1 || 2 * *n + 1 > std::max<uint32_t>(max_q, 3)) return VIRTNET_ERR_INVALID_QUEUES;
    if (!d.is_pf() && parent && *n > d.net.max_queue_pairs + parent->qp_pool) return VIRTNET_ERR_INVALID_QUEUES;
    if (*n > 1 && !d.net.ctrl_vq) return VIRTNET_ERR_INVALID_QUEUES;  // MQ needs the control queue
  }
  if (std::any_of(std::begin(kUnboundOnly), std::end(kUnboundOnly), [&](const char* k) { return has(p, k); }) &&
      d.ep->info().driver_bound)
    return VIRTNET_ERR_DRIVER_LOADED;
  return 0;
}

void Manager::apply_modify(Dev& d, const json& p, std::function<void(int)> done) {
  if (opt_uint(p, "subcmd").value_or(kSubcmdDevice) == kSubcmdQueue) {
    if (auto m = opt_str(p, "period_mode")) d.rq_period_mode = *m == "event" ? 1 : 2;  // upon_event / upon_cqe
    if (auto v = opt_uint(p, "period")) d.rq_period = uint32_t(*v);
    if (auto v = opt_uint(p, "max_count")) d.rq_max_count = uint32_t(*v);
    // The RX queues notify after max_count packets or period us (both
    // needed; either 0: no moderation), unless the driver set its own
    // (NOTF_COAL_RX_SET).
    d.net.rx_moderation = {d.rq_max_count, d.rq_period};
    d.ep->set_rx_moderation(d.net.rx_moderation);
    return done(save(d) ? VIRTNET_ERR_RECOVERY_SAVE_CFG : 0);
  }
  auto busy = [](const Status& s, int e) { return s ? 0 : s.error().code == Errc::kBusy ? VIRTNET_ERR_DRIVER_LOADED : e; };
  if (has(p, "mac")) {
    auto m = *parse_mac(*opt_str(p, "mac"));
    if (int e = busy(d.ep->set_mac(m), VIRTNET_ERR_INVALID_MAC); e) return done(e);
    d.net.mac = m;
  }
  if (has(p, "mtu")) {
    uint16_t v = uint16_t(*opt_uint(p, "mtu"));
    if (int e = busy(d.ep->set_mtu(v), VIRTNET_ERR_INVALID_MTU); e) return done(e);
    d.net.mtu = v;
  }
  if (has(p, "speed")) {
    uint32_t v = uint32_t(*opt_uint(p, "speed"));
    if (int e = busy(d.ep->set_speed(v), VIRTNET_ERR_INVALID_SPEED); e) return done(e);
    d.net.speed = v;
  }
  if (has(p, "link")) {
    d.net.link_up = *opt_uint(p, "link") == 1;
    d.ep->set_link(d.net.link_up);
  }
  if (has(p, "packet_counter")) {
    d.net.packet_counters = flag(p, "packet_counter");
    d.ep->set_packet_counters(d.net.packet_counters);
  }
  if (has(p, "drop_counter")) {
    // §7: enabling starts from 0; disabled reads 0.
    d.drop_counter = flag(p, "drop_counter");
    uint64_t drops = 0;
    for (auto& q : d.ep->vq_stats(std::nullopt))
      if (q.rx) drops += q.backend_dropped;
    d.drop_base = drops;
  }
  if (has(p, "aarfs")) d.aarfs = flag(p, "aarfs");
  if (has(p, "dim_config")) {
    d.net.dim = flag(p, "dim_config");
    d.ep->set_dim(d.net.dim);
  }
  if (has(p, "net_dim_config")) d.netdim = flag(p, "net_dim_config");
  if (has(p, "supported_hash_types")) {
    uint32_t v = uint32_t(*opt_uint(p, "supported_hash_types"));
    if (int e = busy(d.ep->set_hash_types(v), VIRTNET_ERR_INVALID_HASH_TYPES); e) return done(e);
    d.net.hash_types = v;
  }
  if (has(p, "rss_max_key_size")) d.rss_max_key_size = kRssKeySize;
  if (has(p, "rx_dma_q_num")) d.rx_dma_q_num = uint32_t(opt_uint(p, "rx_dma_q_num").value_or(0));
  int warn = 0;
  if (has(p, "msix_num")) {
    uint32_t n = uint32_t(*opt_uint(p, "msix_num"));
    if (Dev* parent = find_pf(d.pf_id)) parent->msix_pool = parent->msix_pool + d.num_msix - n;
    d.num_msix = n;
    if (n == 0) warn = VIRTNET_WARN_DEV_NOT_FUNCTIONAL;
  }
  if (std::none_of(std::begin(kRebuild), std::end(kRebuild), [&](const char* k) { return has(p, k); }))
    return done(save(d) ? VIRTNET_ERR_RECOVERY_SAVE_CFG : warn);
  vn::NetOptions o = d.net;
  if (has(p, "features")) o.features_mask = *opt_uint(p, "features");
  if (has(p, "max_queue_size")) o.queue_size = uint16_t(*opt_uint(p, "max_queue_size"));
  if (has(p, "max_queue_pairs")) o.max_queue_pairs = uint16_t(*opt_uint(p, "max_queue_pairs"));
  d.ep->reconfigure(o, [this, &d, o, warn, done = std::move(done)](Status s) {
    if (!s) {
      VDPU_WARN("virtnet {}: modify: {}", d.vuid, s.error().message);
      return done(s.error().code == Errc::kBusy ? VIRTNET_ERR_DRIVER_LOADED : VIRTNET_ERR_SNAP_MODIFY);
    }
    if (!d.is_pf() && o.max_queue_pairs != d.net.max_queue_pairs)
      if (Dev* parent = find_pf(d.pf_id)) parent->qp_pool = parent->qp_pool + d.net.max_queue_pairs - o.max_queue_pairs;
    d.net = o;
    done(save(d) ? VIRTNET_ERR_RECOVERY_SAVE_CFG : warn);
  });
}

void Manager::modify_each(std::vector<Dev*> ds, size_t i, json p, std::function<void(json)> done) {
  if (i == ds.size()) return done(err_json(0));
  Dev* d = ds[i];
  apply_modify(*d, p, [this, ds = std::move(ds), i, p, done](int e) mutable {
    if (e) return done(err_json(e));  // an error, or the -1043 warning (MSI-X 0)
    modify_each(std::move(ds), i + 1, std::move(p), std::move(done));
  });
}

void Manager::modify(const json& p, std::function<void(json)> done) {
  int err = 0;
  auto ds = select(p, &err);
  if (err) return done(err_json(err));
  for (Dev* d : ds)
    if (int e = check_modify(*d, p); e) return done(err_json(e));
  modify_each(std::move(ds), 0, p, std::move(done));
}

}  // namespace vdpu::service::virtnet
