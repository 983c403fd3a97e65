#include "transport/vhost_user/memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vdpu::vhost_user {

Mapping::~Mapping() {
  if (base) ::munmap(base, len);
}

Result<MappingPtr> map_fd(int fd, uint64_t offset, uint64_t size, uint8_t** at) {
  if (size == 0) return make_error(Errc::kInvalidArgument, "empty mapping");
  struct stat st;
  if (::fstat(fd, &st) != 0) return make_error(Errc::kIo, std::string("fstat: ") + strerror(errno));
  if (!S_ISREG(st.st_mode))
    return make_error(Errc::kInvalidArgument, "memory fd is not a regular file (memfd, hugetlbfs, tmpfs)");
  uint64_t end;
  if (__builtin_add_overflow(offset, size, &end) || end > uint64_t(st.st_size))
    return make_error(Errc::kInvalidArgument, "range beyond the end of the memory file");
  // mmap wants the offset aligned to the page size of the file (st_blksize
  // is the huge page size on hugetlbfs).
  uint64_t align = uint64_t(sysconf(_SC_PAGESIZE));
  if (st.st_blksize > 0 && (uint64_t(st.st_blksize) & (uint64_t(st.st_blksize) - 1)) == 0 &&
      uint64_t(st.st_blksize) > align)
    align = uint64_t(st.st_blksize);
  const uint64_t start = offset & ~(align - 1);
  const uint64_t len = end - start;
  if (len > SIZE_MAX) return make_error(Errc::kInvalidArgument, "mapping too large");
  void* p = ::mmap(nullptr, size_t(len), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, off_t(start));
  if (p == MAP_FAILED) return make_error(Errc::kIo, std::string("mmap: ") + strerror(errno));
  auto m = std::make_shared<Mapping>(static_cast<uint8_t*>(p), size_t(len));
  *at = m->base + (offset - start);
  return m;
}

// ---------------------------------------------------------------------------
// MemTable

Status MemTable::validate(const MemRegion& r) {
  uint64_t end;
  if (r.memory_size == 0) return make_error(Errc::kInvalidArgument, "region of size 0");
  if (__builtin_add_overflow(r.guest_phys_addr, r.memory_size, &end) ||
      __builtin_add_overflow(r.userspace_addr, r.memory_size, &end) ||
      __builtin_add_overflow(r.mmap_offset, r.memory_size, &end))
    return make_error(Errc::kInvalidArgument, "region wraps the address space");
  // hostmem::MemoryMap treats user address 0 as "no user address".
  if (r.userspace_addr == 0) return make_error(Errc::kInvalidArgument, "region with user address 0");
  return {};
}

bool MemTable::overlaps(const MemRegion& a, const MemRegion& b) {
  auto ov = [](uint64_t s1, uint64_t s2, uint64_t n1, uint64_t n2) { return s1 < s2 + n2 && s2 < s1 + n1; };
  return ov(a.guest_phys_addr, b.guest_phys_addr, a.memory_size, b.memory_size) ||
         ov(a.userspace_addr, b.userspace_addr, a.memory_size, b.memory_size);
}

Status MemTable::set(const MemRegion* regions, UniqueFd* fds, uint32_t n) {
  std::vector<Entry> next;
  next.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    VDPU_TRY(validate(regions[i]));
    for (uint32_t j = 0; j < i; ++j)
      if (overlaps(regions[i], regions[j])) return make_error(Errc::kInvalidArgument, "regions overlap");
    uint8_t* hva = nullptr;
    auto m = map_fd(fds[i].get(), regions[i].mmap_offset, regions[i].memory_size, &hva);
    if (!m) return m.error();
    next.push_back({regions[i], std::move(*m), hva});
  }
  regions_ = std::move(next);  // old mappings live on in maps that use them
  return {};
}

Status MemTable::add(const MemRegion& r, UniqueFd fd) {
  VDPU_TRY(validate(r));
  if (regions_.size() >= kMaxSlots) return make_error(Errc::kNoMemory, "all memory slots in use");
  for (auto& e : regions_)
    if (overlaps(e.desc, r)) return make_error(Errc::kInvalidArgument, "region overlaps an existing one");
  uint8_t* hva = nullptr;
  auto m = map_fd(fd.get(), r.mmap_offset, r.memory_size, &hva);
  if (!m) return m.error();
  regions_.push_back({r, std::move(*m), hva});
  return {};
}

