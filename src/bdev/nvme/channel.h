// The bdev channel of an NVMe/TCP namespace and the per-Io state the module
// keeps in Io::module_ctx. Internal to bdev/nvme.
#pragma once

#include <cstdint>

#include "bdev/bdev.h"

namespace vdpu::bdev::nvme {

class NvmeChannel;

// Lives in Io::module_ctx while the Io belongs to the module.
struct IoCtx {
  NvmeChannel* ch;
  uint32_t nsid;
  uint32_t lba_shift;
  uint64_t done_blocks;  // blocks already completed by earlier commands of a split Io
  uint32_t retries;      // retries of the current command (bdev_retry_count)
};
static_assert(sizeof(IoCtx) <= sizeof(Io::module_ctx));
inline IoCtx& io_ctx(Io& io) {
  return *reinterpret_cast<IoCtx*>(io.module_ctx);
}

class NvmeChannel : public Channel {
 public:
  using Channel::Channel;
  // Completes io to its owner (counters, callback). Channel's reactor.
  void finish(Io& io, IoStatus st) noexcept { complete(io, st); }
};

}  // namespace vdpu::bdev::nvme
