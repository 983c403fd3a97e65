// NVM command set decoding shared by every transport of the NVMe target: the
// PCIe controller's I/O path (io.cc) and the NVMe-oF/TCP target
// (transport/nvmf_tcp) turn an SQE into the same bdev request and map bdev
// results to the same NVMe status (NVM Command Set 1.0 §3.2).
//
// Threads: pure functions, any thread.
#pragma once

#include <cstdint>

#include "bdev/bdev.h"
#include "nvme/spec.h"

namespace vdpu::nvme {

// Geometry and options of one namespace as an I/O queue sees it.
struct NvmNsGeometry {
  uint32_t lba_shift = 9;
  uint64_t num_blocks = 0;
};

struct NvmIo {
  bdev::IoType type = bdev::IoType::kRead;
  uint64_t slba = 0;
  uint64_t nlb = 0;
  uint64_t len = 0;  // data bytes moved (read/write/compare), else 0
};

// Read / Write / Compare / Write Zeroes: the LBA range (NVM 1.0 §3.2.6,
// §3.2.4, §3.2.1, §3.2.8). Returns sc::kSuccess, or kLbaOutOfRange |
// kStatusDnr, or kInvalidField | kStatusDnr when len > max_xfer (MDTS, Base
// 2.0 §5.15.2.1; 0 = unlimited).
uint16_t nvm_decode_range(const SqEntry& c, bdev::IoType t, const NvmNsGeometry& ns,
                          uint64_t max_xfer, NvmIo* out) noexcept;

// The NVMe status of a finished bdev request.
uint16_t nvm_status_from_bdev(bdev::IoStatus st, bdev::IoType t) noexcept;

}  // namespace vdpu::nvme
