#include "virtio/net/net_device.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cstring>

#include "base/log.h"

namespace vdpu::virtio::net {
namespace {

constexpr uint64_t kCtrlFeatures = VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_CTRL_RX | VIRTIO_NET_F_CTRL_VLAN |
                                   VIRTIO_NET_F_CTRL_MAC_ADDR | VIRTIO_NET_F_GUEST_ANNOUNCE |
                                   VIRTIO_NET_F_CTRL_GUEST_OFFLOADS;
constexpr uint64_t kHostGso =
    VIRTIO_NET_F_HOST_TSO4 | VIRTIO_NET_F_HOST_TSO6 | VIRTIO_NET_F_HOST_ECN | VIRTIO_NET_F_HOST_UFO;
constexpr uint64_t kGuestGso = VIRTIO_NET_F_GUEST_TSO4 | VIRTIO_NET_F_GUEST_TSO6 | VIRTIO_NET_F_GUEST_UFO;
constexpr uint32_t kCtrlPollUs = 1000;
constexpr uint32_t kCtrlMaxCmd = 8192;  // MAC_TABLE_SET with ~1300 addresses
// Features that only mean something with our control queue (§5.1.3.1: RSS
// and NOTF_COAL require CTRL_VQ). HASH_REPORT is not in the list: it sets
// the header size, which the data path honours whoever runs the control queue.
constexpr uint64_t kCtrlOnly = kCtrlFeatures | VIRTIO_NET_F_RSS | VIRTIO_NET_F_NOTF_COAL;
// Bytes of one RSS handoff ring (per source reactor and receive queue).
constexpr uint32_t kRssRingBytes = 256 * 1024;

uint64_t load(const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); }

}  // namespace

// ------------------------------------------------------------------ options / json

Status validate(const NetOptions& o) {
  auto bad = [](std::string m) { return make_error(Errc::kInvalidArgument, std::move(m)); };
  if (o.mtu < kMinMtu || o.mtu > kMaxMtu) return bad("mtu must be 68-9216");
  if (o.max_queue_pairs < 1 || o.max_queue_pairs > 256) return bad("max_queue_pairs must be 1-256");
  if (o.queue_size < 4 || o.queue_size > 32768 || (o.queue_size & (o.queue_size - 1)))
    return bad("max_queue_size must be a power of 2 in 4-32768");
  if (o.max_queue_pairs > 1 && !o.ctrl_vq) return bad("max_queue_pairs > 1 needs the control queue (MQ requires CTRL_VQ)");
  if (o.duplex != DUPLEX_HALF && o.duplex != DUPLEX_FULL && o.duplex != DUPLEX_UNKNOWN) return bad("duplex must be 0, 1 or 0xff");
  if (o.hash_types & ~kHashTypesSupported) return bad("supported_hash_types: only IPv4/TCPv4/UDPv4/IPv6/TCPv6/UDPv6 (0x3f)");
  return {};
}

nlohmann::json stats_json(const std::vector<NetVqStats>& v, bool packet_counters) {
  static const char* kHist[kRxHistBuckets] = {
      "rx_64_or_less_octet_packets",    "rx_65_to_127_octet_packets",   "rx_128_to_255_octet_packets",
      "rx_256_to_511_octet_packets",    "rx_512_to_1023_octet_packets", "rx_1024_to_1522_octet_packets",
      "rx_1523_to_2047_octet_packets",  "rx_2048_to_4095_octet_packets", "rx_4096_to_8191_octet_packets",
      "rx_8192_to_9022_octet_packets"};
  auto s = [](uint64_t x) { return std::to_string(x); };
  nlohmann::json q = nlohmann::json::array();
  for (const NetVqStats& x : v) {
    nlohmann::json j = nlohmann::json::object();
    j["VQ Index"] = x.index;
    if (x.rx && packet_counters)
      for (uint32_t b = 0; b < kRxHistBuckets; ++b) j[kHist[b]] = x.hist[b];
    j["received_desc"] = s(x.received_desc);
    j["completed_desc"] = s(x.completed_desc);
    j["bad_desc_errors"] = s(x.bad_desc_errors);
    j["error_cqes"] = s(x.error_cqes);
    j["exceed_max_chain"] = s(x.exceed_max_chain);
    j["invalid_buffer"] = s(x.invalid_buffer);
    j["batch_number"] = s(x.batch_number);
    j["dma_q_used_number"] = s(0);
    j["handler_schd_number"] = s(x.handler_schd_number);
    j["aux_handler_schd_number"] = s(0);
    j["max_post_desc_number"] = s(x.max_post_desc_number);
    j["total_bytes"] = s(x.total_bytes);
    j["err_handler_schd_num"] = s(0);
    j["rq_cq_max_count"] = s(0);
    j["rq_cq_period"] = s(0);
    j["rq_cq_period_mode"] = "0x0";
    q.push_back(std::move(j));
  }
  return {{"packet_counters", packet_counters ? "Enabled" : "Disabled"}, {"queues-stats", q}};
}

