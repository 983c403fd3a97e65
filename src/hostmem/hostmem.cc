#include "hostmem/hostmem.h"

#include <sys/mman.h>

namespace vdpu::hostmem {

MemoryMap::MemoryMap(std::vector<Region> regions) : regions_(std::move(regions)) {}

MemoryMap::~MemoryMap() {
  for (auto& r : regions_)
    if (r.mmap_base) munmap(r.mmap_base, r.mmap_len);
}

int MemoryMap::to_iov(uint64_t gpa, uint64_t len, iovec* iov, int max_iov, bool write) const noexcept {
  int n = 0;
  while (len > 0) {
    const Region* hit = nullptr;
    for (const Region& r : regions_)
      if (gpa - r.gpa < r.size) {
        hit = &r;
        break;
      }
    if (!hit || (write && !hit->writable) || n >= max_iov) return -1;
    uint64_t off = gpa - hit->gpa;
    uint64_t chunk = std::min<uint64_t>(len, hit->size - off);
    iov[n].iov_base = hit->hva + off;
    iov[n].iov_len = chunk;
    ++n;
    gpa += chunk;
    len -= chunk;
  }
  return n;
}

uint8_t* MemoryMap::translate_uva(uint64_t uva, uint64_t len) const noexcept {
  for (const Region& r : regions_)
    if (r.user_addr && uva - r.user_addr < r.size && len <= r.size - (uva - r.user_addr))
      return r.hva + (uva - r.user_addr);
  return nullptr;
}

}  // namespace vdpu::hostmem
