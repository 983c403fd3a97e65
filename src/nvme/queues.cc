#include "nvme/queues.h"

#include <algorithm>

#include "base/log.h"
#include "nvme/controller.h"
#include "pci/function.h"

namespace vdpu::nvme {

namespace {
// SQEs fetched per SQ per poll pass: bounds the time one SQ holds the reactor.
constexpr uint32_t kFetchBatch = 64;

uint32_t load_db(volatile uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
}  // namespace

// ---------------------------------------------------------------- Cq

Cq::Cq(uint16_t qid, uint32_t size, uint64_t gpa, CqEntry* ring, volatile uint32_t* head_db,
       bool ien, uint16_t iv)
    : qid_(qid), size_(size), gpa_(gpa), ring_(ring), head_db_(head_db), ien_(ien), iv_(iv) {}

bool Cq::refresh_head() noexcept {
  uint32_t h = load_db(head_db_);
  if (h >= size_) {
    // Base 2.0 §3.3.1.2 / PCIe 1.0 §3.1.2: an invalid CQ head doorbell value
    // is an error; we ignore the value (an Invalid Doorbell Write Value async
    // event is reported by the controller for SQ tails).
    if (!bad_head_reported_) {
      VDPU_WARN_RL("nvme: CQ {} head doorbell {} >= size {} ignored", qid_, h, size_);
      bad_head_reported_ = true;
    }
    return false;
  }
  head_ = h;
  return true;
}

bool Cq::try_post(uint32_t dw0, uint16_t sqhd, uint16_t sqid, uint16_t cid, uint16_t st) noexcept {
  uint32_t next = tail_ + 1;
  if (next == size_) next = 0;
  // Full when advancing the tail would meet the head (PCIe 1.0 §3.3.1.2):
  // re-read the host's head doorbell only then.
  if (next == head_ && (!refresh_head() || next == head_)) return false;
  CqEntry* e = &ring_[tail_];
  e->dw0 = dw0;
  e->dw1 = 0;
  e->sqhd = sqhd;
  e->sqid = sqid;
  // The host polls the phase tag in DW3: every other byte of the entry must be
  // visible before DW3 (release store; a plain store on x86 after the
  // compiler barrier it implies).
  uint32_t dw3 = uint32_t(cid) | (uint32_t(st | phase_) << 16);
  __atomic_store_n(reinterpret_cast<uint32_t*>(&e->cid), dw3, __ATOMIC_RELEASE);
  tail_ = next;
  if (next == 0) phase_ ^= 1;
  ++irq_pending_;
  return true;
}

// ---------------------------------------------------------------- Sq

Sq::Sq(uint16_t qid, uint32_t size, uint64_t gpa, const SqEntry* ring,
       volatile uint32_t* tail_db, Cq* cq, uint32_t iov_per_req)
    : qid_(qid), size_(size), gpa_(gpa), ring_(ring), tail_db_(tail_db), cq_(cq) {
  reqs_ = std::make_unique<Request[]>(size);
  iovs_ = std::make_unique<iovec[]>(size_t(size) * iov_per_req);
  for (uint32_t i = size; i-- > 0;) {
    Request& r = reqs_[i];
    r.sq = this;
    r.iov = &iovs_[size_t(i) * iov_per_req];
    r.iov_cap = iov_per_req;
    r.io.cb_arg = &r;
    r.next = free_;
    free_ = &r;
  }
}

// ---------------------------------------------------------------- QueueGroup

QueueGroup::QueueGroup(Controller& ctrl, uint32_t reactor, GroupConfig cfg)
    : ctrl_(ctrl), reactor_(reactor), cfg_(cfg) {}

QueueGroup::~QueueGroup() { stop_poller(); }

void QueueGroup::start_poller(uint64_t period_us) {
  if (poller_) return;
  poller_ = ctrl_.env().add_poller(reactor_, "nvme_" + ctrl_.name(), [this] { return poll(); },
                                   period_us);
}

void QueueGroup::stop_poller() {
  if (!poller_) return;
  ctrl_.env().remove_poller(reactor_, poller_);
  poller_ = 0;
}

void QueueGroup::set_coalescing(uint32_t thr, uint64_t time_ns) {
  cfg_.coalesce_thr = thr;
  cfg_.coalesce_time_ns = time_ns;
  for (Cq* cq : cqs_)
    cq->coalesce_ = cq->qid_ != 0 && time_ns != 0 &&
                    !(cq->iv_ < vector_cd_.size() && vector_cd_[cq->iv_]);
}

void QueueGroup::set_vector_coalescing(uint16_t iv, bool disable) {
  if (vector_cd_.size() <= iv) vector_cd_.resize(size_t(iv) + 1, 0);
  vector_cd_[iv] = disable;
  set_coalescing(cfg_.coalesce_thr, cfg_.coalesce_time_ns);
}

void QueueGroup::add_cq(Cq* cq) {
  cqs_.push_back(cq);
  set_coalescing(cfg_.coalesce_thr, cfg_.coalesce_time_ns);
}

void QueueGroup::remove_cq(Cq* cq) { cqs_.erase(std::remove(cqs_.begin(), cqs_.end(), cq), cqs_.end()); }

void QueueGroup::add_sq(Sq* sq) {
  sq->group = this;
  sqs_.push_back(sq);
}

void QueueGroup::retry_later(Request& r) noexcept {
  r.next = nullptr;
  if (retry_tail_)
    retry_tail_->next = &r;
  else
    retry_head_ = &r;
  retry_tail_ = &r;
}

void QueueGroup::remove_sq(Sq* sq, std::function<void()> done) {
  sqs_.erase(std::remove(sqs_.begin(), sqs_.end(), sq), sqs_.end());
  sq->deleting_ = true;
  // Drop this SQ's completions still waiting for CQ space.
  Cq& cq = *sq->cq_;
  Request** pp = &cq.ovf_head_;
  cq.ovf_tail_ = nullptr;
  while (*pp) {
    Request* r = *pp;
    if (r->sq == sq) {
      *pp = r->next;
      sq->release(r);
    } else {
      cq.ovf_tail_ = r;
      pp = &r->next;
    }
  }
  deleting_.emplace_back(sq, std::move(done));
  check_drained();
}

void QueueGroup::quiesce(bool drop, std::function<void()> done) {
  paused_ = true;
  drop_ = drop_ || drop;
  if (drop_) {
    for (Cq* cq : cqs_) {
      while (Request* r = cq->ovf_head_) {
        cq->ovf_head_ = r->next;
        r->sq->release(r);
      }
      cq->ovf_tail_ = nullptr;
    }
  }
  drain_cb_ = std::move(done);
  check_drained();
}

size_t QueueGroup::inflight() const {
  size_t n = 0;
  for (Sq* sq : sqs_) n += sq->inflight_ - sq->parked_;
  return n;
}

void QueueGroup::check_drained() {
  for (size_t i = 0; i < deleting_.size();) {
    if (deleting_[i].first->inflight_ == 0) {
      auto cb = std::move(deleting_[i].second);
      deleting_.erase(deleting_.begin() + long(i));
      if (cb) cb();
    } else {
      ++i;
    }
  }
  if (drain_cb_ && inflight() == 0) {
    auto cb = std::move(drain_cb_);
    drain_cb_ = nullptr;
    cb();  // must only post messages (never free this group inline)
  }
}

void QueueGroup::set_namespace(uint32_t nsid, bdev::Bdev* b, bool attach) {
  ns_.erase(std::remove_if(ns_.begin(), ns_.end(), [&](auto& s) { return s->nsid == nsid; }),
            ns_.end());
  if (!attach || !b) return;
  auto s = std::make_unique<NsSlot>();
  s->nsid = nsid;
  s->lba_shift = uint32_t(std::countr_zero(b->block_size()));
  s->num_blocks = b->num_blocks();
  s->bdev = b;
  s->supports_unmap = b->supports(bdev::IoType::kUnmap);
  s->supports_write_zeroes = b->supports(bdev::IoType::kWriteZeroes);
  s->supports_flush = b->supports(bdev::IoType::kFlush);
  s->supports_compare = b->supports(bdev::IoType::kCompare);
  if (!cfg_.admin) s->ch = b->create_channel();
  ns_.push_back(std::move(s));
}

bool QueueGroup::process_sq(Sq& sq) noexcept {
  uint32_t tail = load_db(sq.tail_db_);
  if (tail == sq.head_) return false;
  if (tail >= sq.size_) {
    // PCIe 1.0 §3.1.2 / Base 2.0 §5.2: Invalid Doorbell Write Value; the
    // write is ignored and reported with an asynchronous event.
    if (!sq.bad_tail_reported_) {
      sq.bad_tail_reported_ = true;
      VDPU_WARN_RL("nvme {}: SQ {} tail doorbell {} >= size {}", ctrl_.name(), sq.qid_, tail,
                   sq.size_);
      ctrl_.report_error_event(kAerErrInvalidDoorbellValue);
    }
    return false;
  }
  uint32_t n = 0;
  while (sq.head_ != tail && n < kFetchBatch) {
    Request* r = sq.alloc();
    if (!r) break;  // every request in flight: back-pressure the SQ
    std::memcpy(&r->cmd, &sq.ring_[sq.head_], sizeof(SqEntry));
    if (++sq.head_ == sq.size_) sq.head_ = 0;
    r->state = ReqState::kExec;
    r->status = 0;
    r->cdw0 = 0;
    r->iovcnt = 0;
    r->ns = nullptr;
    ++n;
    if (cfg_.admin)
      admin_handler(*this, *r);
    else
      io_dispatch(*this, *r);
  }
  return n != 0;
}

void QueueGroup::complete(Request& r, uint16_t st, uint32_t cdw0) noexcept {
  Sq& sq = *r.sq;
  if (st != sc::kSuccess) QueueStats::bump(sq.stats_.errors);
  if (drop_ || sq.deleting_) {
    sq.release(&r);
    if (drain_cb_ || !deleting_.empty()) check_drained();
    return;
  }
  r.status = st;
  r.cdw0 = cdw0;
  post_or_queue(r);
}

void QueueGroup::post_or_queue(Request& r) noexcept {
  Sq& sq = *r.sq;
  Cq& cq = *sq.cq_;
  // Completions keep their order: once one waits for space, later ones queue.
  if (!cq.ovf_head_ &&
      cq.try_post(r.cdw0, uint16_t(sq.head_), sq.qid_, r.cmd.cid, cqe_status(r.status))) {
    sq.release(&r);
    // Admin CQ: interrupt at once (never coalesced). I/O CQs: once per poll
    // pass in flush_irqs(), which batches everything completed in the pass.
    if (cfg_.admin) raise(cq);
    if (drain_cb_) check_drained();
    return;
  }
  QueueStats::bump(sq.stats_.cqe_full_waits);
  r.state = ReqState::kCqWait;
  r.next = nullptr;
  if (cq.ovf_tail_)
    cq.ovf_tail_->next = &r;
  else
    cq.ovf_head_ = &r;
  cq.ovf_tail_ = &r;
  any_ovf_ = true;
}

void QueueGroup::flush_overflow(Cq& cq) noexcept {
  while (Request* r = cq.ovf_head_) {
    Sq& sq = *r->sq;
    if (!cq.try_post(r->cdw0, uint16_t(sq.head_), sq.qid_, r->cmd.cid, cqe_status(r->status)))
      break;
    cq.ovf_head_ = r->next;
    if (!cq.ovf_head_) cq.ovf_tail_ = nullptr;
    sq.release(r);
  }
  if (drain_cb_) check_drained();
}

void QueueGroup::park(Request& r) noexcept {
  r.state = ReqState::kParked;
  ++r.sq->parked_;
  if (drain_cb_) check_drained();
}

void QueueGroup::unpark(Request& r) noexcept {
  r.state = ReqState::kExec;
  --r.sq->parked_;
}

void QueueGroup::drop(Request& r) noexcept {
  if (r.state == ReqState::kParked) --r.sq->parked_;
  r.sq->release(&r);
  if (drain_cb_ || !deleting_.empty()) check_drained();
}

void QueueGroup::raise(Cq& cq) noexcept {
  cq.irq_pending_ = 0;
  cq.first_pending_ns_ = 0;
  // Base 2.0 §3.5.1 / PCIe 1.0 §3.3: IEN=0 means the host polls this CQ.
  if (cq.ien_ && irq_) irq_->raise(cq.iv_);
}

void QueueGroup::flush_irqs() noexcept {
  for (Cq* cq : cqs_) {
    if (!cq->irq_pending_) continue;
    // Interrupt Coalescing (Base 2.0 §5.27.1.8): raise when the aggregation
    // threshold (0-based) is reached or the aggregation time has passed.
    if (!cq->coalesce_ || cq->irq_pending_ > cfg_.coalesce_thr) {
      raise(*cq);
      continue;
    }
    uint64_t now = ctrl_.env().now_ns();
    if (!cq->first_pending_ns_)
      cq->first_pending_ns_ = now;
    else if (now - cq->first_pending_ns_ >= cfg_.coalesce_time_ns)
      raise(*cq);
  }
}

bool QueueGroup::poll() noexcept {
  bool busy = false;
  for (auto& s : ns_)
    if (s->ch) busy |= s->ch->poll();
  if (retry_head_) {
    Request* list = retry_head_;
    retry_head_ = retry_tail_ = nullptr;
    while (list) {
      Request* r = list;
      list = r->next;
      r->next = nullptr;
      r->ns->ch->submit(r->io);  // may re-queue itself via retry_later
    }
    busy = true;
  }
  if (any_ovf_) {
    any_ovf_ = false;
    for (Cq* cq : cqs_) {
      if (!cq->ovf_head_) continue;
      Request* first = cq->ovf_head_;
      flush_overflow(*cq);
      if (cq->ovf_head_) any_ovf_ = true;
      busy |= cq->ovf_head_ != first;  // progress only if something was posted
    }
  }
  if (!paused_)
    for (size_t i = 0; i < sqs_.size(); ++i) busy |= process_sq(*sqs_[i]);
  flush_irqs();
  return busy;
}

}  // namespace vdpu::nvme
