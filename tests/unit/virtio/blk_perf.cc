// Single-core cost of the virtio-blk poll path on a null backend: one split
// queue, driver side kept minimal (re-posting pre-built chains), so the time
// is dominated by the device: pop + walk + header parse + bdev submit +
// inline completion + used entry + batched used->idx. Not a ctest test; run
// by hand: virtio_blk_perf [seconds]. Prints requests per second.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "test_driver.h"
#include "virtio/blk/blk_queue.h"
#include "virtio/ring.h"

using namespace vdpu;
using namespace vdpu::virtio;

namespace {

class NullBdev;
class NullChannel : public bdev::Channel {
 public:
  explicit NullChannel(bdev::Bdev& b) : Channel(b) {}

 protected:
  void do_submit(bdev::Io& io) noexcept override { complete(io, bdev::IoStatus::kSuccess); }
};

class NullBdev : public bdev::Bdev {
 public:
  NullBdev() : Bdev("null0", "null", 512, 1u << 21) {}
  bool supports(bdev::IoType t) const override { return t != bdev::IoType::kCompare; }
  std::unique_ptr<bdev::Channel> create_channel() override { return std::make_unique<NullChannel>(*this); }
};

}  // namespace

int main(int argc, char** argv) {
  double secs = argc > 1 ? atof(argv[1]) : 2.0;
  constexpr uint16_t kQs = 256, kChains = 64;
  test::GuestMemory mem(8 << 20);
  test::TestDriverQueue drv(mem, kQs, false);
  blk::BlkQueueParams p;
  p.seg_max = 8;
  blk::BlkQueue q(p);
  if (!q.start(drv.config()).ok()) return 1;
  NullBdev nb;
  auto ch = nb.create_channel();
  blk::Backend be;
  be.channel = ch.get();
  be.block_size = 512;
  be.num_blocks = nb.num_blocks();
  q.set_backend(be);
  // Pre-built 4 KiB reads: header, data, status = 3 descriptors per chain.
  uint16_t heads[kChains];
  for (uint16_t i = 0; i < kChains; ++i) {
    uint64_t h = mem.alloc(16), d = mem.alloc(4096, 4096), s = mem.alloc(1);
    blk::VirtioBlkOutHdr hdr{blk::VIRTIO_BLK_T_IN, 0, uint64_t(i) * 8};
    mem.write(h, &hdr, 16);
    heads[i] = uint16_t(3 * i);
    drv.raw_desc(uint16_t(3 * i), h, 16, VIRTQ_DESC_F_NEXT, uint16_t(3 * i + 1));
    drv.raw_desc(uint16_t(3 * i + 1), d, 4096, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, uint16_t(3 * i + 2));
    drv.raw_desc(uint16_t(3 * i + 2), s, 1, VIRTQ_DESC_F_WRITE, 0);
  }
  uint64_t n = 0;
  // Thread CPU time, not wall time: on a shared machine the wall clock
  // mostly measures the other processes.
  auto cpu = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  };
  double c0 = cpu();
  auto t0 = std::chrono::steady_clock::now();
  auto until = t0 + std::chrono::duration<double>(secs);
  while (true) {
    for (int rep = 0; rep < 64; ++rep) {
      for (uint16_t i = 0; i < kChains; ++i) drv.raw_avail(heads[i], false);
      drv.publish();
      q.poll();
      q.poll();
      n += kChains;
    }
    if (std::chrono::steady_clock::now() > until) break;
  }
  double dt = cpu() - c0;
  if (q.counters().read.load() != n) {
    std::fprintf(stderr, "lost requests: %lu of %lu\n", (unsigned long)q.counters().read.load(), (unsigned long)n);
    return 1;
  }
  std::printf("virtio-blk split ring, null bdev, 4 KiB reads: %.2f M req/s per CPU-second (%.1f ns/req)\n",
              n / dt / 1e6, dt * 1e9 / n);
  return 0;
}