// ------------------------------------------------------------------ Group / Ctrl

struct NetDevice::Group {
  std::vector<NetQueueBase*> queues;
  rt::PollerId poller = 0;

  rt::Poll poll() {
    bool busy = false;
    for (NetQueueBase* q : queues) busy |= q->poll() == rt::Poll::kBusy;
    return busy ? rt::Poll::kBusy : rt::Poll::kIdle;
  }
  bool prepare_sleep() {
    for (NetQueueBase* q : queues)
      if (!q->prepare_sleep()) return false;
    return true;
  }
};

struct NetDevice::Ctrl {
  Virtqueue vq;
  std::vector<iovec> iov = std::vector<iovec>(NetQueueBase::kMaxIov);
  Chain chain;
  std::vector<uint8_t> buf = std::vector<uint8_t>(kCtrlMaxCmd);
  rt::PollerId poller = 0;
  int kick_fd = -1;
  bool busy = false;  // a command waits for its effects on the data reactors
  bool broken_counted = false;
  std::function<void(QueueState)> stop_done;
};

// ------------------------------------------------------------------ lifecycle

NetDevice::NetDevice(const NetOptions& o, std::unique_ptr<NetBackend> be, rt::Runtime& rt)
    : opts_(o), be_(std::move(be)), rt_(rt), packet_counters_(o.packet_counters) {
  slots_.resize(2 * size_t(o.max_queue_pairs));
  counters_.reset(new NetQueueCounters[slots_.size()]);
  pair_reactor_.assign(o.max_queue_pairs, -1);
  for (size_t i = 0; i < rt_.size(); ++i) groups_.push_back(std::make_unique<Group>());
}

Result<std::unique_ptr<NetDevice>> NetDevice::create(const NetOptions& o, std::unique_ptr<NetBackend> be,
                                                     rt::Runtime& rt) {
  VDPU_TRY(validate(o));
  if (!be) return make_error(Errc::kInvalidArgument, "virtio-net: no backend");
  std::unique_ptr<NetDevice> d(new NetDevice(o, std::move(be), rt));
  d->features_ = d->compute_features();
  d->reset_ctrl_state();
  d->fill_config();
  return d;
}

uint64_t NetDevice::compute_features() const {
  const NetOptions& o = opts_;
  uint64_t f = kFVersion1 | VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS | VIRTIO_NET_F_MTU | VIRTIO_NET_F_SPEED_DUPLEX;
  if (o.mrg_rxbuf) f |= VIRTIO_NET_F_MRG_RXBUF;
  if (o.ctrl_vq) f |= kCtrlFeatures | VIRTIO_NET_F_NOTF_COAL;
  if (o.ctrl_vq && o.hash_types) f |= VIRTIO_NET_F_RSS | VIRTIO_NET_F_HASH_REPORT;
  if (o.max_queue_pairs > 1) f |= VIRTIO_NET_F_MQ;
  const uint64_t off = be_->offload_features();
  f |= off & (VIRTIO_NET_F_CSUM | VIRTIO_NET_F_GUEST_CSUM);
  // §5.1.3.1: TSO/ECN/UFO need the matching checksum offload.
  if (off & VIRTIO_NET_F_CSUM) f |= off & kHostGso;
  if (off & VIRTIO_NET_F_GUEST_CSUM) f |= off & (kGuestGso | VIRTIO_NET_F_GUEST_ECN);
  if (o.event_idx) f |= kFEventIdx;
  if (o.indirect) f |= kFIndirectDesc;
  if (o.packed) f |= kFRingPacked;
  if (o.features_mask) f &= o.features_mask;
  return f;
}

