#include "virtio/blk/blk_device.h"

#include <endian.h>

#include <algorithm>
#include <cstring>

#include "base/log.h"

namespace vdpu::virtio::blk {
namespace {

// Config-space limits for discard / write zeroes (512-byte sectors; 2 GiB),
// one segment each.
constexpr uint32_t kMaxDiscardSectors = 1u << 22;
constexpr uint32_t kMaxWriteZeroesSectors = 1u << 22;
// Feature bits 24..41 are reserved for the transport and the queue layout
// (virtio 1.2 §6). Those the transport adds itself (vhost-user
// PROTOCOL_FEATURES, LOG_ALL, NOTIFY_ON_EMPTY ...) are its business: only
// device bits we did not offer are refused here.
constexpr uint64_t kTransportBits = ((1ull << 42) - 1) & ~((1ull << 24) - 1);

}  // namespace

// ------------------------------------------------------------------ Group

struct BlkDevice::Group {
  std::unique_ptr<bdev::Channel> channel;
  std::vector<BlkQueue*> queues;
  rt::PollerId poller = 0;
  // (queue or nullptr for "all queues here", callback) waiting for in-flight I/O.
  std::vector<std::pair<BlkQueue*, std::function<void()>>> waiters;

  bool drained(BlkQueue* q) const {
    if (q) return q->inflight() == 0;
    for (BlkQueue* x : queues)
      if (x->inflight()) return false;
    return true;
  }

  rt::Poll poll() {
    bool busy = channel && channel->poll();  // completions of async bdevs
    for (BlkQueue* q : queues) busy |= q->poll() == rt::Poll::kBusy;
    if (!waiters.empty()) {
      auto w = std::move(waiters);
      waiters.clear();
      for (auto& [q, cb] : w) {
        if (drained(q)) cb();
        else waiters.emplace_back(q, std::move(cb));
      }
    }
    return busy ? rt::Poll::kBusy : rt::Poll::kIdle;
  }

