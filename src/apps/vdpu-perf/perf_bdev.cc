// `vdpu-perf bdev`: a fio-like benchmark of a bdev created in this process
// (null, malloc or uring). One reactor per core of the cpumask; each opens
// its own channel and keeps --queue-depth I/Os in flight. Every I/O's latency
// goes into a per-core log-linear histogram (one TSC read per completion; the
// submit stamp is Io::submit_tsc set by Channel::submit). Nothing is
// allocated per I/O: Ios, iovecs and buffers are set up before the run.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "base/log.h"
#include "base/parse.h"
#include "bdev/bdev.h"
#include "bdev/malloc/malloc.h"
#include "bdev/null/null.h"
#include "bdev/nvme/nvme.h"
#include "bdev/uring/uring.h"
#include "perf.h"
#include "runtime/reactor.h"

namespace vdpu::perf {
namespace {

using bdev::Io;
using bdev::IoStatus;
using bdev::IoType;

struct Config {
  std::string bdev = "null";
  double size_mib = 1024;
  std::string filename;
  uint32_t block_size = 0;  // 0: 512 (null/malloc) or detected (uring)
  std::string rw = "randread";
  uint32_t rwmixread = 50;
  uint32_t io_size = 4096;
  uint32_t qd = 1;
  std::string cpumask = "0x1";
  double time_s = 5;
  bool json = false;
  // --bdev nvme: an NVMe/TCP controller attached in this process.
  std::string traddr = "127.0.0.1", trsvcid = "4420", subnqn = "nqn.2016-06.io.spdk:cnode1";
  bool hdgst = false, ddgst = false;
  // --verify: instead of the timed run, each core writes a pattern to its
  // own I/O slots, reads them back and compares.
  bool verify = false;
};

// Log-linear histogram: exact below 64, then 64 sub-buckets per power of
// two (≤1.6 % error). Values are TSC ticks.
class Histogram {
 public:
  static constexpr int kSubBits = 6, kSub = 1 << kSubBits, kGroups = 64 - kSubBits + 1;
  void record(uint64_t v) noexcept {
    ++counts_[index(v)];
    sum_ += v;
    max_ = std::max(max_, v);
    ++n_;
  }
  void merge(const Histogram& o) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    sum_ += o.sum_;
    max_ = std::max(max_, o.max_);
    n_ += o.n_;
  }
  uint64_t count() const { return n_; }
  double mean() const { return n_ ? double(sum_) / double(n_) : 0; }
  uint64_t max() const { return max_; }
  // Value at quantile q (0..1): the lower bound of the bucket holding it.
  uint64_t quantile(double q) const {
    if (!n_) return 0;
    uint64_t rank = uint64_t(std::ceil(q * double(n_)));
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(value(i), max_);
    }
    return max_;
  }

 private:
  static size_t index(uint64_t v) {
    if (v < kSub) return v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - kSubBits;
    return size_t(shift + 1) * kSub + ((v >> shift) & (kSub - 1));
  }
  static uint64_t value(size_t i) {
    if (i < kSub) return i;
    size_t shift = i / kSub - 1, m = i % kSub;
    return (uint64_t(kSub) + m) << shift;
  }
  std::vector<uint64_t> counts_ = std::vector<uint64_t>(size_t(kGroups + 1) * kSub);
  uint64_t sum_ = 0, max_ = 0, n_ = 0;
};

// One reactor's share of the run. Touched only by its reactor until `done`.
struct Worker {
  uint32_t index = 0;
  int core = 0;
  const Config* cfg = nullptr;
  bdev::Bdev* bdev = nullptr;
  std::unique_ptr<bdev::Channel> ch;
  std::vector<Io> ios;
  std::vector<iovec> iovs;
  unsigned char* buf = nullptr;
  std::vector<Io*> ready, batch;  // completed Ios waiting to be resubmitted
  size_t nready = 0;
  uint64_t blocks_per_io = 0, slots = 0, seq_next = 0, rng = 0;
  bool random = true;
  int read_pct = 100;  // share of reads, percent
  uint64_t start_ns = 0, end_ns = 0, finish_ns = 0;
  uint64_t inflight = 0, ops = 0, reads = 0, writes = 0, errors = 0;
  Histogram hist;
  rt::PollerId poller = 0;
  bool setup_failed = false;
  std::atomic<bool> done{false};
  // --verify state.
  uint32_t nworkers = 1;
  int vphase = 0;  // 0: writing, 1: reading back
  uint64_t vnext = 0, vdone = 0, vtotal = 0, mismatches = 0;
  std::vector<uint64_t> vslot;  // slot of each Io (by index in ios)

