// The real VBLK backend: a virtio::blk::BlkDevice served over vhost-user on
// the function's socket (the host's QEMU connects there with
// vhost-user-blk-pci). Control plane only (main reactor).
#include <memory>

#include "base/log.h"
#include "bdev/bdev.h"
#include "runtime/runtime.h"
#include "service/vblk/backend.h"
#include "transport/vhost_user/server.h"
#include "virtio/blk/blk_device.h"

namespace vdpu::service::vblk {
namespace {

namespace blk = virtio::blk;

blk::BlkOptions options_of(const CtrlConfig& c) {
  blk::BlkOptions o;
  o.num_queues = c.num_queues;
  o.queue_size = c.queue_size;
  o.size_max = c.size_max;
  o.seg_max = c.seg_max;
  o.serial = c.vblk_id;
  o.read_only = c.read_only;
  o.force_in_order = c.force_in_order;
  o.indirect_desc = c.indirect_desc;
  return o;
}

class VhostBlkBackend final : public Backend {
 public:
  VhostBlkBackend(rt::Runtime& rt, std::string ctrl, CtrlConfig cfg, std::unique_ptr<blk::BlkDevice> dev)
      : rt_(rt), ctrl_(std::move(ctrl)), cfg_(std::move(cfg)), dev_(std::move(dev)) {}

  ~VhostBlkBackend() override {
    *alive_ = false;
    // The manager unplugs before destroying; this is the shutdown path.
    if (srv_) VDPU_WARN("controller {}: destroyed while plugged", ctrl_);
    srv_.reset();
  }

  Status plug(const std::string& socket) override {
    if (srv_) return make_error(Errc::kState, "controller " + ctrl_ + " is already plugged");
    auto s = vhost_user::Server::listen(rt_.main(), *dev_, socket);
    if (!s) return s.error();
    srv_ = std::move(*s);
    socket_ = socket;
    return {};
  }

  void unplug(std::function<void()> done) override {
    if (!srv_) return done();
    auto alive = alive_;
    srv_->shutdown([this, alive, done = std::move(done)] {
      if (!*alive) return done();
      // Destroy the server outside its own callback.
      rt_.main().send_blocking([this, alive, done] {
        if (*alive) srv_.reset();
        done();
      });
    });
  }

  bool plugged() const override { return srv_ != nullptr; }
  bool connected() const override { return srv_ && srv_->connected(); }
  bool driver_bound() const override { return srv_ && srv_->running_queues() > 0; }

  void suspend(bool /*events_only*/, std::function<void(Status)> done) override {
    dev_->suspend([done = std::move(done)] { done({}); });
  }

  void resume(std::function<void(Status)> done) override {
    dev_->resume();
    done({});
  }

  void attach_bdev(bdev::Desc* desc, const std::string& vblk_id, bool stay_suspended,
                   std::function<void(Status)> done) override {
    dev_->set_serial(vblk_id);
    cfg_.vblk_id = vblk_id;
    std::string name = desc ? desc->bdev().name() : "none";
    // A controller the user suspended stays suspended throughout: the
    // device never takes a request in between.
    dev_->attach_bdev(name, !stay_suspended, std::move(done));
  }

  void detach_bdev(std::function<void()> done) override { dev_->detach_bdev(std::move(done)); }

  void set_num_queues(uint16_t n, std::function<void(Status)> done) override {
    // The queue count is part of the device: build a new one (no driver is
    // bound, the manager checked) and serve it on the same socket.
    CtrlConfig c = cfg_;
    c.num_queues = n;
    auto nd = blk::BlkDevice::create(options_of(c), dev_->bdev_name(), rt_, dev_->suspended());
    if (!nd) return done(nd.error());
    auto swap = [this, c, nd = std::make_shared<std::unique_ptr<blk::BlkDevice>>(std::move(*nd)),
                 done](bool replug) mutable {
      dev_ = std::move(*nd);
      cfg_ = c;
      if (replug) {
        Status s = plug(socket_);
        if (!s) return done(s);
      }
      done({});
    };
    if (!srv_) return swap(false);
    unplug([swap]() mutable { swap(true); });
  }

