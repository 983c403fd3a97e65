// A virtqueue as the DEVICE sees it: pop available chains, push used
// entries, decide whether to interrupt the driver, arm/disarm driver
// notifications. Split (§2.7) and packed (§2.8) layouts, indirect descriptors,
// VIRTIO_F_EVENT_IDX, VIRTIO_F_IN_ORDER (or forced in-order completion) and
// vhost-user inflight tracking (split rings).
//
// Threads: start() runs on the control plane before the queue is handed to
// its reactor; everything else runs on that reactor only, except popped() and
// completed(), which any thread may read (relaxed atomics).
//
// Batching: push() writes used elements; flush() publishes them (one release
// store of used->idx per batch for split rings); need_notify() then says
// whether one interrupt covers the batch. A guest that corrupts the ring
// (malformed chain, avail index jump) makes the queue broken: pop() returns
// kError from then on and the device stops taking requests from it (as
// QEMU's virtio_error); in-flight requests can still be pushed.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "base/result.h"
#include "virtio/chain.h"
#include "virtio/device.h"
#include "virtio/inflight.h"

namespace vdpu::virtio {

struct VqOptions {
  // Complete in pop order even when VIRTIO_F_IN_ORDER was not negotiated
  // (SNAP force_in_order: crash recovery without inflight tracking).
  bool force_in_order = false;
};

enum class PopStatus : uint8_t { kEmpty, kOk, kError };

// Where a quiescent queue stands, for saving a suspended controller and
// restoring it later (SNAP virtio_blk_controller_state_save/restore): the
// ring positions (as QueueState reports them) and the heads that were popped
// but not completed and must be processed again (split rings: the inflight
// heads a recovery has not resubmitted yet), in order.
struct RingState {
  QueueState pos;
  std::vector<uint16_t> resubmit;
};

class Virtqueue {
 public:
  Virtqueue() = default;
  Virtqueue(const Virtqueue&) = delete;
  Virtqueue& operator=(const Virtqueue&) = delete;

  // Control plane. Validates the configuration (size, alignment, pointers),
  // allocates the in-order/inflight state, and when cfg.inflight holds a
  // previous run's state (split rings) recovers it: the heads still marked
  // inflight are returned first by pop(), in their original order.
  // Errors: kInvalidArgument (bad size, misaligned or missing ring, inflight
  // region too small or for another queue size).
  Status start(const QueueConfig& cfg, const VqOptions& opt = {});

  // --- data path (owning reactor) ---

  // Pops the next available chain into c (c.iov/c.max_iov provided by the
  // caller). The caller must not hold more than size() chains at once
  // (pop() reports kEmpty then). kError: the chain was refused, the queue is
  // now broken (error() says why).
  PopStatus pop(Chain& c) noexcept;
  // Returns chain c with `len` bytes written into its writable part. In
  // in-order mode the used entry is held back until every earlier chain has
  // been pushed.
  void push(const Chain& c, uint32_t len) noexcept;
  // Publishes the used entries pushed since the last flush.
  void flush() noexcept;
  // After flush(): does the driver want a used-buffer notification for what
  // was published since the last one? (EVENT_IDX used_event,
  // VIRTQ_AVAIL_F_NO_INTERRUPT, packed driver event suppression.)
  bool need_notify() noexcept;
  // Signals call_fd (one eventfd write). No-op without a call fd.
  void notify() noexcept;
  // flush() + need_notify() + notify(). Returns true if it signalled.
  bool flush_and_notify() noexcept {
    flush();
    if (!need_notify()) return false;
    notify();
    return true;
  }

  // Driver->device notifications (kicks). Polling: disabled. Before the
  // reactor sleeps: enable_notifications() arms them and returns true when
  // work arrived meanwhile (the caller must not sleep then; notifications
  // stay armed, disable them again when polling resumes).
  void disable_notifications() noexcept;
  bool enable_notifications() noexcept;
  bool notifications_enabled() const { return notify_enabled_; }
  // Empties the kick eventfd (one read syscall; call only after a wake-up).
  void drain_kick() noexcept;

  // New guest memory map for descriptor translation (memory hot-add). The map
  // the rings were translated with stays referenced while the queue lives.
  void set_mem(hostmem::MemoryMapPtr mem);

  // Ring position to report on stop (GET_VRING_BASE). Split: last avail
  // index (chains popped, including resubmitted ones) and used index; packed:
  // positions with the wrap counter in bit 15.
  QueueState state() const;