  bool prepare_sleep() {
    for (BlkQueue* q : queues)
      if (!q->prepare_sleep()) return false;
    return waiters.empty();
  }
};

void BlkDevice::wait_drained(Group& g, BlkQueue* q, std::function<void()> cb) {
  if (g.drained(q)) cb();
  else g.waiters.emplace_back(q, std::move(cb));
}

// ------------------------------------------------------------------ options / json

Status validate(const BlkOptions& o) {
  auto bad = [](std::string m) { return make_error(Errc::kInvalidArgument, std::move(m)); };
  if (o.num_queues < 1 || o.num_queues > 64) return bad("num_queues must be 1-64");
  if (o.queue_size < 1 || o.queue_size > 256) return bad("queue_size must be 1-256");
  if (o.size_max < 1) return bad("size_max must be at least 1");
  uint32_t seg_hi = o.queue_size > 2 ? o.queue_size - 2u : 1u;
  if (o.seg_max < 1 || o.seg_max > seg_hi) return bad("seg_max must be 1-" + std::to_string(seg_hi));
  if (o.serial.size() > kIdBytes) return bad("vblk_id must be at most 20 characters");
  return {};
}

nlohmann::json io_stats_json(const std::vector<BlkQueueIoStats>& v) {
  nlohmann::json q = nlohmann::json::array();
  uint64_t r = 0, w = 0, f = 0;
  for (auto& s : v) {
    q.push_back({{"queue_id", s.queue_id},
                 {"core_id", s.core_id},
                 {"read_io_count", s.read_io_count},
                 {"write_io_count", s.write_io_count},
                 {"flush_io_count", s.flush_io_count}});
    r += s.read_io_count;
    w += s.write_io_count;
    f += s.flush_io_count;
  }
  return {{"queues", q}, {"read_io_count", r}, {"write_io_count", w}, {"flush_io_count", f}};
}

nlohmann::json debug_stats_json(const std::vector<BlkQueueDebugStats>& v) {
  nlohmann::json q = nlohmann::json::array();
  for (auto& s : v)
    q.push_back({{"qid", s.qid},
                 {"state", s.state},
                 {"hw_available_index", s.hw_available_index},
                 {"sw_available_index", s.sw_available_index},
                 {"hw_used_index", s.hw_used_index},
                 {"sw_used_index", s.sw_used_index},
                 {"hw_received_descs", s.hw_received_descs},
                 {"hw_completed_descs", s.hw_completed_descs}});
  return {{"queues", q}};
}

// ------------------------------------------------------------------ lifecycle

BlkDevice::BlkDevice(const BlkOptions& opts, rt::Runtime& rt) : opts_(opts), rt_(rt) {
  slots_.resize(opts_.num_queues);
  for (size_t i = 0; i < rt_.size(); ++i) groups_.push_back(std::make_unique<Group>());
}

Result<std::unique_ptr<BlkDevice>> BlkDevice::create(const BlkOptions& opts, const std::string& bdev,
                                                      rt::Runtime& rt, bool suspended) {
  VDPU_TRY(validate(opts));
  std::unique_ptr<BlkDevice> d(new BlkDevice(opts, rt));
  if (!bdev.empty() && bdev != "none") VDPU_TRY(d->open_bdev(bdev));
  uint64_t f = kFVersion1 | VIRTIO_BLK_F_SIZE_MAX | VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE |
               VIRTIO_BLK_F_FLUSH | VIRTIO_BLK_F_MQ;
  if (opts.read_only) f |= VIRTIO_BLK_F_RO;
  if (!d->bdev_ || d->bdev_->supports(bdev::IoType::kUnmap)) f |= VIRTIO_BLK_F_DISCARD;
  if (!d->bdev_ || d->bdev_->supports(bdev::IoType::kWriteZeroes)) f |= VIRTIO_BLK_F_WRITE_ZEROES;
  if (opts.topology) f |= VIRTIO_BLK_F_TOPOLOGY;
  if (opts.event_idx) f |= kFEventIdx;
  if (opts.ring_packed) f |= kFRingPacked;
  if (opts.indirect_desc) f |= kFIndirectDesc;
  if (opts.force_in_order) f |= kFInOrder;
  d->features_ = f;
  d->suspended_ = suspended;
  d->fill_config();
  return d;
}

BlkDevice::~BlkDevice() {
  for (auto& s : slots_)
    if (s.q) VDPU_ERR("virtio-blk: device destroyed with queue {} still running", s.q->qid());
  close_bdev();
}

Status BlkDevice::open_bdev(const std::string& name) {
  auto d = bdev::Manager::get().open(name, !opts_.read_only, [this](bdev::Desc&) { on_hot_remove(); });
  if (!d.ok()) return d.error();
  desc_ = *d;
  bdev_ = &desc_->bdev();
  return {};
}

void BlkDevice::close_bdev() {
  if (!desc_) return;
  bdev::Desc* d = desc_;
  desc_ = nullptr;
  bdev_ = nullptr;
  d->close();
}

std::string BlkDevice::bdev_name() const { return bdev_ ? bdev_->name() : std::string(); }

void BlkDevice::set_serial(const std::string& s) { opts_.serial = s.substr(0, kIdBytes); }

Backend BlkDevice::backend_template() const {
  Backend b;
  if (!bdev_) return b;
  b.block_size = bdev_->block_size();
  b.num_blocks = bdev_->num_blocks();
  b.flush = bdev_->supports(bdev::IoType::kFlush);
  b.unmap = bdev_->supports(bdev::IoType::kUnmap);
  b.write_zeroes = bdev_->supports(bdev::IoType::kWriteZeroes);
  return b;
}

BlkQueueParams BlkDevice::queue_params(uint16_t qid) const {
  BlkQueueParams p;
  p.qid = qid;
  p.seg_max = opts_.seg_max;
  p.read_only = opts_.read_only;
  p.force_in_order = opts_.force_in_order;
  std::memcpy(p.serial.data(), opts_.serial.data(), std::min<size_t>(opts_.serial.size(), kIdBytes));
  p.max_discard_sectors = kMaxDiscardSectors;
  p.max_write_zeroes_sectors = kMaxWriteZeroesSectors;
  return p;
}

void BlkDevice::fill_config() {
  VirtioBlkConfig c{};
  uint32_t bs = bdev_ ? bdev_->block_size() : kSectorSize;
  c.capacity = htole64(bdev_ ? bdev_->num_blocks() * bs / kSectorSize : 0);
  c.size_max = htole32(opts_.size_max);
  c.seg_max = htole32(opts_.seg_max);
  c.blk_size = htole32(bs);
  c.topology_min_io_size = htole16(1);
  c.num_queues = htole16(opts_.num_queues);
  c.max_discard_sectors = htole32(kMaxDiscardSectors);
  c.max_discard_seg = htole32(1);
  c.discard_sector_alignment = htole32(std::max<uint32_t>(bs / kSectorSize, 1));
  c.max_write_zeroes_sectors = htole32(kMaxWriteZeroesSectors);
  c.max_write_zeroes_seg = htole32(1);
  c.write_zeroes_may_unmap = bdev_ && bdev_->supports(bdev::IoType::kUnmap);
  config_ = c;
}

// ------------------------------------------------------------------ Device

void BlkDevice::read_config(uint32_t offset, std::span<uint8_t> out) const {
  std::fill(out.begin(), out.end(), 0);
  if (offset >= sizeof(config_)) return;
  size_t n = std::min<size_t>(out.size(), sizeof(config_) - offset);
  std::memcpy(out.data(), reinterpret_cast<const uint8_t*>(&config_) + offset, n);
}

Status BlkDevice::write_config(uint32_t offset, std::span<const uint8_t> in) {
  return make_error(Errc::kUnsupported, "virtio-blk config space is read-only (no CONFIG_WCE)");
}

Status BlkDevice::set_features(uint64_t features) {
  if (features & ~features_ & ~kTransportBits)
    return make_error(Errc::kInvalidArgument, "virtio-blk: driver accepted features we did not offer");
  negotiated_ = features;
  return {};
}

void BlkDevice::to_main(std::function<void()> fn) { rt_.main().send_blocking(std::move(fn)); }

std::vector<uint32_t> BlkDevice::started_reactors() const {
  std::vector<uint32_t> v;
  for (auto& s : slots_)
    if (s.q && std::find(v.begin(), v.end(), s.reactor) == v.end()) v.push_back(s.reactor);
  return v;
}

void BlkDevice::broadcast(const std::vector<uint32_t>& reactors,
                          std::function<void(Group&, std::function<void()>)> work,
                          std::function<void()> all_done) {
  if (reactors.empty()) {
    if (all_done) all_done();
    return;
  }
  auto left = std::make_shared<size_t>(reactors.size());
  auto fin = std::make_shared<std::function<void()>>(std::move(all_done));
  for (uint32_t r : reactors) {
    rt_.reactor(r).send_blocking([this, r, left, fin, work] {
      work(*groups_[r], [this, left, fin] {
        to_main([left, fin] {
          if (--*left == 0 && *fin) (*fin)();
        });
      });
    });
  }
}

void BlkDevice::start_queue(uint16_t qid, const QueueConfig& cfg, std::function<void(Status)> done) {
  if (qid >= slots_.size())
    return done(make_error(Errc::kInvalidArgument, "virtio-blk: no queue " + std::to_string(qid)));
  Slot& s = slots_[qid];
  if (s.q) return done(make_error(Errc::kState, "virtio-blk: queue " + std::to_string(qid) + " already started"));
  if (cfg.size > opts_.queue_size)
    return done(make_error(Errc::kInvalidArgument, "virtio-blk: queue size " + std::to_string(cfg.size) +
                                                       " above the maximum " + std::to_string(opts_.queue_size)));
  if (cfg.features & ~features_ & ~kTransportBits)
    return done(make_error(Errc::kInvalidArgument, "virtio-blk: queue features we did not offer"));
  auto q = std::make_unique<BlkQueue>(queue_params(qid));
  if (Status st = q->start(cfg); !st.ok()) return done(st);
  if (s.restored) {
    // virtio_blk_controller_state_restore: the saved position wins (once)
    // over the one the transport started the queue with.
    RingState rs = std::move(*s.restored);
    s.restored.reset();
    if (Status st = q->vq().restore(rs); !st.ok())
      return done(make_error(st.error().code, "virtio-blk q" + std::to_string(qid) +
                                                  ": restored state not applicable: " + st.error().message));
    VDPU_INFO("virtio-blk q{}: continues from the restored state (avail {}, used {}, {} to resubmit)", qid,
              rs.pos.last_avail_idx, rs.pos.last_used_idx, rs.resubmit.size());
  }
  s.reactor = rt_.pick();
  s.q = std::move(q);
  BlkQueue* qp = s.q.get();
  Backend be = backend_template();
  bdev::Bdev* b = bdev_;
  bool run = !suspended_;
  uint32_t r = s.reactor;
  rt_.reactor(r).send_blocking([this, r, qp, be, b, run, done] {
    Group& g = *groups_[r];
    rt::Reactor* self = rt::this_reactor();
    if (b && !g.channel) g.channel = b->create_channel();
    Backend x = be;
    x.channel = b ? g.channel.get() : nullptr;
    qp->set_backend(x);
    qp->set_running(run);
    g.queues.push_back(qp);
    Status st;
    if (int fd = qp->vq().kick_fd(); fd >= 0) st = self->add_wake_fd(fd);
    if (!st.ok()) VDPU_WARN("virtio-blk q{}: kick fd not watched ({}); polling only", qp->qid(), st.error().message);
    if (!g.poller)
      g.poller = self->add_poller(
          "virtio_blk", [&g] { return g.poll(); }, 0, [&g] { return g.prepare_sleep(); });
    to_main([done] { done({}); });
  });
}

void BlkDevice::stop_queue(uint16_t qid, std::function<void(QueueState)> done) {
  if (qid >= slots_.size() || !slots_[qid].q) return done(QueueState{});
  Slot& s = slots_[qid];
  if (s.stopping) {
    s.stop_waiters.push_back(std::move(done));
    return;
  }
  s.stopping = true;
  s.stop_waiters.push_back(std::move(done));
  BlkQueue* q = s.q.get();
  uint32_t r = s.reactor;
  rt_.reactor(r).send_blocking([this, r, q, qid] {
    Group& g = *groups_[r];
    q->set_running(false);
    wait_drained(g, q, [this, &g, q, qid] {
      rt::Reactor* self = rt::this_reactor();
      g.queues.erase(std::remove(g.queues.begin(), g.queues.end(), q), g.queues.end());
      if (int fd = q->vq().kick_fd(); fd >= 0) self->remove_wake_fd(fd);
      if (g.queues.empty()) {
        self->remove_poller(g.poller);
        g.poller = 0;
        g.channel.reset();
      }
      QueueState st = q->vq().state();
      to_main([this, qid, st] {
        Slot& s = slots_[qid];
        const BlkQueueCounters& c = s.q->counters();
        s.base.read_io_count += c.read.load(std::memory_order_relaxed);
        s.base.write_io_count += c.write.load(std::memory_order_relaxed);
        s.base.flush_io_count += c.flush.load(std::memory_order_relaxed);
        s.base.discard_io_count += c.discard.load(std::memory_order_relaxed);
        s.base.write_zeroes_io_count += c.write_zeroes.load(std::memory_order_relaxed);
        s.base.error_count += c.errors.load(std::memory_order_relaxed);
        s.last_stop = st;
        s.q.reset();
        s.stopping = false;
        auto waiters = std::move(s.stop_waiters);
        s.stop_waiters.clear();
        for (auto& w : waiters) w(st);
      });
    });
  });
}

void BlkDevice::update_memory(hostmem::MemoryMapPtr mem) {
  broadcast(started_reactors(), [mem](Group& g, std::function<void()> reply) {
    for (BlkQueue* q : g.queues) q->vq().set_mem(mem);
    reply();
  }, nullptr);
}

void BlkDevice::reset() { negotiated_ = 0; }

// ------------------------------------------------------------------ control API

void BlkDevice::suspend(std::function<void()> done) {
  suspended_ = true;
  broadcast(started_reactors(), [](Group& g, std::function<void()> reply) {
    for (BlkQueue* q : g.queues) q->set_running(false);
    wait_drained(g, nullptr, std::move(reply));
  }, std::move(done));
}

void BlkDevice::resume() {
  suspended_ = false;
  broadcast(started_reactors(), [](Group& g, std::function<void()> reply) {
    for (BlkQueue* q : g.queues) q->set_running(true);
    reply();
  }, nullptr);
}

void BlkDevice::detach_bdev(std::function<void()> done) {
  suspend([this, done = std::move(done)]() mutable {
    broadcast(started_reactors(), [](Group& g, std::function<void()> reply) {
      // Everything drained: no Io refers to the channel any more.
      for (BlkQueue* q : g.queues) {
        Backend none;
        q->set_backend(none);
      }
      g.channel.reset();
      reply();
    }, [this, done = std::move(done)] {
      close_bdev();
      if (done) done();
    });
  });
}

void BlkDevice::attach_bdev(const std::string& name, bool resume_after, std::function<void(Status)> done) {
  if (desc_) return done(make_error(Errc::kBusy, "virtio-blk: bdev " + bdev_name() + " is attached"));
  if (name.empty() || name == "none") {
    if (resume_after) resume();
    return done({});
  }
  bdev::Bdev* nb = bdev::Manager::get().find(name);
  bool running = !started_reactors().empty();
  if (nb && running && nb->block_size() != le32toh(config_.blk_size))
    return done(make_error(Errc::kBusy, "virtio-blk: block size can change only while the driver is not loaded"));
  if (Status st = open_bdev(name); !st.ok()) return done(st);
  fill_config();
  Backend be = backend_template();
  bdev::Bdev* b = bdev_;
  broadcast(started_reactors(), [b, be](Group& g, std::function<void()> reply) {
    if (!g.queues.empty()) {
      g.channel = b->create_channel();
      Backend x = be;
      x.channel = g.channel.get();
      for (BlkQueue* q : g.queues) q->set_backend(x);
    }
    reply();
  }, [this, resume_after, done = std::move(done)] {
    if (resume_after) resume();
    done({});
  });
}

void BlkDevice::on_hot_remove() {
  if (hot_removing_) return;
  hot_removing_ = true;
  // Deferred: Manager is iterating its handles right now.
  to_main([this] {
    bool was_suspended = suspended_;
    VDPU_WARN("virtio-blk: bdev {} removed; I/O now fails with IOERR", bdev_name());
    detach_bdev([this, was_suspended] {
      hot_removing_ = false;
      if (!was_suspended) resume();
    });
  });
}

void BlkDevice::stop_all(std::function<void()> done) {
  auto left = std::make_shared<size_t>(0);
  for (auto& s : slots_)
    if (s.q) ++*left;
  if (*left == 0) return done();
  auto fin = std::make_shared<std::function<void()>>(std::move(done));
  for (uint16_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].q)
      stop_queue(i, [left, fin](QueueState) {
        if (--*left == 0) (*fin)();
      });
}

