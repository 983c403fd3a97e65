// vhost-user back-end: vring requests and the start/stop of device queues.
//
// Ring states (vhost-user.rst "Ring states"): a ring is stopped until
// SET_VRING_KICK (the kick fd, or polling when the NOFD bit is set) and
// stopped again by GET_VRING_BASE. With VHOST_USER_F_PROTOCOL_FEATURES
// negotiated it also needs SET_VRING_ENABLE 1; without, it starts enabled.
// The device runs a ring only when it is started, enabled, and its size,
// addresses and the memory table are known ("startable"). A disabled ring is
// stopped in the device (a block device has no side-effect-free processing).
#include <cstring>

#include "base/log.h"
#include "transport/vhost_user/server.h"

namespace vdpu::vhost_user {

Status Server::check_queue_index(uint32_t idx) const {
  if (idx >= vrings_.size())
    return make_error(Errc::kInvalidArgument, fmt::format("queue index {} >= {} queues", idx, vrings_.size()));
  return {};
}

bool Server::startable(const Vring& v) const {
  return !mem_.empty() && v.num != 0 && v.addr_set && v.kick_set && (v.enabled || !protocol_negotiated());
}

// ---------------------------------------------------------------------------
// Building a QueueConfig: translate and bounds-check the three ring areas.

namespace {
// `what` at uva of len bytes, aligned to `align`, inside the map.
Result<void*> ring_area(const hostmem::MemoryMap& map, uint64_t uva, uint64_t len, uint64_t align, const char* what) {
  uint8_t* p = map.translate_uva(uva, len);
  if (!p) return make_error(Errc::kInvalidArgument, fmt::format("{} at 0x{:x}+{} is outside guest memory", what, uva, len));
  if (reinterpret_cast<uintptr_t>(p) & (align - 1))
    return make_error(Errc::kInvalidArgument, fmt::format("{} at 0x{:x} is not {}-byte aligned", what, uva, align));
  return static_cast<void*>(p);
}
}  // namespace

Result<virtio::QueueConfig> Server::build_config(uint16_t q) {
  const Vring& v = vrings_[q];
  virtio::QueueConfig c;
  c.packed = features_ & virtio::kFRingPacked;
  c.size = uint16_t(v.num);
  const hostmem::MemoryMap& map = *map_;
  if (!c.packed) {
    // virtio 1.2 §2.7: a split queue's size is a power of 2.
    if (v.num & (v.num - 1)) return make_error(Errc::kInvalidArgument, "split ring size is not a power of 2");
    // virtio 1.2 §2.7 table "Virtqueue Part Alignment": 16 / 2 / 4.
    auto d = ring_area(map, v.addr.desc_user_addr, split_desc_bytes(v.num), 16, "descriptor table");
    if (!d) return d.error();
    auto a = ring_area(map, v.addr.avail_user_addr, split_avail_bytes(v.num), 2, "available ring");
    if (!a) return a.error();
    auto u = ring_area(map, v.addr.used_user_addr, split_used_bytes(v.num), 4, "used ring");
    if (!u) return u.error();
    c.desc = *d;
    c.avail = *a;
    c.used = *u;
    // GET/SET_VRING_BASE carry only the next avail index for split rings; the
    // used index is in guest memory (equal to it once the ring has drained).
    c.last_avail_idx = uint16_t(v.base);
    c.last_used_idx = uint16_t(v.base);
  } else {
    // virtio 1.2 §2.8.10: descriptor ring 16-byte aligned, event
    // suppression structures 4-byte aligned.
    auto d = ring_area(map, v.addr.desc_user_addr, split_desc_bytes(v.num), 16, "descriptor ring");
    if (!d) return d.error();
    auto a = ring_area(map, v.addr.avail_user_addr, packed_event_bytes(), 4, "driver event area");
    if (!a) return a.error();
    auto u = ring_area(map, v.addr.used_user_addr, packed_event_bytes(), 4, "device event area");
    if (!u) return u.error();
    c.desc = *d;
    c.avail = *a;
    c.used = *u;
    // QEMU's packed encoding: bits 0-14 avail index, 15 avail wrap counter,
    // 16-30 used index, 31 used wrap counter.
    // DPDK's virtio_user sends only the avail half: as DPDK's vhost library
    // does, the used index and wrap counter then start equal to avail's.
    c.last_avail_idx = uint16_t(v.base);
    c.last_used_idx = (v.base >> 16) ? uint16_t(v.base >> 16) : c.last_avail_idx;
    if ((c.last_avail_idx & 0x7fff) >= v.num || (c.last_used_idx & 0x7fff) >= v.num)
      return make_error(Errc::kInvalidArgument, "packed ring base beyond the ring");
  }
  c.kick_fd = v.kick ? v.kick->get() : -1;
  c.call_fd = v.call ? v.call->get() : -1;
  c.features = features_ & ~VHOST_USER_F_PROTOCOL_FEATURES;
  c.mem = map_;
  c.inflight = inflight_.queue(q, v.num);
  return c;
}

// ---------------------------------------------------------------------------
// Start / stop.

void Server::start_ring(uint16_t q, std::function<void(Status)> then) {
  Vring& v = vrings_[q];
  if (v.running || !startable(v)) {
    then({});
    return;
  }
  auto cfg = build_config(q);
  if (!cfg) {
    VDPU_WARN_RL("vhost-user {}: queue {} not started: {}", path_, q, cfg.error().message);
    then(cfg.error());
    return;
  }
  v.active_kick = v.kick;
  v.active_call = v.call;
  v.active_inflight = inflight_.map;
  v.active_mem = map_;
  // Marked running now so that teardown (destructor) stops it even if the
  // start is still on its way; cleared below if the device refuses.
  v.running = true;
  dev_.start_queue(q, *cfg, [this, alive = alive_, q, then = std::move(then)](Status st) {
    if (!*alive) return;
    Vring& v = vrings_[q];
    if (!st) {
      VDPU_WARN_RL("vhost-user {}: device refused queue {}: {}", path_, q, st.error().message);
      v.running = false;
      v.active_kick.reset();
      v.active_call.reset();
      v.active_inflight.reset();
      v.active_mem.reset();
    }
    then(st);
  });
}

void Server::stop_ring(uint16_t q, Done then) {
  Vring& v = vrings_[q];
  if (!v.running) {
    then();
    return;
  }
  const bool packed = features_ & virtio::kFRingPacked;
  dev_.stop_queue(q, [this, alive = alive_, q, packed, then = std::move(then)](virtio::QueueState st) {
    if (!*alive) return;
    Vring& v = vrings_[q];
    v.running = false;
    v.base = packed ? (uint32_t(st.last_avail_idx) | uint32_t(st.last_used_idx) << 16) : st.last_avail_idx;
    // The device no longer touches them.
    v.active_kick.reset();
    v.active_call.reset();
    v.active_inflight.reset();
    v.active_mem.reset();
    then();
  });
}

void Server::stop_all(std::shared_ptr<std::vector<uint16_t>> which, Done then, size_t from) {
  for (size_t q = from; q < vrings_.size(); ++q) {
    if (!vrings_[q].running) continue;
    which->push_back(uint16_t(q));
    stop_ring(uint16_t(q), [this, which, then, q] { stop_all(which, then, q + 1); });
    return;
  }
  then();
}

Server::Res Server::refresh_ring(uint16_t q, uint32_t request, bool need_reply) {
  const Vring& v = vrings_[q];
  if (!v.running && !startable(v)) return Res::kOk;
  run_op([this, q, request, need_reply](Done finished) {
    stop_ring(q, [this, q, request, need_reply, finished] {
      start_ring(q, [this, request, need_reply, finished](Status st) {
        ack(request, need_reply, st.ok());
        finished();
      });
    });
  });
  return Res::kAsync;
}

// ---------------------------------------------------------------------------
// Handlers.

Server::Res Server::on_vring_num(Message& m) {
  const auto s = m.as<VringState>();
  if (auto st = check_queue_index(s.index); !st) {
    VDPU_WARN_RL("vhost-user {}: SET_VRING_NUM: {}", path_, st.error().message);
    return Res::kFail;
  }
  if (s.num == 0 || s.num > kMaxQueueSize || s.num > dev_.max_queue_size()) {
    VDPU_WARN_RL("vhost-user {}: SET_VRING_NUM {} for queue {} (max {})", path_, s.num, s.index,
                 dev_.max_queue_size());
    return Res::kFail;
  }
  Vring& v = vrings_[s.index];
  if (v.running) {
    VDPU_WARN_RL("vhost-user {}: SET_VRING_NUM on running queue {}", path_, s.index);
    return Res::kFail;
  }
  v.num = s.num;
  return Res::kOk;
}

Server::Res Server::on_vring_addr(Message& m) {
  const auto a = m.as<VringAddr>();
  if (auto st = check_queue_index(a.index); !st) {
    VDPU_WARN_RL("vhost-user {}: SET_VRING_ADDR: {}", path_, st.error().message);
    return Res::kFail;
  }
  if (a.flags != 0) {
    // Used-ring logging needs VHOST_F_LOG_ALL, which we never offer.
    VDPU_WARN_RL("vhost-user {}: SET_VRING_ADDR flags 0x{:x} not supported", path_, a.flags);
    return Res::kFail;
  }
  Vring& v = vrings_[a.index];
  v.addr = a;
  v.addr_set = true;
  return refresh_ring(uint16_t(a.index), m.hdr.request, m.need_reply());
}

Server::Res Server::on_vring_base(Message& m) {
  const auto s = m.as<VringState>();
  if (auto st = check_queue_index(s.index); !st) {
    VDPU_WARN_RL("vhost-user {}: SET_VRING_BASE: {}", path_, st.error().message);
    return Res::kFail;
  }
  Vring& v = vrings_[s.index];
  if (v.running) {
    VDPU_WARN_RL("vhost-user {}: SET_VRING_BASE on running queue {}", path_, s.index);
    return Res::kFail;
  }
  const bool packed = features_ & virtio::kFRingPacked;
  if (!packed && s.num > 0xffff) {
    VDPU_WARN_RL("vhost-user {}: SET_VRING_BASE {} out of range for a split ring", path_, s.num);
    return Res::kFail;
  }
  v.base = s.num;
  return Res::kOk;
}

Server::Res Server::on_get_vring_base(Message& m) {
  const auto s = m.as<VringState>();
  if (auto st = check_queue_index(s.index); !st) {
    VDPU_WARN_RL("vhost-user {}: GET_VRING_BASE: {}", path_, st.error().message);
    return Res::kFail;  // explicit reply: the connection is closed
  }
  const uint16_t q = uint16_t(s.index);
  const uint32_t req = m.hdr.request;
  // "stop ring upon receiving VHOST_USER_GET_VRING_BASE": the reply waits
  // until the device has drained the queue and reported where it stands.
  run_op([this, q, req](Done finished) {
    stop_ring(q, [this, q, req, finished] {
      Vring& v = vrings_[q];
      const bool packed = features_ & virtio::kFRingPacked;
      VringState out{q, packed ? v.base : (v.base & 0xffff)};
      // Stopped: it takes a new SET_VRING_KICK to start again.
      v.kick_set = false;
      v.kick.reset();
      reply(req, &out, sizeof(out));
      finished();
    });
  });
  return Res::kAsync;
}

Server::Res Server::on_vring_file(Message& m) {
  const uint64_t u = m.u64();
  const uint32_t req = m.hdr.request;
  if (u & ~(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD_MASK)) {
    VDPU_WARN_RL("vhost-user {}: {} payload 0x{:x} has unknown bits", path_, request_name(req), u);
    return Res::kFail;
  }
  const uint32_t idx = uint32_t(u & VHOST_USER_VRING_IDX_MASK);
  if (auto st = check_queue_index(idx); !st) {
    VDPU_WARN_RL("vhost-user {}: {}: {}", path_, request_name(req), st.error().message);
    return Res::kFail;
  }
  Vring& v = vrings_[idx];
  // check_message(): exactly one fd unless NOFD is set, then none.
  std::shared_ptr<UniqueFd> fd;
  if (!(u & VHOST_USER_VRING_NOFD_MASK)) fd = std::make_shared<UniqueFd>(m.take_fd(0));
  switch (req) {
    case VHOST_USER_SET_VRING_KICK:
      // NOFD: "polling should be used instead of waiting for the kick".
      v.kick = std::move(fd);
      v.kick_set = true;
      return refresh_ring(uint16_t(idx), req, m.need_reply());
    case VHOST_USER_SET_VRING_CALL:
      v.call = std::move(fd);
      // QEMU swaps the call fd of a running ring (vector masking): restart it
      // so the device signals the new one.
      if (v.running) return refresh_ring(uint16_t(idx), req, m.need_reply());
      return Res::kOk;
    default:  // SET_VRING_ERR: kept, the device reports no ring errors
      v.err = std::move(fd);
      return Res::kOk;
  }
}

Server::Res Server::on_vring_enable(Message& m) {
  const auto s = m.as<VringState>();
  if (auto st = check_queue_index(s.index); !st) {
    VDPU_WARN_RL("vhost-user {}: SET_VRING_ENABLE: {}", path_, st.error().message);
    return Res::kFail;
  }
  if (s.num > 1) {
    VDPU_WARN_RL("vhost-user {}: SET_VRING_ENABLE value {}", path_, s.num);
    return Res::kFail;
  }
  Vring& v = vrings_[s.index];
  v.enabled = s.num == 1;
  const uint16_t q = uint16_t(s.index);
  const uint32_t req = m.hdr.request;
  const bool need = m.need_reply();
  if (v.enabled) return v.running ? Res::kOk : refresh_ring(q, req, need);
  if (!v.running) return Res::kOk;
  run_op([this, q, req, need](Done finished) {
    stop_ring(q, [this, req, need, finished] {
      ack(req, need, true);
      finished();
    });
  });
  return Res::kAsync;
}

}  // namespace vdpu::vhost_user
