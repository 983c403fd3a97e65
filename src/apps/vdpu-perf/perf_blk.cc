// `vdpu-perf blk`: a polling virtio-blk driver over vhost-user that measures
// any vhost-user-blk back-end (vdpu, qemu-storage-daemon, SPDK …) at a unix
// socket. One thread per queue (pinned by --cpumask) keeps -q requests in
// flight: completions are read from the used ring, resubmitted into the
// same slot, and made visible with one avail->idx store per batch; the
// eventfd kick (the only syscall) happens only when the device has not set
// VRING_USED_F_NO_NOTIFY (or its avail_event, with EVENT_IDX). Nothing is
// allocated per I/O; latency is one TSC read per batch.
// The back-end side for benchmarks without the daemon is `vdpu-perf
// blk-target` (perf_blk_target.cc).
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "base/log.h"
#include "base/parse.h"
#include "perf.h"
#include "transport/vhost_user/frontend/blk_client.h"

namespace vdpu::perf {
namespace {

namespace vb = virtio::blk;
using vhost_user::fe::BlkClient;
using vhost_user::fe::BlkClientOptions;
using vhost_user::fe::BlkQueue;

struct BlkConfig {
  std::string socket;
  uint32_t qd = 32;
  uint32_t io_size = 4096;
  std::string rw = "randread";
  uint32_t rwmixread = 50;
  double time_s = 10;
  double ramp_s = 1;
  uint16_t queues = 1;
  std::string cpumask;  // empty: no pinning
  uint32_t queue_size = 0;  // 0: smallest power of two >= descs * qd (min 64)
  uint32_t descs = 3;
  bool event_idx = false;
  bool hugepages = false;
  bool json = false;
};

// Log-linear latency histogram over TSC ticks: exact below 64, then 32
// sub-buckets per power of two (≤3 % error).
class Histogram {
 public:
  static constexpr int kSubBits = 5, kSub = 1 << kSubBits;
  static constexpr int kBuckets = 2 * kSub + (64 - kSubBits - 1) * kSub;
  void record(uint64_t v, uint64_t n = 1) noexcept {
    counts_[index(v)] += n;
    sum_ += v * n;
    total_ += n;
  }
  void merge(const Histogram& o) {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    sum_ += o.sum_;
    total_ += o.total_;
  }
  void clear() { *this = Histogram(); }
  uint64_t total() const { return total_; }
  double mean() const { return total_ ? double(sum_) / double(total_) : 0; }
  uint64_t percentile(double p) const {
    const uint64_t want = uint64_t(p / 100.0 * double(total_) + 0.5);
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= want && counts_[i]) return upper(i);
    }
    return 0;
  }

 private:
  static int index(uint64_t v) {
    if (v < 2 * kSub) return int(v);
    const int msb = 63 - __builtin_clzll(v);
    const int shift = msb - kSubBits;
    return 2 * kSub + (shift - 1) * kSub + int((v >> shift) - kSub);
  }
  static uint64_t upper(int i) {
    if (i < 2 * kSub) return uint64_t(i);
    const int shift = (i - 2 * kSub) / kSub + 1;
    return ((uint64_t(kSub + (i - 2 * kSub) % kSub) + 1) << shift) - 1;
  }
  uint64_t counts_[kBuckets] = {};
  uint64_t sum_ = 0, total_ = 0;
};

struct alignas(64) Worker {
  BlkQueue* q = nullptr;
  int cpu = -1;
  uint64_t ios = 0, bytes = 0, errors = 0, reads = 0, writes = 0;
  Histogram hist;
  std::string error;
};

struct alignas(64) Control {
  std::atomic<int> phase{0};  // 0 ramp, 1 measure, 2 stop
};

