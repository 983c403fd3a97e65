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
    auto alive = alive_;
    // BlkDevice::attach_bdev resumes; a user-suspended controller is
    // suspended again at once (see report: an attach-without-resume API
    // would close that window).
    dev_->attach_bdev(name, [this, alive, stay_suspended, done = std::move(done)](Status s) {
      if (!*alive || !s || !stay_suspended) return done(s);
      dev_->suspend([done] { done({}); });
    });
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

  void save_state(std::function<void(Result<json>)> done) override {
    dev_->debug_stats([done = std::move(done)](std::vector<blk::BlkQueueDebugStats> v) {
      json a = json::array();
      for (auto& q : v)
        a.push_back({{"qid", q.qid},
                     {"state", q.state},
                     {"last_avail_idx", q.sw_available_index},
                     {"last_used_idx", q.sw_used_index}});
      done(a);
    });
  }

  Status restore_state(const json& queues) override {
    if (!queues.is_array() || queues.size() != cfg_.num_queues)
      return make_error(Errc::kInvalidArgument, "state has " + std::to_string(queues.size()) +
                                                    " queues, controller " + std::to_string(cfg_.num_queues));
    for (auto& q : queues)
      if (!q.is_object() || !q.contains("last_avail_idx") || !q["last_avail_idx"].is_number_unsigned())
        return make_error(Errc::kInvalidArgument, "malformed queue entry in state");
    // Over vhost-user the front-end owns the ring bases (SET_VRING_BASE on
    // (re)connect, inflight region for resubmission): nothing to apply here.
    VDPU_INFO("controller {}: state restored (ring bases come from the vhost-user front-end)", ctrl_);
    return {};
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