NetDevice::~NetDevice() {
  *alive_ = false;
  for (auto& s : slots_)
    if (s.q) VDPU_ERR("virtio-net: device destroyed with queue {} still running", s.q->qid());
  if (cq_) {
    rt::Reactor& m = rt_.main();
    if (cq_->kick_fd >= 0) m.remove_fd(cq_->kick_fd);
    if (cq_->poller) m.remove_poller(cq_->poller);
  }
}

void NetDevice::reset_ctrl_state() {
  ctrl_ = CtrlState{};
  ctrl_.filter.mac = opts_.mac;
  ctrl_.filter.vlan_filtering = negotiated_ & VIRTIO_NET_F_CTRL_VLAN;
  ctrl_.guest_offloads = negotiated_ & kGuestOffloadMask;
  ctrl_.status = opts_.link_up ? VIRTIO_NET_S_LINK_UP : 0;
  ctrl_.rss.report = negotiated_ & VIRTIO_NET_F_HASH_REPORT;
}

CoalParams NetDevice::coal_for(bool rx) const {
  const CoalParams& drv = rx ? ctrl_.rx_coal : ctrl_.tx_coal;
  if (drv.active() || !rx) return drv;
  return opts_.rx_moderation;  // the driver set nothing: the device's own moderation
}

RssConfig NetDevice::rss_for_queues() const {
  RssConfig c = ctrl_.rss;
  c.report = negotiated_ & VIRTIO_NET_F_HASH_REPORT;
  return c;
}

RssFabric* NetDevice::ensure_fabric() {
  if (!fabric_) {
    const uint32_t rec = hdr_len_ + max_rx_frame() + 64;
    fabric_ = std::make_unique<RssFabric>(uint32_t(rt_.size()), opts_.max_queue_pairs,
                                          std::max<uint32_t>(kRssRingBytes, 8 * rec));
  }
  return fabric_.get();
}

void NetDevice::fill_config() {
  VirtioNetConfig c{};
  std::memcpy(c.mac, ctrl_.filter.mac.data(), kEthAddrLen);
  c.status = htole16(ctrl_.status);
  c.max_virtqueue_pairs = htole16(opts_.max_queue_pairs);
  c.mtu = htole16(opts_.mtu);
  c.speed = htole32(opts_.speed);
  c.duplex = opts_.duplex;
  // §5.1.4: the RSS fields exist with VIRTIO_NET_F_RSS, the key size and
  // hash types also with VIRTIO_NET_F_HASH_REPORT.
  if (features_ & (VIRTIO_NET_F_RSS | VIRTIO_NET_F_HASH_REPORT)) {
    c.rss_max_key_size = kRssMaxKeySize;
    c.supported_hash_types = htole32(opts_.hash_types);
  }
  if (features_ & VIRTIO_NET_F_RSS) c.rss_max_indirection_table_length = htole16(kRssMaxIndirLen);
  config_ = c;
}

uint16_t NetDevice::active_pairs() const { return cq_ ? ctrl_.pairs : opts_.max_queue_pairs; }

uint32_t NetDevice::enabled_queues() const {
  uint32_t n = cq_ ? 1 : 0;
  for (auto& s : slots_) n += s.q != nullptr;
  return n;
}

uint32_t NetDevice::max_rx_frame() const {
  if (negotiated_ & kGuestGso) return kMaxGsoFrame;
  return uint32_t(opts_.mtu) + kEthHdrLen + kVlanTagLen;
}

NetQueueParams NetDevice::queue_params(uint16_t qid) const {
  NetQueueParams p;
  p.qid = qid;
  p.pair = qid / 2;
  p.hdr_len = hdr_len_;
  p.mrg_rxbuf = negotiated_ & VIRTIO_NET_F_MRG_RXBUF;
  const bool rx = (qid & 1) == 0;
  if (rx) p.max_frame = max_rx_frame();
  else if (negotiated_ & VIRTIO_NET_F_MTU) p.max_frame = uint32_t(opts_.mtu) + kEthHdrLen + kVlanTagLen;
  else p.max_frame = kMaxGsoFrame;
  p.host_gso = negotiated_ & kHostGso;
  p.count_sizes = packet_counters_;
  p.coal = coal_for(rx);
  p.dim = opts_.dim;
  return p;
}

BackendConfig NetDevice::backend_config() const {
  BackendConfig b;
  b.hdr_len = hdr_len_;
  b.guest_offloads = ctrl_.guest_offloads;
  b.active_pairs = active_pairs();
  return b;
}