  ~Worker() { std::free(buf); }

  static uint64_t pattern(uint64_t slot, size_t word) noexcept {
    return (slot << 24) ^ (uint64_t(word) * 0x9E3779B97F4A7C15ull) ^ 0x5644505556455249ull;
  }

  // --verify: the next slot of this core into io (write: with its pattern).
  void submit_verify(Io& io) noexcept {
    size_t k = size_t(&io - ios.data());
    uint64_t slot = (vnext++) * nworkers + index;
    vslot[k] = slot;
    io.type = vphase == 0 ? IoType::kWrite : IoType::kRead;
    io.offset_blocks = slot * blocks_per_io;
    io.num_blocks = blocks_per_io;
    auto* w = static_cast<uint64_t*>(iovs[k].iov_base);
    size_t nw = iovs[k].iov_len / 8;
    if (vphase == 0)
      for (size_t j = 0; j < nw; ++j) w[j] = pattern(slot, j);
    else
      std::memset(w, 0, iovs[k].iov_len);
    ch->submit(io);
  }

  rt::Poll poll_verify() noexcept {
    bool busy = ch->poll();
    if (nready) {
      busy = true;
      std::swap(ready, batch);
      size_t n = nready;
      nready = 0;
      for (size_t i = 0; i < n; ++i) {
        Io& io = *batch[i];
        size_t k = size_t(&io - ios.data());
        if (vphase == 1) {
          auto* w = static_cast<const uint64_t*>(iovs[k].iov_base);
          size_t nw = iovs[k].iov_len / 8;
          for (size_t j = 0; j < nw; ++j)
            if (w[j] != pattern(vslot[k], j)) {
              ++mismatches;
              break;
            }
        }
        ++vdone;
        if (vnext < vtotal) submit_verify(io);
        else --inflight;
      }
      if (inflight == 0 && vphase == 0) {  // every write done: read them back
        vphase = 1;
        vnext = vdone = 0;
        inflight = std::min<uint64_t>(ios.size(), vtotal);
        for (uint64_t i = 0; i < inflight; ++i) submit_verify(ios[i]);
        return rt::Poll::kBusy;
      }
    }
    if (inflight == 0 && !done.load(std::memory_order_relaxed)) {
      finish_ns = rt::now_ns();
      rt::this_reactor()->remove_poller(poller);
      ch.reset();
      done.store(true, std::memory_order_release);
    }
    return busy ? rt::Poll::kBusy : rt::Poll::kIdle;
  }

  uint64_t next_rand() noexcept {  // xorshift64*
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1Dull;
  }

  static void on_complete(Io& io, IoStatus st) {
    auto* w = static_cast<Worker*>(io.cb_arg);
    w->hist.record(bdev::ticks() - io.submit_tsc);
    ++w->ops;
    if (st != IoStatus::kSuccess) ++w->errors;
    (io.type == IoType::kRead ? w->reads : w->writes)++;
    w->ready[w->nready++] = &io;
  }

  void submit(Io& io) noexcept {
    uint64_t slot;
    if (random) {
      slot = next_rand() % slots;
    } else {
      slot = seq_next++;
      if (seq_next == slots) seq_next = 0;
    }
    bool read = read_pct == 100 || (read_pct > 0 && int(next_rand() % 100) < read_pct);
    io.type = read ? IoType::kRead : IoType::kWrite;
    io.offset_blocks = slot * blocks_per_io;
    io.num_blocks = blocks_per_io;
    ch->submit(io);
  }

