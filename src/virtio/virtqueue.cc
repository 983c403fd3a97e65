#include "virtio/virtqueue.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "base/log.h"
#include "virtio/ring.h"

namespace vdpu::virtio {
namespace {

// Single-writer counter bump: a relaxed load+store, no locked RMW.
inline void bump(std::atomic<uint64_t>& a) {
  a.store(a.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

bool aligned(const void* p, uintptr_t a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

}  // namespace

Status Virtqueue::start(const QueueConfig& cfg, const VqOptions& opt) {
  packed_ = cfg.packed;
  // §2.7 "Queue Size ... is always a power of 2" (split); both layouts max 32768.
  if (cfg.size == 0 || cfg.size > kMaxQueueSize || (!packed_ && (cfg.size & (cfg.size - 1))))
    return make_error(Errc::kInvalidArgument, "virtqueue: invalid queue size " + std::to_string(cfg.size));
  if (!cfg.desc || !cfg.avail || !cfg.used || !cfg.mem)
    return make_error(Errc::kInvalidArgument, "virtqueue: ring address or memory map missing");
  // §2.7 alignment table (desc 16, avail 2, used 4) and §2.8.10.1 (16, 4, 4):
  // we also rely on it for atomic index accesses.
  if (!aligned(cfg.desc, 16) || !aligned(cfg.avail, packed_ ? 4 : 2) || !aligned(cfg.used, 4))
    return make_error(Errc::kInvalidArgument, "virtqueue: misaligned ring");
  desc_ = static_cast<uint8_t*>(cfg.desc);
  avail_ = static_cast<uint8_t*>(cfg.avail);
  used_ = static_cast<uint8_t*>(cfg.used);
  size_ = cfg.size;
  mask_ = uint16_t(cfg.size - 1);
  event_idx_ = cfg.features & kFEventIdx;
  in_order_ = (cfg.features & kFInOrder) || opt.force_in_order;
  ring_mem_ = cfg.mem;
  mem_ = cfg.mem;
  wp_ = WalkParams{mem_.get(), size_, bool(cfg.features & kFIndirectDesc)};
  kick_fd_ = cfg.kick_fd;
  call_fd_ = cfg.call_fd;
  if (kick_fd_ >= 0) {
    // drain_kick() must never block the reactor. Frontends create eventfds
    // non-blocking already (QEMU event_notifier); make sure.
    int fl = fcntl(kick_fd_, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(kick_fd_, F_SETFL, fl | O_NONBLOCK);
  }
  error_ = ChainError::kOk;
  pending_.assign(in_order_ ? size_ : 0, Pending{});
  next_slot_ = complete_slot_ = 0;
  popped_local_ = pushed_local_ = 0;
  signalled_valid_ = false;
  used_writes_ = signalled_writes_ = 0;
  resubmit_.clear();
  resubmit_pos_ = 0;
  inflight_ = nullptr;
  batch_n_ = 0;

  if (packed_) {
    avail_pos_ = cfg.last_avail_idx & ~kPackedWrapBit;
    avail_wrap_ = cfg.last_avail_idx & kPackedWrapBit;
    used_pos_ = cfg.last_used_idx & ~kPackedWrapBit;
    used_wrap_ = cfg.last_used_idx & kPackedWrapBit;
    if (avail_pos_ >= size_ || used_pos_ >= size_)
      return make_error(Errc::kInvalidArgument, "virtqueue: packed ring position beyond the queue size");
    signalled_used_ = used_pos_;
    if (cfg.inflight.size)
      VDPU_WARN("virtqueue: inflight tracking is implemented for split rings only; ignored");
  } else {
    last_avail_ = shadow_avail_ = cfg.last_avail_idx;
    // The device owns used->idx; resume from what the guest can see.
    used_idx_ = published_used_ = ld16(used_ + kUsedIdxOff);
    signalled_used_ = used_idx_;
    if (cfg.inflight.size) VDPU_TRY(recover_inflight(cfg));
  }
  notify_enabled_ = true;  // force the store
  disable_notifications();
  return {};
}

Status Virtqueue::recover_inflight(const QueueConfig& cfg) {
  if (!cfg.inflight.base || cfg.inflight.size < sizeof(InflightQueueSplit) + sizeof(InflightDescSplit) * size_ ||
      !aligned(cfg.inflight.base, 8))
    return make_error(Errc::kInvalidArgument, "virtqueue: inflight region missing or too small");
  auto* r = static_cast<InflightQueueSplit*>(cfg.inflight.base);
  InflightDescSplit* d = r->desc();
  if (r->version == 0) {
    // A fresh buffer (GET_INFLIGHT_FD zero-fills it): nothing to recover.
    for (uint32_t i = 0; i < size_; ++i) d[i] = InflightDescSplit{};
    r->desc_num = size_;
    r->last_batch_head = 0;
    r->used_idx = used_idx_;
    r->version = kInflightVersion;
  } else {
    if (r->desc_num != size_)
      return make_error(Errc::kInvalidArgument, "virtqueue: inflight region is for queue size " +
                                                    std::to_string(r->desc_num));
    // vhost-user.rst: if used_idx differs from used->idx, the last batch made
    // it into the used ring but its inflight flags were not all cleared:
    // clear the (used->idx - used_idx) heads linked from last_batch_head.
    if (r->used_idx != used_idx_) {
      uint16_t n = uint16_t(used_idx_ - r->used_idx);
      uint16_t h = r->last_batch_head;
      for (uint16_t i = 0; i < n && h < size_; ++i) {
        d[h].inflight = 0;
        h = d[h].next;
      }
      // Release: the cleared flags are in place before used_idx says so
      // (a crash in between repeats this idempotent step).
      std::atomic_thread_fence(std::memory_order_release);
      r->used_idx = used_idx_;
    }
    // Resubmit what is still inflight, oldest first (counter order).
    std::vector<std::pair<uint64_t, uint16_t>> v;
    for (uint32_t i = 0; i < size_; ++i)
      if (d[i].inflight) v.emplace_back(uint64_t(d[i].counter), uint16_t(i));
    std::sort(v.begin(), v.end());
    uint64_t maxc = 0;
    for (auto& [c, h] : v) {
      resubmit_.push_back(h);
      maxc = std::max(maxc, c);
    }
    inflight_counter_ = v.empty() ? 0 : maxc + 1;
    // Every chain ever popped is either in the used ring or still inflight.
    last_avail_ = shadow_avail_ = uint16_t(used_idx_ + resubmit_.size());
    if (!resubmit_.empty())
      VDPU_INFO("virtqueue: resubmitting {} inflight requests (used idx {})", resubmit_.size(), used_idx_);
  }
  inflight_ = r;
  return {};
}

void Virtqueue::set_mem(hostmem::MemoryMapPtr mem) {
  mem_ = std::move(mem);
  wp_.mem = mem_.get();
}

PopStatus Virtqueue::fail(ChainError e, uint16_t id) noexcept {
  error_ = e;
  VDPU_WARN_RL("virtqueue: refusing chain {} ({}); queue stopped until reset", id, chain_error_name(e));
  return PopStatus::kError;
}

PopStatus Virtqueue::pop(Chain& c) noexcept {
  if (error_ != ChainError::kOk) return PopStatus::kError;
  // At most size() chains outstanding: a well-behaved driver cannot have
  // more; a misbehaving one only stalls its own queue.
  if (outstanding() >= size_) return PopStatus::kEmpty;
  PopStatus st = packed_ ? pop_packed(c) : pop_split(c);
  if (st != PopStatus::kOk) return st;
  if (in_order_) {
    c.slot = next_slot_;
    next_slot_ = next_slot_ + 1 == size_ ? 0 : next_slot_ + 1;
  }
  ++popped_local_;
  bump(popped_);
  return PopStatus::kOk;
}

PopStatus Virtqueue::pop_split(Chain& c) noexcept {
  if (resubmit_pos_ < resubmit_.size()) {
    // Recovery: already marked inflight with their original counter.
    uint16_t head = resubmit_[resubmit_pos_++];
    ChainError e = walk_split_chain(wp_, desc_, head, c);
    return e == ChainError::kOk ? PopStatus::kOk : fail(e, head);
  }
  if (last_avail_ == shadow_avail_) {
    // Acquire: the avail ring entries and descriptors the driver wrote before
    // publishing avail->idx (§2.7.13 "memory barrier before updating idx")
    // must be visible to the reads below.
    shadow_avail_ = ld16_acquire(avail_ + kAvailIdxOff);
    uint16_t n = uint16_t(shadow_avail_ - last_avail_);
    if (n == 0) return PopStatus::kEmpty;
    // §2.7.6: the driver can only make size() heads available at a time.
    if (n > size_) {
      shadow_avail_ = last_avail_;
      return fail(ChainError::kAvailIndexJump, shadow_avail_);
    }
    // One prefetch per batch: the next avail ring entries (a 64-byte line
    // holds 32 of them).
    __builtin_prefetch(avail_ + kAvailRingOff + 2u * (last_avail_ & mask_));
  }
  uint16_t head = ld16(avail_ + kAvailRingOff + 2u * (last_avail_ & mask_));
  ChainError e = walk_split_chain(wp_, desc_, head, c);
  if (e != ChainError::kOk) return fail(e, head);
  if (inflight_) {
    // vhost-user.rst: mark before processing. The counter keeps pop order for
    // resubmission; the compiler fence keeps both stores before we act on the
    // request (the region outlives a crash of this process; no CPU fence is
    // needed for that, only program order).
    InflightDescSplit& s = inflight_->desc()[head];
    s.counter = inflight_counter_++;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    s.inflight = 1;
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  ++last_avail_;
  return PopStatus::kOk;
}

bool Virtqueue::packed_avail_at(uint16_t pos, bool wrap) const noexcept {
  // Acquire: the descriptor body (and the rest of its list) is written
  // before the driver flips the first descriptor's flags (§2.8.21.1 "memory
  // barrier before the flags update"); read them only after this load.
  uint16_t f = ld16_acquire(desc_ + pos * sizeof(PackedDesc) + offsetof(PackedDesc, flags));
  // §2.8.1: available when AVAIL matches the driver's wrap counter and USED
  // does not.
  return bool(f & VIRTQ_DESC_F_AVAIL) == wrap && bool(f & VIRTQ_DESC_F_USED) != wrap;
}

PopStatus Virtqueue::pop_packed(Chain& c) noexcept {
  if (!packed_avail_at(avail_pos_, avail_wrap_)) return PopStatus::kEmpty;
  ChainError e = walk_packed_chain(wp_, desc_, avail_pos_, c);
  if (e != ChainError::kOk) return fail(e, avail_pos_);
  uint32_t p = uint32_t(avail_pos_) + c.ndesc;
  if (p >= size_) {
    p -= size_;
    avail_wrap_ = !avail_wrap_;
  }
  avail_pos_ = uint16_t(p);
  return PopStatus::kOk;
}

void Virtqueue::write_used(uint16_t id, uint16_t ndesc, uint32_t len) noexcept {
  ++used_writes_;
  if (!packed_) {
    uint8_t* e = used_ + kUsedRingOff + sizeof(VirtqUsedElem) * (used_idx_ & mask_);
    st32(e, id);
    st32(e + 4, len);
    if (inflight_) {
      // Link this head into the batch list recovery walks (vhost-user.rst).
      inflight_->desc()[id].next = batch_head_;
      batch_head_ = id;
      ++batch_n_;
    }
    ++used_idx_;
    return;
  }
  uint8_t* d = desc_ + used_pos_ * sizeof(PackedDesc);
  st32(d + offsetof(PackedDesc, len), len);
  st16(d + offsetof(PackedDesc, id), id);
  // §2.8.3: in a used descriptor WRITE says whether data was written.
  uint16_t f = (used_wrap_ ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0) | (len ? VIRTQ_DESC_F_WRITE : 0);
  // Release: id/len (and the data/status written into the buffers) must be
  // visible before the driver observes the USED flag flip.
  st16_release(d + offsetof(PackedDesc, flags), f);
  uint32_t p = uint32_t(used_pos_) + ndesc;  // §2.8.6: skip the list's slots
  if (p >= size_) {
    p -= size_;
    used_wrap_ = !used_wrap_;
  }
  used_pos_ = uint16_t(p);
}

void Virtqueue::push(const Chain& c, uint32_t len) noexcept {
  ++pushed_local_;
  bump(completed_);
  if (!in_order_) {
    write_used(c.id, c.ndesc, len);
    return;
  }
  // §2.7.9 / §2.8.8 in-order: used entries in the order chains were made
  // available. Hold this one until all earlier ones are done.
  Pending& p = pending_[c.slot];
  p = Pending{c.id, c.ndesc, len, true};
  while (pending_[complete_slot_].done) {
    Pending& q = pending_[complete_slot_];
    q.done = false;
    write_used(q.id, q.ndesc, q.len);
    complete_slot_ = complete_slot_ + 1 == size_ ? 0 : complete_slot_ + 1;
  }
}

void Virtqueue::flush() noexcept {
  if (packed_ || used_idx_ == published_used_) return;
  if (inflight_) inflight_->last_batch_head = batch_head_;
  // Release: the used elements, and the bytes we wrote into the driver's
  // buffers (e.g. the virtio-blk status), must be visible before the new
  // used->idx (§2.7.8 "memory barrier before updating idx").
  st16_release(used_ + kUsedIdxOff, used_idx_);
  published_used_ = used_idx_;
  if (inflight_) {
    // Clear the batch only after used->idx is stored (compiler ordering is
    // what matters for crash consistency): a crash in between leaves
    // used_idx != used->idx, which recovery repairs.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    InflightDescSplit* d = inflight_->desc();
    uint16_t h = batch_head_;
    for (uint32_t i = 0; i < batch_n_; ++i) {
      d[h].inflight = 0;
      h = d[h].next;
    }
    std::atomic_signal_fence(std::memory_order_seq_cst);
    inflight_->used_idx = used_idx_;
    batch_n_ = 0;
  }
}

bool Virtqueue::need_notify() noexcept {
  if (used_writes_ == signalled_writes_ || (!packed_ && published_used_ == signalled_used_ && signalled_valid_))
    return false;
  // Full fence (store->load): our used->idx / used descriptor stores must be
  // visible before we read the driver's suppression state. The driver does
  // the mirror image (write used_event or flags, mb, read used->idx); without
  // it both could miss each other and the interrupt would be lost.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  bool valid = signalled_valid_;
  signalled_valid_ = true;
  signalled_writes_ = used_writes_;
  if (!packed_) {
    uint16_t old = signalled_used_;
    uint16_t now = published_used_;
    signalled_used_ = now;
    if (!event_idx_) return !(ld16(avail_ + kAvailFlagsOff) & VIRTQ_AVAIL_F_NO_INTERRUPT);  // §2.7.7
    uint16_t used_event = ld16(avail_ + kAvailRingOff + 2u * size_);  // §2.7.10
    return !valid || need_event(used_event, now, old);
  }
  // §2.8.10 driver event suppression (read-only for the device).
  uint16_t old = signalled_used_;
  uint16_t now = used_pos_;
  signalled_used_ = now;
  uint16_t flags = ld16(avail_ + offsetof(PackedEventSuppress, flags)) & 0x3;
  if (flags == RING_EVENT_FLAGS_DISABLE) return false;
  if (flags != RING_EVENT_FLAGS_DESC || !event_idx_) return true;
  if (!valid) return true;
  // Acquire: read off_wrap after flags, as the driver writes it before.
  std::atomic_thread_fence(std::memory_order_acquire);
  uint16_t off_wrap = ld16(avail_ + offsetof(PackedEventSuppress, off_wrap));
  uint16_t off = off_wrap & ~kPackedWrapBit;
  // Unwrap both positions onto one 16-bit line (as vhost does): positions of
  // the previous lap are shifted down by the ring size.
  if (now <= old) old = uint16_t(old - size_);
  if (bool(off_wrap & kPackedWrapBit) != used_wrap_) off = uint16_t(off - size_);
  return need_event(off, now, old);
}

void Virtqueue::notify() noexcept {
  if (call_fd_ < 0) return;
  uint64_t one = 1;
  // EAGAIN (counter saturated) still leaves the eventfd readable: fine.
  [[maybe_unused]] ssize_t r = write(call_fd_, &one, sizeof(one));
}

void Virtqueue::disable_notifications() noexcept {
  if (!notify_enabled_) return;
  notify_enabled_ = false;
  if (packed_) {
    st16(used_ + offsetof(PackedEventSuppress, flags), RING_EVENT_FLAGS_DISABLE);  // §2.8.10
  } else if (!event_idx_) {
    st16(used_ + kUsedFlagsOff, VIRTQ_USED_F_NO_NOTIFY);  // §2.7.10
  }
  // With EVENT_IDX, leaving avail_event behind is the suppression: the
  // driver kicks again only when its index crosses it (once per 64K wrap).
}

bool Virtqueue::enable_notifications() noexcept {
  notify_enabled_ = true;
  if (packed_) {
    st16(used_ + offsetof(PackedEventSuppress, flags), RING_EVENT_FLAGS_ENABLE);
  } else if (event_idx_) {
    st16(used_ + kUsedRingOff + sizeof(VirtqUsedElem) * size_, last_avail_);  // avail_event
  } else {
    st16(used_ + kUsedFlagsOff, 0);
  }
  // Full fence (store->load): the armed flag must be visible before we
  // re-check the ring. The driver publishes avail, fences, then reads our
  // flag; one of us is bound to see the other, so no kick is lost.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (error_ != ChainError::kOk) return false;
  if (packed_) return packed_avail_at(avail_pos_, avail_wrap_);
  return resubmit_pending() || ld16(avail_ + kAvailIdxOff) != last_avail_;
}

void Virtqueue::drain_kick() noexcept {
  if (kick_fd_ < 0) return;
  uint64_t v;
  [[maybe_unused]] ssize_t r = read(kick_fd_, &v, sizeof(v));
}

RingState Virtqueue::ring_state() const {
  RingState r;
  r.pos = state();
  r.resubmit.assign(resubmit_.begin() + long(resubmit_pos_), resubmit_.end());
  return r;
}

Status Virtqueue::restore(const RingState& s) {
  auto bad = [](std::string m) { return make_error(Errc::kInvalidArgument, "virtqueue: " + m); };
  if (outstanding() != 0)
    return make_error(Errc::kState, "virtqueue: requests in flight; suspend the queue first");
  if (size_ == 0) return make_error(Errc::kState, "virtqueue: not started");
  if (s.resubmit.size() > size_) return bad("more heads to resubmit than the queue size");
  std::vector<bool> seen(size_, false);
  for (uint16_t h : s.resubmit) {
    if (h >= size_) return bad("head " + std::to_string(h) + " beyond the queue size");
    if (seen[h]) return bad("head " + std::to_string(h) + " listed twice");
    seen[h] = true;
  }
  if (packed_) {
    uint16_t a = s.pos.last_avail_idx & ~kPackedWrapBit, u = s.pos.last_used_idx & ~kPackedWrapBit;
    if (a >= size_ || u >= size_) return bad("packed ring position beyond the queue size");
    if (!s.resubmit.empty()) return bad("no inflight resubmission on packed rings");
    avail_pos_ = a;
    avail_wrap_ = s.pos.last_avail_idx & kPackedWrapBit;
    used_pos_ = u;
    used_wrap_ = s.pos.last_used_idx & kPackedWrapBit;
    signalled_used_ = used_pos_;
  } else {
    // Every chain popped is either in the used ring or to be resubmitted.
    if (uint16_t(s.pos.last_avail_idx - s.pos.last_used_idx) != s.resubmit.size())
      return bad("avail index " + std::to_string(s.pos.last_avail_idx) + " - used index " +
                 std::to_string(s.pos.last_used_idx) + " != " + std::to_string(s.resubmit.size()) +
                 " heads to resubmit");
    uint16_t ring_used = ld16(used_ + kUsedIdxOff);
    if (ring_used != s.pos.last_used_idx)
      return bad("used index " + std::to_string(s.pos.last_used_idx) + " of the state, " +
                 std::to_string(ring_used) + " in the ring");
    last_avail_ = shadow_avail_ = s.pos.last_avail_idx;
    used_idx_ = published_used_ = ring_used;
    signalled_used_ = used_idx_;
    if (inflight_) {
      // vhost-user.rst: what is to be resubmitted is inflight; keep the
      // shared region telling the truth should we crash now.
      InflightDescSplit* d = inflight_->desc();
      for (uint32_t i = 0; i < size_; ++i) d[i].inflight = 0;
      for (uint16_t h : s.resubmit) {
        d[h].counter = inflight_counter_++;
        d[h].inflight = 1;
      }
      inflight_->used_idx = used_idx_;
      batch_n_ = 0;
    }
  }
  resubmit_ = s.resubmit;
  resubmit_pos_ = 0;
  next_slot_ = complete_slot_ = 0;
  signalled_valid_ = false;
  return {};
}

QueueState Virtqueue::state() const {
  if (!packed_) return QueueState{last_avail_, used_idx_};
  return QueueState{uint16_t(avail_pos_ | (avail_wrap_ ? kPackedWrapBit : 0)),
                    uint16_t(used_pos_ | (used_wrap_ ? kPackedWrapBit : 0))};
}

uint16_t Virtqueue::hw_avail_idx() const {
  return packed_ || !avail_ ? sw_avail_idx() : ld16(avail_ + kAvailIdxOff);
}
uint16_t Virtqueue::hw_used_idx() const {
  return packed_ || !used_ ? sw_used_idx() : ld16(used_ + kUsedIdxOff);
}
uint16_t Virtqueue::sw_avail_idx() const { return state().last_avail_idx; }
uint16_t Virtqueue::sw_used_idx() const { return state().last_used_idx; }

}  // namespace vdpu::virtio
