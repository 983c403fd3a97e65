// Front-end memory for the vhost-user back-end: the regions of SET_MEM_TABLE /
// ADD_MEM_REG / REM_MEM_REG mapped into this process, and the inflight-I/O
// shared buffer (GET_INFLIGHT_FD / SET_INFLIGHT_FD).
//
// Each mmap is a refcounted Mapping, so a hostmem::MemoryMap built from the
// table keeps alive exactly the mappings it points into: a queue that still
// runs on an old map never sees its memory unmapped under it.
//
// Threads: control plane (main reactor) only; the MemoryMaps it builds are
// immutable and may be read from any reactor.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/result.h"
#include "hostmem/hostmem.h"
#include "transport/vhost_user/message.h"
#include "transport/vhost_user/protocol.h"
#include "virtio/device.h"

namespace vdpu::vhost_user {

// One mmap; munmapped when the last reference goes.
struct Mapping {
  uint8_t* base = nullptr;
  size_t len = 0;
  Mapping(uint8_t* b, size_t l) : base(b), len(l) {}
  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
};
using MappingPtr = std::shared_ptr<Mapping>;

// Maps [offset, offset+size) of fd read-write and shared. Refuses fds that
// are not regular files (memfd, hugetlbfs, tmpfs) and ranges beyond the end
// of the file: touching such pages would raise SIGBUS in the daemon.
// Returns the mapping and, in *at, the address of `offset`.
// Errors: kInvalidArgument (range, file type), kIo (fstat/mmap).
Result<MappingPtr> map_fd(int fd, uint64_t offset, uint64_t size, uint8_t** at);

class MemTable {
 public:
  // Most regions ADD_MEM_REG may add (reported by GET_MAX_MEM_SLOTS).
  static constexpr uint32_t kMaxSlots = 32;

  // SET_MEM_TABLE: replaces every region. fds[i] belongs to regions[i].
  // All-or-nothing: on error the table is unchanged.
  // Errors: kInvalidArgument (empty/overflowing/overlapping region, bad fd).
  Status set(const MemRegion* regions, UniqueFd* fds, uint32_t n);
  // ADD_MEM_REG. Errors: as set(), kNoMemory when kMaxSlots are used.
  Status add(const MemRegion& r, UniqueFd fd);
  // REM_MEM_REG: the region with this guest address, user address and size
  // (the mmap offset is ignored, as the spec says). Errors: kNotFound.
  Status remove(const MemRegion& r);
  void clear() { regions_.clear(); }

  bool empty() const { return regions_.empty(); }
  size_t size() const { return regions_.size(); }
  // Index of the region holding user address range [uva, uva+len), or -1.
  int find_uva(uint64_t uva, uint64_t len) const;
  // A MemoryMap of the current regions (empty when there are none). It holds
  // references to the mappings it uses.
  hostmem::MemoryMapPtr build() const;
  // The region at index i (for REM_MEM_REG overlap checks).
  const MemRegion& region(size_t i) const { return regions_[i].desc; }

 private:
  struct Entry {
    MemRegion desc;
    MappingPtr map;
    uint8_t* hva;
  };
  static Status validate(const MemRegion& r);
  static bool overlaps(const MemRegion& a, const MemRegion& b);
  std::vector<Entry> regions_;
};

// The inflight-I/O tracking buffer ("Inflight I/O tracking"): one
// QueueRegionSplit per queue, inflight_queue_stride(queue_size) apart.
struct InflightArea {
  MappingPtr map;
  uint8_t* base = nullptr;
  uint64_t size = 0;
  uint16_t num_queues = 0;
  uint16_t queue_size = 0;

  // The area of queue qid for a ring of ring_size entries, or an empty region
  // when there is none (no buffer, qid out of range, ring larger than the
  // buffer was sized for).
  virtio::InflightRegion queue(uint16_t qid, uint32_t ring_size) const;
};

// GET_INFLIGHT_FD: a new zeroed memfd for num_queues queues of queue_size.
// Returns the area and the fd to send. Errors: kInvalidArgument, kIo.
Result<InflightArea> create_inflight(uint16_t num_queues, uint16_t queue_size, UniqueFd* fd_out);
// SET_INFLIGHT_FD: maps the front-end's buffer. Errors: kInvalidArgument (the
// size does not cover num_queues * stride, bad range), kIo.
Result<InflightArea> map_inflight(int fd, const InflightDesc& d);

}  // namespace vdpu::vhost_user
