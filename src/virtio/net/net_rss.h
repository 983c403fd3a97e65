// Receive-side scaling and hash reporting (virtio 1.2/1.3 §5.1.6.4.3,
// §5.1.6.5.7, §5.1.6.5.8): the Toeplitz hash of Microsoft RSS over the
// fields the driver selected, the receive queue its indirection table
// names, and the lock-free rings that carry a frame from the reactor that
// received it to the reactor of the queue RSS picked.
//
// Threads: RssConfig is plain data; each RX queue keeps its own copy (set on
// its reactor by NetDevice). RssFabric: see the class comment.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "virtio/net/net_spec.h"

namespace vdpu::virtio::net {

// Toeplitz hash of data[0..len) with key[0..key_len) (Microsoft RSS
// "hashing calculation"): for every set input bit i (MSB first), XOR the 32
// key bits starting at bit i. Key bits past key_len count as 0.
uint32_t toeplitz(const uint8_t* key, uint32_t key_len, const uint8_t* data, uint32_t len) noexcept;

// What the driver configured (RSS_CONFIG or HASH_CONFIG) and what the device
// does with it.
struct RssConfig {
  bool steer = false;         // RSS_CONFIG in force: pick the RX queue by hash
  bool report = false;        // VIRTIO_NET_F_HASH_REPORT negotiated: fill hash fields
  uint32_t hash_types = 0;    // VIRTIO_NET_HASH_TYPE_* selected
  uint16_t mask = 0;          // indirection_table_mask (table length - 1)
  uint16_t unclassified = 0;  // receive queue index (queue pair) for unhashed frames
  uint8_t key_len = 0;
  uint8_t key[kRssMaxKeySize] = {};
  uint16_t table[kRssMaxIndirLen] = {};  // receive queue indices
};

struct FrameHash {
  uint32_t value = 0;
  uint16_t report = VIRTIO_NET_HASH_REPORT_NONE;
};

// Bytes of a frame hash_frame() looks at (Ethernet, two VLAN tags, IPv6 with
// a few extension headers, the ports).
constexpr uint32_t kHashPeekLen = 192;

// §5.1.6.4.3.1: the hash of an Ethernet frame for the selected types:
// TCP over UDP over plain IP, IPv4 and IPv6 (extension headers hop-by-hop,
// routing, destination options and fragment are skipped to find the L4
// header; a fragment other than the first, or a first fragment, has no
// ports and hashes as plain IP). Frames with no applicable type: report
// NONE, value 0.
FrameHash hash_frame(const RssConfig& c, const uint8_t* frame, uint32_t len) noexcept;

// §5.1.6.4.3: the receive queue for a frame.
inline uint16_t rss_queue(const RssConfig& c, const FrameHash& h) noexcept {
  return h.report == VIRTIO_NET_HASH_REPORT_NONE ? c.unclassified : c.table[h.value & c.mask];
}

// One single-producer/single-consumer byte ring of variable-size records
// [RecHdr][virtio header + frame], 16-byte aligned, preallocated.
class HandoffRing {
 public:
  struct RecHdr {
    uint32_t len;  // payload bytes; kWrap: skip to the start of the buffer
    uint32_t hash_value;
    uint16_t hash_report;
    uint16_t pad[3];
  };
  static constexpr uint32_t kWrap = 0xffffffffu;

  explicit HandoffRing(uint32_t bytes);  // rounded up to a power of two
  // Producer: copies len bytes of the iovecs as one record. False when full.
  bool push(const iovec* iov, uint32_t iovcnt, uint32_t len, const FrameHash& h) noexcept;
  // Consumer: the oldest record, or nullptr; pop() releases it.
  const RecHdr* front() noexcept;
  void pop() noexcept;
  static const uint8_t* payload(const RecHdr* r) { return reinterpret_cast<const uint8_t*>(r + 1); }
  bool empty() const noexcept {
    return head_.load(std::memory_order_relaxed) == tail_.load(std::memory_order_acquire);
  }
  uint32_t capacity() const { return cap_; }

 private:
  static uint32_t need(uint32_t len) { return uint32_t(sizeof(RecHdr)) + ((len + 15u) & ~15u); }
  const uint32_t cap_, mask_;
  std::unique_ptr<uint8_t[]> mem_;
  alignas(64) std::atomic<uint32_t> head_{0};  // consumer position (bytes)
  alignas(64) std::atomic<uint32_t> tail_{0};  // producer position (bytes)
  uint32_t head_cache_ = 0;                    // producer's view of head (its own cache line)
};

// The rings of one device: ring(r, q) carries frames received on reactor r
// (by any RX queue there) to receive queue q. Producer: reactor r; consumer:
// the reactor of RX queue q. Plus, per receive queue, a wake eventfd for a
// consumer that went to sleep: the consumer arms it before sleeping
// (arm_sleep), producers signal it after a burst (wake) -- one syscall per
// burst, only when the consumer sleeps. Created on the control plane, freed
// with the device after every queue stopped.
class RssFabric {
 public:
  RssFabric(uint32_t reactors, uint16_t pairs, uint32_t ring_bytes);
  ~RssFabric();
  RssFabric(const RssFabric&) = delete;
  RssFabric& operator=(const RssFabric&) = delete;

  HandoffRing& ring(uint32_t r, uint16_t q) { return *rings_[size_t(r) * pairs_ + q]; }
  uint32_t reactors() const { return reactors_; }
  uint16_t pairs() const { return pairs_; }
  int wake_fd(uint16_t q) const { return dst_[q].fd; }
  // Consumer q: anything waiting in any of its rings?
  bool pending(uint16_t q) noexcept;
  // Consumer q, before sleeping: arms the wake-up; false if frames are
  // already waiting (do not sleep).
  bool arm_sleep(uint16_t q) noexcept;
  // Consumer q, when polled: disarms and drains its eventfd if signalled.
  void disarm(uint16_t q) noexcept;
  // Producer, after pushing to q: wakes q's reactor if it sleeps.
  void wake(uint16_t q) noexcept;

 private:
  struct alignas(64) Dst {
    int fd = -1;
    std::atomic<bool> armed{false};
    std::atomic<bool> signalled{false};
  };
  const uint32_t reactors_;
  const uint16_t pairs_;
  std::vector<std::unique_ptr<HandoffRing>> rings_;
  std::unique_ptr<Dst[]> dst_;
};

}  // namespace vdpu::virtio::net