void NetDevice::apply_backend_config() {
  if (auto st = be_->configure(backend_config()); !st)
    VDPU_WARN("virtio-net: backend {}: {}", be_->kind(), st.error().message);
}

// ------------------------------------------------------------------ Device

void NetDevice::read_config(uint32_t offset, std::span<uint8_t> out) const {
  std::fill(out.begin(), out.end(), 0);
  if (offset >= sizeof(config_)) return;
  size_t n = std::min<size_t>(out.size(), sizeof(config_) - offset);
  std::memcpy(out.data(), reinterpret_cast<const uint8_t*>(&config_) + offset, n);
}

Status NetDevice::write_config(uint32_t, std::span<const uint8_t>) {
  return make_error(Errc::kUnsupported, "virtio-net config space is read-only");
}

Status NetDevice::set_features(uint64_t f) {
  auto bad = [](const char* m) { return make_error(Errc::kInvalidArgument, std::string("virtio-net: ") + m); };
  if (f & ~features_) return bad("driver accepted features we did not offer");
  // §5.1.3.1 makes control features depend on CTRL_VQ. A vhost-user frontend
  // (QEMU) that runs the control queue itself passes them without CTRL_VQ:
  // they are then the frontend's business, so accept them and act on none.
  if (!(f & VIRTIO_NET_F_CTRL_VQ)) f &= ~kCtrlOnly;
  if ((f & VIRTIO_NET_F_MQ) && !(f & VIRTIO_NET_F_CTRL_VQ)) return bad("MQ without VIRTIO_NET_F_CTRL_VQ");
  if ((f & kHostGso) && !(f & VIRTIO_NET_F_CSUM)) return bad("HOST_TSO/ECN/UFO without VIRTIO_NET_F_CSUM");
  if ((f & (kGuestGso | VIRTIO_NET_F_GUEST_ECN)) && !(f & VIRTIO_NET_F_GUEST_CSUM))
    return bad("GUEST_TSO/ECN/UFO without VIRTIO_NET_F_GUEST_CSUM");
  negotiated_ = f;
  // §5.1.6: the header is 12 bytes with VERSION_1 or MRG_RXBUF, 10 for
  // legacy, virtio_net_hdr_v1_hash (20) with HASH_REPORT.
  hdr_len_ = (f & (kFVersion1 | VIRTIO_NET_F_MRG_RXBUF)) ? kNetHdrLen : kNetHdrLegacyLen;
  if (f & VIRTIO_NET_F_HASH_REPORT) hdr_len_ = kNetHdrHashLen;
  reset_ctrl_state();
  fill_config();
  apply_backend_config();
  return {};
}

void NetDevice::to_main(std::function<void()> fn) { rt_.main().send_blocking(std::move(fn)); }

void NetDevice::start_queue(uint16_t qid, const QueueConfig& cfg, std::function<void(Status)> done) {
  const uint16_t ctrl_qid = uint16_t(2 * opts_.max_queue_pairs);
  if (opts_.ctrl_vq && qid == ctrl_qid) return start_ctrl(cfg, std::move(done));
  if (qid >= slots_.size())
    return done(make_error(Errc::kInvalidArgument, "virtio-net: no queue " + std::to_string(qid)));
  Slot& s = slots_[qid];
  if (s.q) return done(make_error(Errc::kState, "virtio-net: queue " + std::to_string(qid) + " already started"));
  if (cfg.size > opts_.queue_size)
    return done(make_error(Errc::kInvalidArgument, "virtio-net: queue size " + std::to_string(cfg.size) +
                                                       " above the maximum " + std::to_string(opts_.queue_size)));
  if (cfg.features & ~features_)
    return done(make_error(Errc::kInvalidArgument, "virtio-net: queue features we did not offer"));
  const uint16_t pair = qid / 2;
  const bool rx = (qid & 1) == 0;
  std::unique_ptr<NetQueueBase> q;
  if (rx) q = std::make_unique<NetRxQueue>(queue_params(qid), be_.get(), &counters_[qid]);
  else q = std::make_unique<NetTxQueue>(queue_params(qid), be_.get(), &counters_[qid]);
  if (Status st = q->start(cfg); !st) return done(st);
  if (Status st = be_->open_queue(pair); !st) return done(st);
  if (pair_reactor_[pair] < 0) pair_reactor_[pair] = int(rt_.pick());
  s.reactor = uint32_t(pair_reactor_[pair]);
  s.q = std::move(q);
  NetQueueBase* qp = s.q.get();
  qp->set_running(!rx || pair < active_pairs());
  int rss_fd = -1;
  if (rx) {
    auto* rq = static_cast<NetRxQueue*>(qp);
    rq->set_filter(ctrl_.filter);
    rq->set_reactor(s.reactor);
    RssConfig rc = rss_for_queues();
    rq->set_rss(rc, rc.steer ? ensure_fabric() : nullptr);
    // The fabric's wake fd is watched for the queue's whole life once it exists.
    if (fabric_) rss_fd = fabric_->wake_fd(pair);
  }
  const int rx_fd = rx ? be_->rx_wake_fd(pair) : -1;
  const uint32_t r = s.reactor;
  rt_.reactor(r).send_blocking([this, r, qp, rx_fd, rss_fd, done, alive = alive_] {
    Group& g = *groups_[r];
    rt::Reactor* self = rt::this_reactor();
    g.queues.push_back(qp);
    if (rss_fd >= 0) static_cast<NetRxQueue*>(qp)->set_rss_wake_fd(rss_fd);
    for (int fd : {qp->vq().kick_fd(), rx_fd, rss_fd}) {
      if (fd < 0) continue;
      if (Status st = self->add_wake_fd(fd); !st)
        VDPU_WARN("virtio-net q{}: fd {} not watched ({}); polling only", qp->qid(), fd, st.error().message);
    }
    if (!g.poller)
      g.poller = self->add_poller("virtio_net", [&g] { return g.poll(); }, 0, [&g] { return g.prepare_sleep(); });
    to_main([done] { done({}); });
  });
}