std::vector<BlkQueueIoStats> BlkDevice::io_stats() const {
  std::vector<BlkQueueIoStats> v;
  for (uint16_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    BlkQueueIoStats x = s.base;
    x.queue_id = i;
    x.core_id = -1;
    if (s.q) {
      int core = rt_.reactor(s.reactor).core();
      x.core_id = core >= 0 ? core : int(s.reactor);
      const BlkQueueCounters& c = s.q->counters();
      x.read_io_count += c.read.load(std::memory_order_relaxed);
      x.write_io_count += c.write.load(std::memory_order_relaxed);
      x.flush_io_count += c.flush.load(std::memory_order_relaxed);
      x.discard_io_count += c.discard.load(std::memory_order_relaxed);
      x.write_zeroes_io_count += c.write_zeroes.load(std::memory_order_relaxed);
      x.error_count += c.errors.load(std::memory_order_relaxed);
    }
    v.push_back(x);
  }
  return v;
}

void BlkDevice::debug_stats(std::function<void(std::vector<BlkQueueDebugStats>)> done) {
  auto out = std::make_shared<std::vector<BlkQueueDebugStats>>(slots_.size());
  for (uint16_t i = 0; i < slots_.size(); ++i) {
    (*out)[i].qid = i;
    (*out)[i].state = "STOPPED";
  }
  broadcast(started_reactors(), [out](Group& g, std::function<void()> reply) {
    for (BlkQueue* q : g.queues) {
      BlkQueueDebugStats& d = (*out)[q->qid()];
      const Virtqueue& vq = q->vq();
      d.state = vq.broken() ? "ERROR" : q->running() ? "RUNNING" : "SUSPENDED";
      d.hw_available_index = vq.hw_avail_idx();
      d.sw_available_index = vq.sw_avail_idx();
      d.hw_used_index = vq.hw_used_idx();
      d.sw_used_index = vq.sw_used_idx();
      d.hw_received_descs = vq.popped();
      d.hw_completed_descs = vq.completed();
    }
    reply();
  }, [out, done = std::move(done)] { done(std::move(*out)); });
}

