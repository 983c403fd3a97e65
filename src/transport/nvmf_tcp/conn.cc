#include "transport/nvmf_tcp/conn.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "runtime/reactor.h"

namespace vdpu::nvmf_tcp {

using nvme::kStatusDnr;
namespace sc = nvme::sc;

namespace {
constexpr size_t kRecvBuf = 64 * 1024;
constexpr size_t kDirectMin = 4096;  // data this large is read straight into place
constexpr int kMaxSendIov = 64;
constexpr uint64_t kCloseFlushNs = 1'000'000'000;

size_t item_bytes(const TxItem& t) {
  size_t n = 0;
  for (int i = 0; i < t.n; ++i) n += t.v[i].iov_len;
  return n;
}

struct Sgl1 {
  uint64_t addr;
  uint32_t len;
  uint8_t id;
};
Sgl1 sgl1(const nvme::SqEntry& c) {
  const auto* p = reinterpret_cast<const uint8_t*>(&c) + 24;
  return {nvme::le64(p), nvme::le32(p + 8), p[15]};
}
}  // namespace

Connection::Connection(Target::Impl& t, uint32_t reactor, int fd, std::string listen_key)
    : t_(t), reactor_(reactor), fd_(fd), listen_key_(std::move(listen_key)) {
  ctl_tx_.req = nullptr;
}

Connection::~Connection() {
  if (bufs_) munmap(bufs_, bufs_len_);
  if (fd_ >= 0) ::close(fd_);
}

// ---------------------------------------------------------------- set-up

void Connection::start() {
  rcap_ = kRecvBuf;
  rbuf_ = std::make_unique<uint8_t[]>(rcap_);
  const TargetOptions& o = t_.o;
  buf_size_ = std::max({o.max_io_size, o.in_capsule_data_size, kAdminInCapsule});
  buf_size_ = (buf_size_ + 4095) & ~4095u;
  uint32_t entries = std::max(o.max_queue_depth, o.max_aq_depth);
  poller_ = t_.env.add_poller(
      reactor_, "nvmf_tcp_conn", [this] { return poll(); }, 0);
  // Event mode: a readable socket wakes a sleeping reactor (the poller reads).
  if (rt::Reactor* r = rt::this_reactor()) wake_ = r->add_wake_fd(fd_).ok();
  if (!alloc_pool(entries)) {
    VDPU_ERR("nvmf_tcp: cannot allocate {} request buffers", entries);
    free_ = nullptr;
    close("out of memory");
    return;
  }
  // Before Connect only request 0 is free (the Connect itself).
  free_ = &reqs_[0];
  rx_.params().max_incapsule = kAdminInCapsule;
}

bool Connection::alloc_pool(uint32_t entries) {
  bufs_len_ = size_t(entries) * buf_size_;
  // Lazily backed: pages are touched only when a request uses them.
  void* p = mmap(nullptr, bufs_len_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    bufs_ = nullptr;
    return false;
  }
  bufs_ = static_cast<uint8_t*>(p);
  reqs_ = std::vector<TcpReq>(entries);
  for (uint32_t i = 0; i < entries; ++i) {
    TcpReq& r = reqs_[i];
    r.idx = uint16_t(i);
    r.buf = bufs_ + size_t(i) * buf_size_;
    r.conn = this;
    r.io.cb_arg = &r;
    r.tx.req = &r;
  }
  return true;
}

TcpReq* Connection::alloc() {
  TcpReq* r = free_;
  if (!r) return nullptr;
  free_ = r->next_free;
  r->next_free = nullptr;
  r->st = TcpReq::St::kExec;
  r->status = 0;
  r->cdw0 = 0;
  r->incap = r->xfer = r->recvd = 0;
  r->to_host = false;
  r->ns = nullptr;
  r->ch = nullptr;
  return r;
}

void Connection::release(TcpReq& r) {
  r.st = TcpReq::St::kFree;
  r.next_free = free_;
  free_ = &r;
}

// ---------------------------------------------------------------- polling

bool Connection::poll() noexcept {
  if (st_ == St::kClosing) {
    flush_tx();
    if (bdev_inflight_ == 0 && (!tx_head_ || fd_ < 0 || t_.env.now_ns() >= close_deadline_ns_)) {
      finish_close();  // deletes this
    }
    return true;
  }
  bool work = false;
  for (auto& ch : chans_) work |= ch->poll();
  if (retry_head_) {
    // The bdev answered kNoMem: each waiting request is submitted again once
    // per pass (its Io is unchanged; a new kNoMem queues it again).
    TcpReq* r = retry_head_;
    retry_head_ = retry_tail_ = nullptr;
    while (r) {
      TcpReq* next = r->next_free;
      r->next_free = nullptr;
      ++bdev_inflight_;
      r->ch->submit(r->io);
      r = next;
    }
    work = true;
  }
  work |= recv_some();
  if (st_ != St::kClosing) work |= flush_tx();
  return work;
}

bool Connection::recv_some() noexcept {
  bool work = false;
  for (int budget = 0; budget < 16 && st_ != St::kClosing && !paused_; ++budget) {
    if (rpos_ < rlen_) {
      size_t k = rx_.feed(rbuf_.get() + rpos_, rlen_ - rpos_, *this);
      rpos_ += k;
      work = true;
      if (rx_.failed()) {
        VDPU_WARN_RL("nvmf_tcp: fatal PDU error: {} ({})", fes_name(rx_.error().fes),
                     rx_.error().reason);
        close("PDU error", rx_.error().fes, rx_.error().fei);
        return true;
      }
      if (rpos_ < rlen_) break;  // paused by a handler
      continue;
    }
    rpos_ = rlen_ = 0;
    ssize_t got;
    if (rx_.data_remaining() >= kDirectMin) {
      // Zero copy: a large data part goes straight into the request buffer.
      iovec v[4];
      int n = rx_.data_iov(v, 4);
      if (n > 0) {
        got = readv(fd_, v, n);
        if (got > 0) {
          work = true;
          if (!rx_.data_received(size_t(got), *this)) {
            close("PDU error", rx_.error().fes, rx_.error().fei);
            return true;
          }
          continue;
        }
        goto check;
      }
    }
    got = recv(fd_, rbuf_.get(), rcap_, MSG_DONTWAIT);
    if (got > 0) {
      rlen_ = size_t(got);
      work = true;
      continue;
    }
  check:
    if (got == 0) {
      close("connection closed by the host");
      return true;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    if (errno == EINTR) continue;
    close("receive error");
    return true;
  }
  return work;
}

void Connection::queue_tx(TxItem& t) {
  t.next = nullptr;
  if (tx_tail_)
    tx_tail_->next = &t;
  else
    tx_head_ = &t;
  tx_tail_ = &t;
}

bool Connection::flush_tx() noexcept {
  if (!tx_head_ || fd_ < 0) return false;
  bool work = false;
  for (int round = 0; round < 4 && tx_head_; ++round) {
    iovec v[kMaxSendIov];
    int n = 0;
    size_t skip = tx_off_;
    for (TxItem* t = tx_head_; t && n + t->n <= kMaxSendIov; t = t->next) {
      for (int i = 0; i < t->n; ++i) {
        iovec x = t->v[i];
        if (skip) {
          if (skip >= x.iov_len) {
            skip -= x.iov_len;
            continue;
          }
          x.iov_base = static_cast<uint8_t*>(x.iov_base) + skip;
          x.iov_len -= skip;
          skip = 0;
        }
        if (x.iov_len) v[n++] = x;
      }
    }
    msghdr m{};
    m.msg_iov = v;
    m.msg_iovlen = size_t(n);
    ssize_t sent = sendmsg(fd_, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return work;
      if (st_ != St::kClosing) close("send error");
      tx_head_ = tx_tail_ = nullptr;
      return true;
    }
    work = true;
    size_t left = size_t(sent) + tx_off_;
    while (tx_head_) {
      size_t sz = item_bytes(*tx_head_);
      if (left < sz) break;
      left -= sz;
      TxItem* t = tx_head_;
      tx_head_ = t->next;
      if (!tx_head_) tx_tail_ = nullptr;
      t->next = nullptr;
      if (!t->req) {
        ctl_queued_ = false;
      } else if (t->final) {
        t_.completed_io.fetch_add(1, std::memory_order_relaxed);
        release(*t->req);
      }
    }
    tx_off_ = left;
    if (tx_head_) return work;  // socket full: the rest goes next poll
  }
  return work;
}

// ---------------------------------------------------------------- teardown

void Connection::close(const char* why, Fes fes, uint32_t fei) {
  if (st_ == St::kClosing) return;
  VDPU_INFO("nvmf_tcp: connection {} (qid {}, cntlid {}) closing: {}", fd_, qid_,
            ctrl_ ? ctrl_->cntlid : 0, why);
  st_ = St::kClosing;
  paused_ = true;
  // Queued responses are dropped; only a TermReq goes out, and only on a
  // PDU boundary of the send stream.
  const bool clean = tx_off_ == 0;
  tx_head_ = tx_tail_ = nullptr;
  tx_off_ = 0;
  if (fes != Fes::kNone && clean) {
    uint32_t n = build_term_req(ctl_buf_, PduType::kC2HTermReq, fes, fei, rx_.error_header(),
                                rx_.error_header_len());
    ctl_tx_.v[0] = {ctl_buf_, n};
    ctl_tx_.n = 1;
    ctl_tx_.req = nullptr;
    queue_tx(ctl_tx_);
  }
  close_deadline_ns_ = t_.env.now_ns() + kCloseFlushNs;
}

void Connection::finish_close() {
  if (wake_) rt::this_reactor()->remove_wake_fd(fd_);
  wake_ = false;
  if (poller_) t_.env.remove_poller(reactor_, poller_);
  poller_ = 0;
  chans_.clear();  // no bdev I/O in flight
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  *alive_ = false;
  Target::Impl* t = &t_;
  Connection* self = this;
  t_.env.post(nvme::kMainReactor, [t, self] { t->conn_gone(self); });
  delete this;
}

// ---------------------------------------------------------------- PDUs

PduError Connection::on_pdu_header(const PduView& pdu, Placement* place) {
  switch (pdu.type) {
    case PduType::kICReq:
    case PduType::kH2CTermReq:
      return {};  // TermReq data (the offending header) is discarded
    case PduType::kCapsuleCmd: {
      TcpReq* r = alloc();
      if (!r) return {Fes::kPduSequenceError, 0, "more commands than the queue size"};
      r->cmd = pdu.as<CapsuleCmd>().sqe;
      r->incap = pdu.data_len;
      if (pdu.data_len) {
        if (pdu.data_len > buf_size_) {
          release(*r);
          return {Fes::kDataLimitExceeded, kFeiPlen, "in-capsule data"};
        }
        r->iov = {r->buf, pdu.data_len};
        *place = {&r->iov, 1};
      }
      cur_ = r;
      return {};
    }
    case PduType::kH2CData: {
      const H2CData& h = pdu.as<H2CData>();
      if (h.ttag >= reqs_.size())
        return {Fes::kInvalidHeaderField, offsetof(H2CData, ttag), "TTAG"};
      TcpReq& r = reqs_[h.ttag];
      if (r.st != TcpReq::St::kH2C || r.cmd.cid != h.cccid)
        return {Fes::kInvalidHeaderField, offsetof(H2CData, cccid), "H2CData for no R2T"};
      // §3.6.2.8: data outside the R2T window (in order, no gaps).
      if (h.datao != r.recvd || uint64_t(h.datao) + h.datal > r.xfer)
        return {Fes::kDataOutOfRange, offsetof(H2CData, datao), "H2CData outside the R2T"};
      r.iov = {r.buf + h.datao, h.datal};
      *place = {&r.iov, 1};
      cur_ = &r;
      return {};
    }
    default:
      return {Fes::kInvalidHeaderField, kFeiPduType, "unexpected PDU"};
  }
}

PduError Connection::on_pdu_done(const PduView& pdu, bool ddgst_ok, bool* pause) {
  switch (pdu.type) {
    case PduType::kICReq:
      return handle_icreq(pdu);
    case PduType::kH2CTermReq: {
      const TermReq& tr = pdu.as<TermReq>();
      VDPU_WARN_RL("nvmf_tcp: host terminated the connection: {} (fei {})",
                   fes_name(static_cast<Fes>(tr.fes)), tr.fei);
      close("H2CTermReq");
      *pause = true;
      return {};
    }
    case PduType::kCapsuleCmd: {
      TcpReq& r = *cur_;
      cur_ = nullptr;
      if (qsize_) sqhd_ = uint16_t((sqhd_ + 1) % qsize_);
      if (!ddgst_ok) {
        // Data digest error: the command fails with Transient Transport Error.
        VDPU_WARN_RL("nvmf_tcp: data digest error in capsule cid {}", r.cmd.cid);
        complete(r, sc::kTransientTransportError);
        return {};
      }
      exec(r);
      if (paused_) *pause = true;
      return {};
    }
    case PduType::kH2CData: {
      TcpReq& r = *cur_;
      cur_ = nullptr;
      if (!ddgst_ok) {
        VDPU_WARN_RL("nvmf_tcp: data digest error in H2CData cid {}", r.cmd.cid);
        r.status = sc::kTransientTransportError;
      }
      r.recvd += pdu.data_len;
      if (r.recvd == r.xfer) {
        r.st = TcpReq::St::kExec;
        if (r.status)
          complete(r, r.status);
        else
          data_ready(r);
      }
      return {};
    }
    default:
      return {Fes::kInvalidHeaderField, kFeiPduType, "unexpected PDU"};
  }
}

// ICReq (§3.6.2.2): PFV 0 only; HPDA <= 31; digests as the host asks (both
// are supported). The answer sets CPDA 0 and MAXH2CDATA.
PduError Connection::handle_icreq(const PduView& pdu) {
  const ICReq& q = pdu.as<ICReq>();
  if (q.pfv != kPfv10) return {Fes::kUnsupportedParameter, offsetof(ICReq, pfv), "PFV"};
  if (q.hpda > kMaxHpda) return {Fes::kInvalidHeaderField, offsetof(ICReq, hpda), "HPDA"};
  hpda_ = q.hpda;
  dg_.hdgst = q.dgst & kDgstHdgstEnable;
  dg_.ddgst = q.dgst & kDgstDdgstEnable;
  uint32_t maxh2c = std::max(kMinMaxH2cData, std::min(t_.o.io_unit_size, buf_size_)) & ~3u;
  uint32_t n = build_icresp(ctl_buf_, 0, dg_.hdgst, dg_.ddgst, maxh2c);
  ctl_tx_.v[0] = {ctl_buf_, n};
  ctl_tx_.n = 1;
  ctl_tx_.req = nullptr;
  ctl_queued_ = true;
  queue_tx(ctl_tx_);
  RecvParams& p = rx_.params();
  p.hdgst = dg_.hdgst;
  p.ddgst = dg_.ddgst;
  p.pda = 0;
  p.max_data = maxh2c;
  st_ = St::kConnectWait;
  return {};
}

// ---------------------------------------------------------------- commands

void Connection::exec(TcpReq& r) {
  if (r.cmd.opc == nvme::kOpcFabrics) return exec_fabrics(r);
  if (st_ != St::kReady) return complete(r, sc::kCommandSequenceError | kStatusDnr);
  if (admin()) return exec_admin(r);
  exec_io(r);
}

void Connection::exec_fabrics(TcpReq& r) {
  const auto& f = reinterpret_cast<const nvme::FabricsCmd&>(r.cmd);
  switch (f.fctype) {
    case nvme::kFctypeConnect:
      if (st_ != St::kConnectWait) return complete(r, sc::kCommandSequenceError | kStatusDnr);
      if (!setup_data(r, false, sizeof(nvme::ConnectData))) return;
      if (r.st == TcpReq::St::kH2C) return;  // Connect data through R2T
      return data_ready(r);
    case nvme::kFctypePropertyGet:
    case nvme::kFctypePropertySet:
      if (st_ != St::kReady) return complete(r, sc::kCommandSequenceError | kStatusDnr);
      if (!admin()) return complete(r, sc::kInvalidField | kStatusDnr);
      return exec_admin(r);
    default:
      // Disconnect and authentication are not supported (OFCS = 0).
      VDPU_WARN_RL("nvmf_tcp: unsupported fabrics command type {:#x}", f.fctype);
      return complete(r, sc::kInvalidOpcode | kStatusDnr);
  }
}

bool Connection::setup_data(TcpReq& r, bool to_host, uint32_t len) {
  r.to_host = to_host;
  r.xfer = len;
  r.recvd = 0;
  if (len == 0) return true;
  if (len > buf_size_) {
    complete(r, sc::kInvalidField | kStatusDnr);
    return false;
  }
  Sgl1 s = sgl1(r.cmd);
  if (to_host) {
    // Controller -> host data moves in C2HData: a Transport SGL Data Block.
    if (s.id != nvme::kSglIdTransport || r.incap) {
      complete(r, sc::kSglDescriptorTypeInvalid | kStatusDnr);
      return false;
    }
    if (s.len < len) {
      complete(r, sc::kDataSglLengthInvalid | kStatusDnr);
      return false;
    }
    return true;
  }
  if (r.incap) {
    // In-capsule data: an SGL Data Block with offset 0 (ICDOFF 0).
    if (s.id != nvme::kSglIdIncapsule) {
      complete(r, sc::kSglDescriptorTypeInvalid | kStatusDnr);
      return false;
    }
    if (s.addr != 0) {
      complete(r, sc::kSglOffsetInvalid | kStatusDnr);
      return false;
    }
    if (s.len < len || r.incap < len) {
      complete(r, sc::kDataSglLengthInvalid | kStatusDnr);
      return false;
    }
    r.recvd = len;
    return true;
  }
  if (s.id != nvme::kSglIdTransport) {
    complete(r, sc::kSglDescriptorTypeInvalid | kStatusDnr);
    return false;
  }
  if (s.len < len) {
    complete(r, sc::kDataSglLengthInvalid | kStatusDnr);
    return false;
  }
  send_r2t(r);
  return true;
}

void Connection::data_ready(TcpReq& r) {
  r.st = TcpReq::St::kExec;
  if (r.cmd.opc == nvme::kOpcFabrics) return exec_connect(r);
  if (admin()) return exec_admin(r);
  if (r.cmd.opc == nvme::kIoDatasetManagement) {
    if (!(r.cmd.cdw11 & (1u << 2))) return complete(r, sc::kSuccess);  // hints only
    r.step = 0;
    r.nsteps = (r.cmd.cdw10 & 0xff) + 1;
    r.status = sc::kSuccess;
    return dsm_run(r);
  }
  submit_io(r);
}

// Connect (Base 2.0 §6.3): validated on the main reactor; the connection
// stops reading until the answer is back.
void Connection::exec_connect(TcpReq& r) {
  const auto& c = reinterpret_cast<const nvme::ConnectCmd&>(r.cmd);
  const auto& d = *reinterpret_cast<const nvme::ConnectData*>(r.buf);
  ConnectArgs a;
  a.qid = c.qid;
  a.sqsize = c.sqsize;
  a.recfmt = c.recfmt;
  a.kato = c.kato;
  a.cntlid = d.cntlid;
  a.subnqn.assign(d.subnqn, strnlen(d.subnqn, sizeof(d.subnqn)));
  a.hostnqn.assign(d.hostnqn, strnlen(d.hostnqn, sizeof(d.hostnqn)));
  std::memcpy(a.hostid.data(), d.hostid, 16);
  a.listen_key = listen_key_;
  a.conn = ref();
  st_ = St::kConnecting;
  paused_ = true;
  Target::Impl* t = &t_;
  std::shared_ptr<bool> alive = alive_;
  Connection* self = this;
  uint32_t me = reactor_;
  uint16_t idx = r.idx;
  t_.env.post(nvme::kMainReactor, [t, a = std::move(a), alive, self, me, idx] {
    ConnectReply rep = t->connect(a);
    t->env.post(me, [alive, self, idx, rep = std::move(rep)]() mutable {
      if (*alive) self->connect_done(self->reqs_[idx], std::move(rep));
    });
  });
}

void Connection::connect_done(TcpReq& r, ConnectReply rep) {
  paused_ = false;
  if (st_ == St::kClosing) return;
  const auto& c = reinterpret_cast<const nvme::ConnectCmd&>(r.cmd);
  if (rep.status) {
    st_ = St::kConnectWait;
    return complete(r, rep.status | kStatusDnr, rep.cdw0);
  }
  ctrl_ = std::move(rep.ctrl);
  qid_ = c.qid;
  qsize_ = uint32_t(c.sqsize) + 1;
  ns_ = std::move(rep.ns);
  for (const NsInfo& n : ns_) {
    auto ch = n.bdev->create_channel();
    if (!ch) {
      VDPU_ERR("nvmf_tcp: no I/O channel for bdev {}", n.bdev->name());
      complete(r, sc::kInternalError | kStatusDnr);
      close("no bdev channel");
      return;
    }
    chans_.push_back(std::move(ch));
  }
  rx_.params().max_incapsule = admin() ? kAdminInCapsule : t_.o.in_capsule_data_size;
  // The queue's requests: entries 1..qsize-1, request 0 comes back with the
  // Connect's completion.
  for (uint32_t i = qsize_ - 1; i >= 1; --i) release(reqs_[i]);
  st_ = St::kReady;
  complete(r, sc::kSuccess, ctrl_->cntlid);
}

void Connection::exec_admin(TcpReq& r) {
  const bool prop = r.cmd.opc == nvme::kOpcFabrics;
  if (!prop && r.st != TcpReq::St::kH2C && r.xfer == 0 && r.recvd == 0) {
    // First pass: set up the data transfer (direction from opcode bits 1:0).
    uint32_t dir = r.cmd.opc & 3u;
    uint32_t len = sgl1(r.cmd).len;
    if (dir == 3) return complete(r, sc::kInvalidField | kStatusDnr);
    if (dir != 0 && len) {
      if (!setup_data(r, dir == 2, std::min(len, buf_size_))) return;
      if (r.st == TcpReq::St::kH2C) return;  // data_ready() comes back here
    }
  }
  std::vector<uint8_t> in;
  if (!r.to_host && r.xfer) in.assign(r.buf, r.buf + r.xfer);
  Target::Impl* t = &t_;
  std::shared_ptr<bool> alive = alive_;
  Connection* self = this;
  uint32_t me = reactor_;
  uint16_t idx = r.idx;
  nvme::SqEntry cmd = r.cmd;
  uint32_t out_len = r.to_host ? r.xfer : 0;
  std::shared_ptr<FabricsCtrl> ctrl = ctrl_;
  t_.env.post(nvme::kMainReactor,
              [t, ctrl, cmd, in = std::move(in), out_len, alive, self, me, idx, prop] {
                AdminReply rep;
                if (ctrl->dead)
                  rep.status = sc::kCommandSequenceError;
                else
                  rep = prop ? ctrl->property(cmd) : ctrl->exec_admin(cmd, in, out_len);
                t->env.post(me, [alive, self, idx, rep = std::move(rep)]() mutable {
                  if (!*alive) return;
                  TcpReq& r = self->reqs_[idx];
                  if (rep.park || self->st_ == St::kClosing) return;
                  if (r.to_host && r.xfer && rep.status == sc::kSuccess) {
                    size_t n = std::min<size_t>(rep.data.size(), r.xfer);
                    std::memcpy(r.buf, rep.data.data(), n);
                    std::memset(r.buf + n, 0, r.xfer - n);
                    r.cdw0 = rep.cdw0;
                    return self->send_c2h(r);
                  }
                  self->complete(r, rep.status, rep.cdw0, rep.cdw1);
                });
              });
}

void Connection::exec_io(TcpReq& r) {
  const nvme::SqEntry& c = r.cmd;
  // Fused operations are not supported (FUSES = 0).
  if (c.fuse()) return complete(r, sc::kInvalidField | kStatusDnr);
  size_t i = 0;
  while (i < ns_.size() && ns_[i].nsid != c.nsid) ++i;
  if (i == ns_.size()) return complete(r, sc::kInvalidNamespaceOrFormat | kStatusDnr);
  const NsInfo& ns = ns_[i];
  r.ns = &ns;
  r.ch = chans_[i].get();
  const uint64_t mdts = t_.o.max_io_size;
  bdev::IoType t;
  switch (c.opc) {
    case nvme::kIoRead:
      t = bdev::IoType::kRead;
      break;
    case nvme::kIoWrite:
      t = bdev::IoType::kWrite;
      break;
    case nvme::kIoCompare:
      if (!ns.compare) return complete(r, sc::kInvalidOpcode | kStatusDnr);
      t = bdev::IoType::kCompare;
      break;
    case nvme::kIoWriteZeroes:
      if (!ns.write_zeroes) return complete(r, sc::kInvalidOpcode | kStatusDnr);
      t = bdev::IoType::kWriteZeroes;
      break;
    case nvme::kIoFlush:
      if (!ns.flush) return complete(r, sc::kSuccess);
      r.nio = {bdev::IoType::kFlush, 0, 0, 0};
      return submit_io(r);
    case nvme::kIoDatasetManagement: {
      uint32_t nr = (c.cdw10 & 0xff) + 1;
      if (!setup_data(r, false, nr * uint32_t(sizeof(nvme::DsmRange)))) return;
      if (r.st == TcpReq::St::kH2C) return;
      return data_ready(r);
    }
    default:
      VDPU_WARN_RL("nvmf_tcp: invalid I/O opcode {:#x}", c.opc);
      return complete(r, sc::kInvalidOpcode | kStatusDnr);
  }
  if (uint16_t st = nvme::nvm_decode_range(c, t, ns.geo, mdts, &r.nio)) return complete(r, st);
  if (!setup_data(r, t == bdev::IoType::kRead, uint32_t(r.nio.len))) return;
  if (r.st == TcpReq::St::kH2C) return;
  submit_io(r);
}

void Connection::submit_io(TcpReq& r) {
  r.st = TcpReq::St::kExec;
  bdev::Io& io = r.io;
  io.type = r.nio.type;
  io.offset_blocks = r.nio.slba;
  io.num_blocks = r.nio.nlb;
  if (r.nio.len) {
    r.iov = {r.buf, r.nio.len};
    io.iov = &r.iov;
    io.iovcnt = 1;
  } else {
    io.iov = nullptr;
    io.iovcnt = 0;
  }
  io.cb = io_done;
  ++bdev_inflight_;
  r.ch->submit(io);
}

void Connection::retry_later(TcpReq& r) {
  r.next_free = nullptr;
  if (retry_tail_)
    retry_tail_->next_free = &r;
  else
    retry_head_ = &r;
  retry_tail_ = &r;
}

void Connection::io_done(bdev::Io& io, bdev::IoStatus st) {
  TcpReq& r = *static_cast<TcpReq*>(io.cb_arg);
  Connection& c = *r.conn;
  --c.bdev_inflight_;
  if (st == bdev::IoStatus::kNoMem && c.st_ != St::kClosing) return c.retry_later(r);
  uint16_t status = nvme::nvm_status_from_bdev(st, io.type);
  if (r.to_host && status == sc::kSuccess) return c.send_c2h(r);
  c.complete(r, status);
}

// Dataset Management (NVM 1.0 §3.2.2): one deallocate range at a time.
void Connection::dsm_run(TcpReq& r) {
  const NsInfo& ns = *r.ns;
  while (r.status == sc::kSuccess && r.step < r.nsteps) {
    nvme::DsmRange rg;
    std::memcpy(&rg, r.buf + size_t(r.step) * sizeof(rg), sizeof(rg));
    ++r.step;
    if (rg.nlb == 0) continue;
    if (rg.nlb > ns.geo.num_blocks || rg.slba > ns.geo.num_blocks - rg.nlb) {
      r.status = sc::kLbaOutOfRange | kStatusDnr;
      break;
    }
    if (!ns.unmap) continue;
    bdev::Io& io = r.io;
    io.type = bdev::IoType::kUnmap;
    io.offset_blocks = rg.slba;
    io.num_blocks = rg.nlb;
    io.iov = nullptr;
    io.iovcnt = 0;
    io.cb = dsm_done;
    r.in_submit = true;
    r.step_done = false;
    ++bdev_inflight_;
    r.ch->submit(io);
    r.in_submit = false;
    if (!r.step_done) return;  // dsm_done resumes
  }
  complete(r, r.status);
}

void Connection::dsm_done(bdev::Io& io, bdev::IoStatus st) {
  TcpReq& r = *static_cast<TcpReq*>(io.cb_arg);
  Connection& c = *r.conn;
  --c.bdev_inflight_;
  if (st == bdev::IoStatus::kNoMem && c.st_ != St::kClosing) return c.retry_later(r);
  if (st != bdev::IoStatus::kSuccess && st != bdev::IoStatus::kUnsupported)
    r.status = nvme::nvm_status_from_bdev(st, bdev::IoType::kUnmap);
  if (r.in_submit) {
    r.step_done = true;
    return;
  }
  c.dsm_run(r);
}

// ---------------------------------------------------------------- responses

void Connection::complete(TcpReq& r, uint16_t status, uint32_t cdw0, uint32_t cdw1) {
  if (st_ == St::kClosing) return release(r);
  nvme::CqEntry cqe{};
  cqe.dw0 = cdw0;
  cqe.dw1 = cdw1;
  cqe.sqhd = sqhd_;
  cqe.sqid = qid_;
  cqe.cid = r.cmd.cid;
  cqe.status = nvme::cqe_status(status);
  uint32_t n = build_capsule_resp(r.resp, cqe, dg_.hdgst);
  r.tx.v[0] = {r.resp, n};
  r.tx.n = 1;
  r.tx.final = true;
  r.st = TcpReq::St::kTx;
  queue_tx(r.tx);
}

// C2HData with the data (§3.6.2.9); with c2h_success (and nothing in DW0)
// the SUCCESS flag replaces the CapsuleResp.
void Connection::send_c2h(TcpReq& r) {
  if (st_ == St::kClosing) return release(r);
  const bool success = t_.o.c2h_success && r.cdw0 == 0;
  uint32_t n = build_c2h_data(r.hdr, r.cmd.cid, 0, r.xfer, true, success, dg_, hpda_);
  uint8_t k = 0;
  r.tx.v[k++] = {r.hdr, n};
  r.tx.v[k++] = {r.buf, r.xfer};
  if (dg_.ddgst) {
    nvme::put_le32(r.ddgst, crc32c(r.buf, r.xfer));
    r.tx.v[k++] = {r.ddgst, kDigestLen};
  }
  if (!success) {
    nvme::CqEntry cqe{};
    cqe.dw0 = r.cdw0;
    cqe.sqhd = sqhd_;
    cqe.sqid = qid_;
    cqe.cid = r.cmd.cid;
    r.tx.v[k++] = {r.resp, build_capsule_resp(r.resp, cqe, dg_.hdgst)};
  }
  r.tx.n = k;
  r.tx.final = true;
  r.st = TcpReq::St::kTx;
  queue_tx(r.tx);
}

// One R2T for the whole transfer (MAXR2T is irrelevant with one outstanding
// R2T per command); the host splits it into MAXH2CDATA-sized H2CData PDUs.
void Connection::send_r2t(TcpReq& r) {
  uint32_t n = build_r2t(r.hdr, r.cmd.cid, r.idx, 0, r.xfer, dg_.hdgst);
  r.tx.v[0] = {r.hdr, n};
  r.tx.n = 1;
  r.tx.final = false;
  r.st = TcpReq::St::kH2C;
  queue_tx(r.tx);
}

}  // namespace vdpu::nvmf_tcp
