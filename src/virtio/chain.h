// The descriptor-chain walker: turns one chain of a split or packed virtqueue
// into iovecs (device-readable first, then device-writable) through a
// hostmem::MemoryMap. This is where guest descriptors are validated; every
// malformed chain is refused with a ChainError, never followed: the walk is
// bounded by the queue size, so loops terminate.
//
// Threads: pure functions; called on the queue's reactor (and by the fuzzer).
#pragma once

#include <sys/uio.h>

#include <cstdint>

#include "hostmem/hostmem.h"

namespace vdpu::virtio {

enum class ChainError : uint8_t {
  kOk = 0,
  kEmpty,                  // the chain carries no bytes at all
  kHeadOutOfRange,         // split: head index >= queue size
  kNextOutOfRange,         // next index >= queue size (or indirect table size)
  kTooLong,                // more descriptors than the queue size (includes loops)
  kIndirectNotNegotiated,  // INDIRECT flag without VIRTIO_F_INDIRECT_DESC
  kIndirectWithNext,       // INDIRECT together with NEXT / inside a packed list
  kNestedIndirect,         // INDIRECT inside an indirect table
  kIndirectBadLength,      // table length 0 or not a multiple of 16
  kIndirectOutOfBounds,    // table not inside one guest memory region
  kReadableAfterWritable,  // device-readable element after a writable one
  kBadAddress,             // buffer outside guest memory (or writable in RO memory)
  kTooManySegments,        // more iovecs than the caller provided
  kAvailIndexJump,         // queue level: avail->idx moved by more than the queue size
};
const char* chain_error_name(ChainError e);

// One walked chain. The caller provides iov/max_iov; the walker fills the rest.
struct Chain {
  iovec* iov = nullptr;  // [0, n_out) device-readable, [n_out, n_out+n_in) writable
  uint16_t max_iov = 0;
  uint16_t n_out = 0;
  uint16_t n_in = 0;
  uint16_t id = 0;     // split: head descriptor index; packed: buffer id
  uint16_t ndesc = 0;  // packed: ring slots the chain occupies (used-index advance)
  uint16_t slot = 0;   // in-order completion slot (set by Virtqueue::pop)
  uint64_t out_len = 0;
  uint64_t in_len = 0;
};

struct WalkParams {
  const hostmem::MemoryMap* mem = nullptr;
  uint16_t queue_size = 0;
  bool indirect = false;  // VIRTIO_F_INDIRECT_DESC negotiated
};

// Split ring (§2.7.5): walks the chain starting at desc_table[head].
// desc_table holds queue_size descriptors.
ChainError walk_split_chain(const WalkParams& p, const void* desc_table, uint16_t head, Chain& c) noexcept;

// Packed ring (§2.8.6/§2.8.7): walks the list starting at ring[pos] (pos <
// queue_size), wrapping at the ring end. The caller has checked that
// ring[pos] is available. Sets c.id (from the last descriptor) and c.ndesc.
ChainError walk_packed_chain(const WalkParams& p, const void* ring, uint16_t pos, Chain& c) noexcept;

}  // namespace vdpu::virtio
