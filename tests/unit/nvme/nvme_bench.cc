// Data-path cost of the NVMe controller on one core: 4 KiB reads (PRP1 only)
// against a null backend, batches of QD commands per doorbell, host-side
// submit and reap included (the host's share is small: a 64-byte copy and a
// 16-byte read per command). Run: build-*/tests/unit/nvme/nvme_bench
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include "test_host.h"

using namespace vdpu::nvme;
using namespace vdpu::nvme::test;

static void BM_NullRead4k(benchmark::State& st) {
  spdlog::set_level(spdlog::level::off);
  const uint32_t qd = uint32_t(st.range(0));
  TestHost::Options o;
  o.data_reactors = 1;
  o.namespaces = {{1, 1 << 20}};
  TestHost h(o);
  h.bdev(1).null_io = true;
  h.enable();
  if (!h.create_io_queues(1, 512)) { st.SkipWithError("queue creation failed"); return; }
  uint64_t buf = h.alloc(4096);
  SqEntry c = TestHost::rw_cmd(kIoRead, 1, 0, 8);
  c.prp1 = buf;
  uint64_t done = 0;
  for (auto _ : st) {
    for (uint32_t i = 0; i < qd; ++i) h.submit(1, c, false);
    h.ring_sq(1);
    while (h.env().poll_reactor(0)) {
    }
    uint32_t n = 0;
    while (n < qd && h.reap(1, false)) ++n;
    __atomic_store_n(&h.ctrl().doorbells()[3], h.q(1).cq_head, __ATOMIC_RELEASE);
    done += n;
  }
  st.SetItemsProcessed(int64_t(done));
  st.counters["irqs_per_batch"] = double(h.irq().total) / double(st.iterations());
}
BENCHMARK(BM_NullRead4k)->Arg(1)->Arg(32)->Arg(128);

BENCHMARK_MAIN();