  uint16_t size() const { return size_; }
  bool packed() const { return packed_; }
  bool in_order() const { return in_order_; }
  bool event_idx() const { return event_idx_; }
  bool broken() const { return error_ != ChainError::kOk; }
  ChainError error() const { return error_; }
  int kick_fd() const { return kick_fd_; }
  int call_fd() const { return call_fd_; }
  // Chains popped and not yet pushed.
  uint32_t outstanding() const { return uint32_t(popped_local_ - pushed_local_); }
  // Inflight heads still waiting to be resubmitted (recovery).
  size_t resubmit_pending() const { return resubmit_.size() - resubmit_pos_; }

  // --- save / restore (owning reactor, or the control plane before the
  // queue is handed to its reactor; only while outstanding() == 0) ---
  RingState ring_state() const;
  // Continues from `s` instead of the position the queue was started with:
  // the next pop() takes s.resubmit first, then the avail entry at
  // s.pos.last_avail_idx. Split rings: used->idx lives in guest memory and
  // must equal s.pos.last_used_idx (a state saved before the ring moved on
  // would make the device redo or skip requests); inflight tracking, when on,
  // marks the resubmit heads again. Errors: kState (chains outstanding),
  // kInvalidArgument (positions beyond the queue size, avail/used/resubmit
  // counts that do not add up, heads out of range or repeated, resubmit
  // heads on a packed ring, used index not matching the ring).
  Status restore(const RingState& s);

  // --- stats ---
  // Any thread.
  uint64_t popped() const { return popped_.load(std::memory_order_relaxed); }
  uint64_t completed() const { return completed_.load(std::memory_order_relaxed); }
  // Owning reactor.
  // "hw": what the guest-visible ring holds (split avail->idx / used->idx;
  // packed: our positions, nothing in memory holds an index). "sw": ours.
  uint16_t hw_avail_idx() const;
  uint16_t hw_used_idx() const;
  uint16_t sw_avail_idx() const;
  uint16_t sw_used_idx() const;

 private:
  struct Pending {  // in-order completion slot
    uint16_t id;
    uint16_t ndesc;
    uint32_t len;
    bool done;
  };
  PopStatus pop_split(Chain& c) noexcept;
  PopStatus pop_packed(Chain& c) noexcept;
  void write_used(uint16_t id, uint16_t ndesc, uint32_t len) noexcept;
  bool packed_avail_at(uint16_t pos, bool wrap) const noexcept;
  PopStatus fail(ChainError e, uint16_t id) noexcept;
  Status recover_inflight(const QueueConfig& cfg);

  // Hot fields first.
  uint8_t* desc_ = nullptr;
  uint8_t* avail_ = nullptr;  // packed: driver event suppression
  uint8_t* used_ = nullptr;   // packed: device event suppression
  uint16_t size_ = 0;
  uint16_t mask_ = 0;
  bool packed_ = false;
  bool in_order_ = false;
  bool event_idx_ = false;
  bool notify_enabled_ = false;
  ChainError error_ = ChainError::kOk;
  WalkParams wp_;
  // split
  uint16_t last_avail_ = 0;     // next avail ring entry to pop
  uint16_t shadow_avail_ = 0;   // last avail->idx read
  uint16_t used_idx_ = 0;       // next used ring entry to write
  uint16_t published_used_ = 0; // used->idx as last stored
  // packed
  uint16_t avail_pos_ = 0;
  uint16_t used_pos_ = 0;
  bool avail_wrap_ = true;
  bool used_wrap_ = true;
  // notification state
  bool signalled_valid_ = false;
  uint16_t signalled_used_ = 0;  // split: used idx; packed: used position at last signal
  uint64_t used_writes_ = 0, signalled_writes_ = 0;
  // in-order
  uint16_t next_slot_ = 0;
  uint16_t complete_slot_ = 0;
  std::vector<Pending> pending_;
  // inflight tracking (split)
  InflightQueueSplit* inflight_ = nullptr;
  uint64_t inflight_counter_ = 0;
  uint16_t batch_head_ = 0;
  uint32_t batch_n_ = 0;
  std::vector<uint16_t> resubmit_;
  size_t resubmit_pos_ = 0;
  // bookkeeping
  uint64_t popped_local_ = 0, pushed_local_ = 0;
  std::atomic<uint64_t> popped_{0}, completed_{0};
  int kick_fd_ = -1;
  int call_fd_ = -1;
  hostmem::MemoryMapPtr ring_mem_;  // keeps the ring mappings alive
  hostmem::MemoryMapPtr mem_;       // translates descriptors
};

}  // namespace vdpu::virtio