  // Runs on the worker's reactor.
  void setup() {
    ch = bdev->create_channel();
    if (!ch) {
      setup_failed = true;
      done.store(true, std::memory_order_release);
      return;
    }
    const uint32_t qd = cfg->qd, sz = cfg->io_size;
    buf = static_cast<unsigned char*>(std::aligned_alloc(4096, size_t(qd) * sz));
    for (size_t i = 0; i < size_t(qd) * sz; ++i) buf[i] = static_cast<unsigned char>(i * 31 + index);
    ios.resize(qd);
    iovs.resize(qd);
    ready.resize(qd);
    batch.resize(qd);
    for (uint32_t i = 0; i < qd; ++i) {
      iovs[i] = {buf + size_t(i) * sz, sz};
      ios[i].iov = &iovs[i];
      ios[i].iovcnt = 1;
      ios[i].cb = &Worker::on_complete;
      ios[i].cb_arg = this;
    }
    blocks_per_io = sz / bdev->block_size();
    slots = bdev->num_blocks() / blocks_per_io;
    rng = 0x9E3779B97F4A7C15ull * (index + 1);
    seq_next = slots * index / 64 % slots;  // spread sequential streams a little
    start_ns = rt::now_ns();
    end_ns = start_ns + uint64_t(cfg->time_s * 1e9);
    if (cfg->verify) {
      vslot.resize(qd);
      vtotal = std::min<uint64_t>(slots / nworkers, 4096);
      inflight = std::min<uint64_t>(qd, vtotal);
      start_ns = rt::now_ns();
      for (uint64_t i = 0; i < inflight; ++i) submit_verify(ios[i]);
      poller = rt::this_reactor()->add_poller("perf_bdev_verify", [this] { return poll_verify(); });
      return;
    }
    inflight = qd;
    for (auto& io : ios) submit(io);
    poller = rt::this_reactor()->add_poller("perf_bdev", [this] { return poll(); });
  }

  rt::Poll poll() noexcept {
    bool busy = ch->poll();
    if (nready) {
      busy = true;
      // Resubmit one generation at a time: inline completions (null, malloc)
      // land in `ready` again and wait for the next call, so the stack stays
      // flat and the clock is read once per batch.
      std::swap(ready, batch);
      size_t n = nready;
      nready = 0;
      bool stop = rt::now_ns() >= end_ns;
      for (size_t i = 0; i < n; ++i) {
        if (stop) --inflight;
        else submit(*batch[i]);
      }
    }
    if (inflight == 0 && !done.load(std::memory_order_relaxed)) {
      finish_ns = rt::now_ns();
      rt::this_reactor()->remove_poller(poller);
      ch.reset();
      done.store(true, std::memory_order_release);
    }
    return busy ? rt::Poll::kBusy : rt::Poll::kIdle;
  }
};

Result<bdev::Bdev*> make_bdev(const Config& c) {
  uint32_t bs = c.block_size ? c.block_size : 512;
  uint64_t bytes = uint64_t(c.size_mib * 1024 * 1024);
  if (c.bdev == "null")
    return bdev::null::create({.name = "perf0", .num_blocks = bytes / bs, .block_size = bs});
  if (c.bdev == "malloc")
    return bdev::malloc::create({.name = "perf0", .num_blocks = bytes / bs, .block_size = bs});
  if (c.bdev == "uring") {
    if (c.filename.empty()) return make_error(Errc::kInvalidArgument, "--filename is required");
    return bdev::uring::create({.name = "perf0", .filename = c.filename, .block_size = c.block_size,
                                .ring_entries = std::max<uint32_t>(c.qd, 32)});
  }
  if (c.bdev == "nvme") {
    // No runtime here: the module's control-plane callbacks run inline on
    // its control thread, which is fine for this single-user tool.
    bdev::nvme::AttachOptions o;
    o.name = "perf";
    o.traddr = c.traddr;
    o.trsvcid = c.trsvcid;
    o.subnqn = c.subnqn;
    o.hdgst = c.hdgst;
    o.ddgst = c.ddgst;
    o.io_queue_depth = std::max<uint32_t>(128, c.qd);
    std::promise<Result<std::vector<std::string>>> p;
    auto f = p.get_future();
    bdev::nvme::attach(o, [&p](Result<std::vector<std::string>> r) { p.set_value(std::move(r)); });
    auto r = f.get();
    if (!r) return r.error();
    if (r->empty()) return make_error(Errc::kNotFound, "the subsystem has no namespace");
    bdev::Bdev* b = bdev::Manager::get().find(r->front());
    if (!b) return make_error(Errc::kNotFound, "bdev " + r->front() + " missing");
    return b;
  }
  return make_error(Errc::kInvalidArgument, "unknown --bdev " + c.bdev);
}

