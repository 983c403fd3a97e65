// Host (guest) memory registered by a transport: vhost-user memory tables,
// vfio-user DMA regions. Translates guest-physical (or IOVA) ranges into
// bounds-checked pointers/iovecs in our address space. This is the one place
// where guest addresses are trusted or refused.
//
// A MemoryMap is immutable once built. Transports build a new map on the
// control plane whenever regions change and hand it to each queue's reactor by
// message (the old map stays alive until every reactor has switched:
// shared_ptr).
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "base/result.h"

namespace vdpu::hostmem {

struct Region {
  uint64_t gpa = 0;        // guest physical address / IOVA of the first byte
  uint64_t size = 0;       // bytes
  uint64_t user_addr = 0;  // frontend's virtual address (vhost-user), 0 if none
  uint8_t* hva = nullptr;  // where it is mapped in this process
  bool writable = true;
  // Mapping to release when the map dies (munmap(mmap_base, mmap_len)).
  void* mmap_base = nullptr;
  size_t mmap_len = 0;
};

class MemoryMap {
 public:
  MemoryMap() = default;
  // Takes ownership of the regions' mappings (munmaps them in the destructor
  // unless release_ownership() was called on the region list's source).
  explicit MemoryMap(std::vector<Region> regions);
  ~MemoryMap();
  MemoryMap(const MemoryMap&) = delete;
  MemoryMap& operator=(const MemoryMap&) = delete;

  // Pointer to [gpa, gpa+len) if it lies inside one region, else nullptr.
  // Hot path: inline, linear over a handful of regions.
  uint8_t* translate(uint64_t gpa, uint64_t len, bool write = false) const noexcept {
    for (const Region& r : regions_) {
      if (gpa - r.gpa < r.size && len <= r.size - (gpa - r.gpa)) {
        if (write && !r.writable) return nullptr;
        return r.hva + (gpa - r.gpa);
      }
    }
    return nullptr;
  }

  // Appends iovecs covering [gpa, gpa+len), splitting at region boundaries.
  // Returns the number appended, or -1 if any byte is unmapped or more than
  // max_iov entries would be needed. len == 0 appends nothing.
  int to_iov(uint64_t gpa, uint64_t len, iovec* iov, int max_iov, bool write = false) const noexcept;

  // vhost-user: frontend virtual address -> our pointer (vring addresses).
  uint8_t* translate_uva(uint64_t uva, uint64_t len) const noexcept;

  const std::vector<Region>& regions() const { return regions_; }

 private:
  std::vector<Region> regions_;
};

using MemoryMapPtr = std::shared_ptr<const MemoryMap>;

}  // namespace vdpu::hostmem
