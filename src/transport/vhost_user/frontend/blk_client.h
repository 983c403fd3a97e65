// A virtio-blk driver over vhost-user: BlkQueue drives one split virtqueue
// with pre-built request slots (header, data buffer, status byte in guest
// memory, three fixed descriptors each), so the I/O path is stores into shared
// memory and nothing else: no allocation, no syscall unless the device asked
// for a kick. BlkClient does the vhost-user setup (features, config, memory
// table, vrings) and offers synchronous helpers for tests.
//
// Threads: a BlkQueue belongs to the thread polling it; BlkClient's control
// methods run on the thread that owns the Frontend.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "transport/vhost_user/frontend/frontend.h"
#include "transport/vhost_user/frontend/split_queue.h"
#include "virtio/blk/blk_spec.h"

namespace vdpu::vhost_user::fe {

class BlkQueue {
 public:
  // depth request slots of at most max_io data bytes. descs: descriptors per
  // request: 3 (header | data | status, as Linux does) or 2 (header+data |
  // status for writes, header | data+status for reads: any layout is valid
  // for VIRTIO 1 devices, §2.6.4). queue_size >= descs * depth.
  // Errors: kInvalidArgument, kNoMemory (guest memory too small), kIo (eventfd).
  static Result<std::unique_ptr<BlkQueue>> create(GuestMemory& mem, uint16_t queue_size, uint32_t depth,
                                                  uint32_t max_io, uint32_t descs = 3);
  // Guest memory one queue needs (for sizing GuestMemory).
  static uint64_t mem_bytes(uint16_t queue_size, uint32_t depth, uint32_t max_io);

  SplitQueue& vq() { return vq_; }
  uint32_t depth() const { return depth_; }
  uint32_t max_io() const { return max_io_; }
  uint32_t descs() const { return descs_; }
  // The slot's data buffer (4 KiB aligned).
  uint8_t* data(uint32_t slot) { return slots_[slot].data; }
  int kick_fd() const { return kick_.get(); }
  int call_fd() const { return call_.get(); }
  void set_event_idx(bool on) { event_idx_ = on; }
  uint64_t kicks() const { return kicks_; }
  uint64_t bad_completions() const { return bad_; }

  // Fills the slot's header and descriptors and queues it (invisible until
  // flush()). type: VIRTIO_BLK_T_*; len: data bytes (0 for flush).
  void prep(uint32_t slot, uint32_t type, uint64_t sector, uint32_t len) {
    Slot& s = slots_[slot];
    s.hdr->type = type;
    s.hdr->sector = sector;
    if (s.type != type || s.len != len) wire(slot, type, len);  // descriptors only when the shape changes
    *s.status = 0xff;
    vq_.add_avail(uint16_t(slot * descs_));
  }
  // Makes prepared requests visible; kicks only if the device wants it.
  void flush();
  // fn(slot, status, used_len) for each completion; returns how many.
  template <class F>
  uint32_t reap(F&& fn) {
    const uint16_t end = vq_.used_idx();
    uint16_t& i = vq_.last_used();
    uint32_t n = 0;
    for (; i != end; ++i, ++n) {
      const virtio::VirtqUsedElem e = vq_.used_elem(i);
      const uint32_t slot = e.id / descs_;
      if (slot >= depth_ || e.id % descs_) {  // not one of our heads
        ++bad_;
        continue;
      }
      fn(slot, *slots_[slot].status, e.len);
    }
    return n;
  }

 private:
  struct Slot {
    virtio::blk::VirtioBlkOutHdr* hdr;
    uint8_t* data;
    volatile uint8_t* status;
    uint32_t type = ~0u;  // shape the descriptors are wired for
    uint32_t len = ~0u;
  };
  void wire(uint32_t slot, uint32_t type, uint32_t len);
  GuestMemory* mem_ = nullptr;
  SplitQueue vq_;
  uint32_t depth_ = 0;
  uint32_t max_io_ = 0;
  uint32_t descs_ = 3;
  std::vector<Slot> slots_;
  UniqueFd kick_, call_;
  bool event_idx_ = false;
  uint64_t kicks_ = 0;
  uint64_t bad_ = 0;
};

struct BlkClientOptions {
  uint16_t num_queues = 1;
  uint16_t queue_size = 256;
  uint32_t depth = 64;            // request slots per queue (<= queue_size / 3)
  uint32_t max_io = 128 * 1024;   // bytes per request
  uint32_t descs = 3;             // descriptors per request (3 or 2), see BlkQueue
  uint64_t extra_mem = 0;         // additional guest memory (tests)
  bool hugepages = false;
  bool mem_slots = false;         // ADD_MEM_REG instead of SET_MEM_TABLE when offered
  bool inflight = false;          // GET_INFLIGHT_FD + SET_INFLIGHT_FD when offered
  bool event_idx = false;         // negotiate VIRTIO_RING_F_EVENT_IDX when offered
  bool poll_kick = false;         // SET_VRING_KICK with NOFD (back-end polls)
};

class BlkClient {
 public:
  // Connects and negotiates (SET_OWNER, features, protocol features, config).
  // Queues are not started: call start().
  static Result<std::unique_ptr<BlkClient>> connect(const std::string& path, const BlkClientOptions& o);
  static Result<std::unique_ptr<BlkClient>> attach(std::unique_ptr<Frontend> fe, const BlkClientOptions& o);

  Frontend& fe() { return *fe_; }
  GuestMemory& mem() { return *mem_; }
  BlkQueue& queue(uint16_t i) { return *queues_[i]; }
  uint16_t num_queues() const { return uint16_t(queues_.size()); }
  uint64_t features() const { return features_; }
  uint64_t capacity_sectors() const { return capacity_; }  // 512-byte sectors
  uint32_t blk_size() const { return blk_size_; }

  // SET_FEATURES, memory table, inflight, then every queue (NUM, BASE, ADDR,
  // KICK, CALL, ENABLE), as QEMU's vhost_dev_start does.
  Status start();
  // GET_VRING_BASE on every queue (after SET_VRING_ENABLE 0).
  Status stop();
  // Synchronous request on queue q using slot 0 (tests): returns the status
  // byte. buf: len bytes (read into / written from). Errors: kTimeout.
  Result<uint8_t> io(uint16_t q, uint32_t type, uint64_t sector, void* buf, uint32_t len,
                     int timeout_ms = 5000);

 private:
  BlkClient() = default;
  std::unique_ptr<Frontend> fe_;
  std::unique_ptr<GuestMemory> mem_;
  std::vector<std::unique_ptr<BlkQueue>> queues_;
  BlkClientOptions opts_;
  uint64_t features_ = 0;
  uint64_t capacity_ = 0;
  uint32_t blk_size_ = 512;
  UniqueFd inflight_fd_;
};

}  // namespace vdpu::vhost_user::fe
