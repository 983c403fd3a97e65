// vhost-user wire format (QEMU docs/interop/vhost-user.rst, "Message
// Specification"). All numbers are in the machine's native byte order (the
// spec says so: both ends share one host), so the structures are read as they
// are, never byte-swapped. The structures are naturally aligned, so plain
// structs give the wire layout (checked by static_assert), as in QEMU.
//
// Shared by the back-end (server.h) and the front-end library (frontend/).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vdpu::vhost_user {

// --- Header (vhost-user.rst "Header") --------------------------------------
struct Header {
  uint32_t request;
  uint32_t flags;
  uint32_t size;  // payload bytes that follow
};
static_assert(sizeof(Header) == 12);

constexpr uint32_t VHOST_USER_VERSION = 0x1;
constexpr uint32_t VHOST_USER_VERSION_MASK = 0x3;
constexpr uint32_t VHOST_USER_REPLY_MASK = 1u << 2;
constexpr uint32_t VHOST_USER_NEED_REPLY_MASK = 1u << 3;
constexpr uint32_t kKnownFlags = VHOST_USER_VERSION_MASK | VHOST_USER_REPLY_MASK | VHOST_USER_NEED_REPLY_MASK;

// --- Front-end requests ("Front-end message types") ------------------------
enum Request : uint32_t {
  VHOST_USER_NONE = 0,
  VHOST_USER_GET_FEATURES = 1,
  VHOST_USER_SET_FEATURES = 2,
  VHOST_USER_SET_OWNER = 3,
  VHOST_USER_RESET_OWNER = 4,
  VHOST_USER_SET_MEM_TABLE = 5,
  VHOST_USER_SET_LOG_BASE = 6,
  VHOST_USER_SET_LOG_FD = 7,
  VHOST_USER_SET_VRING_NUM = 8,
  VHOST_USER_SET_VRING_ADDR = 9,
  VHOST_USER_SET_VRING_BASE = 10,
  VHOST_USER_GET_VRING_BASE = 11,
  VHOST_USER_SET_VRING_KICK = 12,
  VHOST_USER_SET_VRING_CALL = 13,
  VHOST_USER_SET_VRING_ERR = 14,
  VHOST_USER_GET_PROTOCOL_FEATURES = 15,
  VHOST_USER_SET_PROTOCOL_FEATURES = 16,
  VHOST_USER_GET_QUEUE_NUM = 17,
  VHOST_USER_SET_VRING_ENABLE = 18,
  VHOST_USER_SEND_RARP = 19,
  VHOST_USER_NET_SET_MTU = 20,
  VHOST_USER_SET_BACKEND_REQ_FD = 21,
  VHOST_USER_IOTLB_MSG = 22,
  VHOST_USER_SET_VRING_ENDIAN = 23,
  VHOST_USER_GET_CONFIG = 24,
  VHOST_USER_SET_CONFIG = 25,
  VHOST_USER_CREATE_CRYPTO_SESSION = 26,
  VHOST_USER_CLOSE_CRYPTO_SESSION = 27,
  VHOST_USER_POSTCOPY_ADVISE = 28,
  VHOST_USER_POSTCOPY_LISTEN = 29,
  VHOST_USER_POSTCOPY_END = 30,
  VHOST_USER_GET_INFLIGHT_FD = 31,
  VHOST_USER_SET_INFLIGHT_FD = 32,
  VHOST_USER_GPU_SET_SOCKET = 33,
  VHOST_USER_RESET_DEVICE = 34,
  VHOST_USER_VRING_KICK = 35,
  VHOST_USER_GET_MAX_MEM_SLOTS = 36,
  VHOST_USER_ADD_MEM_REG = 37,
  VHOST_USER_REM_MEM_REG = 38,
  VHOST_USER_SET_STATUS = 39,
  VHOST_USER_GET_STATUS = 40,
  VHOST_USER_REQUEST_MAX = 41,
};

