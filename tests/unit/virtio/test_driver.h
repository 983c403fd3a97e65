// Driver-side helpers for virtio unit tests: a "guest memory" registered in
// a hostmem::MemoryMap, and a driver view of one split or packed virtqueue
// that builds chains (direct or indirect), publishes them, reads used
// entries and pokes at notification-suppression fields. Also lets tests
// write raw (malicious) descriptors. Reusable by the virtio-net tests.
//
// Threads: single-threaded; the device may run on another thread as long as
// the test synchronises through the ring (that is what the ring is for).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "hostmem/hostmem.h"
#include "virtio/device.h"

namespace vdpu::virtio::test {

// Guest memory: `size` bytes at guest-physical `gpa_base`. With split = true
// it is two regions (contiguous in guest-physical space, not in ours) so
// buffers can straddle a region boundary. `ro_tail` bytes at the end form a
// separate read-only region.
class GuestMemory {
 public:
  explicit GuestMemory(size_t size = 8 << 20, uint64_t gpa_base = 0x100000, bool split = false,
                       size_t ro_tail = 0);
  hostmem::MemoryMapPtr map() const { return map_; }
  uint64_t base() const { return base_; }
  uint64_t end() const { return base_ + size_; }
  // Bump allocator (never frees). Returns a guest-physical address.
  uint64_t alloc(size_t len, size_t align = 16);
  // Our pointer for gpa (must not straddle regions for len bytes).
  uint8_t* hva(uint64_t gpa, size_t len = 1) const;
  void write(uint64_t gpa, const void* src, size_t len);
  void read(uint64_t gpa, void* dst, size_t len) const;
  void fill(uint64_t gpa, uint8_t v, size_t len);
  // Address where the two regions meet (split mode), else 0.
  uint64_t boundary() const { return boundary_; }
  // Start of the read-only tail, else 0.
  uint64_t ro_start() const { return ro_start_; }

 private:
  std::vector<std::unique_ptr<uint8_t[]>> bufs_;
  hostmem::MemoryMapPtr map_;
  uint64_t base_, size_, next_, boundary_ = 0, ro_start_ = 0;
};

struct Buf {
  uint64_t gpa = 0;
  uint32_t len = 0;
  bool write = false;  // device-writable
};

struct Used {
  uint32_t id = 0;
  uint32_t len = 0;
};

class TestDriverQueue {
 public:
  // Allocates the rings in mem. features: negotiated (EVENT_IDX etc.).
  TestDriverQueue(GuestMemory& mem, uint16_t size, bool packed, uint64_t features = 0);

  // The QueueConfig a transport would hand to the device.
  QueueConfig config(int kick_fd = -1, int call_fd = -1) const;

  // Adds one chain (direct, or as one indirect table) and, unless
  // publish == false, makes it available at once. Returns the id the device
  // will report (split: head index; packed: buffer id), or -1 if the ring is
  // full.
  int add(const std::vector<Buf>& bufs, bool indirect = false, bool publish = true);
  // Split: publishes chains added with publish == false (one avail->idx store).
  void publish();
  // Next used entry, if any (frees the chain's descriptors / id).
  std::optional<Used> get_used();
  // Number of chains added and not yet seen used.
  uint32_t outstanding() const { return outstanding_; }

  // --- notification suppression, driver side ---
  void set_no_interrupt(bool on);         // split VIRTQ_AVAIL_F_NO_INTERRUPT
  void set_used_event(uint16_t v);        // split used_event (EVENT_IDX)
  void set_driver_event(uint16_t flags, uint16_t off_wrap = 0);  // packed
  // What the device asked for:
  bool device_no_notify() const;          // split VIRTQ_USED_F_NO_NOTIFY
  uint16_t avail_event() const;           // split avail_event (EVENT_IDX)
  uint16_t device_event_flags() const;    // packed device event suppression flags
  // Would a driver kick now for the chains published since `old_avail`?
  // (split only: EVENT_IDX avail_event or NO_NOTIFY.)
  bool kick_needed(uint16_t old_avail) const;

  // --- raw access for malformed rings ---
  uint16_t size() const { return size_; }
  bool packed() const { return packed_; }
  uint16_t avail_idx() const { return avail_idx_; }
  uint16_t used_idx() const;  // split: used->idx as the device wrote it
  // Split: writes desc[i] and puts `head` in the avail ring (publish bumps idx).
  void raw_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
  void raw_avail(uint16_t head, bool publish = true);
  void raw_set_avail_idx(uint16_t idx);
  // Packed: writes ring[pos] with the AVAIL/USED bits of the current driver
  // wrap counter added to flags (avail = true) and advances nothing.
  void raw_packed_desc(uint16_t pos, uint64_t addr, uint32_t len, uint16_t id, uint16_t flags,
                       bool avail = true);
  // An indirect table in guest memory holding `descs` (split layout also used
  // for packed: both are 16 bytes; packed id = next field).
  uint64_t raw_table(const std::vector<std::array<uint64_t, 4>>& descs);
  // Sets the initial indices (must be called before config() / any add).
  void set_start(uint16_t avail_idx, uint16_t used_idx);

  uint64_t desc_gpa() const { return desc_; }
  uint64_t avail_gpa() const { return avail_; }
  uint64_t used_gpa() const { return used_; }

 private:
  int add_split(const std::vector<Buf>& bufs, bool indirect, bool publish);
  int add_packed(const std::vector<Buf>& bufs, bool indirect);
  uint64_t table_for(uint16_t slot) const { return tables_ + uint64_t(slot) * kMaxIndirect * 16; }

  static constexpr uint32_t kMaxIndirect = 64;
  GuestMemory& mem_;
  uint16_t size_;
  bool packed_;
  uint64_t features_;
  uint64_t desc_, avail_, used_, tables_;
  uint32_t outstanding_ = 0;
  // split
  std::vector<uint16_t> free_;                  // free descriptor indices
  std::vector<std::vector<uint16_t>> chain_of_;  // head -> descriptors
  uint16_t avail_idx_ = 0;                       // next avail idx (shadow)
  uint16_t start_avail_ = 0, start_used_ = 0;     // where config() tells the device to start
  uint16_t last_used_ = 0;
  // packed
  uint16_t next_avail_ = 0, next_used_ = 0;
  bool avail_wrap_ = true, used_wrap_ = true;
  std::vector<uint16_t> free_ids_;
  std::vector<uint16_t> ndesc_of_;  // id -> ring slots
};

}  // namespace vdpu::virtio::test
