// Admin command set dispatch (Base 2.0 §5) and the queue management,
// asynchronous event, abort and keep alive commands. Runs on the main reactor.
// Identify, features and log pages live in identify.cc, features.cc, logs.cc.
#include <array>

#include "base/log.h"
#include "nvme/controller.h"
#include "nvme/dataptr.h"

namespace vdpu::nvme {

// One table, indexed by opcode, used by dispatch and by the Commands
// Supported and Effects log (logs.cc).
struct AdminOps {
  using Fn = void (Controller::*)(Request&);
  struct Op {
    Fn fn = nullptr;
    uint32_t effects = 0;
  };
  static const std::array<Op, 256>& table() {
    static const std::array<Op, 256> t = [] {
      std::array<Op, 256> a{};
      a[kAdmDeleteIoSq] = {&Controller::adm_delete_sq, kCseCsupp};
      a[kAdmCreateIoSq] = {&Controller::adm_create_sq, kCseCsupp};
      a[kAdmGetLogPage] = {&Controller::adm_get_log_page, kCseCsupp};
      a[kAdmDeleteIoCq] = {&Controller::adm_delete_cq, kCseCsupp};
      a[kAdmCreateIoCq] = {&Controller::adm_create_cq, kCseCsupp};
      a[kAdmIdentify] = {&Controller::adm_identify, kCseCsupp};
      a[kAdmAbort] = {&Controller::adm_abort, kCseCsupp};
      a[kAdmSetFeatures] = {&Controller::adm_set_features, kCseCsupp | kCseCcc};
      a[kAdmGetFeatures] = {&Controller::adm_get_features, kCseCsupp};
      a[kAdmAsyncEventRequest] = {&Controller::adm_async_event, kCseCsupp};
      a[kAdmKeepAlive] = {&Controller::adm_keep_alive, kCseCsupp};
      return a;
    }();
    return t;
  }
  static void dispatch(Controller& c, Request& r) {
    const Op& op = table()[r.cmd.opc];
    if (!op.fn) {
      VDPU_WARN_RL("nvme {}: invalid admin opcode {:#x}", c.name(), r.cmd.opc);
      c.admin_complete(r, sc::kInvalidOpcode | kStatusDnr);
      return;
    }
    (c.*op.fn)(r);
  }
};

uint32_t admin_effects(uint8_t opc) { return AdminOps::table()[opc].effects; }

void Controller::admin_dispatch(QueueGroup& g, Request& r) {
  Controller& c = g.ctrl();
  r.gen = c.gen_;
  // Base 2.0 §4.2: fused operations are I/O only; NVMe over PCIe admin
  // commands use PRPs (PSDT 00b).
  if (r.cmd.fuse() || r.cmd.psdt() != kPsdtPrp) {
    c.admin_complete(r, sc::kInvalidField | kStatusDnr);
    return;
  }
  AdminOps::dispatch(c, r);
}

void Controller::admin_complete(Request& r, uint16_t st, uint32_t cdw0) {
  if (st != sc::kSuccess)
    VDPU_DEBUG("nvme {}: admin opc {:#x} cid {} -> status {:#x}", name(), r.cmd.opc, r.cmd.cid, st);
  admin_group_->complete(r, st, cdw0);
}

uint16_t Controller::copy_to_host(Request& r, const void* data, size_t len) {
  DataMapArgs a;
  a.len = len;
  a.page_size = page_size_;
  a.device_writes = true;
  if (uint16_t st = map_data(*dma_, r.cmd, a, r.iov, r.iov_cap, &r.iovcnt)) return st;
  iov_copy_to(r.iov, r.iovcnt, data, len);
  return sc::kSuccess;
}

uint16_t Controller::copy_from_host(Request& r, void* data, size_t len) {
  DataMapArgs a;
  a.len = len;
  a.page_size = page_size_;
  if (uint16_t st = map_data(*dma_, r.cmd, a, r.iov, r.iov_cap, &r.iovcnt)) return st;
  iov_copy_from(r.iov, r.iovcnt, data, len);
  return sc::kSuccess;
}

// ---------------------------------------------------------------- queues

// Create I/O Completion Queue (Base 2.0 §5.4).
void Controller::adm_create_cq(Request& r) {
  const SqEntry& c = r.cmd;
  uint16_t qid = uint16_t(c.cdw10 & 0xffff);
  uint32_t size = (c.cdw10 >> 16) + 1;
  bool pc = c.cdw11 & 1, ien = c.cdw11 & 2;
  uint16_t iv = uint16_t(c.cdw11 >> 16);
  // Figure 152: Invalid Queue Identifier (0, above the allocated number, in use).
  if (qid == 0 || qid > o_.num_queues || cqs_[qid])
    return admin_complete(r, sc::kInvalidQueueIdentifier | kStatusDnr);
  // Invalid Queue Size: 0-based QSIZE 0 or above CAP.MQES.
  if (size < 2 || size > cap_mqes(cap_) + 1)
    return admin_complete(r, sc::kInvalidQueueSize | kStatusDnr);
  // CAP.CQR = 1: PC must be 1.
  if (!pc) return admin_complete(r, sc::kInvalidField | kStatusDnr);
  if (ien && iv >= num_msix_) return admin_complete(r, sc::kInvalidInterruptVector | kStatusDnr);
  if (cc_iocqes(cc_) != kCqeSizeLog2) return admin_complete(r, sc::kInvalidField | kStatusDnr);
  if (!c.prp1 || (c.prp1 & (page_size_ - 1)))
    return admin_complete(r, sc::kPrpOffsetInvalid | kStatusDnr);
  auto* ring = reinterpret_cast<CqEntry*>(dma_->translate(c.prp1, uint64_t(size) * 16, true));
  if (!ring) return admin_complete(r, sc::kDataTransferError | kStatusDnr);

  uint32_t reactor = env_.pick();
  auto cq = std::make_unique<Cq>(qid, size, c.prp1, ring, &db_[2 * qid + 1], ien, iv);
  cq->reactor = reactor;
  Cq* raw = cq.get();
  cqs_[qid] = std::move(cq);
  ring_maps_[2 * qid + 1] = dma_;
  io_queues_created_ = true;
  QueueGroup& g = group_on(reactor);
  env_.post(reactor, [this, g = &g, raw, req = &r] {
    g->add_cq(raw);
    post_main([this, req] { admin_complete(*req, sc::kSuccess); });
  });
}

// Create I/O Submission Queue (Base 2.0 §5.5).
void Controller::adm_create_sq(Request& r) {
  const SqEntry& c = r.cmd;
  uint16_t qid = uint16_t(c.cdw10 & 0xffff);
  uint32_t size = (c.cdw10 >> 16) + 1;
  bool pc = c.cdw11 & 1;
  uint16_t cqid = uint16_t(c.cdw11 >> 16);
  // Figure 156: Completion Queue Invalid for CQID 0 or a CQ that does not exist.
  if (cqid == 0 || cqid > kMaxIoQueues || !cqs_[cqid] || cq_deleting_[cqid])
    return admin_complete(r, sc::kCompletionQueueInvalid | kStatusDnr);
  if (qid == 0 || qid > o_.num_queues || sqs_[qid])
    return admin_complete(r, sc::kInvalidQueueIdentifier | kStatusDnr);
  if (size < 2 || size > cap_mqes(cap_) + 1)
    return admin_complete(r, sc::kInvalidQueueSize | kStatusDnr);
  if (!pc) return admin_complete(r, sc::kInvalidField | kStatusDnr);
  if (cc_iosqes(cc_) != kSqeSizeLog2) return admin_complete(r, sc::kInvalidField | kStatusDnr);
  if (!c.prp1 || (c.prp1 & (page_size_ - 1)))
    return admin_complete(r, sc::kPrpOffsetInvalid | kStatusDnr);
  auto* ring = reinterpret_cast<const SqEntry*>(dma_->translate(c.prp1, uint64_t(size) * 64));
  if (!ring) return admin_complete(r, sc::kDataTransferError | kStatusDnr);

  Cq* cq = cqs_[cqid].get();
  uint32_t iov_per_req = uint32_t(io_cfg_.max_xfer / page_size_) + 2;
  auto sq = std::make_unique<Sq>(qid, size, c.prp1, ring, &db_[2 * qid], cq, iov_per_req);
  Sq* raw = sq.get();
  sqs_[qid] = std::move(sq);
  ring_maps_[2 * qid] = dma_;
  ++cq->num_sqs;
  io_queues_created_ = true;
  QueueGroup& g = group_on(cq->reactor);
  env_.post(cq->reactor, [this, g = &g, raw, req = &r] {
    g->add_sq(raw);
    post_main([this, req] { admin_complete(*req, sc::kSuccess); });
  });
}

// Delete I/O Submission Queue (Base 2.0 §5.6).
void Controller::adm_delete_sq(Request& r) {
  uint16_t qid = uint16_t(r.cmd.cdw10 & 0xffff);
  if (qid == 0 || qid > kMaxIoQueues || !sqs_[qid] || sq_deleting_[qid])
    return admin_complete(r, sc::kInvalidQueueIdentifier | kStatusDnr);
  sq_deleting_[qid] = true;
  Sq* sq = sqs_[qid].get();
  QueueGroup* g = groups_[sq->cq()->reactor].get();
  // Stop fetching, wait for the commands in flight on this SQ (their
  // completions are dropped: implicitly aborted), then free it here.
  env_.post(g->reactor(), [this, g, sq, qid, req = &r] {
    g->remove_sq(sq, [this, qid, req] {
      post_main([this, qid, req] {
        Cq* cq = sqs_[qid]->cq();
        --cq->num_sqs;
        sqs_[qid].reset();
        ring_maps_[2 * qid].reset();
        sq_deleting_[qid] = false;
        admin_complete(*req, sc::kSuccess);
      });
    });
  });
}

// Delete I/O Completion Queue (Base 2.0 §5.7).
void Controller::adm_delete_cq(Request& r) {
  uint16_t qid = uint16_t(r.cmd.cdw10 & 0xffff);
  if (qid == 0 || qid > kMaxIoQueues || !cqs_[qid] || cq_deleting_[qid])
    return admin_complete(r, sc::kInvalidQueueIdentifier | kStatusDnr);
  // Figure 161: every SQ using this CQ must be deleted first.
  if (cqs_[qid]->num_sqs) return admin_complete(r, sc::kInvalidQueueDeletion | kStatusDnr);
  cq_deleting_[qid] = true;
  Cq* cq = cqs_[qid].get();
  QueueGroup* g = groups_[cq->reactor].get();
  env_.post(g->reactor(), [this, g, cq, qid, req = &r] {
    g->remove_cq(cq);
    post_main([this, qid, req] {
      cqs_[qid].reset();
      ring_maps_[2 * qid + 1].reset();
      cq_deleting_[qid] = false;
      admin_complete(*req, sc::kSuccess);
    });
  });
}

// ---------------------------------------------------------------- events

// Asynchronous Event Request (Base 2.0 §5.2): parked until an event.
void Controller::adm_async_event(Request& r) {
  uint32_t aerl = 3;  // Identify AERL (0-based): 4 outstanding
  if (aers_.size() > aerl)
    return admin_complete(r, sc::kAsyncEventRequestLimitExceeded);
  admin_group_->park(r);
  aers_.push_back(&r);
  deliver_events();
}

void Controller::add_event(uint8_t type, uint8_t info, uint8_t lid) {
  uint32_t dw0 = uint32_t(type) | (uint32_t(info) << 8) | (uint32_t(lid) << 16);
  for (uint32_t e : events_)
    if (e == dw0) return;  // one of each kind is enough
  events_.push_back(dw0);
  deliver_events();
}

void Controller::deliver_events() {
  if (suspended_ || state_ != CtrlState::kEnabled) return;
  while (!aers_.empty()) {
    // The first event whose type is not masked (an event of a type masks
    // further ones until the host reads its log page, Base 2.0 §5.2).
    auto it = events_.begin();
    while (it != events_.end() && (masked_types_ & (1u << (*it & 7)))) ++it;
    if (it == events_.end()) return;
    uint32_t dw0 = *it;
    events_.erase(it);
    masked_types_ |= uint8_t(1u << (dw0 & 7));
    Request* r = aers_.front();
    aers_.erase(aers_.begin());
    admin_group_->unpark(*r);
    admin_complete(*r, sc::kSuccess, dw0);
  }
}

void Controller::record_error(uint16_t sqid, uint16_t cid, uint16_t st) {
  ErrorInformationEntry e{};
  e.error_count = ++error_count_;
  e.sqid = sqid;
  e.cid = cid;
  e.status = cqe_status(st);
  e.param_error_location = 0xffff;
  errors_.push_front(e);
  while (errors_.size() > 4) errors_.pop_back();  // ELPE = 3
}

// Abort (Base 2.0 §5.1): an outstanding AER can be aborted; other commands
// run to completion (DW0 bit 0 = 1: not aborted).
void Controller::adm_abort(Request& r) {
  uint16_t sqid = uint16_t(r.cmd.cdw10 & 0xffff), cid = uint16_t(r.cmd.cdw10 >> 16);
  if (sqid == 0) {
    for (size_t i = 0; i < aers_.size(); ++i) {
      if (aers_[i]->cmd.cid != cid) continue;
      Request* a = aers_[i];
      aers_.erase(aers_.begin() + long(i));
      admin_group_->unpark(*a);
      admin_complete(*a, sc::kAbortRequested);
      return admin_complete(r, sc::kSuccess, 0);
    }
  }
  admin_complete(r, sc::kSuccess, 1);
}

// Keep Alive (Base 2.0 §5.25).
void Controller::adm_keep_alive(Request& r) {
  last_keep_alive_ns_ = env_.now_ns();
  admin_complete(r, sc::kSuccess);
}

void Controller::check_keep_alive() {
  if (!feat_.kato || state_ != CtrlState::kEnabled) return;
  uint64_t now = env_.now_ns();
  if (now - last_keep_alive_ns_ < uint64_t(feat_.kato) * 1000000) return;
  // Base 2.0 §3.9.5: log Keep Alive Timer Expired, stop processing, CFS = 1.
  record_error(0, 0xffff, sc::kKeepAliveTimerExpired);
  fail("keep alive timer expired");
  quiesce_all(false, true, nullptr);
}

}  // namespace vdpu::nvme