Status MemTable::remove(const MemRegion& r) {
  for (size_t i = 0; i < regions_.size(); ++i) {
    const MemRegion& d = regions_[i].desc;
    if (d.guest_phys_addr == r.guest_phys_addr && d.userspace_addr == r.userspace_addr &&
        d.memory_size == r.memory_size) {
      regions_.erase(regions_.begin() + long(i));
      return {};
    }
  }
  return make_error(Errc::kNotFound, "no such memory region");
}

int MemTable::find_uva(uint64_t uva, uint64_t len) const {
  for (size_t i = 0; i < regions_.size(); ++i) {
    const MemRegion& d = regions_[i].desc;
    if (uva - d.userspace_addr < d.memory_size && len <= d.memory_size - (uva - d.userspace_addr))
      return int(i);
  }
  return -1;
}

hostmem::MemoryMapPtr MemTable::build() const {
  std::vector<hostmem::Region> rs;
  std::vector<MappingPtr> keep;
  for (const Entry& e : regions_) {
    hostmem::Region r;
    r.gpa = e.desc.guest_phys_addr;
    r.size = e.desc.memory_size;
    r.user_addr = e.desc.userspace_addr;
    r.hva = e.hva;
    r.writable = true;
    // mmap_base stays null: the Mappings (kept by the deleter) own the memory.
    rs.push_back(r);
    keep.push_back(e.map);
  }
  return hostmem::MemoryMapPtr(new hostmem::MemoryMap(std::move(rs)),
                               [keep = std::move(keep)](const hostmem::MemoryMap* m) { delete m; });
}

// ---------------------------------------------------------------------------
// Inflight

virtio::InflightRegion InflightArea::queue(uint16_t qid, uint32_t ring_size) const {
  if (!base || qid >= num_queues || ring_size > queue_size) return {};
  const uint64_t stride = inflight_queue_stride(queue_size);
  return {base + uint64_t(qid) * stride, stride};
}

namespace {
Status check_geometry(uint16_t num_queues, uint16_t queue_size) {
  if (num_queues == 0 || queue_size == 0 || queue_size > kMaxQueueSize)
    return make_error(Errc::kInvalidArgument, "bad inflight geometry");
  return {};
}
}  // namespace

Result<InflightArea> create_inflight(uint16_t num_queues, uint16_t queue_size, UniqueFd* fd_out) {
  VDPU_TRY(check_geometry(num_queues, queue_size));
  const uint64_t size = inflight_queue_stride(queue_size) * num_queues;
  UniqueFd fd(::memfd_create("vdpu-vhost-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return make_error(Errc::kIo, std::string("memfd_create: ") + strerror(errno));
  if (::ftruncate(fd.get(), off_t(size)) != 0)
    return make_error(Errc::kIo, std::string("ftruncate: ") + strerror(errno));
  // Our own buffer: seal its size so nobody can shrink it under the mapping.
  ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  InflightArea a;
  auto m = map_fd(fd.get(), 0, size, &a.base);
  if (!m) return m.error();
  a.map = std::move(*m);
  a.size = size;
  a.num_queues = num_queues;
  a.queue_size = queue_size;
  *fd_out = std::move(fd);
  return a;
}

Result<InflightArea> map_inflight(int fd, const InflightDesc& d) {
  VDPU_TRY(check_geometry(d.num_queues, d.queue_size));
  if (d.mmap_size < inflight_queue_stride(d.queue_size) * d.num_queues)
    return make_error(Errc::kInvalidArgument, "inflight buffer smaller than its queues");
  InflightArea a;
  auto m = map_fd(fd, d.mmap_offset, d.mmap_size, &a.base);
  if (!m) return m.error();
  a.map = std::move(*m);
  a.size = d.mmap_size;
  a.num_queues = d.num_queues;
  a.queue_size = d.queue_size;
  return a;
}

}  // namespace vdpu::vhost_user