void NetDevice::stop_queue(uint16_t qid, std::function<void(QueueState)> done) {
  const uint16_t ctrl_qid = uint16_t(2 * opts_.max_queue_pairs);
  if (opts_.ctrl_vq && qid == ctrl_qid) return stop_ctrl(std::move(done));
  if (qid >= slots_.size() || !slots_[qid].q) return done(QueueState{});
  Slot& s = slots_[qid];
  s.waiters.push_back(std::move(done));
  if (s.stopping) return;
  s.stopping = true;
  NetQueueBase* q = s.q.get();
  const int rx_fd = q->is_rx() ? be_->rx_wake_fd(q->pair()) : -1;
  const uint32_t r = s.reactor;
  rt_.reactor(r).send_blocking([this, r, q, qid, rx_fd] {
    Group& g = *groups_[r];
    rt::Reactor* self = rt::this_reactor();
    q->set_running(false);
    q->release();  // nothing stays popped: the ring state is exact
    g.queues.erase(std::remove(g.queues.begin(), g.queues.end(), q), g.queues.end());
    const int rss_fd = q->is_rx() ? static_cast<NetRxQueue*>(q)->rss_wake_fd() : -1;
    for (int fd : {q->vq().kick_fd(), rx_fd, rss_fd})
      if (fd >= 0) self->remove_wake_fd(fd);
    if (g.queues.empty() && g.poller) {
      self->remove_poller(g.poller);
      g.poller = 0;
    }
    QueueState st = q->vq().state();
    to_main([this, qid, st] {
      Slot& s = slots_[qid];
      s.q.reset();
      s.stopping = false;
      const uint16_t pair = qid / 2;
      if (!slots_[2 * pair].q && !slots_[2 * pair + 1].q) {
        be_->close_queue(pair);
        pair_reactor_[pair] = -1;
      }
      auto w = std::move(s.waiters);
      s.waiters.clear();
      for (auto& fn : w) fn(st);
    });
  });
}

void NetDevice::for_each_queue(std::function<void(NetQueueBase&)> work, std::function<void()> all_done) {
  std::vector<uint32_t> rs;
  for (auto& s : slots_)
    if (s.q && !s.stopping && std::find(rs.begin(), rs.end(), s.reactor) == rs.end()) rs.push_back(s.reactor);
  if (rs.empty()) {
    if (all_done) all_done();
    return;
  }
  auto left = std::make_shared<size_t>(rs.size());
  auto fin = std::make_shared<std::function<void()>>(std::move(all_done));
  for (uint32_t r : rs)
    rt_.reactor(r).send_blocking([this, r, work, left, fin] {
      for (NetQueueBase* q : groups_[r]->queues) work(*q);
      to_main([left, fin] {
        if (--*left == 0 && *fin) (*fin)();
      });
    });
}

