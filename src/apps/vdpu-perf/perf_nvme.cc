// `vdpu-perf nvme`: a user-space NVMe driver over vfio-user. It enables the
// controller, creates I/O queues in its own memfd memory (mapped to the
// server as DMA), and runs random/sequential I/O at a fixed queue depth with
// doorbells written to the mmap'd BAR0 page and completions polled: no
// syscall per I/O. Reports IOPS, MiB/s, average and p99 latency.
//
// `vdpu-perf nvme-target`: serves one NVMe function over vfio-user on a null
// bdev (device side for the benchmark when the daemon is not used).
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "base/log.h"
#include "perf.h"
#include "pci/function_base.h"
#include "pci/pci_regs.h"
#include "transport/vfio_user/client/client.h"

namespace vdpu::perf {
namespace {

using vfio_user::Client;
using vfio_user::DmaBuffer;

// NVMe Base 2.0 §3.1.4 register offsets and fields.
constexpr uint32_t kRegCap = 0x00, kRegCc = 0x14, kRegCsts = 0x1c, kRegAqa = 0x24, kRegAsq = 0x28,
                   kRegAcq = 0x30;
constexpr uint32_t kCcEn = 1, kCcIosqes = 6u << 16, kCcIocqes = 4u << 20, kCcShnNormal = 1u << 14;
constexpr uint32_t kCstsRdy = 1, kCstsCfs = 2;
constexpr uint64_t kIovaBase = 0x10000000;
constexpr uint32_t kPage = 4096;

struct [[gnu::packed]] Sqe {
  uint8_t opc, flags;
  uint16_t cid;
  uint32_t nsid;
  uint64_t rsvd, mptr, prp1, prp2;
  uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};
static_assert(sizeof(Sqe) == 64);
struct [[gnu::packed]] Cqe {
  uint32_t dw0, dw1;
  uint16_t sqhd, sqid, cid, status;  // status: P bit 0, SF 15:1
};
static_assert(sizeof(Cqe) == 16);

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no syscall
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

struct Queue {
  uint16_t qid = 0, size = 0;
  Sqe* sq = nullptr;
  volatile Cqe* cq = nullptr;
  uint64_t sq_iova = 0, cq_iova = 0;
  uint16_t tail = 0, head = 0;
  uint8_t phase = 1;
  volatile uint32_t* sq_db = nullptr;
  volatile uint32_t* cq_db = nullptr;
};

// Bump allocator over the DMA buffer (page aligned), iova = kIovaBase + offset.
struct Arena {
  DmaBuffer* buf;
  size_t used = 0;
  uint8_t* alloc(size_t n, uint64_t* iova) {
    n = (n + kPage - 1) / kPage * kPage;
    if (used + n > buf->size()) return nullptr;
    uint8_t* p = buf->data() + used;
    *iova = kIovaBase + used;
    used += n;
    std::memset(p, 0, n);
    return p;
  }
};

class Driver {
 public:
  Status open(const std::string& sock, uint32_t nqueues, uint32_t qd, uint32_t io_size);
  Result<Cqe> admin(Sqe cmd);
  Status setup_io();
  void close();