const char* request_name(uint32_t request) noexcept;

// --- Feature bits ----------------------------------------------------------
// "Communication": the reused virtio feature bit 30.
constexpr uint64_t VHOST_USER_F_PROTOCOL_FEATURES = 1ull << 30;
// vhost's dirty-log feature (migration); we never offer it.
constexpr uint64_t VHOST_F_LOG_ALL = 1ull << 26;

// "Protocol features" (bit numbers).
constexpr uint32_t VHOST_USER_PROTOCOL_F_MQ = 0;
constexpr uint32_t VHOST_USER_PROTOCOL_F_LOG_SHMFD = 1;
constexpr uint32_t VHOST_USER_PROTOCOL_F_RARP = 2;
constexpr uint32_t VHOST_USER_PROTOCOL_F_REPLY_ACK = 3;
constexpr uint32_t VHOST_USER_PROTOCOL_F_MTU = 4;
constexpr uint32_t VHOST_USER_PROTOCOL_F_BACKEND_REQ = 5;
constexpr uint32_t VHOST_USER_PROTOCOL_F_CROSS_ENDIAN = 6;
constexpr uint32_t VHOST_USER_PROTOCOL_F_CRYPTO_SESSION = 7;
constexpr uint32_t VHOST_USER_PROTOCOL_F_PAGEFAULT = 8;
constexpr uint32_t VHOST_USER_PROTOCOL_F_CONFIG = 9;
constexpr uint32_t VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD = 10;
constexpr uint32_t VHOST_USER_PROTOCOL_F_HOST_NOTIFIER = 11;
constexpr uint32_t VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD = 12;
constexpr uint32_t VHOST_USER_PROTOCOL_F_RESET_DEVICE = 13;
constexpr uint32_t VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS = 14;
constexpr uint32_t VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS = 15;
constexpr uint32_t VHOST_USER_PROTOCOL_F_STATUS = 16;

constexpr uint64_t pf_bit(uint32_t b) { return 1ull << b; }

// --- Payloads ("Payload") ---------------------------------------------------
// "A vring state description".
struct VringState {
  uint32_t index;
  uint32_t num;
};
static_assert(sizeof(VringState) == 8);

// "A vring address description".
struct VringAddr {
  uint32_t index;
  uint32_t flags;  // VHOST_VRING_F_LOG
  uint64_t desc_user_addr;
  uint64_t used_user_addr;
  uint64_t avail_user_addr;
  uint64_t log_guest_addr;
};
static_assert(sizeof(VringAddr) == 40);
constexpr uint32_t VHOST_VRING_F_LOG = 1u << 0;

// u64 payload of SET_VRING_KICK/CALL/ERR: bits 0-7 index, bit 8 "no fd".
constexpr uint64_t VHOST_USER_VRING_IDX_MASK = 0xff;
constexpr uint64_t VHOST_USER_VRING_NOFD_MASK = 1ull << 8;

// "A region is" (one entry of the memory regions description).
struct MemRegion {
  uint64_t guest_phys_addr;
  uint64_t memory_size;
  uint64_t userspace_addr;
  uint64_t mmap_offset;
};
static_assert(sizeof(MemRegion) == 32);

// VHOST_MEMORY_BASELINE_NREGIONS: at most 8 regions (and 8 fds) per
// SET_MEM_TABLE.
constexpr uint32_t VHOST_MEMORY_BASELINE_NREGIONS = 8;

// "Memory regions description": QEMU sends only the `nregions` entries used
// (size = 8 + 32 * nregions); other front-ends send all 8.
struct MemoryTable {
  uint32_t nregions;
  uint32_t padding;
  MemRegion regions[VHOST_MEMORY_BASELINE_NREGIONS];
};
static_assert(sizeof(MemoryTable) == 8 + 32 * 8);
constexpr uint32_t kMemoryTableHeader = 8;