  json io_stats() const override { return blk::io_stats_json(dev_->io_stats())["queues"]; }

  void debug_stats(std::function<void(json)> done) override {
    dev_->debug_stats([done = std::move(done)](std::vector<blk::BlkQueueDebugStats> v) {
      done(blk::debug_stats_json(v)["queues"]);
    });
  }

  // State file entries (one per queue): {qid, started, last_avail_idx,
  // last_used_idx, inflight: [heads to resubmit]}; packed rings carry the
  // wrap counter in bit 15 of both indices.
  void save_state(std::function<void(Result<json>)> done) override {
    dev_->save_state([done = std::move(done)](Result<std::vector<blk::BlkQueueState>> v) {
      if (!v) return done(v.error());
      json a = json::array();
      for (auto& q : *v)
        a.push_back({{"qid", q.qid},
                     {"started", q.started},
                     {"last_avail_idx", q.ring.pos.last_avail_idx},
                     {"last_used_idx", q.ring.pos.last_used_idx},
                     {"inflight", q.ring.resubmit}});
      done(a);
    });
  }

  void restore_state(const json& queues, std::function<void(Status)> done) override {
    auto bad = [](const std::string& m) { return make_error(Errc::kInvalidArgument, "state: " + m); };
    if (!queues.is_array()) return done(bad("queues must be an array"));
    auto u16 = [](const json& j, const char* k, uint16_t* out) {
      if (!j.contains(k) || !j[k].is_number_unsigned() || j[k].get<uint64_t>() > 0xffff) return false;
      *out = uint16_t(j[k].get<uint64_t>());
      return true;
    };
    std::vector<blk::BlkQueueState> st;
    for (auto& q : queues) {
      blk::BlkQueueState s;
      if (!q.is_object() || !u16(q, "qid", &s.qid) || !u16(q, "last_avail_idx", &s.ring.pos.last_avail_idx) ||
          !u16(q, "last_used_idx", &s.ring.pos.last_used_idx))
        return done(bad("each queue needs qid, last_avail_idx and last_used_idx (0..65535)"));
      if (q.contains("inflight")) {
        if (!q["inflight"].is_array()) return done(bad("inflight must be an array of descriptor heads"));
        for (auto& h : q["inflight"]) {
          if (!h.is_number_unsigned() || h.get<uint64_t>() > 0xffff)
            return done(bad("inflight must be an array of descriptor heads"));
          s.ring.resubmit.push_back(uint16_t(h.get<uint64_t>()));
        }
      }
      st.push_back(std::move(s));
    }
    dev_->restore_state(std::move(st), [ctrl = ctrl_, done = std::move(done)](Status s) {
      if (s) VDPU_INFO("controller {}: ring state restored", ctrl);
      done(s);
    });
  }

 private:
  rt::Runtime& rt_;
  std::string ctrl_;
  CtrlConfig cfg_;
  std::unique_ptr<blk::BlkDevice> dev_;
  std::unique_ptr<vhost_user::Server> srv_;
  std::string socket_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

BackendFactory vhost_backend_factory() {
  return [](const std::string& ctrl, const CtrlConfig& cfg, const std::string& bdev,
            bool suspended) -> Result<std::unique_ptr<Backend>> {
    rt::Runtime* rt = rt::Runtime::get();
    if (!rt) return make_error(Errc::kState, "no runtime");
    auto dev = blk::BlkDevice::create(options_of(cfg), bdev, *rt, suspended);
    if (!dev) return dev.error();
    return std::unique_ptr<Backend>(new VhostBlkBackend(*rt, ctrl, cfg, std::move(*dev)));
  };
}

}  // namespace vdpu::service::vblk