void BlkDevice::save_state(std::function<void(Result<std::vector<BlkQueueState>>)> done) {
  if (!suspended_) return done(make_error(Errc::kState, "virtio-blk: save the state of a suspended device"));
  auto out = std::make_shared<std::vector<BlkQueueState>>(slots_.size());
  auto err = std::make_shared<std::string>();
  for (uint16_t i = 0; i < slots_.size(); ++i) {
    BlkQueueState& q = (*out)[i];
    q.qid = i;
    q.started = slots_[i].q != nullptr;
    if (slots_[i].restored) q.ring = *slots_[i].restored;
    else q.ring.pos = slots_[i].last_stop;
  }
  broadcast(started_reactors(), [out, err](Group& g, std::function<void()> reply) {
    for (BlkQueue* q : g.queues) {
      // Suspended and drained: nothing outstanding, the position is exact.
      if (q->outstanding())
        *err = "queue " + std::to_string(q->qid()) + " has requests in flight";
      (*out)[q->qid()].ring = q->vq().ring_state();
    }
    reply();
  }, [out, err, done = std::move(done)] {
    if (!err->empty()) return done(make_error(Errc::kState, "virtio-blk: " + *err));
    done(std::move(*out));
  });
}

void BlkDevice::restore_state(std::vector<BlkQueueState> st, std::function<void(Status)> done) {
  if (!suspended_) return done(make_error(Errc::kState, "virtio-blk: restore the state of a suspended device"));
  if (st.size() != slots_.size())
    return done(make_error(Errc::kInvalidArgument, "virtio-blk: state of " + std::to_string(st.size()) +
                                                       " queues for a device with " +
                                                       std::to_string(slots_.size())));
  std::vector<bool> seen(slots_.size(), false);
  for (auto& q : st) {
    if (q.qid >= slots_.size() || seen[q.qid])
      return done(make_error(Errc::kInvalidArgument, "virtio-blk: bad or repeated queue id " +
                                                         std::to_string(q.qid) + " in the state"));
    seen[q.qid] = true;
  }
  // Running (suspended) queues take it now, on their reactors; the others
  // at their next start, once every running queue accepted its part.
  auto apply = std::make_shared<std::vector<RingState>>(slots_.size());
  for (auto& q : st) (*apply)[q.qid] = q.ring;
  auto err = std::make_shared<std::string>();
  broadcast(started_reactors(), [apply, err](Group& g, std::function<void()> reply) {
    for (BlkQueue* q : g.queues)
      if (Status r = q->vq().restore((*apply)[q->qid()]); !r.ok())
        *err = "q" + std::to_string(q->qid()) + ": " + r.error().message;
    reply();
  }, [this, apply, err, done = std::move(done)] {
    if (!err->empty()) return done(make_error(Errc::kInvalidArgument, "virtio-blk: " + *err));
    for (uint16_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].q) slots_[i].restored.reset();
      else slots_[i].restored = (*apply)[i];
    }
    done({});
  });
}

}  // namespace vdpu::virtio::blk
