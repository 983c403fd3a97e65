// A minimal virtio DRIVER for tests: owns "guest memory" (one region at a
// fixed guest-physical address), lays out a split or packed virtqueue in it,
// posts descriptor chains and reads used entries, as a guest driver would.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "hostmem/hostmem.h"
#include "virtio/device.h"
#include "virtio/ring.h"

namespace vdpu::virtio::test {

class GuestMem {
 public:
  static constexpr uint64_t kBase = 0x100000;
  explicit GuestMem(size_t bytes = 8 << 20) : buf_(bytes + 4096) {
    base_ = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(buf_.data()) + 4095) & ~uintptr_t(4095));
    size_ = bytes;
    hostmem::Region r;
    r.gpa = kBase;
    r.size = bytes;
    r.hva = base_;
    map_ = std::make_shared<hostmem::MemoryMap>(std::vector<hostmem::Region>{r});
  }
  uint64_t alloc(uint64_t len, uint64_t align = 16) {
    next_ = (next_ + align - 1) / align * align;
    uint64_t g = kBase + next_;
    next_ += len;
    if (next_ > size_) abort();
    return g;
  }
  uint8_t* ptr(uint64_t gpa) { return base_ + (gpa - kBase); }
  void write(uint64_t gpa, const void* p, size_t n) { std::memcpy(ptr(gpa), p, n); }
  void fill(uint64_t gpa, uint8_t v, size_t n) { std::memset(ptr(gpa), v, n); }
  hostmem::MemoryMapPtr map() const { return map_; }

 private:
  std::vector<uint8_t> buf_;
  uint8_t* base_;
  size_t size_;
  uint64_t next_ = 0;
  hostmem::MemoryMapPtr map_;
};

struct Buf {
  uint64_t gpa;
  uint32_t len;
  bool write;
};

// One virtqueue, driver side. Split by default; packed = true for §2.8.
class DriverQueue {
 public:
  DriverQueue(GuestMem& m, uint16_t size, bool packed = false) : m_(m), size_(size), packed_(packed) {
    desc_ = m.alloc(16ull * size, 16);
    m.fill(desc_, 0, 16ull * size);
    if (!packed) {
      avail_ = m.alloc(split_avail_bytes(size), 2);
      used_ = m.alloc(split_used_bytes(size), 4);
      m.fill(avail_, 0, split_avail_bytes(size));
      m.fill(used_, 0, split_used_bytes(size));
    } else {
      avail_ = m.alloc(4, 4);
      used_ = m.alloc(4, 4);
      m.fill(avail_, 0, 4);
      m.fill(used_, 0, 4);
    }
    free_.resize(size);
    for (uint16_t i = 0; i < size; ++i) free_[i] = uint16_t(size - 1 - i);
    lens_.resize(size);
    kick_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    call_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  }
  ~DriverQueue() {
    close(kick_);
    close(call_);
  }

  QueueConfig config(uint64_t features) const {
    QueueConfig c;
    c.size = size_;
    c.packed = packed_;
    c.desc = m_.ptr(desc_);
    c.avail = m_.ptr(avail_);
    c.used = m_.ptr(used_);
    c.kick_fd = kick_;
    c.call_fd = call_;
    c.features = features | (packed_ ? kFRingPacked : 0);
    if (packed_) c.last_avail_idx = c.last_used_idx = kPackedWrapBit;  // fresh ring: wrap counters 1
    c.mem = m_.map();
    return c;
  }

