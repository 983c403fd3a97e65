// The seam between virtio transports (vhost-user today; virtio-pci over
// vfio-user later) and virtio device models (blk, net). A transport parses
// its protocol, maps guest memory (hostmem) and calls these methods; a device
// never sees a protocol message.
//
// Threads: every method is called on the control-plane (main) reactor. The
// device runs each started queue on a data reactor of its choice (poll-group
// round robin) and reports asynchronous completion through callbacks that it
// invokes on the main reactor.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "base/result.h"
#include "hostmem/hostmem.h"

namespace vdpu::virtio {

// Feature bits (virtio 1.2 §6).
constexpr uint64_t kFIndirectDesc = 1ull << 28;
constexpr uint64_t kFEventIdx = 1ull << 29;
constexpr uint64_t kFVersion1 = 1ull << 32;
constexpr uint64_t kFAccessPlatform = 1ull << 33;
constexpr uint64_t kFRingPacked = 1ull << 34;
constexpr uint64_t kFInOrder = 1ull << 35;
constexpr uint64_t kFNotificationData = 1ull << 38;
constexpr uint64_t kFRingReset = 1ull << 40;

// vhost-user inflight shared memory (per queue), as QEMU lays it out for
// split rings: the backend marks a head inflight before processing and
// clears it after the used-ring update, so a restarted backend can resubmit.
struct InflightRegion {
  void* base = nullptr;  // the queue's area inside the inflight shm
  uint64_t size = 0;
};

// Everything a device needs to run one virtqueue. Addresses are already
// translated into our address space and bounds-checked against the map.
struct QueueConfig {
  uint16_t size = 0;  // power of two for split rings
  bool packed = false;
  void* desc = nullptr;
  void* avail = nullptr;   // packed: driver event suppression area
  void* used = nullptr;    // packed: device event suppression area
  uint16_t last_avail_idx = 0;   // split: next avail index; packed: bit 15 = wrap counter
  uint16_t last_used_idx = 0;    // packed: next used index (bit 15 wrap)
  int kick_fd = -1;  // eventfd the driver signals (may be -1: poll only)
  int call_fd = -1;  // eventfd we signal for an interrupt (-1: none)
  uint64_t features = 0;  // negotiated
  hostmem::MemoryMapPtr mem;
  InflightRegion inflight;  // optional (size 0 = none)
};

// What stop_queue reports back: where the ring stands, so the queue can be
// restarted (GET_VRING_BASE) without loss.
struct QueueState {
  uint16_t last_avail_idx = 0;
  uint16_t last_used_idx = 0;
};

class Device {
 public:
  virtual ~Device() = default;

  virtual uint32_t device_id() const = 0;  // virtio device id: 2 = blk, 1 = net
  virtual uint64_t device_features() const = 0;
  virtual uint16_t num_queues() const = 0;
  virtual uint16_t max_queue_size() const = 0;

  // Config space (device-specific part), little-endian as the spec lays it.
  virtual void read_config(uint32_t offset, std::span<uint8_t> out) const = 0;
  virtual Status write_config(uint32_t offset, std::span<const uint8_t> in) = 0;

  // Features the driver accepted. Refuses features we did not offer.
  virtual Status set_features(uint64_t features) = 0;

  // Starts polling queue `qid`. done(status) runs on the main reactor once
  // the queue is live on its reactor.
  virtual void start_queue(uint16_t qid, const QueueConfig& cfg, std::function<void(Status)> done) = 0;
  // Stops taking new requests from queue `qid`, waits for the ones in flight
  // to complete (their used entries written), then reports the ring state.
  virtual void stop_queue(uint16_t qid, std::function<void(QueueState)> done) = 0;
  // The guest memory map changed (memory hot-add): hand it to running queues.
  virtual void update_memory(hostmem::MemoryMapPtr mem) = 0;
  // Device reset by the driver (status = 0): all queues already stopped.
  virtual void reset() = 0;
};

}  // namespace vdpu::virtio
