// libFuzzer target for the virtqueue descriptor walker and the device-side
// pop path: the input becomes guest memory (descriptor table, indirect
// tables, buffers) plus a few parameter bytes. Whatever the bytes, the walk
// must terminate and every iovec it returns must lie inside guest memory.
//
// Input: [0] log2 queue size (mod 8), [1] flags (bit0 packed, bit1 indirect
// negotiated, bit2 go through Virtqueue::pop), [2..3] head / ring position,
// then guest memory contents (64 KiB at gpa 0x10000, two regions of 32 KiB).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "hostmem/hostmem.h"
#include "virtio/chain.h"
#include "virtio/ring.h"
#include "virtio/virtqueue.h"

namespace {

constexpr uint64_t kGpa = 0x10000;
constexpr size_t kHalf = 32 * 1024;

struct Guest {
  alignas(64) uint8_t a[kHalf];
  alignas(64) uint8_t b[kHalf];
};

void check_iov(const vdpu::virtio::Chain& c, const Guest& g) {
  for (int i = 0; i < c.n_out + c.n_in; ++i) {
    auto* p = static_cast<const uint8_t*>(c.iov[i].iov_base);
    bool in_a = p >= g.a && p + c.iov[i].iov_len <= g.a + kHalf;
    bool in_b = p >= g.b && p + c.iov[i].iov_len <= g.b + kHalf;
    if (!(in_a || in_b) || c.iov[i].iov_len == 0) abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vdpu::virtio;
  if (size < 4) return 0;
  uint16_t qs = uint16_t(1u << (data[0] % 8));
  bool packed = data[1] & 1, indirect = data[1] & 2, via_queue = data[1] & 4;
  uint16_t head = uint16_t(data[2] | data[3] << 8);
  data += 4;
  size -= 4;

  static Guest g;  // static: 64 KiB per run without allocation churn
  std::memset(&g, 0, sizeof(g));
  std::memcpy(g.a, data, std::min(size, kHalf));
  if (size > kHalf) std::memcpy(g.b, data + kHalf, std::min(size - kHalf, kHalf));
  std::vector<vdpu::hostmem::Region> regions(2);
  regions[0].gpa = kGpa;
  regions[0].size = kHalf;
  regions[0].hva = g.a;
  regions[1].gpa = kGpa + kHalf;
  regions[1].size = kHalf;
  regions[1].hva = g.b;
  regions[1].writable = !(head & 0x8000);  // sometimes a read-only region
  auto mem = std::make_shared<vdpu::hostmem::MemoryMap>(std::move(regions));

  iovec iov[64];
  Chain c;
  c.iov = iov;
  c.max_iov = 64;
  if (!via_queue) {
    WalkParams p{mem.get(), qs, indirect};
    ChainError e = packed ? walk_packed_chain(p, g.a, uint16_t(head % qs), c)
                          : walk_split_chain(p, g.a, head, c);
    if (e == ChainError::kOk) check_iov(c, g);
    return 0;
  }
  // Through the queue: desc table at the start of region a, driver area
  // after it, device area after that (all inside the input).
  QueueConfig cfg;
  cfg.size = qs;
  cfg.packed = packed;
  cfg.desc = g.a;
  cfg.avail = g.a + 16 * qs;
  cfg.used = g.a + 16 * qs + 1024;
  cfg.last_avail_idx = packed ? uint16_t(kPackedWrapBit | (head % qs)) : head;
  cfg.last_used_idx = packed ? kPackedWrapBit : 0;
  cfg.features = (indirect ? kFIndirectDesc : 0) | (head & 1 ? kFEventIdx : 0) | (head & 2 ? kFInOrder : 0);
  cfg.mem = mem;
  Virtqueue vq;
  if (!vq.start(cfg).ok()) return 0;
  for (int i = 0; i < 2 * qs + 2; ++i) {
    if (vq.pop(c) != PopStatus::kOk) break;
    check_iov(c, g);
    vq.push(c, uint32_t(c.in_len));
  }
  vq.flush();
  (void)vq.need_notify();
  (void)vq.enable_notifications();
  return 0;
}
