// virtio-blk wire structures and constants (virtio 1.2 §5.2).
#pragma once

#include <cstdint>

namespace vdpu::virtio::blk {

constexpr uint32_t kVirtioIdBlock = 2;  // §5.2.1

// §5.2.3 feature bits.
constexpr uint64_t VIRTIO_BLK_F_SIZE_MAX = 1ull << 1;
constexpr uint64_t VIRTIO_BLK_F_SEG_MAX = 1ull << 2;
constexpr uint64_t VIRTIO_BLK_F_GEOMETRY = 1ull << 4;
constexpr uint64_t VIRTIO_BLK_F_RO = 1ull << 5;
constexpr uint64_t VIRTIO_BLK_F_BLK_SIZE = 1ull << 6;
constexpr uint64_t VIRTIO_BLK_F_FLUSH = 1ull << 9;
constexpr uint64_t VIRTIO_BLK_F_TOPOLOGY = 1ull << 10;
constexpr uint64_t VIRTIO_BLK_F_CONFIG_WCE = 1ull << 11;
constexpr uint64_t VIRTIO_BLK_F_MQ = 1ull << 12;
constexpr uint64_t VIRTIO_BLK_F_DISCARD = 1ull << 13;
constexpr uint64_t VIRTIO_BLK_F_WRITE_ZEROES = 1ull << 14;

// §5.2.6 request types.
constexpr uint32_t VIRTIO_BLK_T_IN = 0;
constexpr uint32_t VIRTIO_BLK_T_OUT = 1;
constexpr uint32_t VIRTIO_BLK_T_FLUSH = 4;
constexpr uint32_t VIRTIO_BLK_T_GET_ID = 8;
constexpr uint32_t VIRTIO_BLK_T_GET_LIFETIME = 10;
constexpr uint32_t VIRTIO_BLK_T_DISCARD = 11;
constexpr uint32_t VIRTIO_BLK_T_WRITE_ZEROES = 13;
constexpr uint32_t VIRTIO_BLK_T_SECURE_ERASE = 14;

// §5.2.6 status byte.
constexpr uint8_t VIRTIO_BLK_S_OK = 0;
constexpr uint8_t VIRTIO_BLK_S_IOERR = 1;
constexpr uint8_t VIRTIO_BLK_S_UNSUPP = 2;

constexpr uint32_t kSectorSize = 512;    // protocol unit, whatever blk_size says
constexpr uint32_t kIdBytes = 20;        // VIRTIO_BLK_T_GET_ID string length
constexpr uint32_t kDwzFlagUnmap = 1u;   // virtio_blk_discard_write_zeroes.flags.unmap

// §5.2.6 struct virtio_blk_req header (type, reserved, sector).
struct VirtioBlkOutHdr {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
} __attribute__((packed));
static_assert(sizeof(VirtioBlkOutHdr) == 16);

// §5.2.6 struct virtio_blk_discard_write_zeroes.
struct VirtioBlkDiscardWriteZeroes {
  uint64_t sector;
  uint32_t num_sectors;
  uint32_t flags;
} __attribute__((packed));
static_assert(sizeof(VirtioBlkDiscardWriteZeroes) == 16);

// §5.2.4 struct virtio_blk_config (virtio 1.2 layout, little-endian).
struct VirtioBlkConfig {
  uint64_t capacity;
  uint32_t size_max;
  uint32_t seg_max;
  uint16_t geometry_cylinders;
  uint8_t geometry_heads;
  uint8_t geometry_sectors;
  uint32_t blk_size;
  uint8_t topology_physical_block_exp;
  uint8_t topology_alignment_offset;
  uint16_t topology_min_io_size;
  uint32_t topology_opt_io_size;
  uint8_t writeback;
  uint8_t unused0;
  uint16_t num_queues;
  uint32_t max_discard_sectors;
  uint32_t max_discard_seg;
  uint32_t discard_sector_alignment;
  uint32_t max_write_zeroes_sectors;
  uint32_t max_write_zeroes_seg;
  uint8_t write_zeroes_may_unmap;
  uint8_t unused1[3];
  uint32_t max_secure_erase_sectors;
  uint32_t max_secure_erase_seg;
  uint32_t secure_erase_sector_alignment;
  uint32_t zoned_zone_sectors;
  uint32_t zoned_max_open_zones;
  uint32_t zoned_max_active_zones;
  uint32_t zoned_max_append_sectors;
  uint32_t zoned_write_granularity;
  uint8_t zoned_model;
  uint8_t unused2[3];
} __attribute__((packed));
static_assert(sizeof(VirtioBlkConfig) == 96);
static_assert(__builtin_offsetof(VirtioBlkConfig, blk_size) == 20);
static_assert(__builtin_offsetof(VirtioBlkConfig, num_queues) == 34);
static_assert(__builtin_offsetof(VirtioBlkConfig, max_discard_sectors) == 36);
static_assert(__builtin_offsetof(VirtioBlkConfig, write_zeroes_may_unmap) == 56);

}  // namespace vdpu::virtio::blk