// "Single memory region description" (ADD_MEM_REG / REM_MEM_REG).
struct SingleMemRegion {
  uint64_t padding;
  MemRegion region;
};
static_assert(sizeof(SingleMemRegion) == 40);

// "Virtio device config space".
constexpr uint32_t VHOST_USER_MAX_CONFIG_SIZE = 256;
struct ConfigHeader {
  uint32_t offset;
  uint32_t size;
  uint32_t flags;  // VHOST_SET_CONFIG_TYPE_*
};
static_assert(sizeof(ConfigHeader) == 12);
constexpr uint32_t VHOST_SET_CONFIG_TYPE_FRONTEND = 0;
constexpr uint32_t VHOST_SET_CONFIG_TYPE_MIGRATION = 1;

// "Inflight description". QEMU's VhostUserInflight is not packed: it sends
// 24 bytes (4 of tail padding); some front-ends (rust-vmm) send the packed
// 20. Both are accepted; a reply has the size of the request.
struct InflightDesc {
  uint64_t mmap_size;
  uint64_t mmap_offset;
  uint16_t num_queues;
  uint16_t queue_size;
  uint32_t padding;
};
static_assert(sizeof(InflightDesc) == 24);
constexpr uint32_t kInflightDescPacked = 20;

// "Log description" (only to validate and refuse SET_LOG_BASE).
struct LogDesc {
  uint64_t mmap_size;
  uint64_t mmap_offset;
};
static_assert(sizeof(LogDesc) == 16);

// --- Inflight I/O tracking, split rings ("Inflight I/O tracking") ----------
struct DescStateSplit {
  uint8_t inflight;
  uint8_t padding[5];
  uint16_t next;
  uint64_t counter;
};
static_assert(sizeof(DescStateSplit) == 16);

struct QueueRegionSplit {
  uint64_t features;
  uint16_t version;  // 1; 0 = not initialised yet
  uint16_t desc_num;
  uint16_t last_batch_head;
  uint16_t used_idx;
  DescStateSplit desc[];
};
static_assert(sizeof(QueueRegionSplit) == 16);

// The back-end chooses the per-queue stride of the inflight buffer; the
// front-end only keeps the fd and hands it back. We use the header plus one
// DescStateSplit per descriptor, rounded up to 64 bytes: the same stride as
// libvhost-user, so a buffer created by either back-end maps the same way.
constexpr uint64_t kInflightAlign = 64;
constexpr uint64_t inflight_queue_stride(uint16_t queue_size) {
  return (sizeof(QueueRegionSplit) + uint64_t(queue_size) * sizeof(DescStateSplit) + kInflightAlign - 1) &
         ~(kInflightAlign - 1);
}

// Largest payload any supported request carries (SET_CONFIG with 256 bytes of
// config); anything larger is a framing error and ends the connection.
constexpr uint32_t kMaxPayload = sizeof(ConfigHeader) + VHOST_USER_MAX_CONFIG_SIZE;
static_assert(kMaxPayload >= sizeof(MemoryTable));
// Most fds one message may carry (SET_MEM_TABLE: one per region).
constexpr uint32_t kMaxFds = VHOST_MEMORY_BASELINE_NREGIONS;

// --- virtio ring layouts (virtio 1.2 §2.7, §2.8) used for bounds checks ----
constexpr uint32_t kMaxQueueSize = 32768;  // virtio 1.2 §2.7: Queue Size <= 32768
constexpr uint64_t split_desc_bytes(uint32_t n) { return 16ull * n; }
constexpr uint64_t split_avail_bytes(uint32_t n) { return 6 + 2ull * n; }  // flags, idx, ring[n], used_event
constexpr uint64_t split_used_bytes(uint32_t n) { return 6 + 8ull * n; }   // flags, idx, ring[n], avail_event
constexpr uint64_t packed_event_bytes() { return 4; }  // struct pvirtq_event_suppress

}  // namespace vdpu::vhost_user