void NetDevice::update_memory(hostmem::MemoryMapPtr mem) {
  if (cq_) cq_->vq.set_mem(mem);
  for_each_queue([mem](NetQueueBase& q) { q.vq().set_mem(mem); }, nullptr);
}

void NetDevice::reset() {
  negotiated_ = 0;
  hdr_len_ = kNetHdrLen;
  reset_ctrl_state();
  fill_config();
}

void NetDevice::stop_all(std::function<void()> done) {
  auto left = std::make_shared<size_t>(1);  // +1 released below
  auto fin = std::make_shared<std::function<void()>>(std::move(done));
  auto one = [left, fin](QueueState) {
    if (--*left == 0 && *fin) (*fin)();
  };
  for (uint16_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].q) {
      ++*left;
      stop_queue(i, one);
    }
  if (cq_) {
    ++*left;
    stop_ctrl(one);
  }
  one(QueueState{});
}

// ------------------------------------------------------------------ control queue

void NetDevice::start_ctrl(const QueueConfig& cfg, std::function<void(Status)> done) {
  if (cq_) return done(make_error(Errc::kState, "virtio-net: control queue already started"));
  if (cfg.size > opts_.queue_size) return done(make_error(Errc::kInvalidArgument, "virtio-net: control queue too large"));
  auto c = std::make_unique<Ctrl>();
  if (Status st = c->vq.start(cfg); !st) return done(st);
  c->vq.enable_notifications();  // served on kicks (and a slow timer)
  rt::Reactor& m = rt_.main();
  c->kick_fd = c->vq.kick_fd();
  cq_ = std::move(c);
  if (cq_->kick_fd >= 0) {
    Status st = m.add_fd(cq_->kick_fd, EPOLLIN, [this](uint32_t) {
      if (!cq_) return;
      cq_->vq.drain_kick();
      ctrl_poll();
    });
    if (!st) {
      VDPU_WARN("virtio-net: control queue kick fd not watched ({}); polling it", st.error().message);
      cq_->kick_fd = -1;
    }
  }
  cq_->poller = m.add_poller("virtio_net_ctrl", [this] {
    ctrl_poll();
    return rt::Poll::kIdle;
  }, kCtrlPollUs);
  // The control queue now decides the active pairs (1 after reset).
  apply_backend_config();
  propagate(kCtrlEffPairs | kCtrlEffFilter, [done = std::move(done)] { done({}); });
}

void NetDevice::stop_ctrl(std::function<void(QueueState)> done) {
  if (!cq_) return done(QueueState{});
  if (cq_->busy) {  // finishes when the pending command completes
    auto prev = std::move(cq_->stop_done);
    cq_->stop_done = [prev, done](QueueState s) {
      if (prev) prev(s);
      done(s);
    };
    return;
  }
  rt::Reactor& m = rt_.main();
  if (cq_->kick_fd >= 0) m.remove_fd(cq_->kick_fd);
  if (cq_->poller) m.remove_poller(cq_->poller);
  QueueState st = cq_->vq.state();
  cq_.reset();
  // Without our control queue every started pair is active again.
  apply_backend_config();
  propagate(kCtrlEffPairs, [done, st] { done(st); });
}

