// Virtqueue wire structures (virtio 1.2 §2.7 split, §2.8 packed) and
// little-endian accessors for the parts of the rings that the guest shares
// with us. Everything here is data layout; no policy.
//
// Ring memory is written concurrently by the driver: indices and flags are
// read with atomic loads (the ring parts are naturally aligned, see
// Virtqueue::start), descriptors are copied out once (memcpy) and then
// validated, so a guest changing a descriptor under us cannot make us act on
// two different values (no TOCTOU).
#pragma once

#include <endian.h>

#include <cstdint>
#include <cstring>

namespace vdpu::virtio {

// §2.7.5 / §2.8: descriptor flags.
constexpr uint16_t VIRTQ_DESC_F_NEXT = 1;
constexpr uint16_t VIRTQ_DESC_F_WRITE = 2;
constexpr uint16_t VIRTQ_DESC_F_INDIRECT = 4;
// §2.8.1 packed ring wrap-counter flags.
constexpr uint16_t VIRTQ_DESC_F_AVAIL = 1u << 7;
constexpr uint16_t VIRTQ_DESC_F_USED = 1u << 15;
// §2.7.6 / §2.7.8 split ring notification suppression.
constexpr uint16_t VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
constexpr uint16_t VIRTQ_USED_F_NO_NOTIFY = 1;
// §2.8.10 packed event suppression flags.
constexpr uint16_t RING_EVENT_FLAGS_ENABLE = 0x0;
constexpr uint16_t RING_EVENT_FLAGS_DISABLE = 0x1;
constexpr uint16_t RING_EVENT_FLAGS_DESC = 0x2;
// §2.7 / §2.8: "Queue Size ... maximum 32768".
constexpr uint32_t kMaxQueueSize = 32768;
// Packed ring indices carry the wrap counter in bit 15 (vhost-user
// SET/GET_VRING_BASE and event suppression off_wrap use the same encoding).
constexpr uint16_t kPackedWrapBit = 1u << 15;

// §2.7.5 struct virtq_desc (split, also the indirect table entry).
struct VirtqDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
} __attribute__((packed));
static_assert(sizeof(VirtqDesc) == 16);

// §2.7.8 struct virtq_used_elem.
struct VirtqUsedElem {
  uint32_t id;
  uint32_t len;
} __attribute__((packed));
static_assert(sizeof(VirtqUsedElem) == 8);

// §2.8.13 struct pvirtq_desc.
struct PackedDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t id;
  uint16_t flags;
} __attribute__((packed));
static_assert(sizeof(PackedDesc) == 16);

// §2.8.14 struct pvirtq_event_suppress.
struct PackedEventSuppress {
  uint16_t off_wrap;
  uint16_t flags;
} __attribute__((packed));
static_assert(sizeof(PackedEventSuppress) == 4);

// Split ring byte offsets (§2.7.6 avail: flags, idx, ring[N], used_event;
// §2.7.8 used: flags, idx, ring[N], avail_event).
constexpr uint32_t kAvailFlagsOff = 0, kAvailIdxOff = 2, kAvailRingOff = 4;
constexpr uint32_t kUsedFlagsOff = 0, kUsedIdxOff = 2, kUsedRingOff = 4;
constexpr uint64_t split_desc_bytes(uint32_t n) { return 16ull * n; }
constexpr uint64_t split_avail_bytes(uint32_t n) { return 6ull + 2ull * n; }
constexpr uint64_t split_used_bytes(uint32_t n) { return 6ull + 8ull * n; }

// vring_need_event() (§2.7.10): true if `event` lies in (old, new_idx].
inline bool need_event(uint16_t event, uint16_t new_idx, uint16_t old) {
  return uint16_t(new_idx - event - 1) < uint16_t(new_idx - old);
}

// --- shared-memory accessors (guest memory is little-endian, §1.4) ---
inline uint16_t ld16_acquire(const void* p) {
  return le16toh(__atomic_load_n(static_cast<const uint16_t*>(p), __ATOMIC_ACQUIRE));
}
inline uint16_t ld16(const void* p) {
  return le16toh(__atomic_load_n(static_cast<const uint16_t*>(p), __ATOMIC_RELAXED));
}
inline void st16(void* p, uint16_t v) {
  __atomic_store_n(static_cast<uint16_t*>(p), htole16(v), __ATOMIC_RELAXED);
}
inline void st16_release(void* p, uint16_t v) {
  __atomic_store_n(static_cast<uint16_t*>(p), htole16(v), __ATOMIC_RELEASE);
}
inline void st32(void* p, uint32_t v) {
  __atomic_store_n(static_cast<uint32_t*>(p), htole32(v), __ATOMIC_RELAXED);
}
// Copies one descriptor out of guest memory (may be unaligned in an indirect
// table) and converts it to host order.
inline VirtqDesc load_desc(const void* p) {
  VirtqDesc d;
  std::memcpy(&d, p, sizeof(d));
  d.addr = le64toh(d.addr);
  d.len = le32toh(d.len);
  d.flags = le16toh(d.flags);
  d.next = le16toh(d.next);
  return d;
}
inline PackedDesc load_packed_desc(const void* p) {
  PackedDesc d;
  std::memcpy(&d, p, sizeof(d));
  d.addr = le64toh(d.addr);
  d.len = le32toh(d.len);
  d.id = le16toh(d.id);
  d.flags = le16toh(d.flags);
  return d;
}

}  // namespace vdpu::virtio
