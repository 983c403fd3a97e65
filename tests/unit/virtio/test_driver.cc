#include "test_driver.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>

#include "virtio/ring.h"

namespace vdpu::virtio::test {

// ------------------------------------------------------------------ GuestMemory

GuestMemory::GuestMemory(size_t size, uint64_t gpa_base, bool split, size_t ro_tail)
    : base_(gpa_base), size_(size), next_(gpa_base) {
  std::vector<hostmem::Region> regions;
  auto add_region = [&](uint64_t gpa, size_t len, bool writable) {
    bufs_.emplace_back(new uint8_t[len]());  // 16-byte aligned (operator new[])
    hostmem::Region r;
    r.gpa = gpa;
    r.size = len;
    r.hva = bufs_.back().get();
    r.writable = writable;
    regions.push_back(r);
  };
  size_t rw = size - ro_tail;
  if (split) {
    boundary_ = gpa_base + rw / 2;
    add_region(gpa_base, rw / 2, true);
    add_region(boundary_, rw - rw / 2, true);
  } else {
    add_region(gpa_base, rw, true);
  }
  if (ro_tail) {
    ro_start_ = gpa_base + rw;
    add_region(ro_start_, ro_tail, false);
  }
  map_ = std::make_shared<hostmem::MemoryMap>(std::move(regions));
}

uint64_t GuestMemory::alloc(size_t len, size_t align) {
  uint64_t a = (next_ + align - 1) / align * align;
  // Never hand out a block that straddles the region boundary.
  if (boundary_ && a < boundary_ && a + len > boundary_) a = boundary_;
  if (a + len > end() - (ro_start_ ? end() - ro_start_ : 0)) throw std::runtime_error("guest memory exhausted");
  next_ = a + len;
  return a;
}

uint8_t* GuestMemory::hva(uint64_t gpa, size_t len) const {
  uint8_t* p = map_->translate(gpa, len);
  if (!p) throw std::runtime_error("gpa not mapped");
  return p;
}

void GuestMemory::write(uint64_t gpa, const void* src, size_t len) {
  iovec iov[4];
  int n = map_->to_iov(gpa, len, iov, 4);
  if (n < 0) throw std::runtime_error("write outside guest memory");
  auto* s = static_cast<const uint8_t*>(src);
  for (int i = 0; i < n; ++i) {
    std::memcpy(iov[i].iov_base, s, iov[i].iov_len);
    s += iov[i].iov_len;
  }
}

void GuestMemory::read(uint64_t gpa, void* dst, size_t len) const {
  iovec iov[4];
  int n = map_->to_iov(gpa, len, iov, 4);
  if (n < 0) throw std::runtime_error("read outside guest memory");
  auto* d = static_cast<uint8_t*>(dst);
  for (int i = 0; i < n; ++i) {
    std::memcpy(d, iov[i].iov_base, iov[i].iov_len);
    d += iov[i].iov_len;
  }
}

void GuestMemory::fill(uint64_t gpa, uint8_t v, size_t len) {
  std::vector<uint8_t> b(len, v);
  write(gpa, b.data(), len);
}

// ------------------------------------------------------------------ TestDriverQueue

TestDriverQueue::TestDriverQueue(GuestMemory& mem, uint16_t size, bool packed, uint64_t features)
    : mem_(mem), size_(size), packed_(packed), features_(features) {
  desc_ = mem.alloc(16ull * size, 16);
  if (packed) {
    avail_ = mem.alloc(4, 4);  // driver event suppression
    used_ = mem.alloc(4, 4);   // device event suppression
    for (uint16_t i = 0; i < size; ++i) free_ids_.push_back(uint16_t(size - 1 - i));
    ndesc_of_.assign(size, 0);
  } else {
    avail_ = mem.alloc(split_avail_bytes(size), 2);
    used_ = mem.alloc(split_used_bytes(size), 4);
    for (uint16_t i = 0; i < size; ++i) free_.push_back(uint16_t(size - 1 - i));
    chain_of_.resize(size);
  }
  tables_ = mem.alloc(uint64_t(size) * kMaxIndirect * 16, 16);
}

void TestDriverQueue::set_start(uint16_t avail_idx, uint16_t used_idx) {
  avail_idx_ = start_avail_ = avail_idx;
  last_used_ = start_used_ = used_idx;
  st16(mem_.hva(avail_ + kAvailIdxOff, 2), avail_idx);
  st16(mem_.hva(used_ + kUsedIdxOff, 2), used_idx);
}

QueueConfig TestDriverQueue::config(int kick_fd, int call_fd) const {
  QueueConfig c;
  c.size = size_;
  c.packed = packed_;
  c.desc = mem_.hva(desc_, 16ull * size_);
  c.avail = mem_.hva(avail_, packed_ ? 4 : split_avail_bytes(size_));
  c.used = mem_.hva(used_, packed_ ? 4 : split_used_bytes(size_));
  // Fresh queues: split index 0 (or set_start), packed position 0 with wrap 1.
  c.last_avail_idx = packed_ ? kPackedWrapBit : start_avail_;
  c.last_used_idx = packed_ ? kPackedWrapBit : start_used_;
  c.kick_fd = kick_fd;
  c.call_fd = call_fd;
  c.features = features_;
  c.mem = mem_.map();
  return c;
}

int TestDriverQueue::add(const std::vector<Buf>& bufs, bool indirect, bool publish_now) {
  int id = packed_ ? add_packed(bufs, indirect) : add_split(bufs, indirect, publish_now);
  if (id >= 0) ++outstanding_;
  return id;
}

int TestDriverQueue::add_split(const std::vector<Buf>& bufs, bool indirect, bool publish_now) {
  size_t need = indirect ? 1 : bufs.size();
  if (free_.size() < need || bufs.empty() || (indirect && bufs.size() > kMaxIndirect)) return -1;
  std::vector<uint16_t> ids;
  for (size_t i = 0; i < need; ++i) {
    ids.push_back(free_.back());
    free_.pop_back();
  }
  uint16_t head = ids[0];
  if (indirect) {
    uint64_t t = table_for(head);
    for (size_t i = 0; i < bufs.size(); ++i) {
      VirtqDesc d{htole64(bufs[i].gpa), htole32(bufs[i].len),
                  htole16(uint16_t((bufs[i].write ? VIRTQ_DESC_F_WRITE : 0) |
                                   (i + 1 < bufs.size() ? VIRTQ_DESC_F_NEXT : 0))),
                  htole16(uint16_t(i + 1))};
      mem_.write(t + 16 * i, &d, 16);
    }
    raw_desc(head, t, uint32_t(16 * bufs.size()), VIRTQ_DESC_F_INDIRECT, 0);
  } else {
    for (size_t i = 0; i < bufs.size(); ++i) {
      bool more = i + 1 < bufs.size();
      raw_desc(ids[i], bufs[i].gpa, bufs[i].len,
               uint16_t((bufs[i].write ? VIRTQ_DESC_F_WRITE : 0) | (more ? VIRTQ_DESC_F_NEXT : 0)),
               more ? ids[i + 1] : 0);
    }
  }
  chain_of_[head] = ids;
  raw_avail(head, publish_now);
  return head;
}

int TestDriverQueue::add_packed(const std::vector<Buf>& bufs, bool indirect) {
  size_t need = indirect ? 1 : bufs.size();
  uint32_t used_slots = 0;
  for (uint16_t n : ndesc_of_) used_slots += n;
  if (free_ids_.empty() || used_slots + need > size_ || bufs.empty() ||
      (indirect && bufs.size() > kMaxIndirect))
    return -1;
  uint16_t id = free_ids_.back();
  free_ids_.pop_back();
  uint16_t first = next_avail_;
  bool first_wrap = avail_wrap_;
  uint16_t first_flags = 0;
  auto put = [&](uint64_t addr, uint32_t len, uint16_t flags) {
    uint16_t f = uint16_t(flags | (avail_wrap_ ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED));
    PackedDesc d{htole64(addr), htole32(len), htole16(id), 0};
    uint8_t* p = mem_.hva(desc_ + 16ull * next_avail_, 16);
    std::memcpy(p, &d, 14);
    if (next_avail_ == first && avail_wrap_ == first_wrap) first_flags = f;  // published last
    else st16_release(p + 14, f);
    if (++next_avail_ == size_) {
      next_avail_ = 0;
      avail_wrap_ = !avail_wrap_;
    }
  };
  if (indirect) {
    uint64_t t = table_for(id);
    for (size_t i = 0; i < bufs.size(); ++i) {
      PackedDesc d{htole64(bufs[i].gpa), htole32(bufs[i].len), 0,
                   htole16(bufs[i].write ? VIRTQ_DESC_F_WRITE : 0)};
      mem_.write(t + 16 * i, &d, 16);
    }
    put(t, uint32_t(16 * bufs.size()), VIRTQ_DESC_F_INDIRECT);
  } else {
    for (size_t i = 0; i < bufs.size(); ++i)
      put(bufs[i].gpa, bufs[i].len,
          uint16_t((bufs[i].write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < bufs.size() ? VIRTQ_DESC_F_NEXT : 0)));
  }
  ndesc_of_[id] = uint16_t(need);
  // §2.8.21: the first descriptor's flags are written last, after a barrier.
  st16_release(mem_.hva(desc_ + 16ull * first + 14, 2), first_flags);
  return id;
}

void TestDriverQueue::publish() {
  if (!packed_) st16_release(mem_.hva(avail_ + kAvailIdxOff, 2), avail_idx_);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

std::optional<Used> TestDriverQueue::get_used() {
  if (!packed_) {
    uint16_t idx = ld16_acquire(mem_.hva(used_ + kUsedIdxOff, 2));
    if (idx == last_used_) return std::nullopt;
    VirtqUsedElem e;
    mem_.read(used_ + kUsedRingOff + 8ull * (last_used_ % size_), &e, 8);
    ++last_used_;
    Used u{le32toh(e.id), le32toh(e.len)};
    if (u.id < size_)
      for (uint16_t d : chain_of_[u.id]) free_.push_back(d);
    if (u.id < size_) chain_of_[u.id].clear();
    --outstanding_;
    return u;
  }
  uint8_t* p = mem_.hva(desc_ + 16ull * next_used_, 16);
  uint16_t f = ld16_acquire(p + 14);
  bool used = f & VIRTQ_DESC_F_USED, avail = f & VIRTQ_DESC_F_AVAIL;
  if (used != used_wrap_ || avail != used_wrap_) return std::nullopt;
  PackedDesc d;
  std::memcpy(&d, p, 16);
  Used u{le16toh(d.id), le32toh(d.len)};
  uint16_t n = u.id < size_ ? ndesc_of_[u.id] : 1;
  if (u.id < size_) {
    ndesc_of_[u.id] = 0;
    free_ids_.push_back(uint16_t(u.id));
  }
  uint32_t pos = uint32_t(next_used_) + n;
  if (pos >= size_) {
    pos -= size_;
    used_wrap_ = !used_wrap_;
  }
  next_used_ = uint16_t(pos);
  --outstanding_;
  return u;
}

void TestDriverQueue::set_no_interrupt(bool on) {
  st16(mem_.hva(avail_ + kAvailFlagsOff, 2), on ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0);
}
void TestDriverQueue::set_used_event(uint16_t v) { st16(mem_.hva(avail_ + kAvailRingOff + 2ull * size_, 2), v); }
void TestDriverQueue::set_driver_event(uint16_t flags, uint16_t off_wrap) {
  st16(mem_.hva(avail_, 2), off_wrap);
  st16(mem_.hva(avail_ + 2, 2), flags);
}
bool TestDriverQueue::device_no_notify() const {
  return ld16(mem_.hva(used_ + kUsedFlagsOff, 2)) & VIRTQ_USED_F_NO_NOTIFY;
}
uint16_t TestDriverQueue::avail_event() const { return ld16(mem_.hva(used_ + kUsedRingOff + 8ull * size_, 2)); }
uint16_t TestDriverQueue::device_event_flags() const { return ld16(mem_.hva(used_ + 2, 2)); }
bool TestDriverQueue::kick_needed(uint16_t old_avail) const {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (features_ & kFEventIdx) return need_event(avail_event(), avail_idx_, old_avail);
  return !device_no_notify();
}

uint16_t TestDriverQueue::used_idx() const { return ld16(mem_.hva(used_ + kUsedIdxOff, 2)); }

void TestDriverQueue::raw_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
  VirtqDesc d{htole64(addr), htole32(len), htole16(flags), htole16(next)};
  mem_.write(desc_ + 16ull * i, &d, 16);
}

void TestDriverQueue::raw_avail(uint16_t head, bool publish_now) {
  st16(mem_.hva(avail_ + kAvailRingOff + 2ull * (avail_idx_ % size_), 2), head);
  ++avail_idx_;
  if (publish_now) publish();
}

void TestDriverQueue::raw_set_avail_idx(uint16_t idx) {
  avail_idx_ = idx;
  publish();
}

void TestDriverQueue::raw_packed_desc(uint16_t pos, uint64_t addr, uint32_t len, uint16_t id, uint16_t flags,
                                      bool avail) {
  uint16_t f = flags;
  if (avail) f |= avail_wrap_ ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
  PackedDesc d{htole64(addr), htole32(len), htole16(id), 0};
  uint8_t* p = mem_.hva(desc_ + 16ull * pos, 16);
  std::memcpy(p, &d, 14);
  st16_release(p + 14, f);
}

uint64_t TestDriverQueue::raw_table(const std::vector<std::array<uint64_t, 4>>& descs) {
  uint64_t t = mem_.alloc(16 * std::max<size_t>(descs.size(), 1), 16);
  for (size_t i = 0; i < descs.size(); ++i) {
    VirtqDesc d{htole64(descs[i][0]), htole32(uint32_t(descs[i][1])), htole16(uint16_t(descs[i][2])),
                htole16(uint16_t(descs[i][3]))};
    mem_.write(t + 16 * i, &d, 16);
  }
  return t;
}

}  // namespace vdpu::virtio::test