void NetDevice::ctrl_poll() {
  if (!cq_ || cq_->busy || cq_->stop_done) return;
  Ctrl& c = *cq_;
  bool pushed = false;
  for (;;) {
    Chain& ch = c.chain;
    ch.iov = c.iov.data();
    ch.max_iov = uint16_t(c.iov.size());
    PopStatus ps = c.vq.pop(ch);
    if (ps == PopStatus::kEmpty) break;
    if (ps == PopStatus::kError) {
      if (!c.broken_counted) {
        c.broken_counted = true;
        ++ctrl_counters_.bad;
        VDPU_WARN_RL("virtio-net: malformed control queue chain ({})", chain_error_name(c.vq.error()));
      }
      break;
    }
    // §5.1.6.5: class + command (+ data) readable, then the writable ack.
    if (ch.out_len < sizeof(VirtioNetCtrlHdr) || ch.in_len < 1) {
      ++ctrl_counters_.bad;
      VDPU_WARN_RL("virtio-net: control command with {} readable / {} writable bytes", ch.out_len, ch.in_len);
      c.vq.push(ch, 0);
      pushed = true;
      continue;
    }
    CtrlResult r;
    if (ch.out_len <= c.buf.size()) {
      uint32_t n = iov_to_buf(ch.iov, ch.n_out, 0, c.buf.data(), uint32_t(ch.out_len));
      CtrlLimits lim;
      lim.max_pairs = opts_.max_queue_pairs;
      lim.hash_types = opts_.hash_types;
      // RSS_CONFIG may name only receive queues the driver enabled.
      std::unique_ptr<bool[]> en(new bool[opts_.max_queue_pairs]);
      for (uint16_t q = 0; q < opts_.max_queue_pairs; ++q) en[q] = slots_[2 * q].q != nullptr;
      lim.rx_enabled = en.get();
      r = apply_ctrl(ctrl_, negotiated_, lim, c.buf[0], c.buf[1], c.buf.data() + 2, n - 2);
    }
    if (r.ack == VIRTIO_NET_OK) ++ctrl_counters_.ok;
    else {
      ++ctrl_counters_.err;
      VDPU_WARN_RL("virtio-net: control command class {} cmd {} ({} bytes) answered VIRTIO_NET_ERR",
                   ch.out_len ? c.buf[0] : 0, ch.out_len > 1 ? c.buf[1] : 0, ch.out_len);
    }
    iov_from_buf(ch.iov + ch.n_out, ch.n_in, 0, &r.ack, 1);
    if (r.effects) {
      // The ack goes out once every reactor applied the change (§5.1.6.5.5:
      // e.g. no packet on disabled queues after VQ_PAIRS_SET is used).
      c.busy = true;
      Chain held = ch;
      propagate(r.effects, [this, held, alive = alive_] {
        if (!*alive || !cq_) return;
        cq_->vq.push(held, 1);
        cq_->vq.flush_and_notify();
        cq_->busy = false;
        if (cq_->stop_done) {
          auto d = std::move(cq_->stop_done);
          cq_->stop_done = nullptr;
          stop_ctrl(std::move(d));
          return;
        }
        ctrl_poll();
      });
      if (pushed) c.vq.flush_and_notify();
      return;
    }
    c.vq.push(ch, 1);
    pushed = true;
  }
  if (pushed) c.vq.flush_and_notify();
}

void NetDevice::propagate(uint32_t effects, std::function<void()> done) {
  if (effects & (kCtrlEffMac | kCtrlEffStatus)) fill_config();
  if (effects & (kCtrlEffOffloads | kCtrlEffPairs)) apply_backend_config();
  if (!(effects & (kCtrlEffFilter | kCtrlEffPairs | kCtrlEffRss | kCtrlEffCoal))) {
    if (done) done();
    return;
  }
  const RxFilter f = ctrl_.filter;
  const uint16_t pairs = active_pairs();
  const RssConfig rc = rss_for_queues();
  RssFabric* fab = rc.steer ? ensure_fabric() : fabric_.get();
  const int fab_fds = fab != nullptr;
  const CoalParams rxc = coal_for(true), txc = coal_for(false);
  const bool dim = opts_.dim, coal = effects & kCtrlEffCoal;
  for_each_queue([=](NetQueueBase& q) {
    if (coal) q.set_coalescing(q.is_rx() ? rxc : txc, dim);
    if (!q.is_rx()) return;
    auto& rq = static_cast<NetRxQueue&>(q);
    rq.set_filter(f);
    rq.set_running(q.pair() < pairs);
    rq.set_rss(rc, fab);
    if (fab_fds && rq.rss_wake_fd() < 0) {
      // First RSS_CONFIG: the queue's reactor now watches its wake fd.
      const int fd = fab->wake_fd(q.pair());
      if (rt::this_reactor()->add_wake_fd(fd)) rq.set_rss_wake_fd(fd);
    }
  }, std::move(done));
}

// ------------------------------------------------------------------ control API

void NetDevice::config_changed() {
  fill_config();
  if (config_hook_) config_hook_();
}

void NetDevice::set_link(bool up) {
  opts_.link_up = up;
  if (up) ctrl_.status |= VIRTIO_NET_S_LINK_UP;
  else ctrl_.status &= uint16_t(~VIRTIO_NET_S_LINK_UP);
  config_changed();
}

Status NetDevice::announce() {
  if (!(negotiated_ & VIRTIO_NET_F_GUEST_ANNOUNCE))
    return make_error(Errc::kState, "virtio-net: driver did not negotiate GUEST_ANNOUNCE");
  ctrl_.status |= VIRTIO_NET_S_ANNOUNCE;
  config_changed();
  return {};
}

