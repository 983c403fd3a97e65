#include "bdev/nvme/qpair.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "bdev/nvme/channel.h"
#include "nvme/fabrics.h"

namespace vdpu::bdev::nvme {

using namespace vdpu::nvmf_tcp;
namespace nv = vdpu::nvme;

namespace {

constexpr uint64_t kMaxNlb = 65536;    // NLB is a 16-bit 0's based field
constexpr size_t kRxBuf = 128 * 1024;  // per-connection receive buffer
constexpr int kMaxSendIov = 64;        // iovecs per sendmsg
constexpr size_t kZeroCopyMin = 2048;  // read straight into iovecs above this
constexpr int kMaxPlaceIov = 256;      // iovecs of one C2HData placement

// Collects iovecs for bytes [off, off+len) of src into out (at most max);
// returns the bytes covered (less than len when out is too small).
size_t iov_slice(const iovec* src, uint32_t cnt, uint64_t off, size_t len, iovec* out, int max,
                 int* n) {
  *n = 0;
  size_t covered = 0;
  for (uint32_t i = 0; i < cnt && covered < len; ++i) {
    if (off >= src[i].iov_len) {
      off -= src[i].iov_len;
      continue;
    }
    if (*n == max) break;
    size_t take = std::min(src[i].iov_len - off, len - covered);
    out[(*n)++] = {static_cast<uint8_t*>(src[i].iov_base) + off, take};
    covered += take;
    off = 0;
  }
  return covered;
}

uint32_t crc_slice(const iovec* src, uint32_t cnt, uint64_t off, size_t len) {
  uint32_t s = kCrc32cInit;
  for (uint32_t i = 0; i < cnt && len > 0; ++i) {
    if (off >= src[i].iov_len) {
      off -= src[i].iov_len;
      continue;
    }
    size_t take = std::min(src[i].iov_len - off, len);
    s = crc32c_update(s, static_cast<const uint8_t*>(src[i].iov_base) + off, take);
    len -= take;
    off = 0;
  }
  return crc32c_final(s);
}

IoStatus io_status(uint16_t s) {
  switch (s) {
    case nv::sc::kSuccess:
      return IoStatus::kSuccess;
    case nv::sc::kCompareFailure:
      return IoStatus::kMiscompare;
    case nv::sc::kLbaOutOfRange:
      return IoStatus::kOutOfRange;
    case nv::sc::kInvalidOpcode:
      return IoStatus::kUnsupported;
    default:
      return IoStatus::kFailed;
  }
}

// Pseudo status for transport-level failures of one command.
constexpr uint16_t kStatusShortRead = 0xffff;
constexpr uint16_t kStatusDigest = nv::sc::kTransientTransportError;

}  // namespace

struct IoQpair::Req {
  Io* io = nullptr;
  uint16_t cid = 0;
  Send send = Send::kNone;
  bool in_send = false;   // in the send FIFO
  bool has_resp = false;  // response arrived while a PDU was still queued
  bool incapsule = false;
  bool r2t_active = false;
  bool ddgst_err = false;
  bool pdu_dd = false;
  uint16_t resp_status = 0;
  uint16_t ttag = 0;
  uint32_t nblocks = 0;  // blocks of the current command
  uint32_t dlen = 0;     // data bytes of the current command
  const iovec* div = nullptr;
  uint32_t divcnt = 0;
  uint64_t dbase = 0;  // offset of the command's data in div
  uint32_t c2h_got = 0;
  uint32_t r2t_off = 0, r2t_end = 0;
  uint32_t pdu_doff = 0, pdu_dlen = 0;  // data of the PDU being sent (command-relative)
  uint32_t hdr_len = 0;
  bool timed_out = false;
  uint64_t start_ns = 0;  // when the command was built (timeouts only)
  Req* send_next = nullptr;
  alignas(8) uint8_t hdr[kMaxTxHeader];
  uint8_t ddgst[4];
  iovec dsm_iov{};
  nv::DsmRange dsm[1];
};

IoQpair::IoQpair(rt::Reactor* r, QueueLimits lim, std::function<void(IoQpair&)> on_fail)
    : reactor_(r),
      lim_(lim),
      on_fail_(std::move(on_fail)),
      reqs_(lim.depth),
      rbuf_(kRxBuf),
      place_iov_(kMaxPlaceIov) {
  free_.reserve(lim_.depth);
  for (uint32_t i = lim_.depth; i-- > 0;) {
    reqs_[i].cid = uint16_t(i);
    free_.push_back(uint16_t(i));
  }
}

IoQpair::~IoQpair() {
  if (fd_ >= 0) ::close(fd_);
}

void IoQpair::start() {
  poller_ = reactor_->add_poller(
      "nvme_tcp_qpair", [this] { return poll(); }, 0, [this] { return prepare_sleep(); });
  if (lim_.timeout_ns) {
    uint64_t period_us = std::max<uint64_t>(1000, lim_.timeout_ns / 4000);
    timeout_poller_ = reactor_->add_poller(
        "nvme_tcp_timeout", [this] { return check_timeouts(); }, period_us);
  }
}

bool IoQpair::prepare_sleep() noexcept {
  // The socket is a wake fd: data from the target wakes the reactor. Work
  // already buffered or queued must be done first.
  if (fd_ < 0) return true;
  return send_head_ == nullptr && rhead_ == rtail_ && (wait_head_ == nullptr || free_.empty());
}

void IoQpair::adopt(int fd, const TcpParams& tp) {
  if (dead_) {
    ::close(fd);
    return;
  }
  if (fd_ >= 0) disconnect();
  fd_ = fd;
  tp_ = tp;
  rx_.reset();
  // The ICReq/ICResp exchange happened while the connection was set up
  // (SyncConn): replay its ICResp so the receiver expects capsules now.
  alignas(8) uint8_t ic[kIcLen];
  build_icresp(ic, tp.cpda, tp.hdgst, tp.ddgst, tp.maxh2cdata);
  rx_.feed(ic, kIcLen, *this);
  rx_.params().hdgst = tp.hdgst;
  rx_.params().ddgst = tp.ddgst;
  rx_.params().max_data = std::max<uint32_t>(lim_.max_xfer, 4096);
  rhead_ = rtail_ = 0;
  head_sent_ = 0;
  fail_fast_ = false;
  failing_ = false;
  if (!reactor_->add_wake_fd(fd).ok())
    VDPU_WARN("nvme {} queue {}: cannot watch its socket", name_, qid_);
  drain_waiting();
}

void IoQpair::disconnect() {
  if (fd_ < 0) return;
  reactor_->remove_wake_fd(fd_);
  ::close(fd_);
  fd_ = -1;
  // In-flight commands go back to the head of the wait list, oldest first,
  // to be sent again on the next connection (a split Io resumes at the
  // first command that did not complete).
  for (uint32_t i = lim_.depth; i-- > 0;) {
    Req& r = reqs_[i];
    if (!r.io) continue;
    Io* io = r.io;
    r = Req{};
    r.cid = uint16_t(i);
    push_wait_front(*io);
    stats_.retried.fetch_add(1, std::memory_order_relaxed);
  }
  free_.clear();
  for (uint32_t i = lim_.depth; i-- > 0;) free_.push_back(uint16_t(i));
  inflight_ = 0;
  send_head_ = send_tail_ = nullptr;
  head_sent_ = 0;
  rx_.reset();
  rhead_ = rtail_ = 0;
  if (fail_fast_) fail_fast(true);
}

void IoQpair::fail_fast(bool on) {
  fail_fast_ = on;
  if (!on || fd_ >= 0) return;
  while (Io* io = pop_wait()) complete(*io, IoStatus::kFailed);
}

void IoQpair::shutdown(IoStatus st) {
  dead_ = true;
  if (fd_ >= 0) disconnect();
  while (Io* io = pop_wait()) complete(*io, st);
  if (poller_) reactor_->remove_poller(poller_);
  if (timeout_poller_) reactor_->remove_poller(timeout_poller_);
  poller_ = timeout_poller_ = 0;
}

void IoQpair::conn_error(const char* why) noexcept {
  if (fd_ < 0) return;
  VDPU_WARN_RL("nvme {} queue {}: connection lost: {}", name_, qid_, why);
  disconnect();
  if (!dead_ && on_fail_) on_fail_(*this);
}

// ---------------------------------------------------------------- submission

void IoQpair::submit(Io& io, NvmeChannel& ch, const NsInfo& ns) noexcept {
  IoCtx& c = io_ctx(io);
  c.ch = &ch;
  c.nsid = ns.nsid;
  c.lba_shift = ns.lba_shift;
  c.done_blocks = 0;
  c.retries = 0;
  stats_.submitted.fetch_add(1, std::memory_order_relaxed);
  if (dead_) return complete(io, IoStatus::kAborted);
  if ((io.type == IoType::kUnmap || io.type == IoType::kWriteZeroes) && io.num_blocks == 0)
    return complete(io, IoStatus::kSuccess);
  if (fd_ < 0) {
    if (fail_fast_) return complete(io, IoStatus::kFailed);
    return push_wait_back(io);
  }
  // FIFO: nothing overtakes an Io that waits for a free request.
  if (wait_head_ || !start_io(io)) push_wait_back(io);
}

void IoQpair::drain_waiting() noexcept {
  while (fd_ >= 0 && wait_head_ && !free_.empty()) start_io(*pop_wait());
}

bool IoQpair::start_io(Io& io) noexcept {
  if (free_.empty()) return false;
  Req& r = reqs_[free_.back()];
  free_.pop_back();
  ++inflight_;
  r.io = &io;
  build_cmd(r);
  queue_send(r);
  return true;
}

// Builds the next command of r's Io (from IoCtx::done_blocks) and its PDU.
void IoQpair::build_cmd(Req& r) noexcept {
  Io& io = *r.io;
  IoCtx& c = io_ctx(io);
  const uint64_t left = io.num_blocks - c.done_blocks;
  const uint64_t lba = io.offset_blocks + c.done_blocks;
  nv::SqEntry sqe{};
  sqe.cid = r.cid;
  sqe.nsid = c.nsid;
  sqe.flags = uint8_t(nv::kPsdtSglMptrContig << 6);
  r.dlen = 0;
  r.div = nullptr;
  r.divcnt = 0;
  r.dbase = 0;
  r.nblocks = 0;
  r.c2h_got = 0;
  r.ddgst_err = false;
  r.has_resp = false;
  r.timed_out = false;
  if (lim_.timeout_ns) r.start_ns = rt::now_ns();
  r.r2t_active = false;
  switch (io.type) {
    case IoType::kRead:
    case IoType::kWrite: {
      uint64_t max =
          std::min<uint64_t>(kMaxNlb, std::max<uint64_t>(1, lim_.max_xfer >> c.lba_shift));
      uint64_t n = std::min(left, max);
      sqe.opc = io.type == IoType::kRead ? nv::kIoRead : nv::kIoWrite;
      sqe.cdw10 = uint32_t(lba);
      sqe.cdw11 = uint32_t(lba >> 32);
      sqe.cdw12 = uint32_t(n - 1);
      r.nblocks = uint32_t(n);
      r.dlen = uint32_t(n << c.lba_shift);
      r.div = io.iov;
      r.divcnt = io.iovcnt;
      r.dbase = c.done_blocks << c.lba_shift;
      break;
    }
    case IoType::kWriteZeroes: {
      uint64_t n = std::min(left, kMaxNlb);
      sqe.opc = nv::kIoWriteZeroes;
      sqe.cdw10 = uint32_t(lba);
      sqe.cdw11 = uint32_t(lba >> 32);
      sqe.cdw12 = uint32_t(n - 1);
      r.nblocks = uint32_t(n);
      break;
    }
    case IoType::kUnmap: {
      // One range per command: a range covers up to 4 Gi - 1 blocks (NLB is
      // 32 bits in a DSM range, NVM 1.0 Figure 39); larger unmaps are split.
      uint64_t n = std::min<uint64_t>(left, 0xffffffffu);
      r.dsm[0] = nv::DsmRange{0, uint32_t(n), lba};
      sqe.opc = nv::kIoDatasetManagement;
      sqe.cdw10 = 0;        // NR: one range (0's based)
      sqe.cdw11 = 1u << 2;  // AD: deallocate (NVM 1.0 §3.2.3)
      r.nblocks = uint32_t(n);
      r.dsm_iov = {r.dsm, sizeof(nv::DsmRange)};
      r.div = &r.dsm_iov;
      r.divcnt = 1;
      r.dlen = uint32_t(sizeof(nv::DsmRange));
      break;
    }
    case IoType::kFlush:
    default:
      sqe.opc = nv::kIoFlush;
      break;
  }
  // Data out in the capsule when it fits (§3.3.3 in-capsule data), else
  // the target asks for it with R2T; data in always comes by C2HData.
  bool out = io.type == IoType::kWrite || io.type == IoType::kUnmap;
  r.incapsule = out && r.dlen > 0 && r.dlen <= lim_.icd_max;
  nv::SglDescriptor sgl{};
  sgl.len = r.dlen;
  sgl.id = r.incapsule ? nv::kSglIdIncapsule : nv::kSglIdTransport;
  std::memcpy(&sqe.prp1, &sgl, sizeof(sgl));
  uint32_t icd = r.incapsule ? r.dlen : 0;
  r.hdr_len = build_capsule_cmd(r.hdr, sqe, icd, TxDigests{tp_.hdgst, tp_.ddgst}, tp_.cpda);
  r.send = Send::kCapsule;
  r.pdu_doff = 0;
  r.pdu_dlen = icd;
  r.pdu_dd = icd && tp_.ddgst;
  if (r.pdu_dd) nv::put_le32(r.ddgst, crc_slice(r.div, r.divcnt, r.dbase, icd));
}

void IoQpair::queue_send(Req& r) noexcept {
  r.in_send = true;
  r.send_next = nullptr;
  if (send_tail_)
    send_tail_->send_next = &r;
  else
    send_head_ = &r;
  send_tail_ = &r;
}

namespace {
// Appends the iovecs of r's current PDU from byte `skip` on; false when they
// did not all fit (the rest goes in a later sendmsg).
template <class R>
bool append_pdu(const R& r, size_t skip, iovec* v, int& cnt) {
  if (skip < r.hdr_len) {
    if (cnt == kMaxSendIov) return false;
    v[cnt++] = {const_cast<uint8_t*>(r.hdr) + skip, r.hdr_len - skip};
    skip = 0;
  } else {
    skip -= r.hdr_len;
  }
  if (r.pdu_dlen) {
    if (skip < r.pdu_dlen) {
      int n = 0;
      size_t want = r.pdu_dlen - skip;
      size_t got = iov_slice(r.div, r.divcnt, r.dbase + r.pdu_doff + skip, want, v + cnt,
                             kMaxSendIov - cnt, &n);
      cnt += n;
      if (got < want) return false;
      skip = 0;
    } else {
      skip -= r.pdu_dlen;
    }
  }
  if (r.pdu_dd && skip < 4) {
    if (cnt == kMaxSendIov) return false;
    v[cnt++] = {const_cast<uint8_t*>(r.ddgst) + skip, 4 - skip};
  }
  return true;
}
}  // namespace

// One sendmsg for as many queued PDUs as fit in kMaxSendIov iovecs.
bool IoQpair::flush() noexcept {
  bool busy = false;
  for (int round = 0; round < 4 && send_head_ && fd_ >= 0; ++round) {
    iovec v[kMaxSendIov];
    int cnt = 0;
    size_t skip = head_sent_;  // what an earlier partial send wrote of the head PDU
    for (Req* r = send_head_; r; r = r->send_next) {
      if (!append_pdu(*r, skip, v, cnt)) break;
      skip = 0;
    }
    msghdr m{};
    m.msg_iov = v;
    m.msg_iovlen = size_t(cnt);
    ssize_t n = sendmsg(fd_, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return busy;
      conn_error(strerror(errno));
      return true;
    }
    busy = true;
    size_t bytes = head_sent_ + size_t(n);
    bool partial = false;
    while (send_head_) {
      Req* r = send_head_;
      size_t total = r->hdr_len + r->pdu_dlen + (r->pdu_dd ? 4 : 0);
      if (bytes < total) {
        partial = true;
        break;
      }
      bytes -= total;
      send_head_ = r->send_next;
      if (!send_head_) send_tail_ = nullptr;
      r->in_send = false;
      pdu_sent(*r);
      if (fd_ < 0) return true;
    }
    head_sent_ = bytes;
    if (partial) break;  // socket buffer full
  }
  return busy;
}

void IoQpair::pdu_sent(Req& r) noexcept {
  if (r.send == Send::kH2C) {
    r.r2t_off += r.pdu_dlen;
    if (r.r2t_off < r.r2t_end && !r.has_resp) {
      uint32_t len = std::min(r.r2t_end - r.r2t_off, tp_.maxh2cdata);
      bool last = r.r2t_off + len == r.r2t_end;
      r.hdr_len = build_h2c_data(r.hdr, r.cid, r.ttag, r.r2t_off, len, last,
                                 TxDigests{tp_.hdgst, tp_.ddgst}, tp_.cpda);
      r.pdu_doff = r.r2t_off;
      r.pdu_dlen = len;
      r.pdu_dd = tp_.ddgst;
      if (r.pdu_dd) nv::put_le32(r.ddgst, crc_slice(r.div, r.divcnt, r.dbase + r.r2t_off, len));
      queue_send(r);
      return;
    }
    r.r2t_active = false;
  }
  r.send = Send::kNone;
  if (r.has_resp) finish_cmd(r, r.resp_status);
}

// ---------------------------------------------------------------- completion

void IoQpair::complete(Io& io, IoStatus st) noexcept {
  stats_.completed.fetch_add(1, std::memory_order_relaxed);
  if (st != IoStatus::kSuccess) stats_.errors.fetch_add(1, std::memory_order_relaxed);
  io_ctx(io).ch->finish(io, st);
}

void IoQpair::release(Req& r) noexcept {
  r.io = nullptr;
  r.send = Send::kNone;
  free_.push_back(r.cid);
  --inflight_;
}

// Statuses worth sending the same command again for (DNR clear): the path
// or the transport failed, not the command (Base 2.0 §4.6.1.2, Figure 94).
static bool retryable(uint16_t code) {
  return nv::status_sct(code) == nv::kSctPath || code == nv::sc::kTransientTransportError ||
         code == nv::sc::kNamespaceNotReady || code == nv::sc::kCommandInterrupted ||
         code == nv::sc::kAbortedSqDeletion;
}

void IoQpair::finish_cmd(Req& r, uint16_t status) noexcept {
  Io& io = *r.io;
  if (status == 0 && r.ddgst_err) status = kStatusDigest;
  if (status == 0 && io.type == IoType::kRead && r.c2h_got != r.dlen) status = kStatusShortRead;
  if (status != 0 && status != kStatusShortRead && !(status & nv::kStatusDnr) &&
      retryable(status & 0x7ff)) {
    IoCtx& c = io_ctx(io);
    if (lim_.retry_count < 0 || c.retries < uint32_t(lim_.retry_count)) {
      ++c.retries;
      stats_.retried.fetch_add(1, std::memory_order_relaxed);
      VDPU_WARN_RL("nvme {} queue {}: {} at block {}: {}; retrying ({} of {})", name_, qid_,
                   io_type_name(io.type), io.offset_blocks + c.done_blocks,
                   status_text(status & 0x7ff), c.retries, lim_.retry_count);
      build_cmd(r);  // the same command again, same request
      queue_send(r);
      return;
    }
  }
  status = status == kStatusShortRead ? status : uint16_t(status & 0x7ff);
  if (status == 0) {
    IoCtx& c = io_ctx(io);
    c.done_blocks += r.nblocks;
    c.retries = 0;
    if (io.type != IoType::kFlush && c.done_blocks < io.num_blocks) {
      build_cmd(r);  // the next part of a split Io, same request
      queue_send(r);
      return;
    }
    release(r);
    complete(io, IoStatus::kSuccess);
    return;
  }
  if (status == kStatusShortRead)
    VDPU_WARN_RL("nvme {} queue {}: read of {} bytes completed with {} bytes of data", name_, qid_,
                 r.dlen, r.c2h_got);
  else
    VDPU_WARN_RL("nvme {} queue {}: {} at block {} failed: {}", name_, qid_, io_type_name(io.type),
                 io.offset_blocks + io_ctx(io).done_blocks, status_text(status));
  release(r);
  complete(io, status == kStatusShortRead ? IoStatus::kFailed : io_status(status));
}

// ---------------------------------------------------------------- receiving

PduError IoQpair::on_pdu_header(const PduView& pdu, Placement* place) {
  switch (pdu.type) {
    case PduType::kCapsuleResp: {
      uint16_t cid = pdu.as<CapsuleResp>().cqe.cid;
      if (cid >= lim_.depth || !reqs_[cid].io)
        return {Fes::kInvalidHeaderField, 8 + 12, "CapsuleResp for a command not in flight"};
      return {};
    }
    case PduType::kC2HData: {
      const auto& d = pdu.as<C2HData>();
      if (d.cccid >= lim_.depth || !reqs_[d.cccid].io || reqs_[d.cccid].io->type != IoType::kRead)
        return {Fes::kInvalidHeaderField, 8, "C2HData for a command not in flight or not a read"};
      Req& r = reqs_[d.cccid];
      if (d.datao != r.c2h_got) return {Fes::kDataOutOfRange, 12, "C2HData out of order"};
      if (uint64_t(d.datao) + d.datal > r.dlen)
        return {Fes::kDataOutOfRange, 16, "C2HData beyond the command's data"};
      int n = 0;
      size_t got = iov_slice(r.div, r.divcnt, r.dbase + d.datao, d.datal, place_iov_.data(),
                             kMaxPlaceIov, &n);
      if (got != d.datal) return {Fes::kDataLimitExceeded, 16, "C2HData spans too many buffers"};
      place->iov = place_iov_.data();
      place->iovcnt = n;
      return {};
    }
    case PduType::kR2T: {
      const auto& t = pdu.as<R2T>();
      if (t.cccid >= lim_.depth || !reqs_[t.cccid].io)
        return {Fes::kInvalidHeaderField, 8, "R2T for a command not in flight"};
      Req& r = reqs_[t.cccid];
      bool out = r.io->type == IoType::kWrite || r.io->type == IoType::kUnmap;
      if (!out || r.incapsule || r.dlen == 0)
        return {Fes::kPduSequenceError, 8, "R2T for a command without data to transfer"};
      if (r.r2t_active || r.in_send)
        return {Fes::kDataLimitExceeded, 8, "R2T while one is still being served (MAXR2T 1)"};
      if (t.r2tl == 0 || uint64_t(t.r2to) + t.r2tl > r.dlen)
        return {Fes::kDataOutOfRange, 12, "R2T beyond the command's data"};
      return {};
    }
    case PduType::kC2HTermReq:
    case PduType::kICResp:  // replayed by adopt()
      place->iov = nullptr;
      return {};
    default:
      return {Fes::kPduSequenceError, 0, "unexpected PDU type"};
  }
}

PduError IoQpair::on_pdu_done(const PduView& pdu, bool ddgst_ok, bool* pause) {
  *pause = false;
  switch (pdu.type) {
    case PduType::kCapsuleResp: {
      const auto& cqe = pdu.as<CapsuleResp>().cqe;
      Req& r = reqs_[cqe.cid];
      // SCT/SC in bits 10:0 of our code, DNR as kStatusDnr (spec.h).
      uint16_t st =
          uint16_t(((cqe.status >> 1) & 0x7ff) | ((cqe.status & 0x8000) ? nv::kStatusDnr : 0));
      if (r.in_send) {  // still sending its data: finish when that is done
        r.has_resp = true;
        r.resp_status = st;
      } else {
        finish_cmd(r, st);
      }
      break;
    }
    case PduType::kC2HData: {
      const auto& d = pdu.as<C2HData>();
      Req& r = reqs_[d.cccid];
      r.c2h_got += d.datal;
      if (!ddgst_ok) {
        r.ddgst_err = true;
        VDPU_WARN_RL("nvme {} queue {}: data digest mismatch in C2HData (cid {})", name_, qid_,
                     unsigned(d.cccid));
      }
      if (d.ch.flags & kFlagSuccess) {  // no CapsuleResp follows (§3.6.2.9)
        if (!(d.ch.flags & kFlagLastPdu))
          return {Fes::kInvalidHeaderField, kFeiFlags, "SUCCESS without LAST_PDU"};
        if (r.in_send) {
          r.has_resp = true;
          r.resp_status = 0;
        } else {
          finish_cmd(r, 0);
        }
      }
      break;
    }
    case PduType::kR2T: {
      const auto& t = pdu.as<R2T>();
      Req& r = reqs_[t.cccid];
      r.r2t_active = true;
      r.ttag = t.ttag;
      r.r2t_off = t.r2to;
      r.r2t_end = t.r2to + t.r2tl;
      uint32_t r2tl = t.r2tl, len = std::min(r2tl, tp_.maxh2cdata);
      r.hdr_len = build_h2c_data(r.hdr, r.cid, r.ttag, r.r2t_off, len, len == r2tl,
                                 TxDigests{tp_.hdgst, tp_.ddgst}, tp_.cpda);
      r.send = Send::kH2C;
      r.pdu_doff = r.r2t_off;
      r.pdu_dlen = len;
      r.pdu_dd = tp_.ddgst;
      if (r.pdu_dd) nv::put_le32(r.ddgst, crc_slice(r.div, r.divcnt, r.dbase + r.r2t_off, len));
      queue_send(r);
      break;
    }
    case PduType::kC2HTermReq: {
      const auto& t = pdu.as<TermReq>();
      VDPU_WARN_RL("nvme {} queue {}: target ended the connection: C2HTermReq {} (FEI {})", name_,
                   qid_, fes_name(Fes(uint16_t(t.fes))), uint32_t(t.fei));
      *pause = true;
      failing_ = true;
      break;
    }
    default:
      break;
  }
  return {};
}

bool IoQpair::receive() noexcept {
  bool busy = false;
  for (int round = 0; round < 8 && fd_ >= 0; ++round) {
    ssize_t n;
    size_t asked, direct = 0;
    if (rhead_ == rtail_ && rx_.data_remaining() >= kZeroCopyMin) {
      // Zero copy: the rest of the C2HData goes straight into the bdev's
      // buffers; what follows it lands in the receive buffer.
      iovec v[33];
      int k = rx_.data_iov(v, 32);
      for (int i = 0; i < k; ++i) direct += v[i].iov_len;
      v[k++] = {rbuf_.data(), rbuf_.size()};
      rhead_ = rtail_ = 0;
      asked = direct + rbuf_.size();
      n = readv(fd_, v, k);
      if (n > 0) {
        size_t into = std::min(size_t(n), direct);
        rx_.data_received(into, *this);
        rtail_ = size_t(n) - into;
      }
    } else {
      if (rhead_ == rtail_) rhead_ = rtail_ = 0;
      asked = rbuf_.size() - rtail_;
      if (asked == 0) break;  // not reached: feed() consumes everything
      n = recv(fd_, rbuf_.data() + rtail_, asked, MSG_DONTWAIT);
      if (n > 0) rtail_ += size_t(n);
    }
    if (n == 0) {
      conn_error("closed by the target");
      return true;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      conn_error(strerror(errno));
      return true;
    }
    busy = true;
    if (rhead_ < rtail_ && !rx_.failed() && !failing_)
      rhead_ += rx_.feed(rbuf_.data() + rhead_, rtail_ - rhead_, *this);
    if (rx_.failed()) {
      alignas(8) uint8_t term[kMaxTermReqLen];
      uint32_t tl = build_term_req(term, PduType::kH2CTermReq, rx_.error().fes, rx_.error().fei,
                                   rx_.error_header(), rx_.error_header_len());
      [[maybe_unused]] ssize_t w = send(fd_, term, tl, MSG_DONTWAIT | MSG_NOSIGNAL);
      VDPU_WARN_RL("nvme {} queue {}: bad PDU from the target: {} ({})", name_, qid_,
                   rx_.error().reason, fes_name(rx_.error().fes));
      conn_error("protocol error");
      return true;
    }
    if (failing_) {
      conn_error("C2HTermReq");
      return true;
    }
    if (size_t(n) < asked) break;  // the socket is drained
  }
  return busy;
}

rt::Poll IoQpair::check_timeouts() noexcept {
  if (fd_ < 0) return rt::Poll::kIdle;
  const uint64_t now = rt::now_ns();
  for (Req& r : reqs_) {
    if (!r.io || r.timed_out || now - r.start_ns < lim_.timeout_ns) continue;
    r.timed_out = true;
    VDPU_WARN_RL("nvme {} queue {}: {} (cid {}) got no answer in {} us{}", name_, qid_,
                 io_type_name(r.io->type), r.cid, lim_.timeout_ns / 1000,
                 lim_.timeout_reset ? ": resetting the controller" : "");
    if (lim_.timeout_reset) {
      conn_error("command timeout");
      return rt::Poll::kBusy;
    }
  }
  return rt::Poll::kIdle;
}

rt::Poll IoQpair::poll() noexcept {
  if (fd_ < 0) return rt::Poll::kIdle;
  bool busy = receive();
  if (wait_head_) drain_waiting();
  if (send_head_) busy |= flush();
  return busy ? rt::Poll::kBusy : rt::Poll::kIdle;
}

// ---------------------------------------------------------------- wait list

void IoQpair::push_wait_back(Io& io) noexcept {
  io.next = nullptr;
  if (wait_tail_)
    wait_tail_->next = &io;
  else
    wait_head_ = &io;
  wait_tail_ = &io;
}

void IoQpair::push_wait_front(Io& io) noexcept {
  io.next = wait_head_;
  wait_head_ = &io;
  if (!wait_tail_) wait_tail_ = &io;
}

Io* IoQpair::pop_wait() noexcept {
  Io* io = wait_head_;
  if (io) {
    wait_head_ = io->next;
    if (!wait_head_) wait_tail_ = nullptr;
  }
  return io;
}

}  // namespace vdpu::bdev::nvme