// Detaches the NVMe/TCP controller while the reactors (which own its
// queues) still run.
void release_bdev(const Config& c) {
  if (c.bdev != "nvme") return;
  std::promise<void> p;
  auto f = p.get_future();
  if (bdev::nvme::detach("perf", [&p] { p.set_value(); }).ok()) f.wait();
}

int run(const Config& c) {
  auto cores = parse_cpumask(c.cpumask);
  if (!cores || cores->empty()) {
    fprintf(stderr, "bad --cpumask %s\n", c.cpumask.c_str());
    return 2;
  }
  int read_pct;
  bool random;
  if (c.rw == "randread") read_pct = 100, random = true;
  else if (c.rw == "randwrite") read_pct = 0, random = true;
  else if (c.rw == "read") read_pct = 100, random = false;
  else if (c.rw == "write") read_pct = 0, random = false;
  else if (c.rw == "randrw") read_pct = int(c.rwmixread), random = true;
  else if (c.rw == "rw" || c.rw == "readwrite") read_pct = int(c.rwmixread), random = false;
  else {
    fprintf(stderr, "bad --rw %s\n", c.rw.c_str());
    return 2;
  }
  auto b = make_bdev(c);
  if (!b) {
    fprintf(stderr, "cannot create bdev: %s\n", b.error().message.c_str());
    return 1;
  }
  bdev::Bdev* bd = *b;
  if (c.io_size == 0 || c.io_size % bd->block_size() != 0 ||
      c.io_size / bd->block_size() > bd->num_blocks()) {
    fprintf(stderr, "--io-size %u must be a multiple of the block size %u and fit the bdev\n",
            c.io_size, bd->block_size());
    bdev::Manager::get().clear();
    return 2;
  }
  auto desc = bdev::Manager::get().open(bd->name(), read_pct < 100 || c.verify);
  if (!desc) {
    fprintf(stderr, "open: %s\n", desc.error().message.c_str());
    return 1;
  }

  std::vector<std::unique_ptr<rt::Reactor>> reactors;
  std::vector<std::unique_ptr<Worker>> workers;
  for (size_t i = 0; i < cores->size(); ++i) {
    reactors.push_back(std::make_unique<rt::Reactor>(uint32_t(i), int((*cores)[i]), false));
    auto w = std::make_unique<Worker>();
    w->index = uint32_t(i);
    w->core = int((*cores)[i]);
    w->cfg = &c;
    w->bdev = bd;
    w->random = random;
    w->read_pct = read_pct;
    w->nworkers = uint32_t(cores->size());
    workers.push_back(std::move(w));
  }
  (void)bdev::tick_rate();  // calibrate before the run, not during it
  for (size_t i = 0; i < reactors.size(); ++i) {
    auto st = reactors[i]->start_thread();
    if (!st.ok()) {
      fprintf(stderr, "reactor on core %d: %s\n", workers[i]->core, st.error().message.c_str());
      return 1;
    }
    Worker* w = workers[i].get();
    reactors[i]->send_blocking([w] { w->setup(); });
  }
  for (auto& w : workers)
    while (!w->done.load(std::memory_order_acquire))
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  (*desc)->close();
  release_bdev(c);
  for (auto& r : reactors) r->request_stop();
  for (auto& r : reactors) r->join();
  bdev::Manager::get().clear();

  // ---- report
  const double tns = 1e9 / double(bdev::tick_rate());
  Histogram all;
  uint64_t ops = 0, errors = 0;
  double iops = 0;
  nlohmann::json per_core = nlohmann::json::array();
  bool failed = false;
  for (auto& w : workers) {
    if (w->setup_failed) {
      fprintf(stderr, "core %d: cannot create an I/O channel\n", w->core);
      failed = true;
      continue;
    }
    double secs = double(w->finish_ns - w->start_ns) / 1e9;
    double wi = secs > 0 ? double(w->ops) / secs : 0;
    iops += wi;
    ops += w->ops;
    errors += w->errors;
    all.merge(w->hist);
    per_core.push_back({{"core", w->core}, {"iops", std::llround(wi)}, {"ops", w->ops}});
  }
  if (failed) return 1;
  if (c.verify) {
    uint64_t checked = 0, bad = 0;
    for (auto& w : workers) {
      checked += w->vtotal;
      bad += w->mismatches;
    }
    if (c.json) {
      printf("%s\n", nlohmann::json({{"bdev", c.bdev}, {"io_size", c.io_size}, {"verified", checked},
                                     {"mismatches", bad}, {"errors", errors}}).dump(2).c_str());
    } else {
      printf("verify: %llu I/Os of %u bytes written and read back on %zu cores: %llu mismatches, %llu errors\n",
             (unsigned long long)checked, c.io_size, cores->size(), (unsigned long long)bad,
             (unsigned long long)errors);
    }
    return (bad || errors || checked == 0) ? 1 : 0;
  }
  auto us = [&](double ticks) { return ticks * tns / 1000.0; };
  double mib_s = iops * c.io_size / (1024.0 * 1024.0);
  nlohmann::json lat = {{"avg", us(all.mean())},
                        {"p50", us(double(all.quantile(0.50)))},
                        {"p99", us(double(all.quantile(0.99)))},
                        {"p99_9", us(double(all.quantile(0.999)))},
                        {"max", us(double(all.max()))}};
  if (c.json) {
    nlohmann::json j = {{"bdev", c.bdev},          {"rw", c.rw},
                        {"io_size", c.io_size},    {"queue_depth", c.qd},
                        {"cores", *cores},         {"time_s", c.time_s},
                        {"ops", ops},              {"errors", errors},
                        {"iops", std::llround(iops)}, {"mib_s", mib_s},
                        {"lat_us", lat},           {"per_core", per_core}};
    if (c.bdev == "uring") j["filename"] = c.filename;
    printf("%s\n", j.dump(2).c_str());
  } else {
    printf("bdev=%s rw=%s io_size=%u qd=%u cores=%zu time=%.1fs\n", c.bdev.c_str(), c.rw.c_str(),
           c.io_size, c.qd, cores->size(), c.time_s);
    printf("  IOPS %.0f  %.1f MiB/s  errors %llu\n", iops, mib_s, (unsigned long long)errors);
    printf("  lat(us) avg %.2f  p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", lat["avg"].get<double>(),
           lat["p50"].get<double>(), lat["p99"].get<double>(), lat["p99_9"].get<double>(),
           lat["max"].get<double>());
    for (auto& p : per_core)
      printf("  core %d: %lld IOPS\n", p["core"].get<int>(), p["iops"].get<long long>());
  }
  return errors ? 1 : 0;
}

