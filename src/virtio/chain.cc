#include "virtio/chain.h"

#include <algorithm>

#include "virtio/ring.h"

namespace vdpu::virtio {

const char* chain_error_name(ChainError e) {
  switch (e) {
    case ChainError::kOk: return "ok";
    case ChainError::kEmpty: return "zero-length chain";
    case ChainError::kHeadOutOfRange: return "head index out of range";
    case ChainError::kNextOutOfRange: return "next index out of range";
    case ChainError::kTooLong: return "chain longer than the queue size (loop?)";
    case ChainError::kIndirectNotNegotiated: return "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
    case ChainError::kIndirectWithNext: return "indirect descriptor chained with NEXT";
    case ChainError::kNestedIndirect: return "nested indirect descriptor";
    case ChainError::kIndirectBadLength: return "indirect table length not a non-zero multiple of 16";
    case ChainError::kIndirectOutOfBounds: return "indirect table outside guest memory";
    case ChainError::kReadableAfterWritable: return "device-readable descriptor after a writable one";
    case ChainError::kBadAddress: return "buffer outside guest memory";
    case ChainError::kTooManySegments: return "too many segments";
    case ChainError::kAvailIndexJump: return "avail index moved by more than the queue size";
  }
  return "unknown";
}

namespace {

// Error path only: is [addr, addr+len) entirely guest memory (splitting at
// region boundaries)? Tells "too many segments" from "bad address".
bool covered(const hostmem::MemoryMap& mem, uint64_t addr, uint64_t len, bool write) {
  while (len) {
    const hostmem::Region* hit = nullptr;
    for (const auto& r : mem.regions())
      if (addr - r.gpa < r.size) hit = &r;
    if (!hit || (write && !hit->writable)) return false;
    uint64_t chunk = std::min<uint64_t>(len, hit->size - (addr - hit->gpa));
    addr += chunk;
    len -= chunk;
  }
  return true;
}

// Appends one buffer element. Split §2.7.5.2 / packed §2.8.17 (driver
// requirements, descriptor table / scatter-gather): "The driver MUST place any
// device-writable descriptor elements after any device-readable descriptor
// elements": a readable element after a writable one is refused.
inline ChainError add_buffer(const WalkParams& p, Chain& c, uint64_t addr, uint32_t len,
                             bool write) noexcept {
  if (!write && c.n_in) return ChainError::kReadableAfterWritable;
  if (len == 0) return ChainError::kOk;  // legal, carries nothing
  int used = c.n_out + c.n_in;
  iovec* iov = c.iov + used;
  int room = int(c.max_iov) - used;
  int n;
  // Fast path: the whole buffer inside one region (the common case).
  if (uint8_t* h = p.mem->translate(addr, len, write); h && room > 0) {
    iov->iov_base = h;
    iov->iov_len = len;
    n = 1;
  } else {
    n = room > 0 ? p.mem->to_iov(addr, len, iov, room, write) : -1;
    if (n < 0) return covered(*p.mem, addr, len, write) ? ChainError::kTooManySegments : ChainError::kBadAddress;
  }
  if (write) {
    c.n_in = uint16_t(c.n_in + n);
    c.in_len += len;
  } else {
    c.n_out = uint16_t(c.n_out + n);
    c.out_len += len;
  }
  return ChainError::kOk;
}

// Validates an indirect descriptor and maps its table (§2.7.5.3 split, §2.8.7 packed).
inline ChainError map_indirect(const WalkParams& p, uint64_t addr, uint32_t len,
                               const uint8_t** table, uint32_t* entries) noexcept {
  if (!p.indirect) return ChainError::kIndirectNotNegotiated;
  if (len == 0 || len % sizeof(VirtqDesc) != 0) return ChainError::kIndirectBadLength;
  // "A driver MUST NOT create a descriptor chain longer than the Queue Size"
  // (§2.7.5.2 split, §2.8.17 packed): a larger table can only be refused.
  if (len / sizeof(VirtqDesc) > p.queue_size) return ChainError::kTooLong;
  const uint8_t* t = p.mem->translate(addr, len, false);
  if (!t) return ChainError::kIndirectOutOfBounds;
  *table = t;
  *entries = len / uint32_t(sizeof(VirtqDesc));
  return ChainError::kOk;
}

// §2.7.5.2 "Drivers MUST NOT add a descriptor chain longer than 2^32 bytes in
// total"; a chain carrying nothing is useless to every device type.
inline ChainError finish(const Chain& c) noexcept {
  uint64_t total = c.out_len + c.in_len;
  if (total == 0) return ChainError::kEmpty;
  if (total > (1ull << 32)) return ChainError::kTooLong;
  return ChainError::kOk;
}

}  // namespace

ChainError walk_split_chain(const WalkParams& p, const void* desc_table, uint16_t head, Chain& c) noexcept {
  c.n_out = c.n_in = 0;
  c.out_len = c.in_len = 0;
  c.id = head;
  c.ndesc = 1;
  if (head >= p.queue_size) return ChainError::kHeadOutOfRange;
  const uint8_t* table = static_cast<const uint8_t*>(desc_table);
  uint32_t table_size = p.queue_size;
  bool indirect = false;
  uint32_t count = 0;  // buffer descriptors seen; bounds every walk (loops)
  uint32_t idx = head;
  for (;;) {
    VirtqDesc d = load_desc(table + idx * sizeof(VirtqDesc));
    if (d.flags & VIRTQ_DESC_F_INDIRECT) {
      // §2.7.5.3.1: "MUST NOT set the VIRTQ_DESC_F_INDIRECT flag within an
      // indirect descriptor" and "MUST NOT set both VIRTQ_DESC_F_INDIRECT and
      // VIRTQ_DESC_F_NEXT". The device ignores WRITE on the table descriptor.
      if (indirect) return ChainError::kNestedIndirect;
      if (d.flags & VIRTQ_DESC_F_NEXT) return ChainError::kIndirectWithNext;
      uint32_t entries = 0;
      const uint8_t* t = nullptr;
      if (ChainError e = map_indirect(p, d.addr, d.len, &t, &entries); e != ChainError::kOk) return e;
      table = t;
      table_size = entries;
      indirect = true;
      idx = 0;
      continue;
    }
    // §2.7.5.2 "A driver MUST NOT create a descriptor chain longer than the
    // Queue Size of the device": also what makes a looping chain terminate.
    if (++count > p.queue_size) return ChainError::kTooLong;
    if (ChainError e = add_buffer(p, c, d.addr, d.len, d.flags & VIRTQ_DESC_F_WRITE); e != ChainError::kOk)
      return e;
    if (!(d.flags & VIRTQ_DESC_F_NEXT)) break;
    idx = d.next;
    if (idx >= table_size) return ChainError::kNextOutOfRange;
  }
  return finish(c);
}

ChainError walk_packed_chain(const WalkParams& p, const void* ring, uint16_t pos, Chain& c) noexcept {
  c.n_out = c.n_in = 0;
  c.out_len = c.in_len = 0;
  c.ndesc = 0;
  const uint8_t* base = static_cast<const uint8_t*>(ring);
  uint32_t i = pos;
  for (;;) {
    // §2.8.17 "A driver MUST NOT create a descriptor list longer than the
    // Queue Size": bounds the walk even if every descriptor says NEXT.
    if (++c.ndesc > p.queue_size) return ChainError::kTooLong;
    PackedDesc d = load_packed_desc(base + i * sizeof(PackedDesc));
    if (d.flags & VIRTQ_DESC_F_INDIRECT) {
      // §2.8.19 (packed indirect): "A driver MUST NOT write direct descriptors with
      // DESC_F_INDIRECT set in a scatter-gather list linked by NEXT".
      if (c.ndesc > 1 || (d.flags & VIRTQ_DESC_F_NEXT)) return ChainError::kIndirectWithNext;
      uint32_t entries = 0;
      const uint8_t* t = nullptr;
      if (ChainError e = map_indirect(p, d.addr, d.len, &t, &entries); e != ChainError::kOk) return e;
      for (uint32_t k = 0; k < entries; ++k) {
        PackedDesc e = load_packed_desc(t + k * sizeof(PackedDesc));
        // §2.8.19: "The driver MUST NOT set any flags except DESC_F_WRITE
        // within an indirect descriptor"; nesting is refused, NEXT ignored.
        if (e.flags & VIRTQ_DESC_F_INDIRECT) return ChainError::kNestedIndirect;
        if (ChainError r = add_buffer(p, c, e.addr, e.len, e.flags & VIRTQ_DESC_F_WRITE); r != ChainError::kOk)
          return r;
      }
      c.id = d.id;
      break;
    }
    if (ChainError e = add_buffer(p, c, d.addr, d.len, d.flags & VIRTQ_DESC_F_WRITE); e != ChainError::kOk)
      return e;
    if (!(d.flags & VIRTQ_DESC_F_NEXT)) {
      c.id = d.id;  // §2.8.6 "Buffer ID is included in the last descriptor in the list"
      break;
    }
    if (++i == p.queue_size) i = 0;
  }
  return finish(c);
}

}  // namespace vdpu::virtio
