// Submission/completion queues in guest memory and the per-reactor group that
// polls them. NVMe over PCIe 1.0 §3 (queues, doorbells), Base 2.0 §3.3.
//
// Threads: a QueueGroup and every Sq/Cq/Request it holds belong to one reactor
// (a data reactor for I/O queues, the main reactor for the admin queue pair);
// only that reactor touches their mutable state. The controller (main
// reactor) creates and frees them and changes a group only by message.
//
// Data path rules: no allocation, no syscall (except the MSI-X eventfd write
// inside IrqSink::raise, once per coalesced batch), no lock. Requests come
// from a per-SQ pool sized by the queue size.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "bdev/bdev.h"
#include "hostmem/hostmem.h"
#include "nvme/spec.h"

namespace vdpu::pci {
class IrqSink;
}

namespace vdpu::nvme {

class Controller;
class QueueGroup;
class Sq;

// Per-group view of an attached namespace.
struct NsSlot {
  uint32_t nsid = 0;
  uint32_t lba_shift = 9;
  uint64_t num_blocks = 0;
  bdev::Bdev* bdev = nullptr;
  std::unique_ptr<bdev::Channel> ch;  // created on the group's reactor
  bool ready = true;
  bool supports_unmap = false, supports_write_zeroes = false, supports_flush = false,
       supports_compare = false;
};

enum class ReqState : uint8_t { kFree, kExec, kCqWait, kParked };

struct Request {
  SqEntry cmd;
  Sq* sq = nullptr;
  Request* next = nullptr;
  uint32_t cdw0 = 0;
  uint16_t status = 0;
  ReqState state = ReqState::kFree;
  // Data mapping (PRP/SGL -> iovecs into guest memory).
  uint32_t iovcnt = 0;
  uint32_t iov_cap = 0;
  iovec* iov = nullptr;
  NsSlot* ns = nullptr;
  // Multi-step commands (Dataset Management ranges).
  uint32_t step = 0, nsteps = 0;
  bool in_submit = false, step_done = false;
  bdev::Io io;
  uint64_t gen = 0;  // controller generation when fetched (admin async replies)
};

// Per-queue I/O counters: single writer (the group's reactor), read by RPCs.
struct alignas(64) QueueStats {
  std::atomic<uint64_t> read_ios{0}, write_ios{0}, flush_ios{0}, other_ios{0};
  std::atomic<uint64_t> read_bytes{0}, write_bytes{0}, errors{0}, cqe_full_waits{0};
  static void bump(std::atomic<uint64_t>& a, uint64_t v = 1) noexcept {
    a.store(a.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
  }
};

class Cq {
 public:
  // ring: host pointer to `size` entries (translated, contiguous; CAP.CQR=1).
  Cq(uint16_t qid, uint32_t size, uint64_t gpa, CqEntry* ring, volatile uint32_t* head_db,
     bool ien, uint16_t iv);
  uint16_t qid() const { return qid_; }
  uint32_t size() const { return size_; }
  uint16_t iv() const { return iv_; }
  bool ien() const { return ien_; }
  uint64_t gpa() const { return gpa_; }
  // Number of SQs bound (bookkeeping on the main reactor).
  uint32_t num_sqs = 0;
  uint32_t reactor = kNoReactor;
  static constexpr uint32_t kNoReactor = UINT32_MAX - 1;

 private:
  friend class QueueGroup;
  // Writes one CQE; false when the CQ is full (after refreshing the head).
  bool try_post(uint32_t dw0, uint16_t sqhd, uint16_t sqid, uint16_t cid, uint16_t st) noexcept;
  bool refresh_head() noexcept;

  const uint16_t qid_;
  const uint32_t size_;
  const uint64_t gpa_;
  CqEntry* const ring_;
  volatile uint32_t* const head_db_;
  const bool ien_;
  const uint16_t iv_;
  uint32_t tail_ = 0;
  uint32_t head_ = 0;
  uint16_t phase_ = 1;  // P = 1 on the first pass (Base 2.0 §4.6)
  bool coalesce_ = false;
  bool bad_head_reported_ = false;
  uint32_t irq_pending_ = 0;
  uint64_t first_pending_ns_ = 0;
  Request* ovf_head_ = nullptr;  // completions waiting for CQ space (in order)
  Request* ovf_tail_ = nullptr;
};

class Sq {
 public:
  Sq(uint16_t qid, uint32_t size, uint64_t gpa, const SqEntry* ring,
     volatile uint32_t* tail_db, Cq* cq, uint32_t iov_per_req);
  uint16_t qid() const { return qid_; }
  uint16_t cqid() const { return cq_->qid(); }
  uint32_t size() const { return size_; }
  uint64_t gpa() const { return gpa_; }
  Cq* cq() const { return cq_; }
  uint32_t inflight() const { return inflight_; }
  const QueueStats& stats() const { return stats_; }
  QueueStats& stats() { return stats_; }
  uint16_t head() const { return uint16_t(head_); }
  QueueGroup* group = nullptr;  // set by QueueGroup::add_sq

 private:
  friend class QueueGroup;
  Request* alloc() noexcept {
    Request* r = free_;
    if (r) {
      free_ = r->next;
      r->next = nullptr;
      ++inflight_;
    }
    return r;
  }
  void release(Request* r) noexcept {
    r->state = ReqState::kFree;
    r->next = free_;
    free_ = r;
    --inflight_;
  }

