// The real virtnet endpoint: a virtio::net::NetDevice served over vhost-user
// on the function's socket (QEMU `-netdev vhost-user` + virtio-net-pci, DPDK
// net_virtio_user), with a TAP representor behind it (spec §1 software
// mapping). The representor outlives device rebuilds (modify of features or
// queues): the device sees it through a forwarding backend.
//
// Control plane only (main reactor).
#include <memory>

#include "base/log.h"
#include "service/virtnet/endpoint.h"
#include "transport/vhost_user/server.h"
#include "virtio/net/backend_mem.h"
#include "virtio/net/backend_tap.h"

namespace vdpu::service::virtnet {
namespace {

namespace vn = virtio::net;

// Forwards to a backend shared with the endpoint, so a rebuilt NetDevice
// reuses the same representor. One virtual call per burst.
class SharedBackend final : public vn::NetBackend {
 public:
  explicit SharedBackend(std::shared_ptr<vn::NetBackend> b) : b_(std::move(b)) {}
  const char* kind() const override { return b_->kind(); }
  std::string ifname() const override { return b_->ifname(); }
  uint64_t offload_features() const override { return b_->offload_features(); }
  Status open_queue(uint16_t q) override { return b_->open_queue(q); }
  void close_queue(uint16_t q) override { b_->close_queue(q); }
  Status configure(const vn::BackendConfig& cfg) override { return b_->configure(cfg); }
  uint32_t tx_burst(uint16_t q, vn::TxPkt* p, uint32_t n) noexcept override { return b_->tx_burst(q, p, n); }
  uint32_t rx_burst(uint16_t q, vn::RxSlot* s, uint32_t n) noexcept override { return b_->rx_burst(q, s, n); }
  int rx_wake_fd(uint16_t q) const override { return b_->rx_wake_fd(q); }
  bool rx_always_ready(uint16_t q) const override { return b_->rx_always_ready(q); }
  const vn::BackendQueueStats& stats(uint16_t q) const override { return b_->stats(q); }

 private:
  std::shared_ptr<vn::NetBackend> b_;
};

using RepHook = std::function<void(const std::string&, bool)>;

class VhostEndpoint final : public Endpoint {
 public:
  VhostEndpoint(rt::Runtime& rt, EndpointConfig cfg, std::string backend, RepHook hook)
      : rt_(rt), cfg_(std::move(cfg)), backend_(std::move(backend)), hook_(std::move(hook)) {}

  ~VhostEndpoint() override {
    *alive_ = false;
    if (srv_) VDPU_WARN("virtnet {}: endpoint destroyed while plugged", cfg_.name);
    srv_.reset();
    dev_.reset();
    release_rep();
  }

  Status init() {
    VDPU_TRY(make_backend(cfg_.net.max_queue_pairs));
    return build(cfg_.net);
  }

  EndpointInfo info() const override {
    EndpointInfo i;
    i.connected = srv_ && srv_->connected();
    i.driver_bound = srv_ && srv_->running_queues() > 0;
    i.rep_name = be_ ? be_->ifname() : "";
    if (auto* t = dynamic_cast<vn::TapBackend*>(be_.get())) i.rep_ifindex = t->ifindex();
    if (srv_) i.vhost_bad_messages = srv_->stats().bad_messages;
    if (!dev_) return i;
    i.device_features = dev_->device_features();
    i.driver_features = dev_->negotiated_features();
    i.enabled_queues = dev_->enabled_queues();
    for (uint16_t q = 0; q < dev_->num_queues(); ++q) i.queue_started.push_back(dev_->queue_started(q));
    i.ctrl_mac = dev_->ctrl_state().filter.mac;
    i.ctrl_mq = dev_->ctrl_state().pairs;
    return i;
  }

  std::vector<vn::NetVqStats> vq_stats(std::optional<uint16_t> qid) const override {
    return dev_ ? dev_->vq_stats(qid) : std::vector<vn::NetVqStats>{};
  }

  Status set_mac(const vn::MacAddr& mac) override {
    VDPU_TRY(dev_->set_mac(mac));
    cfg_.net.mac = mac;
    return {};
  }
  Status set_mtu(uint16_t mtu) override {
    VDPU_TRY(dev_->set_mtu(mtu));
    cfg_.net.mtu = mtu;
    return {};
  }
  Status set_speed(uint32_t mbps) override {
    VDPU_TRY(dev_->set_speed(mbps, cfg_.net.duplex));
    cfg_.net.speed = mbps;
    return {};
  }
  void set_link(bool up) override {
    dev_->set_link(up);
    cfg_.net.link_up = up;
  }
  void set_packet_counters(bool on) override {
    dev_->set_packet_counters(on);
    cfg_.net.packet_counters = on;
  }
  Status set_hash_types(uint32_t types) override {
    VDPU_TRY(dev_->set_hash_types(types));
    cfg_.net.hash_types = types;
    return {};
  }
  void set_dim(bool on) override {
    dev_->set_dim(on);
    cfg_.net.dim = on;
  }
  void set_rx_moderation(const vn::CoalParams& p) override {
    dev_->set_rx_moderation(p);
    cfg_.net.rx_moderation = p;
  }

