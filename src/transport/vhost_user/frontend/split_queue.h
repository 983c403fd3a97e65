// The driver side of a split virtqueue (virtio 1.2 §2.7) laid out in
// GuestMemory: what a guest driver does, without syscalls on the I/O path.
// Descriptors are written by the owner; heads are queued with add_avail()
// and made visible in a batch with publish(), which also says whether the
// device asked to be notified (§2.7.10 / §2.7.7 event suppression).
//
// Threads: one owner thread (the one polling it).
#pragma once

#include <atomic>
#include <cstdint>

#include "base/result.h"
#include "transport/vhost_user/frontend/frontend.h"
#include "virtio/ring.h"

namespace vdpu::vhost_user::fe {

class SplitQueue {
 public:
  SplitQueue() = default;
  // Allocates the descriptor table (16-byte aligned), available ring (2) and
  // used ring (4; we use 64 so the two rings share no cache line) in mem.
  // size: power of two <= 32768. Errors: kInvalidArgument, kNoMemory.
  static Result<SplitQueue> create(GuestMemory& mem, uint16_t size) {
    if (size == 0 || (size & (size - 1)))
      return make_error(Errc::kInvalidArgument, "split queue size must be a power of 2");
    SplitQueue q;
    q.size_ = size;
    q.desc_ = static_cast<virtio::VirtqDesc*>(mem.alloc(virtio::split_desc_bytes(size), 64));
    q.avail_ = static_cast<uint8_t*>(mem.alloc(virtio::split_avail_bytes(size), 64));
    q.used_ = static_cast<uint8_t*>(mem.alloc(virtio::split_used_bytes(size), 64));
    if (!q.desc_ || !q.avail_ || !q.used_) return make_error(Errc::kNoMemory, "guest memory full");
    q.desc_uva_ = mem.uva(q.desc_);
    q.avail_uva_ = mem.uva(q.avail_);
    q.used_uva_ = mem.uva(q.used_);
    return q;
  }

  uint16_t size() const { return size_; }
  uint64_t desc_uva() const { return desc_uva_; }
  uint64_t avail_uva() const { return avail_uva_; }
  uint64_t used_uva() const { return used_uva_; }
  virtio::VirtqDesc& desc(uint16_t i) { return desc_[i]; }

  // Queues a chain head; invisible to the device until publish().
  void add_avail(uint16_t head) {
    uint16_t* ring = reinterpret_cast<uint16_t*>(avail_ + virtio::kAvailRingOff);
    ring[avail_shadow_ & (size_ - 1)] = head;
    ++avail_shadow_;
  }
  // Publishes the queued heads. Returns true when the device must be kicked.
  bool publish(bool event_idx) {
    const uint16_t old = avail_published_;
    if (old == avail_shadow_) return false;
    avail_published_ = avail_shadow_;
    // §2.7.13: ring entries before the index (release).
    virtio::st16_release(avail_ + virtio::kAvailIdxOff, avail_shadow_);
    // The index store must be visible before we read the device's
    // suppression state, else both sides may decide not to act (the device
    // re-checks avail->idx after enabling notifications: §2.7.10).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (event_idx) {
      const uint16_t avail_event = virtio::ld16(used_ + virtio::kUsedRingOff + 8u * size_);
      return virtio::need_event(avail_event, avail_shadow_, old);
    }
    return !(virtio::ld16(used_ + virtio::kUsedFlagsOff) & virtio::VIRTQ_USED_F_NO_NOTIFY);
  }
  // Interrupt suppression: no EVENT_IDX → the avail flag; with it → used_event.
  void set_no_interrupt(bool on) {
    virtio::st16(avail_ + virtio::kAvailFlagsOff, on ? virtio::VIRTQ_AVAIL_F_NO_INTERRUPT : 0);
  }
  void set_used_event(uint16_t v) { virtio::st16(avail_ + virtio::kAvailRingOff + 2u * size_, v); }

  // The device's used index (acquire: entries below it are valid).
  uint16_t used_idx() const { return virtio::ld16_acquire(used_ + virtio::kUsedIdxOff); }
  virtio::VirtqUsedElem used_elem(uint16_t i) const {
    virtio::VirtqUsedElem e;
    __builtin_memcpy(&e, used_ + virtio::kUsedRingOff + 8u * (i & (size_ - 1)), sizeof(e));
    return e;
  }
  uint16_t& last_used() { return last_used_; }
  uint16_t avail_idx() const { return avail_shadow_; }
  // After a back-end restart: continue from base (GET_VRING_BASE value).
  void reset_indices(uint16_t avail, uint16_t used) {
    avail_shadow_ = avail_published_ = avail;
    last_used_ = used;
  }

 private:
  uint16_t size_ = 0;
  virtio::VirtqDesc* desc_ = nullptr;
  uint8_t* avail_ = nullptr;
  uint8_t* used_ = nullptr;
  uint64_t desc_uva_ = 0, avail_uva_ = 0, used_uva_ = 0;
  uint16_t avail_shadow_ = 0;     // next free avail slot (our copy of avail->idx)
  uint16_t avail_published_ = 0;  // last value stored to avail->idx
  uint16_t last_used_ = 0;        // next used entry to consume
};

}  // namespace vdpu::vhost_user::fe