std::function<int()> setup(CLI::App& sub) {
  auto c = std::make_shared<Config>();
  sub.add_option("--bdev", c->bdev, "Backend: null | malloc | uring | nvme (NVMe/TCP)")->capture_default_str();
  sub.add_option("--traddr", c->traddr, "nvme: target address")->capture_default_str();
  sub.add_option("--trsvcid", c->trsvcid, "nvme: target port")->capture_default_str();
  sub.add_option("--subnqn", c->subnqn, "nvme: subsystem NQN")->capture_default_str();
  sub.add_flag("--hdgst", c->hdgst, "nvme: header digest");
  sub.add_flag("--ddgst", c->ddgst, "nvme: data digest");
  sub.add_option("--size", c->size_mib, "Size in MiB (null, malloc)")->capture_default_str();
  sub.add_option("--filename", c->filename, "File or block device (uring)");
  sub.add_option("--block-size", c->block_size, "Block size (0: 512, or detected for uring)");
  sub.add_option("-w,--rw", c->rw, "randread | randwrite | read | write | randrw | rw")
      ->capture_default_str();
  sub.add_option("--rwmixread", c->rwmixread, "Percent reads for randrw/rw")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  sub.add_option("-o,--io-size", c->io_size, "I/O size in bytes")->capture_default_str();
  sub.add_option("-q,--queue-depth", c->qd, "I/Os in flight per core")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  sub.add_option("-m,--cpumask", c->cpumask, "Cores: hex mask or list, one reactor each")
      ->capture_default_str();
  sub.add_option("-t,--time", c->time_s, "Seconds to run")->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  sub.add_flag("--json", c->json, "JSON output");
  sub.add_flag("--verify", c->verify,
               "Write a pattern to up to 4096 I/O slots per core, read it back and compare "
               "(instead of the timed run)");
  return [c] { return run(*c); };
}

VDPU_PERF_SUBCOMMAND("bdev", "Benchmark a bdev (null, malloc, uring, nvme over TCP) in-process", setup);

}  // namespace
}  // namespace vdpu::perf
