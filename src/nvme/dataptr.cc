#include "nvme/dataptr.h"

#include <algorithm>
#include <cstring>

namespace vdpu::nvme {

namespace {

struct IovBuilder {
  const hostmem::MemoryMap& mem;
  bool write;
  iovec* iov;
  uint32_t cap;
  uint32_t n = 0;

  // Appends [gpa, gpa+len); merges with the previous piece when contiguous.
  uint16_t add(uint64_t gpa, uint64_t len) noexcept {
    if (len == 0) return sc::kSuccess;
    uint8_t* p = mem.translate(gpa, len, write);
    if (!p) {
      // The piece may straddle two regions that are adjacent in the guest.
      iovec tmp[4];
      int k = mem.to_iov(gpa, len, tmp, 4, write);
      if (k <= 0) return sc::kDataTransferError;
      for (int i = 0; i < k; ++i) {
        uint16_t st = push(static_cast<uint8_t*>(tmp[i].iov_base), tmp[i].iov_len);
        if (st) return st;
      }
      return sc::kSuccess;
    }
    return push(p, len);
  }
  uint16_t push(uint8_t* p, uint64_t len) noexcept {
    if (n && static_cast<uint8_t*>(iov[n - 1].iov_base) + iov[n - 1].iov_len == p) {
      iov[n - 1].iov_len += len;
      return sc::kSuccess;
    }
    if (n == cap) return sc::kInvalidField;  // more pieces than MDTS allows for
    iov[n].iov_base = p;
    iov[n].iov_len = len;
    ++n;
    return sc::kSuccess;
  }
};

}  // namespace

uint16_t map_prp(const hostmem::MemoryMap& mem, uint64_t prp1, uint64_t prp2,
                 const DataMapArgs& a, iovec* iov, uint32_t cap, uint32_t* cnt) noexcept {
  *cnt = 0;
  uint64_t len = a.len;
  if (len == 0) return sc::kSuccess;
  const uint64_t ps = a.page_size, mask = ps - 1;
  IovBuilder b{mem, a.device_writes, iov, cap};
  // Base 2.0 §4.1.1 (Figure 88): the PRP1 offset is dword aligned.
  if (prp1 & 3) return sc::kPrpOffsetInvalid;
  uint64_t first = std::min<uint64_t>(len, ps - (prp1 & mask));
  if (uint16_t st = b.add(prp1, first)) return st;
  len -= first;
  if (len == 0) {
    *cnt = b.n;
    return sc::kSuccess;
  }
  if (len <= ps) {
    // PRP2 is the second (last) data page: offset must be 0.
    if (prp2 & mask) return sc::kPrpOffsetInvalid;
    if (uint16_t st = b.add(prp2, len)) return st;
    *cnt = b.n;
    return sc::kSuccess;
  }
  // PRP2 is a PRP List pointer: qword aligned, may have an offset into its page.
  if (prp2 & 7) return sc::kPrpOffsetInvalid;
  uint64_t list = prp2;
  // Every list page but a degenerate one holds at least one data entry; bound
  // the chain so that a self-referencing list cannot loop.
  uint64_t hops = len / ps + 2;
  while (len) {
    if (hops-- == 0) return sc::kPrpOffsetInvalid;
    uint64_t nent = (ps - (list & mask)) / 8;
    const uint8_t* ents = mem.translate(list, nent * 8);
    if (!ents) return sc::kDataTransferError;
    uint64_t next_list = 0;
    for (uint64_t i = 0; i < nent && len; ++i) {
      uint64_t e = le64(ents + i * 8);
      if (i == nent - 1 && len > ps) {
        // The last entry of a full list page chains to the next list page,
        // which must be page aligned (as QEMU hw/nvme enforces).
        if (e & mask) return sc::kPrpOffsetInvalid;
        next_list = e;
        break;
      }
      // Base 2.0 §4.1.1: PRP entries after the first have offset 0.
      if (e & mask) return sc::kPrpOffsetInvalid;
      uint64_t chunk = std::min<uint64_t>(len, ps);
      if (uint16_t st = b.add(e, chunk)) return st;
      len -= chunk;
    }
    if (len && !next_list) return sc::kPrpOffsetInvalid;
    list = next_list;
  }
  *cnt = b.n;
  return sc::kSuccess;
}

uint16_t map_sgl(const hostmem::MemoryMap& mem, const SglDescriptor& sgl1, const DataMapArgs& a,
                 iovec* iov, uint32_t cap, uint32_t* cnt) noexcept {
  *cnt = 0;
  IovBuilder b{mem, a.device_writes, iov, cap};
  uint64_t left = a.len;
  auto data_block = [&](const SglDescriptor& d) -> uint16_t {
    // Subtype 0: address (Base 2.0 Figure 91); others are fabrics-only.
    if ((d.id & 0xf) != 0) return sc::kSglDescriptorTypeInvalid;
    // More data described than transferred: Data SGL Length Invalid (SGLS
    // bit 19 "excess length" not advertised).
    if (d.len > left) return sc::kDataSglLengthInvalid;
    if (uint16_t st = b.add(d.addr, d.len)) return st;
    left -= d.len;
    return sc::kSuccess;
  };
  switch (sgl1.type()) {
    case kSglDataBlock: {
      if (uint16_t st = data_block(sgl1)) return st;
      if (left) return sc::kDataSglLengthInvalid;
      *cnt = b.n;
      return sc::kSuccess;
    }
    case kSglSegment:
    case kSglLastSegment:
      break;
    default:
      return sc::kSglDescriptorTypeInvalid;
  }
  SglDescriptor seg = sgl1;
  bool last = sgl1.type() == kSglLastSegment;
  uint32_t segments = 0;
  for (;;) {
    // A segment is a whole number of 16-byte descriptors, at least one.
    if ((seg.id & 0xf) != 0) return sc::kSglDescriptorTypeInvalid;
    if (seg.len == 0 || seg.len % sizeof(SglDescriptor)) return sc::kInvalidNumberOfSglDescriptors;
    if (++segments > cap + 1) return sc::kInvalidNumberOfSglDescriptors;
    uint32_t n = seg.len / sizeof(SglDescriptor);
    const uint8_t* p = mem.translate(seg.addr, seg.len);
    if (!p) return sc::kDataTransferError;
    SglDescriptor next{};
    bool have_next = false;
    for (uint32_t i = 0; i < n; ++i) {
      SglDescriptor d;
      std::memcpy(&d, p + size_t(i) * sizeof(d), sizeof(d));
      switch (d.type()) {
        case kSglDataBlock:
          if (uint16_t st = data_block(d)) return st;
          break;
        case kSglSegment:
        case kSglLastSegment:
          // Base 2.0 §4.1.2: a segment descriptor may only be the last
          // descriptor of a (non-last) segment.
          if (last || i != n - 1) return sc::kInvalidSglSegmentDescriptor;
          next = d;
          have_next = true;
          break;
        default:  // bit bucket / keyed / transport: not advertised in SGLS
          return sc::kSglDescriptorTypeInvalid;
      }
    }
    if (!have_next) {
      // A Segment (not Last Segment) must end with a segment descriptor.
      if (!last) return sc::kInvalidSglSegmentDescriptor;
      break;
    }
    last = next.type() == kSglLastSegment;
    seg = next;
  }
  if (left) return sc::kDataSglLengthInvalid;
  *cnt = b.n;
  return sc::kSuccess;
}

uint16_t map_data(const hostmem::MemoryMap& mem, const SqEntry& cmd, const DataMapArgs& a,
                  iovec* iov, uint32_t cap, uint32_t* cnt) noexcept {
  switch (cmd.psdt()) {
    case kPsdtPrp:
      return map_prp(mem, cmd.prp1, cmd.prp2, a, iov, cap, cnt);
    case kPsdtSglMptrContig:
    case kPsdtSglMptrSgl: {
      // NVMe over PCIe: admin commands use PRPs only (Base 2.0 §4.1.2).
      if (!a.allow_sgl) return sc::kInvalidField;
      *cnt = 0;
      if (a.len == 0) return sc::kSuccess;
      SglDescriptor d;
      std::memcpy(&d, &cmd.prp1, sizeof(d));
      return map_sgl(mem, d, a, iov, cap, cnt);
    }
    default:
      return sc::kInvalidField;  // PSDT 11b reserved
  }
}

size_t iov_copy_from(const iovec* iov, uint32_t cnt, void* dst, size_t len, size_t skip) {
  size_t done = 0;
  auto* d = static_cast<uint8_t*>(dst);
  for (uint32_t i = 0; i < cnt && done < len; ++i) {
    size_t l = iov[i].iov_len;
    if (skip >= l) {
      skip -= l;
      continue;
    }
    size_t n = std::min(l - skip, len - done);
    std::memcpy(d + done, static_cast<uint8_t*>(iov[i].iov_base) + skip, n);
    skip = 0;
    done += n;
  }
  return done;
}

size_t iov_copy_to(const iovec* iov, uint32_t cnt, const void* src, size_t len) {
  size_t done = 0;
  auto* s = static_cast<const uint8_t*>(src);
  for (uint32_t i = 0; i < cnt && done < len; ++i) {
    size_t n = std::min(iov[i].iov_len, len - done);
    std::memcpy(iov[i].iov_base, s + done, n);
    done += n;
  }
  return done;
}

}  // namespace vdpu::nvme
