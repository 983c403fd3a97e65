#include "runtime/mpmc_ring.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace vdpu::rt {
namespace {

TEST(MpmcRing, FifoAndFull) {
  MpmcRing<int> r(4);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(r.try_push(int(i)));
  EXPECT_FALSE(r.try_push(99)) << "a full ring must refuse, not overwrite";
  int v;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(r.try_pop(v));
    EXPECT_EQ(v, i);
  }
  EXPECT_FALSE(r.try_pop(v));
  EXPECT_TRUE(r.empty());
}

TEST(MpmcRing, ManyProducersLoseNothing) {
  MpmcRing<uint64_t> r(1024);
  constexpr int kProducers = 3, kPerProducer = 100000;
  std::vector<std::thread> ts;
  for (int p = 0; p < kProducers; ++p)
    ts.emplace_back([&, p] {
      for (uint64_t i = 0; i < kPerProducer; ++i)
        while (!r.try_push(uint64_t(p) << 32 | i)) std::this_thread::yield();
    });
  std::vector<uint64_t> next(kProducers, 0);
  uint64_t got = 0, v;
  while (got < uint64_t(kProducers) * kPerProducer) {
    if (!r.try_pop(v)) continue;
    uint32_t p = uint32_t(v >> 32);
    ASSERT_EQ(v & 0xffffffff, next[p]) << "per-producer order must be kept";
    ++next[p];
    ++got;
  }
  for (auto& t : ts) t.join();
}

}  // namespace
}  // namespace vdpu::rt
