// vhost-user inflight I/O tracking, split virtqueues (QEMU
// docs/interop/vhost-user.rst, "Inflight I/O tracking"). The frontend hands us
// (VHOST_USER_SET_INFLIGHT_FD) a shared buffer that survives a backend crash;
// per queue it holds this header followed by one DescStateSplit per
// descriptor. The backend marks a head inflight before processing it and
// clears it after the used ring update; a restarted backend resubmits the
// heads still marked, in the order of their counter.
//
// Threads: the region of one queue is written only by that queue's reactor.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vdpu::virtio {

struct InflightDescSplit {
  uint8_t inflight;    // 1: popped from the avail ring, not yet in the used ring
  uint8_t padding[5];
  uint16_t next;       // links the heads of the last used-ring batch
  uint64_t counter;    // pop order, for resubmission in order
} __attribute__((packed));
static_assert(sizeof(InflightDescSplit) == 16);

struct InflightQueueSplit {
  uint64_t features;         // reserved (0)
  uint16_t version;          // kInflightVersion once initialised
  uint16_t desc_num;         // queue size
  uint16_t last_batch_head;  // first head of the last batch written to the used ring
  uint16_t used_idx;         // used->idx after the last batch completed
  // InflightDescSplit desc[desc_num] follows.
  InflightDescSplit* desc() { return reinterpret_cast<InflightDescSplit*>(this + 1); }
} __attribute__((packed));
static_assert(sizeof(InflightQueueSplit) == 16);

constexpr uint16_t kInflightVersion = 1;
// Per-queue region alignment QEMU and DPDK use.
constexpr size_t kInflightAlign = 64;

// Bytes one queue of `queue_size` descriptors needs in the inflight buffer
// (header + descriptor states, rounded up to kInflightAlign). The vhost-user
// transport sizes GET_INFLIGHT_FD's buffer as num_queues * this and hands
// queue i the slice at i * this.
constexpr size_t inflight_split_queue_bytes(uint16_t queue_size) {
  size_t n = sizeof(InflightQueueSplit) + sizeof(InflightDescSplit) * size_t(queue_size);
  return (n + kInflightAlign - 1) / kInflightAlign * kInflightAlign;
}

}  // namespace vdpu::virtio