  const uint16_t qid_;
  const uint32_t size_;
  const uint64_t gpa_;
  const SqEntry* const ring_;
  volatile uint32_t* const tail_db_;
  Cq* const cq_;
  uint32_t head_ = 0;
  uint32_t inflight_ = 0;
  uint32_t parked_ = 0;  // parked AERs (never drained)
  bool deleting_ = false;
  bool bad_tail_reported_ = false;
  std::unique_ptr<Request[]> reqs_;
  std::unique_ptr<iovec[]> iovs_;
  Request* free_ = nullptr;
  QueueStats stats_;
};

// Static per-controller parameters a group needs on the data path (copied at
// group creation; constant while the controller is enabled).
struct GroupConfig {
  uint32_t page_size = 4096;
  uint32_t page_shift = 12;
  uint64_t max_xfer = 0;  // MDTS in bytes (0 = unlimited)
  bool sgl = true;
  bool compare = false;
  bool write_zeroes = true;
  bool admin = false;
  uint32_t coalesce_thr = 0;     // entries, 0-based (Interrupt Coalescing THR)
  uint64_t coalesce_time_ns = 0;
};

// All queues of one controller on one reactor. The admin group (main reactor)
// holds the admin SQ/CQ pair and dispatches to the controller's admin
// handlers; an I/O group dispatches to the NVM command handlers (io.cc).
class QueueGroup {
 public:
  using Handler = void (*)(QueueGroup& g, Request& r);

  QueueGroup(Controller& ctrl, uint32_t reactor, GroupConfig cfg);
  ~QueueGroup();
  QueueGroup(const QueueGroup&) = delete;
  QueueGroup& operator=(const QueueGroup&) = delete;

  Controller& ctrl() { return ctrl_; }
  uint32_t reactor() const { return reactor_; }
  const GroupConfig& cfg() const { return cfg_; }
  const hostmem::MemoryMap& mem() const { return *mem_; }

  // ---- owning reactor only ----
  // One poll pass: bdev channel completions, CQ overflow, SQ doorbells (unless
  // paused), coalesced interrupts. True if it did work.
  bool poll() noexcept;
  void start_poller(uint64_t period_us);
  void stop_poller();
  void set_mem(hostmem::MemoryMapPtr m) { mem_keep_ = std::move(m); mem_ = mem_keep_.get(); }
  void set_irq(pci::IrqSink* irq) { irq_ = irq; }
  void set_coalescing(uint32_t thr, uint64_t time_ns);
  void set_vector_coalescing(uint16_t iv, bool disable);
  void add_cq(Cq* cq);
  void remove_cq(Cq* cq);
  void add_sq(Sq* sq);
  // Stops fetching from sq, drops its queued completions, and calls done (on
  // this reactor) once its in-flight commands have finished (their
  // completions are dropped: the SQ is being deleted, Base 2.0 §5.6).
  void remove_sq(Sq* sq, std::function<void()> done);
  // Stops fetching from every SQ; done runs once nothing is in flight (parked
  // AERs excepted). drop: completions are discarded instead of posted
  // (controller reset, Base 2.0 §3.7.2).
  void quiesce(bool drop, std::function<void()> done);
  void unpause() { paused_ = false; drop_ = false; }
  bool paused() const { return paused_; }
  // Namespace table (changed only while the controller is quiesced).
  void set_namespace(uint32_t nsid, bdev::Bdev* b, bool attach);
  NsSlot* find_ns(uint32_t nsid) noexcept {
    for (auto& s : ns_)
      if (s->nsid == nsid) return s.get();
    return nullptr;
  }
  const std::vector<std::unique_ptr<NsSlot>>& namespaces() const { return ns_; }
  const std::vector<Sq*>& sqs() const { return sqs_; }

  // Completes r: posts the CQE (or queues it while the CQ is full) and
  // returns r to its pool. Any command state.
  void complete(Request& r, uint16_t status, uint32_t cdw0 = 0) noexcept;
  // Parks r (AER) outside the drain count; unpark() before completing it.
  void park(Request& r) noexcept;
  void unpark(Request& r) noexcept;
  // Drops r without a completion (reset).
  void drop(Request& r) noexcept;
  // The bdev answered kNoMem: resubmit r.io from the next poll pass.
  void retry_later(Request& r) noexcept;
  void flush_irqs() noexcept;
  size_t inflight() const;

  Handler admin_handler = nullptr;  // admin group only

 private:
  bool process_sq(Sq& sq) noexcept;
  void post_or_queue(Request& r) noexcept;
  void flush_overflow(Cq& cq) noexcept;
  void raise(Cq& cq) noexcept;
  void check_drained();

  Controller& ctrl_;
  const uint32_t reactor_;
  GroupConfig cfg_;
  hostmem::MemoryMapPtr mem_keep_;
  const hostmem::MemoryMap* mem_ = nullptr;
  pci::IrqSink* irq_ = nullptr;
  std::vector<Sq*> sqs_;
  std::vector<Cq*> cqs_;
  std::vector<std::unique_ptr<NsSlot>> ns_;
  std::vector<uint8_t> vector_cd_;  // per MSI-X vector: coalescing disabled
  uint64_t poller_ = 0;
  bool paused_ = false;
  bool drop_ = false;
  bool any_ovf_ = false;
  Request* retry_head_ = nullptr;
  Request* retry_tail_ = nullptr;
  std::function<void()> drain_cb_;
  std::vector<std::pair<Sq*, std::function<void()>>> deleting_;
};

// NVM command set dispatch (io.cc).
void io_dispatch(QueueGroup& g, Request& r) noexcept;
// Supported/effects bits of each I/O opcode (the table io_dispatch uses).
uint32_t io_effects(uint8_t opc, const GroupConfig& cfg);

}  // namespace vdpu::nvme
