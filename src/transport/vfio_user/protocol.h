// vfio-user wire format (QEMU docs/interop/vfio-user.rst, "vfio-user Protocol
// Specification"), reusing the Linux <linux/vfio.h> structures it names.
// Every structure is packed, little-endian (host order on x86/arm64) and
// size-checked.
#pragma once

#include <cstdint>

namespace vdpu::vfio_user {

// §"Header": message id, command, total size (header included), flags, errno.
struct [[gnu::packed]] Header {
  uint16_t msg_id;
  uint16_t command;
  uint32_t msg_size;
  uint32_t flags;
  uint32_t error_no;
};
static_assert(sizeof(Header) == 16);

inline constexpr uint32_t kFlagsTypeMask = 0xf;
inline constexpr uint32_t kFlagsTypeCommand = 0x0;
inline constexpr uint32_t kFlagsTypeReply = 0x1;
inline constexpr uint32_t kFlagsNoReply = 0x10;
inline constexpr uint32_t kFlagsError = 0x20;

enum Command : uint16_t {
  VFIO_USER_VERSION = 1,
  VFIO_USER_DMA_MAP = 2,
  VFIO_USER_DMA_UNMAP = 3,
  VFIO_USER_DEVICE_GET_INFO = 4,
  VFIO_USER_DEVICE_GET_REGION_INFO = 5,
  VFIO_USER_DEVICE_GET_REGION_IO_FDS = 6,
  VFIO_USER_DEVICE_GET_IRQ_INFO = 7,
  VFIO_USER_DEVICE_SET_IRQS = 8,
  VFIO_USER_REGION_READ = 9,
  VFIO_USER_REGION_WRITE = 10,
  VFIO_USER_DMA_READ = 11,
  VFIO_USER_DMA_WRITE = 12,
  VFIO_USER_DEVICE_RESET = 13,
  VFIO_USER_DIRTY_PAGES = 14,
  VFIO_USER_REGION_WRITE_MULTI = 15,
  VFIO_USER_DEVICE_FEATURE = 16,
  VFIO_USER_MIG_DATA_READ = 17,
  VFIO_USER_MIG_DATA_WRITE = 18,
  VFIO_USER_MAX,
};

// §"VFIO_USER_VERSION": major, minor, then a NUL-terminated JSON object.
struct [[gnu::packed]] Version {
  uint16_t major;
  uint16_t minor;
};
static_assert(sizeof(Version) == 4);
inline constexpr uint16_t kMajor = 0;
inline constexpr uint16_t kMinor = 2;

// §"VFIO_USER_DMA_MAP".
struct [[gnu::packed]] DmaMap {
  uint32_t argsz;
  uint32_t flags;
  uint64_t offset;
  uint64_t address;
  uint64_t size;
};
static_assert(sizeof(DmaMap) == 32);
inline constexpr uint32_t VFIO_USER_F_DMA_REGION_READ = 1u << 0;
inline constexpr uint32_t VFIO_USER_F_DMA_REGION_WRITE = 1u << 1;

// §"VFIO_USER_DMA_UNMAP".
struct [[gnu::packed]] DmaUnmap {
  uint32_t argsz;
  uint32_t flags;
  uint64_t address;
  uint64_t size;
};
static_assert(sizeof(DmaUnmap) == 24);
inline constexpr uint32_t VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1u << 0;
inline constexpr uint32_t VFIO_DMA_UNMAP_FLAG_ALL = 1u << 1;

// struct vfio_device_info (without cap_offset, as vfio-user uses it).
struct [[gnu::packed]] DeviceInfo {
  uint32_t argsz;
  uint32_t flags;
  uint32_t num_regions;
  uint32_t num_irqs;
};
static_assert(sizeof(DeviceInfo) == 16);
inline constexpr uint32_t VFIO_DEVICE_FLAGS_RESET = 1u << 0;
inline constexpr uint32_t VFIO_DEVICE_FLAGS_PCI = 1u << 1;
inline constexpr uint32_t VFIO_PCI_NUM_REGIONS = 9;
inline constexpr uint32_t VFIO_PCI_NUM_IRQS = 5;

// struct vfio_region_info.
struct [[gnu::packed]] RegionInfo {
  uint32_t argsz;
  uint32_t flags;
  uint32_t index;
  uint32_t cap_offset;
  uint64_t size;
  uint64_t offset;
};
static_assert(sizeof(RegionInfo) == 32);
inline constexpr uint32_t VFIO_REGION_INFO_FLAG_READ = 1u << 0;
inline constexpr uint32_t VFIO_REGION_INFO_FLAG_WRITE = 1u << 1;
inline constexpr uint32_t VFIO_REGION_INFO_FLAG_MMAP = 1u << 2;
inline constexpr uint32_t VFIO_REGION_INFO_FLAG_CAPS = 1u << 3;

struct [[gnu::packed]] InfoCapHeader {
  uint16_t id;
  uint16_t version;
  uint32_t next;
};
static_assert(sizeof(InfoCapHeader) == 8);
inline constexpr uint16_t VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1;

struct [[gnu::packed]] SparseMmapCap {
  InfoCapHeader header;
  uint32_t nr_areas;
  uint32_t reserved;
};
static_assert(sizeof(SparseMmapCap) == 16);
struct [[gnu::packed]] SparseMmapArea {
  uint64_t offset;
  uint64_t size;
};
static_assert(sizeof(SparseMmapArea) == 16);

// struct vfio_irq_info.
struct [[gnu::packed]] IrqInfo {
  uint32_t argsz;
  uint32_t flags;
  uint32_t index;
  uint32_t count;
};
static_assert(sizeof(IrqInfo) == 16);
inline constexpr uint32_t VFIO_IRQ_INFO_EVENTFD = 1u << 0;
inline constexpr uint32_t VFIO_IRQ_INFO_MASKABLE = 1u << 1;
inline constexpr uint32_t VFIO_IRQ_INFO_AUTOMASKED = 1u << 2;
inline constexpr uint32_t VFIO_IRQ_INFO_NORESIZE = 1u << 3;
inline constexpr uint32_t VFIO_PCI_INTX_IRQ_INDEX = 0;
inline constexpr uint32_t VFIO_PCI_MSI_IRQ_INDEX = 1;
inline constexpr uint32_t VFIO_PCI_MSIX_IRQ_INDEX = 2;
inline constexpr uint32_t VFIO_PCI_ERR_IRQ_INDEX = 3;
inline constexpr uint32_t VFIO_PCI_REQ_IRQ_INDEX = 4;

// struct vfio_irq_set (data: bools inline, eventfds as SCM_RIGHTS).
struct [[gnu::packed]] IrqSet {
  uint32_t argsz;
  uint32_t flags;
  uint32_t index;
  uint32_t start;
  uint32_t count;
};
static_assert(sizeof(IrqSet) == 20);
inline constexpr uint32_t VFIO_IRQ_SET_DATA_NONE = 1u << 0;
inline constexpr uint32_t VFIO_IRQ_SET_DATA_BOOL = 1u << 1;
inline constexpr uint32_t VFIO_IRQ_SET_DATA_EVENTFD = 1u << 2;
inline constexpr uint32_t VFIO_IRQ_SET_ACTION_MASK = 1u << 3;
inline constexpr uint32_t VFIO_IRQ_SET_ACTION_UNMASK = 1u << 4;
inline constexpr uint32_t VFIO_IRQ_SET_ACTION_TRIGGER = 1u << 5;
inline constexpr uint32_t VFIO_IRQ_SET_DATA_TYPE_MASK =
    VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD;
inline constexpr uint32_t VFIO_IRQ_SET_ACTION_TYPE_MASK =
    VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER;

// §"VFIO_USER_REGION_READ/WRITE": then `count` data bytes.
struct [[gnu::packed]] RegionAccess {
  uint64_t offset;
  uint32_t region;
  uint32_t count;
};
static_assert(sizeof(RegionAccess) == 16);

// §"VFIO_USER_DMA_READ/WRITE" (server to client).
struct [[gnu::packed]] DmaAccess {
  uint64_t address;
  uint64_t count;
};
static_assert(sizeof(DmaAccess) == 16);

// Our limits, advertised in the VERSION reply.
inline constexpr uint32_t kMaxMsgFds = 16;             // QEMU's VFIO_USER_MAX_MAX_FDS
inline constexpr uint32_t kMaxDataXferSize = 1u << 20;  // region access payload
inline constexpr uint32_t kMaxDmaMaps = 256;
// Largest message we accept: a region write of kMaxDataXferSize plus headers.
inline constexpr uint32_t kMaxMsgSize = kMaxDataXferSize + 4096;

}  // namespace vdpu::vfio_user