  // Posts a chain; returns its id (split: head index; packed: buffer id).
  uint16_t add(const std::vector<Buf>& bufs) {
    if (packed_) return add_packed(bufs);
    std::vector<uint16_t> idx;
    for (size_t i = 0; i < bufs.size(); ++i) {
      idx.push_back(free_.back());
      free_.pop_back();
    }
    for (size_t i = 0; i < bufs.size(); ++i) {
      VirtqDesc d{};
      d.addr = htole64(bufs[i].gpa);
      d.len = htole32(bufs[i].len);
      uint16_t fl = bufs[i].write ? VIRTQ_DESC_F_WRITE : 0;
      if (i + 1 < bufs.size()) {
        fl |= VIRTQ_DESC_F_NEXT;
        d.next = htole16(idx[i + 1]);
      }
      d.flags = htole16(fl);
      std::memcpy(m_.ptr(desc_) + 16ull * idx[i], &d, 16);
    }
    lens_[idx[0]] = uint16_t(bufs.size());
    publish(idx[0]);
    return idx[0];
  }
  // Raw descriptor write (malicious chains): desc[i] = d; publish(head).
  void raw_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    VirtqDesc d{htole64(addr), htole32(len), htole16(flags), htole16(next)};
    std::memcpy(m_.ptr(desc_) + 16ull * i, &d, 16);
  }
  void publish(uint16_t head) {
    uint8_t* a = m_.ptr(avail_);
    st16(a + kAvailRingOff + 2u * (avail_idx_ % size_), head);
    ++avail_idx_;
    st16_release(a + kAvailIdxOff, avail_idx_);
  }

  // Next used entry, if any: (id, len).
  std::optional<std::pair<uint16_t, uint32_t>> used() {
    if (packed_) return used_packed();
    uint8_t* u = m_.ptr(used_);
    if (ld16_acquire(u + kUsedIdxOff) == used_idx_) return std::nullopt;
    VirtqUsedElem e;
    std::memcpy(&e, u + kUsedRingOff + 8u * (used_idx_ % size_), 8);
    ++used_idx_;
    uint16_t id = uint16_t(le32toh(e.id));
    // return the chain's descriptors to the free list
    uint16_t i = id;
    for (uint16_t k = 0; k < lens_[id]; ++k) {
      free_.push_back(i);
      VirtqDesc d = load_desc(m_.ptr(desc_) + 16ull * i);
      i = d.next;
    }
    return std::make_pair(id, le32toh(e.len));
  }
  std::vector<std::pair<uint16_t, uint32_t>> all_used() {
    std::vector<std::pair<uint16_t, uint32_t>> v;
    while (auto u = used()) v.push_back(*u);
    return v;
  }
  bool kicked_call() {
    uint64_t v;
    return read(call_, &v, sizeof(v)) == sizeof(v);
  }
  void kick() {
    uint64_t one = 1;
    (void)!write(kick_, &one, sizeof(one));
  }
  uint16_t size() const { return size_; }

 private:
  uint16_t add_packed(const std::vector<Buf>& bufs) {
    uint16_t id = next_id_++ % size_;
    uint16_t first = avail_pos_;
    bool first_wrap = avail_wrap_;
    uint16_t first_flags = 0;
    for (size_t i = 0; i < bufs.size(); ++i) {
      PackedDesc d{};
      d.addr = htole64(bufs[i].gpa);
      d.len = htole32(bufs[i].len);
      d.id = htole16(id);
      uint16_t fl = bufs[i].write ? VIRTQ_DESC_F_WRITE : 0;
      if (i + 1 < bufs.size()) fl |= VIRTQ_DESC_F_NEXT;
      fl |= avail_wrap_ ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
      uint8_t* p = m_.ptr(desc_) + 16ull * avail_pos_;
      if (i == 0) {
        first_flags = fl;
        d.flags = 0;  // written last
        std::memcpy(p, &d, 16);
        // make the head unavailable until published: AVAIL/USED bits inverted
        uint16_t hide = first_wrap ? VIRTQ_DESC_F_USED : VIRTQ_DESC_F_AVAIL;
        st16(p + 14, hide);
      } else {
        d.flags = htole16(fl);
        std::memcpy(p, &d, 16);
      }
      if (++avail_pos_ == size_) {
        avail_pos_ = 0;
        avail_wrap_ = !avail_wrap_;
      }
    }
    lens_[id] = uint16_t(bufs.size());
    st16_release(m_.ptr(desc_) + 16ull * first + 14, first_flags);
    return id;
  }
  std::optional<std::pair<uint16_t, uint32_t>> used_packed() {
    uint8_t* p = m_.ptr(desc_) + 16ull * used_pos_;
    uint16_t fl = ld16_acquire(p + 14);
    bool avail = fl & VIRTQ_DESC_F_AVAIL, used = fl & VIRTQ_DESC_F_USED;
    if (avail != used || used != used_wrap_) return std::nullopt;
    PackedDesc d = load_packed_desc(p);
    uint16_t n = lens_[uint16_t(d.id)];
    used_pos_ = uint16_t(used_pos_ + n);
    if (used_pos_ >= size_) {
      used_pos_ = uint16_t(used_pos_ - size_);
      used_wrap_ = !used_wrap_;
    }
    return std::make_pair(uint16_t(d.id), uint32_t(d.len));
  }

  GuestMem& m_;
  uint16_t size_;
  bool packed_;
  uint64_t desc_ = 0, avail_ = 0, used_ = 0;
  std::vector<uint16_t> free_;
  std::vector<uint16_t> lens_;  // descriptors per chain, by head/id
  uint16_t avail_idx_ = 0, used_idx_ = 0;
  // packed
  uint16_t next_id_ = 0, avail_pos_ = 0, used_pos_ = 0;
  bool avail_wrap_ = true, used_wrap_ = true;
  int kick_ = -1, call_ = -1;
};

}  // namespace vdpu::virtio::test