  void reconfigure(const vn::NetOptions& o, std::function<void(Status)> done) override {
    if (info().driver_bound) return done(make_error(Errc::kBusy, "a driver is bound"));
    if (auto s = vn::validate(o); !s) return done(s);
    auto alive = alive_;
    teardown([this, alive, o, done = std::move(done)] {
      if (!*alive) return done(make_error(Errc::kState, "endpoint destroyed"));
      Status s;
      if (o.max_queue_pairs != cfg_.net.max_queue_pairs) s = make_backend(o.max_queue_pairs);
      if (s) s = build(o);
      if (!s) {
        // Back to the previous options so the function stays usable.
        VDPU_WARN("virtnet {}: reconfigure failed ({}); restoring", cfg_.name, s.error().message);
        (void)build(cfg_.net);
        return done(s);
      }
      cfg_.net = o;
      done({});
    });
  }

  void destroy(std::function<void()> done) override {
    auto alive = alive_;
    teardown([this, alive, done = std::move(done)] {
      if (*alive) release_rep();
      done();
    });
  }

 private:
  Status make_backend(uint16_t pairs) {
    std::shared_ptr<vn::NetBackend> nb;
    if (backend_ == "tap") {
      vn::TapOptions to;
      to.ifname = cfg_.rep_name;
      to.pairs = pairs;
      to.mtu = cfg_.net.mtu;
      auto t = vn::TapBackend::create(to);
      if (!t) return make_error(t.error().code, "representor " + cfg_.rep_name + ": " + t.error().message);
      nb = std::move(*t);
    } else if (backend_ == "loopback") {
      nb = vn::LoopbackBackend::create_self(pairs, uint32_t(vn::kMaxMtu) + vn::kEthHdrLen + vn::kVlanTagLen);
    } else {
      nb = std::make_shared<vn::DropBackend>(pairs);
    }
    bool first = !be_;
    be_ = std::move(nb);  // a new TAP instance attaches to the same netdev first
    if (first && hook_ && !be_->ifname().empty()) hook_(be_->ifname(), true);
    return {};
  }

  void release_rep() {
    if (!be_) return;
    std::string name = be_->ifname();
    be_.reset();
    if (hook_ && !name.empty()) hook_(name, false);
  }

  Status build(const vn::NetOptions& o) {
    auto d = vn::NetDevice::create(o, std::make_unique<SharedBackend>(be_), rt_);
    if (!d) return d.error();
    auto s = vhost_user::Server::listen(rt_.main(), **d, cfg_.socket);
    if (!s) {
      // Nothing started on a device that never listened.
      return make_error(s.error().code, "socket " + cfg_.socket + ": " + s.error().message);
    }
    dev_ = std::move(*d);
    srv_ = std::move(*s);
    return {};
  }

  // Server shutdown (stops queues, resets, unlinks) -> device stop_all ->
  // both destroyed, outside their own callbacks.
  void teardown(std::function<void()> then) {
    auto alive = alive_;
    auto finish = [this, alive, then = std::move(then)] {
      rt_.main().send_blocking([this, alive, then] {
        if (*alive) {
          srv_.reset();
          dev_.reset();
        }
        then();
      });
    };
    if (!srv_) return finish();
    srv_->shutdown([this, alive, finish] {
      if (!*alive || !dev_) return finish();
      dev_->stop_all(finish);
    });
  }

  rt::Runtime& rt_;
  EndpointConfig cfg_;
  std::string backend_;
  RepHook hook_;
  std::shared_ptr<vn::NetBackend> be_;
  std::unique_ptr<vn::NetDevice> dev_;
  std::unique_ptr<vhost_user::Server> srv_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

EndpointFactory vhost_endpoint_factory(rt::Runtime& rt, std::string backend, RepHook on_rep) {
  return [&rt, backend, on_rep](const EndpointConfig& cfg) -> Result<std::unique_ptr<Endpoint>> {
    auto e = std::make_unique<VhostEndpoint>(rt, cfg, backend, on_rep);
    VDPU_TRY(e->init());
    return std::unique_ptr<Endpoint>(std::move(e));
  };
}

}  // namespace vdpu::service::virtnet