uint64_t xorshift(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

// The per-queue polling loop.
void run_worker(Worker& w, const BlkConfig& c, uint64_t capacity_sectors, const Control& ctl, uint64_t seed) {
  pin(w.cpu);
  BlkQueue& q = *w.q;
  const uint64_t sectors_per_io = c.io_size / 512;
  const uint64_t nios = capacity_sectors / sectors_per_io;
  const int mode = c.rw == "randread" ? 0 : c.rw == "randwrite" ? 1 : 2;
  uint64_t rng = seed * 0x9e3779b97f4a7c15ull + 1;
  std::vector<uint64_t> stamp(c.qd);
  auto submit = [&](uint32_t slot, uint64_t now) {
    const uint64_t r = xorshift(rng);
    const bool rd = mode == 0 || (mode == 2 && (r >> 56) % 100 < c.rwmixread);
    q.prep(slot, rd ? vb::VIRTIO_BLK_T_IN : vb::VIRTIO_BLK_T_OUT, (r % nios) * sectors_per_io, c.io_size);
    stamp[slot] = now;
  };
  uint64_t now = __rdtsc();
  for (uint32_t s = 0; s < c.qd; ++s) submit(s, now);
  q.flush();
  int phase = 0;
  uint32_t iter = 0;
  uint64_t ios = 0, errors = 0;
  for (;;) {
    now = __rdtsc();
    const uint32_t n = q.reap([&](uint32_t slot, uint8_t status, uint32_t) {
      w.hist.record(now - stamp[slot]);
      errors += status != vb::VIRTIO_BLK_S_OK;
      ++ios;
      if (phase < 2) submit(slot, now);
    });
    if (n) q.flush();
    if ((++iter & 255) == 0) {
      const int p = ctl.phase.load(std::memory_order_relaxed);
      if (p != phase) {
        if (p == 1) {  // ramp over: start counting
          w.hist.clear();
          ios = errors = 0;
        }
        if (p == 2) {
          w.ios = ios;
          w.errors = errors;
        }
        phase = p;
      }
      if (phase == 2) break;
    }
  }
  // Drain what is still in flight (not counted) so the ring can be stopped.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  uint64_t left = c.qd;
  uint64_t after = ios;
  while (left > 0 && std::chrono::steady_clock::now() < deadline) {
    left -= q.reap([](uint32_t, uint8_t, uint32_t) {});
  }
  (void)after;
  if (left) w.error = "requests still in flight after 5 s";
  w.bytes = w.ios * c.io_size;
}

uint64_t next_pow2(uint64_t v) {
  uint64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

int run_blk(const BlkConfig& c) {
  if (c.socket.empty()) {
    std::fprintf(stderr, "blk: --socket is required\n");
    return 2;
  }
  if (c.rw != "randread" && c.rw != "randwrite" && c.rw != "randrw") {
    std::fprintf(stderr, "blk: -w must be randread, randwrite or randrw\n");
    return 2;
  }
  if (c.io_size == 0 || c.io_size % 512 || c.qd == 0 || c.queues == 0) {
    std::fprintf(stderr, "blk: -o must be a multiple of 512, -q and --queues >= 1\n");
    return 2;
  }
  std::vector<uint32_t> cpus;
  if (!c.cpumask.empty()) {
    auto m = parse_cpumask(c.cpumask);
    if (!m || m->empty()) {
      std::fprintf(stderr, "blk: bad --cpumask %s\n", c.cpumask.c_str());
      return 2;
    }
    cpus = *m;
  }
  BlkClientOptions o;
  o.num_queues = c.queues;
  o.depth = c.qd;
  o.max_io = c.io_size;
  o.descs = c.descs;
  o.queue_size = uint16_t(c.queue_size ? c.queue_size : std::max<uint64_t>(64, next_pow2(uint64_t(c.descs) * c.qd)));
  o.event_idx = c.event_idx;
  o.hugepages = c.hugepages;
  auto cl = BlkClient::connect(c.socket, o);
  if (!cl) {
    std::fprintf(stderr, "blk: %s: %s\n", c.socket.c_str(), cl.error().message.c_str());
    return 1;
  }
  BlkClient& client = **cl;
  if (client.capacity_sectors() * 512 < c.io_size) {
    std::fprintf(stderr, "blk: device smaller than one I/O\n");
    return 1;
  }
  if (auto st = client.start(); !st) {
    std::fprintf(stderr, "blk: start: %s\n", st.error().message.c_str());
    return 1;
  }
  std::vector<Worker> workers(c.queues);
  Control ctl;
  std::vector<std::thread> threads;
  for (uint16_t i = 0; i < c.queues; ++i) {
    workers[i].q = &client.queue(i);
    workers[i].cpu = cpus.empty() ? -1 : int(cpus[i % cpus.size()]);
    threads.emplace_back(run_worker, std::ref(workers[i]), std::cref(c), client.capacity_sectors(), std::cref(ctl),
                         uint64_t(i + 1));
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(c.ramp_s));
  const uint64_t t0 = __rdtsc();
  const auto c0 = std::chrono::steady_clock::now();
  ctl.phase.store(1);
  std::this_thread::sleep_for(std::chrono::duration<double>(c.time_s));
  ctl.phase.store(2);
  const uint64_t t1 = __rdtsc();
  const auto c1 = std::chrono::steady_clock::now();
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(c1 - c0).count();
  const double ticks_per_ns = double(t1 - t0) / (secs * 1e9);
  Histogram all;
  uint64_t ios = 0, errors = 0, kicks = 0, bad = 0;
  std::string err;
  for (auto& w : workers) {
    all.merge(w.hist);
    ios += w.ios;
    errors += w.errors;
    kicks += w.q->kicks();
    bad += w.q->bad_completions();
    if (!w.error.empty()) err = w.error;
  }
  if (auto st = client.stop(); !st) err = "stop: " + st.error().message;
  const double iops = double(ios) / secs;
  const double mibs = iops * c.io_size / (1024.0 * 1024.0);
  auto us = [&](double ticks) { return ticks / ticks_per_ns / 1000.0; };
  if (c.json) {
    nlohmann::json j = {{"workload", "blk"},
                        {"socket", c.socket},
                        {"rw", c.rw},
                        {"io_size", c.io_size},
                        {"queue_depth", c.qd},
                        {"queues", c.queues},
                        {"queue_size", o.queue_size},
                        {"descs_per_io", c.descs},
                        {"seconds", secs},
                        {"ios", ios},
                        {"iops", iops},
                        {"mib_s", mibs},
                        {"avg_lat_us", us(all.mean())},
                        {"p50_lat_us", us(double(all.percentile(50)))},
                        {"p99_lat_us", us(double(all.percentile(99)))},
                        {"p999_lat_us", us(double(all.percentile(99.9)))},
                        {"errors", errors},
                        {"kicks", kicks},
                        {"bad_completions", bad}};
    if (!err.empty()) j["error"] = err;
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("blk %s %s qd=%u bs=%u queues=%u: %.0f IOPS, %.1f MiB/s, avg %.2f us, p50 %.2f us, "
                "p99 %.2f us, p99.9 %.2f us, errors %lu, kicks %lu\n",
                c.socket.c_str(), c.rw.c_str(), c.qd, c.io_size, c.queues, iops, mibs, us(all.mean()),
                us(double(all.percentile(50))), us(double(all.percentile(99))), us(double(all.percentile(99.9))),
                (unsigned long)errors, (unsigned long)kicks);
    if (!err.empty()) std::printf("warning: %s\n", err.c_str());
  }
  return errors || bad || !err.empty() ? 1 : 0;
}

VDPU_PERF_SUBCOMMAND("blk", "drive a vhost-user-blk back-end at a unix socket (polling virtio-blk driver)",
                     [](CLI::App& app) -> std::function<int()> {
                       auto c = std::make_shared<BlkConfig>();
                       app.add_option("--socket", c->socket, "vhost-user socket of the back-end")->required();
                       app.add_option("-q,--queue-depth", c->qd, "requests in flight per queue")
                           ->capture_default_str();
                       app.add_option("-o,--io-size", c->io_size, "bytes per I/O")->capture_default_str();
                       app.add_option("-w,--rw", c->rw, "randread | randwrite | randrw")->capture_default_str();
                       app.add_option("-M,--rwmixread", c->rwmixread, "percent reads for randrw")
                           ->capture_default_str();
                       app.add_option("-t,--time", c->time_s, "seconds measured")->capture_default_str();
                       app.add_option("--ramp", c->ramp_s, "seconds run before measuring")->capture_default_str();
                       app.add_option("--queues", c->queues, "virtqueues, one polling thread each")
                           ->capture_default_str();
                       app.add_option("--cpumask", c->cpumask, "cores for the threads (0x.. or [0,2-3])");
                       app.add_option("--queue-size", c->queue_size, "ring size (default: fits descs x qd)");
                       app.add_option("--descs", c->descs, "descriptors per request: 3 or 2")
                           ->capture_default_str();
                       app.add_flag("--event-idx", c->event_idx, "negotiate VIRTIO_F_EVENT_IDX");
                       app.add_flag("--hugepages", c->hugepages, "guest memory on MFD_HUGETLB");
                       app.add_flag("--json", c->json, "one JSON object on stdout");
                       return [c] { return run_blk(*c); };
                     });

}  // namespace
}  // namespace vdpu::perf