  std::unique_ptr<Client> c;
  std::unique_ptr<DmaBuffer> mem;
  Arena arena{nullptr};
  volatile uint32_t* db = nullptr;
  uint32_t dstrd = 0;
  Queue aq;
  std::vector<Queue> ioq;
  uint32_t qd = 0, io_size = 0, nqueues = 0;
  uint64_t nsze = 0;
  uint32_t lba_size = 512;
  uint8_t* idbuf = nullptr;
  uint64_t idbuf_iova = 0;
  // Per I/O slot: data buffer (+ PRP list page when > 2 pages).
  std::vector<uint8_t*> slot_buf;
  std::vector<uint64_t> slot_iova, slot_prp_iova;
  std::vector<uint64_t*> slot_prp;
};

volatile uint32_t* doorbell(Driver& d, uint16_t qid, bool cq) {
  return reinterpret_cast<volatile uint32_t*>(reinterpret_cast<volatile uint8_t*>(d.db) +
                                              (2 * qid + (cq ? 1 : 0)) * (4u << d.dstrd));
}

Status wait_csts(Client& c, uint32_t mask, uint32_t want, uint64_t timeout_ms) {
  uint64_t end = now_ns() + timeout_ms * 1000000ull;
  for (;;) {
    auto v = c.read32(0, kRegCsts);
    if (!v) return v.error();
    if (*v & kCstsCfs) return make_error(Errc::kIo, "controller fatal status (CSTS.CFS)");
    if ((*v & mask) == want) return {};
    if (now_ns() > end) return make_error(Errc::kTimeout, "timed out waiting for CSTS");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

Status Driver::open(const std::string& sock, uint32_t nq, uint32_t depth, uint32_t iosz) {
  nqueues = nq, qd = depth, io_size = iosz;
  auto cl = Client::connect(sock);
  if (!cl) return cl.error();
  c = std::move(*cl);
  VDPU_TRY(c->negotiate());
  auto bar0 = c->region_info(0);
  if (!bar0) return bar0.error();
  if (bar0->sparse.empty()) return make_error(Errc::kUnsupported, "BAR0 has no mmap-able doorbell area");
  auto dbp = c->mmap_area(0, bar0->sparse[0].first);
  if (!dbp) return dbp.error();
  if (bar0->sparse[0].first != 0x1000) return make_error(Errc::kUnsupported, "doorbells not at BAR0+0x1000");
  db = reinterpret_cast<volatile uint32_t*>(*dbp);
  // Memory space + bus master.
  VDPU_TRY(c->write32(7, pci::kCommand, pci::kCommandMemory | pci::kCommandMaster));
  // DMA memory: admin queues, identify page, I/O queues, data and PRP lists.
  size_t per_q = (size_t(qd) + 1) * 64 + kPage + (size_t(qd) + 1) * 16 + kPage;
  size_t need = 4 * kPage + nqueues * (per_q + size_t(qd) * ((iosz + kPage - 1) / kPage * kPage + kPage)) + (1 << 20);
  auto m = DmaBuffer::create(need);
  if (!m) return m.error();
  mem = std::move(*m);
  arena.buf = mem.get();
  VDPU_TRY(c->dma_map(kIovaBase, mem->size(), mem->fd(), 0));
  // Controller reset then init (NVMe Base 2.0 §3.5.1).
  auto cap = c->read64(0, kRegCap);
  if (!cap) return cap.error();
  dstrd = uint32_t((*cap >> 32) & 0xf);
  uint64_t to_ms = std::max<uint64_t>(((*cap >> 24) & 0xff) * 500, 1000);
  uint32_t mqes = uint32_t(*cap & 0xffff) + 1;
  if (qd + 1 > mqes) return make_error(Errc::kInvalidArgument, "queue depth above CAP.MQES");
  VDPU_TRY(c->write32(0, kRegCc, 0));
  VDPU_TRY(wait_csts(*c, kCstsRdy, 0, to_ms));
  aq.size = 32;
  aq.sq = reinterpret_cast<Sqe*>(arena.alloc(aq.size * 64, &aq.sq_iova));
  aq.cq = reinterpret_cast<volatile Cqe*>(arena.alloc(aq.size * 16, &aq.cq_iova));
  idbuf = arena.alloc(kPage, &idbuf_iova);
  aq.sq_db = doorbell(*this, 0, false);
  aq.cq_db = doorbell(*this, 0, true);
  VDPU_TRY(c->write32(0, kRegAqa, uint32_t(aq.size - 1) << 16 | uint32_t(aq.size - 1)));
  VDPU_TRY(c->write64(0, kRegAsq, aq.sq_iova));
  VDPU_TRY(c->write64(0, kRegAcq, aq.cq_iova));
  VDPU_TRY(c->write32(0, kRegCc, kCcEn | kCcIosqes | kCcIocqes));
  VDPU_TRY(wait_csts(*c, kCstsRdy, kCstsRdy, to_ms));
  return {};
}

void submit(Queue& q, const Sqe& s) {
  std::memcpy(&q.sq[q.tail], &s, sizeof(s));
  q.tail = uint16_t((q.tail + 1) % q.size);
}
void ring_sq(Queue& q) {
  std::atomic_thread_fence(std::memory_order_release);  // SQEs visible before the doorbell
  *q.sq_db = q.tail;
}
// Returns the next CQE if its phase matches.
const volatile Cqe* peek(Queue& q) {
  const volatile Cqe* e = &q.cq[q.head];
  if ((e->status & 1) != q.phase) return nullptr;
  std::atomic_thread_fence(std::memory_order_acquire);  // phase before the rest of the entry
  return e;
}
void pop(Queue& q) {
  if (++q.head == q.size) q.head = 0, q.phase ^= 1;
}

Result<Cqe> Driver::admin(Sqe cmd) {
  static uint16_t cid = 0;
  cmd.cid = ++cid;
  submit(aq, cmd);
  ring_sq(aq);
  uint64_t end = now_ns() + 5000000000ull;
  for (;;) {
    if (const volatile Cqe* e = peek(aq)) {
      Cqe r;
      std::memcpy(&r, const_cast<const Cqe*>(e), sizeof(r));
      pop(aq);
      *aq.cq_db = aq.head;
      if (r.cid != cmd.cid) continue;
      if (r.status >> 1) return make_error(Errc::kIo, "admin opcode " + std::to_string(cmd.opc) +
                                                          " failed, status " + std::to_string(r.status >> 1));
      return r;
    }
    if (now_ns() > end) return make_error(Errc::kTimeout, "admin command timed out");
  }
}

Status Driver::setup_io() {
  // Identify Controller (CNS 1) and Namespace 1 (CNS 0).
  Sqe id{};
  id.opc = 0x06;
  id.prp1 = idbuf_iova;
  id.cdw10 = 1;
  VDPU_TRY(admin(id));
  id.nsid = 1;
  id.cdw10 = 0;
  VDPU_TRY(admin(id));
  std::memcpy(&nsze, idbuf, 8);
  uint8_t flbas = idbuf[26] & 0xf;
  uint32_t lbaf;
  std::memcpy(&lbaf, idbuf + 128 + 4 * flbas, 4);
  lba_size = 1u << ((lbaf >> 16) & 0xff);
  if (!nsze || io_size % lba_size) return make_error(Errc::kInvalidArgument, "namespace empty or io size not a multiple of the LBA size");
  // Number of Queues (FID 7).
  Sqe nq{};
  nq.opc = 0x09;
  nq.cdw10 = 7;
  nq.cdw11 = (nqueues - 1) << 16 | (nqueues - 1);
  auto r = admin(nq);
  if (!r) return r.error();
  if ((r->dw0 & 0xffff) + 1 < nqueues || (r->dw0 >> 16) + 1 < nqueues)
    return make_error(Errc::kInvalidArgument, "controller grants fewer I/O queues than --queues");
  ioq.resize(nqueues);
  size_t slots = size_t(nqueues) * qd;
  uint32_t pages = (io_size + kPage - 1) / kPage;
  for (uint32_t i = 0; i < nqueues; ++i) {
    Queue& q = ioq[i];
    q.qid = uint16_t(i + 1);
    q.size = uint16_t(qd + 1);
    q.sq = reinterpret_cast<Sqe*>(arena.alloc(size_t(q.size) * 64, &q.sq_iova));
    q.cq = reinterpret_cast<volatile Cqe*>(arena.alloc(size_t(q.size) * 16, &q.cq_iova));
    if (!q.sq || !q.cq) return make_error(Errc::kNoMemory, "DMA arena too small");
    q.sq_db = doorbell(*this, q.qid, false);
    q.cq_db = doorbell(*this, q.qid, true);
    Sqe cq{};  // Create I/O CQ: PC=1, interrupts off (polled)
    cq.opc = 0x05;
    cq.prp1 = q.cq_iova;
    cq.cdw10 = uint32_t(q.size - 1) << 16 | q.qid;
    cq.cdw11 = 1;
    VDPU_TRY(admin(cq));
    Sqe sq{};  // Create I/O SQ bound to it
    sq.opc = 0x01;
    sq.prp1 = q.sq_iova;
    sq.cdw10 = uint32_t(q.size - 1) << 16 | q.qid;
    sq.cdw11 = uint32_t(q.qid) << 16 | 1;
    VDPU_TRY(admin(sq));
  }
  for (size_t s = 0; s < slots; ++s) {
    uint64_t iova = 0, prp_iova = 0;
    uint8_t* b = arena.alloc(size_t(pages) * kPage, &iova);
    uint8_t* prp = pages > 2 ? arena.alloc(kPage, &prp_iova) : nullptr;
    if (!b || (pages > 2 && !prp)) return make_error(Errc::kNoMemory, "DMA arena too small");
    slot_buf.push_back(b);
    slot_iova.push_back(iova);
    slot_prp.push_back(reinterpret_cast<uint64_t*>(prp));
    slot_prp_iova.push_back(prp_iova);
    for (uint32_t p = 1; prp && p < pages; ++p) slot_prp.back()[p - 1] = iova + uint64_t(p) * kPage;
  }
  return {};
}

void Driver::close() {
  if (!c) return;
  // Normal shutdown (CC.SHN), then drop the connection.
  (void)c->write32(0, kRegCc, kCcEn | kCcIosqes | kCcIocqes | kCcShnNormal);
  c.reset();
}

struct Histogram {
  // 16 ns buckets up to ~16.7 ms, then one overflow bucket.
  static constexpr size_t kBuckets = 1 << 20;
  std::vector<uint32_t> b = std::vector<uint32_t>(kBuckets + 1);
  uint64_t n = 0, sum = 0;
  void add(uint64_t ns) {
    b[std::min<uint64_t>(ns >> 4, kBuckets)]++;
    ++n;
    sum += ns;
  }
  double pct(double p) const {
    uint64_t want = uint64_t(double(n) * p), acc = 0;
    for (size_t i = 0; i <= kBuckets; ++i)
      if ((acc += b[i]) > want) return double(i << 4);
    return 0;
  }
};

struct Args {
  std::string socket;
  uint32_t qd = 32, io_size = 4096, seconds = 10, queues = 1;
  std::string pattern = "randread";
  int rwmix = 50;
  bool json = false;
  uint32_t verify_mib = 0;  // --verify: write then read back and compare this much
};

// The pattern of 8-byte word w of block `lba` (unique per LBA and offset).
uint64_t pattern_word(uint64_t lba, uint64_t w) {
  uint64_t x = (lba << 20 | w) * 0x9e3779b97f4a7c15ull;
  return x ^ (x >> 29) ^ 0x5644505556455249ull;  // "VDPUVERI"
}

// --verify: writes a per-LBA pattern over the first verify_mib MiB (at queue
// depth qd on every queue), reads it all back and compares. Exit 1 on any
// I/O error or mismatch.
int run_verify(Driver& d, const Args& a) {
  const uint64_t blocks_per_io = a.io_size / d.lba_size;
  uint64_t total_ios = (uint64_t(a.verify_mib) << 20) / a.io_size;
  total_ios = std::min<uint64_t>(std::max<uint64_t>(total_ios, 1), d.nsze / blocks_per_io);
  const uint32_t pages = (a.io_size + kPage - 1) / kPage;
  uint64_t errors = 0, mismatches = 0;
  for (int pass = 0; pass < 2; ++pass) {
    bool write = pass == 0;
    uint64_t next = 0, done = 0;
    std::vector<uint64_t> slot_io(size_t(a.queues) * a.qd, 0);
    auto issue = [&](uint32_t qi, uint16_t slot) {
      size_t s = size_t(qi) * a.qd + slot;
      uint64_t io = next++;
      slot_io[s] = io;
      uint64_t lba = io * blocks_per_io;
      if (write) {
        auto* w = reinterpret_cast<uint64_t*>(d.slot_buf[s]);
        for (uint64_t b = 0; b < blocks_per_io; ++b)
          for (uint64_t i = 0; i < d.lba_size / 8; ++i) w[b * d.lba_size / 8 + i] = pattern_word(lba + b, i);
      } else {
        std::memset(d.slot_buf[s], 0xa5, a.io_size);
      }
      Sqe e{};
      e.opc = write ? 0x01 : 0x02;
      e.cid = slot;
      e.nsid = 1;
      e.prp1 = d.slot_iova[s];
      e.prp2 = pages == 2 ? d.slot_iova[s] + kPage : pages > 2 ? d.slot_prp_iova[s] : 0;
      e.cdw10 = uint32_t(lba);
      e.cdw11 = uint32_t(lba >> 32);
      e.cdw12 = uint32_t(blocks_per_io - 1);
      submit(d.ioq[qi], e);
    };
    uint64_t outstanding = 0;
    for (uint32_t qi = 0; qi < a.queues; ++qi) {
      for (uint16_t s = 0; s < a.qd && next < total_ios; ++s, ++outstanding) issue(qi, s);
      ring_sq(d.ioq[qi]);
    }
    uint64_t deadline = now_ns() + 60000000000ull;
    while (outstanding) {
      for (uint32_t qi = 0; qi < a.queues; ++qi) {
        Queue& q = d.ioq[qi];
        bool any = false, again = false;
        while (const volatile Cqe* e = peek(q)) {
          uint16_t cid = e->cid, status = e->status;
          pop(q);
          any = true;
          --outstanding;
          ++done;
          if (cid >= a.qd || (status >> 1)) {
            ++errors;
            continue;
          }
          size_t s = size_t(qi) * a.qd + cid;
          if (!write) {
            uint64_t lba = slot_io[s] * blocks_per_io;
            auto* w = reinterpret_cast<const uint64_t*>(d.slot_buf[s]);
            for (uint64_t b = 0; b < blocks_per_io; ++b)
              for (uint64_t i = 0; i < d.lba_size / 8; ++i)
                if (w[b * d.lba_size / 8 + i] != pattern_word(lba + b, i)) {
                  if (mismatches++ < 5)
                    fprintf(stderr, "vdpu-perf nvme: verify mismatch at LBA %llu word %llu\n",
                            (unsigned long long)(lba + b), (unsigned long long)i);
                  b = blocks_per_io;
                  break;
                }
          }
          if (next < total_ios) {
            issue(qi, cid);
            ++outstanding;
            again = true;
          }
        }
        if (any) *q.cq_db = q.head;
        if (again) ring_sq(q);
      }
      if (now_ns() > deadline) {
        fprintf(stderr, "vdpu-perf nvme: verify: %llu I/Os never completed\n", (unsigned long long)outstanding);
        ++errors;
        break;
      }
    }
    if (done < total_ios) ++errors;
  }
  d.close();
  if (a.json) {
    nlohmann::json j = {{"workload", "verify"}, {"io_size", a.io_size}, {"ios", total_ios},
                        {"bytes", total_ios * a.io_size}, {"errors", errors}, {"mismatches", mismatches}};
    printf("%s\n", j.dump(2).c_str());
  } else {
    printf("nvme verify %llu x %u B (write then read back): %llu errors, %llu mismatches\n",
           (unsigned long long)total_ios, a.io_size, (unsigned long long)errors,
           (unsigned long long)mismatches);
  }
  return errors || mismatches ? 1 : 0;
}

int run_nvme(const Args& a) {
  Driver d;
  auto st = d.open(a.socket, a.queues, a.qd, a.io_size);
  if (st) st = d.setup_io();
  if (!st) {
    fprintf(stderr, "vdpu-perf nvme: %s\n", st.error().message.c_str());
    return 1;
  }
  if (a.verify_mib) return run_verify(d, a);
  bool rnd = a.pattern.rfind("rand", 0) == 0;
  bool mixed = a.pattern == "randrw" || a.pattern == "rw";
  bool writes = a.pattern == "randwrite" || a.pattern == "write";
  uint64_t blocks_per_io = a.io_size / d.lba_size, max_io = d.nsze / blocks_per_io;
  uint32_t pages = (a.io_size + kPage - 1) / kPage;
  uint64_t rng = 0x9e3779b97f4a7c15ull, seq = 0;
  auto next_lba = [&] {
    if (!rnd) return (seq++ % max_io) * blocks_per_io;
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (rng % max_io) * blocks_per_io;
  };
  std::vector<uint64_t> start(size_t(a.queues) * a.qd);
  auto fill = [&](uint32_t qi, uint16_t slot) {
    size_t s = size_t(qi) * a.qd + slot;
    bool w = writes;
    if (mixed) {
      rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
      w = int(rng % 100) >= a.rwmix;  // rwmix = read percentage
    }
    Sqe e{};
    e.opc = w ? 0x01 : 0x02;
    e.cid = slot;
    e.nsid = 1;
    e.prp1 = d.slot_iova[s];
    e.prp2 = pages == 2 ? d.slot_iova[s] + kPage : pages > 2 ? d.slot_prp_iova[s] : 0;
    uint64_t lba = next_lba();
    e.cdw10 = uint32_t(lba);
    e.cdw11 = uint32_t(lba >> 32);
    e.cdw12 = uint32_t(blocks_per_io - 1);
    start[s] = now_ns();
    submit(d.ioq[qi], e);
  };
  for (uint32_t qi = 0; qi < a.queues; ++qi) {
    for (uint16_t s = 0; s < a.qd; ++s) fill(qi, s);
    ring_sq(d.ioq[qi]);
  }
  Histogram h;
  uint64_t errors = 0, t0 = now_ns(), end = t0 + uint64_t(a.seconds) * 1000000000ull;
  size_t outstanding = size_t(a.queues) * a.qd;
  bool stopping = false;
  while (outstanding) {
    uint64_t now = now_ns();
    if (!stopping && now >= end) stopping = true;
    for (uint32_t qi = 0; qi < a.queues; ++qi) {
      Queue& q = d.ioq[qi];
      bool any = false, resubmitted = false;
      while (const volatile Cqe* e = peek(q)) {
        uint16_t cid = e->cid, status = e->status;
        pop(q);
        any = true;
        if (cid >= a.qd) {
          ++errors;
          continue;
        }
        if (status >> 1) ++errors;
        h.add(now - start[size_t(qi) * a.qd + cid]);
        if (stopping) {
          --outstanding;
        } else {
          fill(qi, cid);
          resubmitted = true;
        }
      }
      if (any) *q.cq_db = q.head;
      if (resubmitted) ring_sq(q);
    }
    if (!stopping && now - t0 > uint64_t(a.seconds + 30) * 1000000000ull) break;
    if (stopping && now - end > 5000000000ull) {
      fprintf(stderr, "vdpu-perf nvme: %zu I/Os never completed\n", outstanding);
      break;
    }
  }
  double secs = double(now_ns() - t0) / 1e9;
  double iops = double(h.n) / secs, mibs = iops * a.io_size / (1 << 20);
  double avg_us = h.n ? double(h.sum) / double(h.n) / 1000 : 0, p99_us = h.pct(0.99) / 1000;
  d.close();
  if (a.json) {
    nlohmann::json j = {{"workload", a.pattern}, {"io_size", a.io_size}, {"queue_depth", a.qd},
                        {"queues", a.queues},    {"seconds", secs},      {"ios", h.n},
                        {"errors", errors},      {"iops", iops},         {"mib_s", mibs},
                        {"lat_avg_us", avg_us},  {"lat_p99_us", p99_us}};
    printf("%s\n", j.dump(2).c_str());
  } else {
    printf("nvme %s %u B qd %u x %u queues: %.0f IOPS, %.1f MiB/s, avg %.2f us, p99 %.2f us, %lu errors\n",
           a.pattern.c_str(), a.io_size, a.qd, a.queues, iops, mibs, avg_us, p99_us, (unsigned long)errors);
  }
  return errors ? 1 : 0;
}

std::function<int()> setup_nvme(CLI::App& sub) {
  auto a = std::make_shared<Args>();
  sub.add_option("--socket", a->socket, "vfio-user socket of the NVMe function")->required();
  sub.add_option("-q,--qd", a->qd, "queue depth per queue")->check(CLI::Range(1, 4095));
  sub.add_option("-o,--io-size", a->io_size, "I/O size in bytes")->check(CLI::Range(512, 1 << 20));
  sub.add_option("-w,--workload", a->pattern, "randread|randwrite|randrw|read|write|rw")
      ->check(CLI::IsMember({"randread", "randwrite", "randrw", "read", "write", "rw"}));
  sub.add_option("-M,--rwmixread", a->rwmix, "read percentage for randrw/rw")->check(CLI::Range(0, 100));
  sub.add_option("-t,--time", a->seconds, "run time in seconds")->check(CLI::Range(1, 3600));
  sub.add_option("--queues", a->queues, "I/O queue pairs")->check(CLI::Range(1, 31));
  sub.add_flag("--json", a->json, "print results as JSON");
  sub.add_option("--verify", a->verify_mib,
                 "verify mode: write a per-LBA pattern over this many MiB, read it back and compare")
      ->check(CLI::Range(1, 1 << 20));
  return [a] { return run_nvme(*a); };
}

VDPU_PERF_SUBCOMMAND("nvme", "NVMe driver benchmark over vfio-user (doorbells mmap'd, CQs polled)",
                     setup_nvme);

}  // namespace
}  // namespace vdpu::perf
