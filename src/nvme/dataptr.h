// Data pointer walking: PRP (Base 2.0 §4.1.1) and SGL (Base 2.0 §4.1.2)
// descriptions of a command's data buffer turned into iovecs that point into
// guest memory. The one parser of guest data pointers; every failure returns
// the spec's status code (spec.h sc::*), never aborts.
//
// Threads: any (pure functions over an immutable MemoryMap).
#pragma once

#include <sys/uio.h>

#include <cstdint>

#include "hostmem/hostmem.h"
#include "nvme/spec.h"

namespace vdpu::nvme {

struct DataMapArgs {
  uint64_t len = 0;          // bytes to transfer
  uint32_t page_size = 4096; // CC.MPS page size (power of two)
  bool allow_sgl = false;    // PSDT != 0 accepted (I/O commands with SGLS advertised)
  bool device_writes = false;  // data moves device -> host (needs writable memory)
};

// Maps cmd's data pointer (PRP1/PRP2 or SGL1) for a.len bytes into iov[0..cap).
// Adjacent pieces that are contiguous in our address space are merged.
// Returns sc::kSuccess and *cnt, or: kPrpOffsetInvalid, kDataTransferError
// (unmapped guest address), kInvalidField (PSDT not allowed/reserved, more
// pieces than cap), kSglDescriptorTypeInvalid, kInvalidSglSegmentDescriptor,
// kInvalidNumberOfSglDescriptors, kDataSglLengthInvalid.
uint16_t map_data(const hostmem::MemoryMap& mem, const SqEntry& cmd, const DataMapArgs& a,
                  iovec* iov, uint32_t cap, uint32_t* cnt) noexcept;

uint16_t map_prp(const hostmem::MemoryMap& mem, uint64_t prp1, uint64_t prp2,
                 const DataMapArgs& a, iovec* iov, uint32_t cap, uint32_t* cnt) noexcept;

uint16_t map_sgl(const hostmem::MemoryMap& mem, const SglDescriptor& sgl1, const DataMapArgs& a,
                 iovec* iov, uint32_t cap, uint32_t* cnt) noexcept;

// Copies between a flat buffer and an iovec list (the shorter length wins).
size_t iov_copy_from(const iovec* iov, uint32_t cnt, void* dst, size_t len, size_t skip = 0);
size_t iov_copy_to(const iovec* iov, uint32_t cnt, const void* src, size_t len);

}  // namespace vdpu::nvme