Status NetDevice::set_mac(const MacAddr& mac) {
  if (enabled_queues()) return make_error(Errc::kBusy, "virtio-net: driver is loaded");
  opts_.mac = mac;
  ctrl_.filter.mac = mac;
  fill_config();
  return {};
}

Status NetDevice::set_mtu(uint16_t mtu) {
  if (mtu < kMinMtu || mtu > kMaxMtu) return make_error(Errc::kInvalidArgument, "mtu must be 68-9216");
  if (enabled_queues()) return make_error(Errc::kBusy, "virtio-net: driver is loaded");
  opts_.mtu = mtu;
  fill_config();
  return {};
}

Status NetDevice::set_speed(uint32_t mbps, uint8_t duplex) {
  if (duplex != DUPLEX_HALF && duplex != DUPLEX_FULL && duplex != DUPLEX_UNKNOWN)
    return make_error(Errc::kInvalidArgument, "duplex must be 0, 1 or 0xff");
  opts_.speed = mbps;
  opts_.duplex = duplex;
  config_changed();
  return {};
}

void NetDevice::set_packet_counters(bool on) {
  if (on && !packet_counters_)  // virtnet §4.5: enabling resets them
    for (size_t i = 0; i < slots_.size(); ++i)
      for (auto& h : counters_[i].hist) h.store(0, std::memory_order_relaxed);
  packet_counters_ = on;
  for_each_queue([on](NetQueueBase& q) { q.set_count_sizes(on); }, nullptr);
}

Status NetDevice::set_hash_types(uint32_t types) {
  if (types & ~kHashTypesSupported)
    return make_error(Errc::kInvalidArgument, "virtio-net: hash types beyond 0x3f are not supported");
  if (enabled_queues()) return make_error(Errc::kBusy, "virtio-net: driver is loaded");
  opts_.hash_types = types;
  features_ = compute_features();
  fill_config();
  return {};
}

void NetDevice::set_dim(bool on) {
  opts_.dim = on;
  const CoalParams rxc = coal_for(true), txc = coal_for(false);
  for_each_queue([=](NetQueueBase& q) { q.set_coalescing(q.is_rx() ? rxc : txc, on); }, nullptr);
}

void NetDevice::set_rx_moderation(const CoalParams& p) {
  opts_.rx_moderation = p;
  const CoalParams rxc = coal_for(true);
  const bool dim = opts_.dim;
  for_each_queue([=](NetQueueBase& q) {
    if (q.is_rx()) q.set_coalescing(rxc, dim);
  }, nullptr);
}

std::vector<NetVqStats> NetDevice::vq_stats(std::optional<uint16_t> qid) const {
  std::vector<NetVqStats> v;
  for (uint16_t i = 0; i < slots_.size(); ++i) {
    if (qid && *qid != i) continue;
    const NetQueueCounters& c = counters_[i];
    NetVqStats x;
    x.index = i;
    x.rx = (i & 1) == 0;
    x.started = slots_[i].q != nullptr;
    if (x.started) {
      int core = rt_.reactor(slots_[i].reactor).core();
      x.core = core >= 0 ? core : int(slots_[i].reactor);
    }
    x.received_desc = load(c.received_desc);
    x.completed_desc = load(c.completed_desc);
    x.bad_desc_errors = load(c.bad_desc_errors);
    x.error_cqes = load(c.error_cqes);
    x.exceed_max_chain = load(c.exceed_max_chain);
    x.invalid_buffer = load(c.invalid_buffer);
    x.batch_number = load(c.batch_number);
    x.max_post_desc_number = load(c.max_post_desc_number);
    x.handler_schd_number = load(c.handler_schd_number);
    x.total_bytes = load(c.total_bytes);
    x.packets = load(c.packets);
    x.dropped = load(c.dropped);
    x.filtered = load(c.filtered);
    for (uint32_t b = 0; b < kRxHistBuckets; ++b) x.hist[b] = load(c.hist[b]);
    x.rss_steered = load(c.rss_steered);
    x.rss_dropped = load(c.rss_dropped);
    x.notifications = load(c.notifications);
    if (x.rx) x.backend_dropped = load(be_->stats(i / 2).rx_dropped);
    v.push_back(x);
  }
  return v;
}

}  // namespace vdpu::virtio::net
