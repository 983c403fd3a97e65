#include "bdev/nvme/conn.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "base/log.h"
#include "nvme/fabrics.h"
#include "runtime/reactor.h"

namespace vdpu::bdev::nvme {
namespace {

using namespace vdpu::nvmf_tcp;
namespace nv = vdpu::nvme;

uint64_t deadline_after(uint32_t ms) {
  return rt::now_ns() + uint64_t(ms) * 1'000'000ull;
}

int ms_left(uint64_t deadline) {
  uint64_t now = rt::now_ns();
  if (now >= deadline) return 0;
  return int(std::min<uint64_t>((deadline - now + 999'999) / 1'000'000, 1'000'000));
}

const char* status_name(uint16_t s) {
  switch (s) {
    case nv::sc::kSuccess:
      return "Success";
    case nv::sc::kInvalidOpcode:
      return "Invalid Command Opcode";
    case nv::sc::kInvalidField:
      return "Invalid Field in Command";
    case nv::sc::kInternalError:
      return "Internal Error";
    case nv::sc::kCommandSequenceError:
      return "Command Sequence Error";
    case nv::sc::kInvalidNamespaceOrFormat:
      return "Invalid Namespace or Format";
    case nv::sc::kConnectIncompatibleFormat:
      return "Connect Incompatible Format";
    case nv::sc::kConnectControllerBusy:
      return "Connect Controller Busy";
    case nv::sc::kConnectInvalidParameters:
      return "Connect Invalid Parameters";
    case nv::sc::kConnectRestartDiscovery:
      return "Connect Restart Discovery";
    case nv::sc::kConnectInvalidHost:
      return "Connect Invalid Host";
    case nv::sc::kAuthRequired:
      return "Authentication Required";
    case nv::sc::kTransientTransportError:
      return "Transient Transport Error";
    default:
      return nullptr;
  }
}

// Waits for the exchange of one admin command.
class ExecHandler final : public PduHandler {
 public:
  ExecHandler(uint16_t cid, uint8_t* in, uint32_t in_len) : cid_(cid), in_(in), in_len_(in_len) {}

  PduError on_pdu_header(const PduView& pdu, Placement* place) override {
    switch (pdu.type) {
      case PduType::kCapsuleResp: {
        const auto& r = pdu.as<CapsuleResp>();
        if (r.cqe.cid != cid_)
          return {Fes::kInvalidHeaderField, 8 + 12, "response for an unknown command"};
        cqe = r.cqe;
        return {};
      }
      case PduType::kC2HData: {
        const auto& d = pdu.as<C2HData>();
        if (d.cccid != cid_) return {Fes::kInvalidHeaderField, 8, "C2HData for an unknown command"};
        if (d.datao != got_ || uint64_t(d.datao) + d.datal > in_len_)
          return {Fes::kDataOutOfRange, 12, "C2HData outside the command's buffer"};
        iov_ = {in_ + d.datao, d.datal};
        place->iov = &iov_;
        place->iovcnt = 1;
        return {};
      }
      case PduType::kC2HTermReq:
        place->iov = nullptr;
        return {};
      default:
        return {Fes::kPduSequenceError, 0, "unexpected PDU on the admin queue"};
    }
  }

  PduError on_pdu_done(const PduView& pdu, bool ddgst_ok, bool* pause) override {
    *pause = false;
    switch (pdu.type) {
      case PduType::kCapsuleResp:
        done = true;
        *pause = true;
        break;
      case PduType::kC2HData: {
        const auto& d = pdu.as<C2HData>();
        if (!ddgst_ok) ddgst_error = true;
        got_ += d.datal;
        if (d.ch.flags & kFlagSuccess) {  // no CapsuleResp follows (§3.6.2.9)
          if (!(d.ch.flags & kFlagLastPdu))
            return {Fes::kInvalidHeaderField, kFeiFlags, "SUCCESS without LAST_PDU"};
          cqe = {};
          cqe.cid = cid_;
          done = true;
          *pause = true;
        }
        break;
      }
      case PduType::kC2HTermReq: {
        const auto& t = pdu.as<TermReq>();
        term_fes = t.fes;
        term_fei = t.fei;
        term = true;
        done = true;
        *pause = true;
        break;
      }
      default:
        break;
    }
    return {};
  }

  nv::CqEntry cqe{};
  bool done = false, term = false, ddgst_error = false;
  uint16_t term_fes = 0;
  uint32_t term_fei = 0;

 private:
  uint16_t cid_;
  uint8_t* in_;
  uint32_t in_len_;
  uint32_t got_ = 0;
  iovec iov_{};
};

// Waits for ICResp.
class IcHandler final : public PduHandler {
 public:
  PduError on_pdu_header(const PduView& pdu, Placement* place) override {
    place->iov = nullptr;
    if (pdu.type == PduType::kICResp)
      resp = pdu.as<ICResp>();
    else if (pdu.type != PduType::kC2HTermReq)
      return {Fes::kPduSequenceError, 0, "expected ICResp"};
    return {};
  }
  PduError on_pdu_done(const PduView& pdu, bool, bool* pause) override {
    if (pdu.type == PduType::kC2HTermReq) {
      term = true;
      term_fes = pdu.as<TermReq>().fes;
    }
    done = true;
    *pause = true;
    return {};
  }
  ICResp resp{};
  bool done = false, term = false;
  uint16_t term_fes = 0;
};

}  // namespace

std::string status_text(uint16_t s) {
  char buf[96];
  const char* n = status_name(s & 0x7ff);
  snprintf(buf, sizeof(buf), "SCT %u SC 0x%02x%s%s%s", unsigned(nv::status_sct(s)),
           unsigned(nv::status_sc(s)), n ? " (" : "", n ? n : "", n ? ")" : "");
  return buf;
}

SyncConn::~SyncConn() {
  close();
}

void SyncConn::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

int SyncConn::release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

Status SyncConn::open(const Endpoint& ep, bool hdgst, bool ddgst, uint32_t timeout_ms) {
  close();
  rx_.reset();
  rx_.params() = RecvParams{};
  const uint64_t deadline = deadline_after(timeout_ms);
  const std::string where = ep.traddr + ":" + ep.trsvcid;

  addrinfo hints{};
  hints.ai_family = ep.adrfam == "ipv6" ? AF_INET6 : AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* ai = nullptr;
  int gr = getaddrinfo(ep.traddr.c_str(), ep.trsvcid.c_str(), &hints, &ai);
  if (gr != 0 || !ai)
    return make_error(Errc::kInvalidArgument, "cannot resolve " + where + ": " + gai_strerror(gr));
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(ai);
    return make_error(Errc::kIo, std::string("socket: ") + strerror(errno));
  }
  fd_ = fd;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (!ep.hostaddr.empty() || !ep.hostsvcid.empty()) {
    addrinfo* hai = nullptr;
    addrinfo hh{};
    hh.ai_family = ai->ai_family;
    hh.ai_socktype = SOCK_STREAM;
    hh.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int r = getaddrinfo(ep.hostaddr.empty() ? nullptr : ep.hostaddr.c_str(),
                        ep.hostsvcid.empty() ? "0" : ep.hostsvcid.c_str(), &hh, &hai);
    if (r != 0 || !hai) {
      freeaddrinfo(ai);
      return make_error(Errc::kInvalidArgument,
                        "bad hostaddr/hostsvcid: " + std::string(gai_strerror(r)));
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int br = bind(fd, hai->ai_addr, hai->ai_addrlen);
    int e = errno;
    freeaddrinfo(hai);
    if (br != 0) {
      freeaddrinfo(ai);
      return make_error(Errc::kIo,
                        "cannot bind to " + ep.hostaddr + ":" + ep.hostsvcid + ": " + strerror(e));
    }
  }
  int cr = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
  freeaddrinfo(ai);
  if (cr != 0 && errno != EINPROGRESS)
    return make_error(Errc::kIo, "cannot connect to " + where + ": " + strerror(errno));
  if (cr != 0) {
    pollfd p{fd, POLLOUT, 0};
    int n = poll(&p, 1, ms_left(deadline));
    if (n == 0) return make_error(Errc::kTimeout, "connect to " + where + " timed out");
    int err = 0;
    socklen_t l = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (n < 0 || err != 0)
      return make_error(Errc::kIo,
                        "cannot connect to " + where + ": " + strerror(n < 0 ? errno : err));
  }

  // ICReq: HPDA 0, MAXR2T 0 (one outstanding R2T per command), the digests.
  alignas(8) uint8_t icreq[kIcLen];
  uint32_t n = build_icreq(icreq, 0, hdgst, ddgst, 0);
  VDPU_TRY(send_all(icreq, n, deadline));
  IcHandler h;
  VDPU_TRY(recv_until(deadline, &h.done, h));
  if (h.term)
    return make_error(Errc::kProtocol, where + " refused the ICReq (C2HTermReq FES " +
                                           std::to_string(h.term_fes) + ")");
  const ICResp& r = h.resp;
  if (r.pfv != kPfv10)
    return make_error(Errc::kProtocol,
                      where + ": unsupported PDU format version " + std::to_string(r.pfv));
  if (r.cpda > kMaxHpda)
    return make_error(Errc::kProtocol,
                      where + ": ICResp CPDA " + std::to_string(r.cpda) + " out of range");
  if (r.maxh2cdata < kMinMaxH2cData || r.maxh2cdata % 4)
    return make_error(Errc::kProtocol, where + ": ICResp MAXH2CDATA " +
                                           std::to_string(r.maxh2cdata) +
                                           " invalid (at least 4096, a multiple of 4)");
  tp_.hdgst = r.dgst & kDgstHdgstEnable;
  tp_.ddgst = r.dgst & kDgstDdgstEnable;
  if ((tp_.hdgst && !hdgst) || (tp_.ddgst && !ddgst))
    return make_error(Errc::kProtocol, where + ": ICResp enables a digest that was not asked for");
  tp_.cpda = r.cpda;
  tp_.maxh2cdata = r.maxh2cdata;
  rx_.params().hdgst = tp_.hdgst;
  rx_.params().ddgst = tp_.ddgst;
  rx_.params().max_data = 1u << 24;
  return {};
}

Status SyncConn::send_iov(iovec* iov, int cnt, uint64_t deadline) {
  while (cnt > 0) {
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = size_t(cnt);
    ssize_t n = sendmsg(fd_, &m, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return make_error(Errc::kIo, std::string("send: ") + strerror(errno));
      pollfd p{fd_, POLLOUT, 0};
      int r = poll(&p, 1, ms_left(deadline));
      if (r == 0) return make_error(Errc::kTimeout, "send timed out");
      continue;
    }
    size_t left = size_t(n);
    while (cnt > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --cnt;
    }
    if (cnt > 0) {
      iov->iov_base = static_cast<uint8_t*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return {};
}

Status SyncConn::send_all(const void* p, size_t n, uint64_t deadline) {
  iovec v{const_cast<void*>(p), n};
  return send_iov(&v, 1, deadline);
}

Status SyncConn::recv_until(uint64_t deadline, bool* done, PduHandler& h) {
  alignas(8) uint8_t buf[4096];
  while (!*done) {
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n == 0) return make_error(Errc::kIo, "connection closed by the target");
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return make_error(Errc::kIo, std::string("recv: ") + strerror(errno));
      pollfd p{fd_, POLLIN, 0};
      int r = poll(&p, 1, ms_left(deadline));
      if (r == 0) return make_error(Errc::kTimeout, "no answer from the target in time");
      continue;
    }
    size_t used = rx_.feed(buf, size_t(n), h);
    if (rx_.failed()) {
      alignas(8) uint8_t term[kMaxTermReqLen];
      uint32_t tl = build_term_req(term, PduType::kH2CTermReq, rx_.error().fes, rx_.error().fei,
                                   rx_.error_header(), rx_.error_header_len());
      [[maybe_unused]] ssize_t w = send(fd_, term, tl, MSG_NOSIGNAL | MSG_DONTWAIT);
      return make_error(Errc::kProtocol, std::string("bad PDU from the target: ") +
                                             rx_.error().reason + " (" + fes_name(rx_.error().fes) +
                                             ")");
    }
    if (used < size_t(n)) {
      // The exchange ended mid-buffer: on a synchronous queue nothing else
      // may follow the answer we waited for.
      if (*done) return make_error(Errc::kProtocol, "unexpected data after the response");
    }
  }
  return {};
}

Result<Completion> SyncConn::exec(nv::SqEntry sqe, const void* out, uint32_t out_len, void* in,
                                  uint32_t in_len, uint32_t timeout_ms) {
  if (fd_ < 0) return make_error(Errc::kState, "not connected");
  const uint64_t deadline = deadline_after(timeout_ms);
  uint16_t cid = next_cid_++;
  if (next_cid_ == 0xffff) next_cid_ = 1;
  sqe.cid = cid;
  sqe.flags = uint8_t((sqe.flags & 0x3f) | (nv::kPsdtSglMptrContig << 6));
  nv::SglDescriptor sgl{};
  sgl.addr = 0;
  sgl.len = out_len ? out_len : in_len;
  sgl.id = out_len ? nv::kSglIdIncapsule : nv::kSglIdTransport;
  std::memcpy(&sqe.prp1, &sgl, sizeof(sgl));

  alignas(8) uint8_t hdr[kMaxTxHeader];
  uint32_t hl = build_capsule_cmd(hdr, sqe, out_len, TxDigests{tp_.hdgst, tp_.ddgst}, tp_.cpda);
  uint8_t dd[4];
  iovec v[3];
  int cnt = 0;
  v[cnt++] = {hdr, hl};
  if (out_len) {
    v[cnt++] = {const_cast<void*>(out), out_len};
    if (tp_.ddgst) {
      uint32_t c = crc32c(out, out_len);
      nv::put_le32(dd, c);
      v[cnt++] = {dd, 4};
    }
  }
  VDPU_TRY(send_iov(v, cnt, deadline));
  ExecHandler h(cid, static_cast<uint8_t*>(in), in_len);
  VDPU_TRY(recv_until(deadline, &h.done, h));
  if (h.term)
    return make_error(Errc::kProtocol, "the target ended the connection (C2HTermReq FES " +
                                           std::to_string(h.term_fes) + ", FEI " +
                                           std::to_string(h.term_fei) + ")");
  if (h.ddgst_error) return make_error(Errc::kProtocol, "data digest mismatch in C2HData");
  Completion c;
  c.cqe = h.cqe;
  return c;
}

Result<uint16_t> SyncConn::connect(uint16_t qid, uint16_t sqsize, uint32_t kato_ms, uint16_t cntlid,
                                   const std::string& subnqn, const std::string& hostnqn,
                                   const uint8_t hostid[16], uint32_t timeout_ms) {
  nv::SqEntry sqe{};
  auto& c = reinterpret_cast<nv::ConnectCmd&>(sqe);
  c.opc = nv::kOpcFabrics;
  c.fctype = nv::kFctypeConnect;
  c.recfmt = 0;
  c.qid = qid;
  c.sqsize = sqsize;
  c.kato = qid == 0 ? kato_ms : 0;
  nv::ConnectData d{};
  std::memcpy(d.hostid, hostid, 16);
  d.cntlid = cntlid;
  std::strncpy(d.subnqn, subnqn.c_str(), sizeof(d.subnqn) - 1);
  std::strncpy(d.hostnqn, hostnqn.c_str(), sizeof(d.hostnqn) - 1);
  auto r = exec(sqe, &d, sizeof(d), nullptr, 0, timeout_ms);
  if (!r) return r.error();
  if (!r->ok()) {
    uint16_t s = r->status();
    std::string m =
        "Connect (queue " + std::to_string(qid) + ") to " + subnqn + " refused: " + status_text(s);
    if (s == nv::sc::kConnectInvalidParameters) {
      uint32_t dw0 = r->cqe.dw0;
      m += std::string(" at byte ") + std::to_string(dw0 & 0xffff) + " of the " +
           ((dw0 >> 16) & 1 ? "Connect data" : "command");
      if ((dw0 >> 16) & 1 && (dw0 & 0xffff) == offsetof(nv::ConnectData, subnqn))
        m += " (no such subsystem NQN)";
    }
    Errc e = s == nv::sc::kConnectInvalidHost         ? Errc::kPermission
             : s == nv::sc::kConnectInvalidParameters ? Errc::kNotFound
             : s == nv::sc::kConnectControllerBusy    ? Errc::kBusy
                                                      : Errc::kIo;
    return make_error(e, m);
  }
  return uint16_t(r->cqe.dw0 & 0xffff);
}

Result<uint64_t> SyncConn::prop_get(uint32_t ofst, bool eight, uint32_t timeout_ms) {
  nv::SqEntry sqe{};
  auto& c = reinterpret_cast<nv::PropertyCmd&>(sqe);
  c.opc = nv::kOpcFabrics;
  c.fctype = nv::kFctypePropertyGet;
  c.attrib = eight ? nv::kPropSize8 : nv::kPropSize4;
  c.ofst = ofst;
  auto r = exec(sqe, nullptr, 0, nullptr, 0, timeout_ms);
  if (!r) return r.error();
  if (!r->ok())
    return make_error(Errc::kIo, "Property Get 0x" + std::to_string(ofst) +
                                     " failed: " + status_text(r->status()));
  return uint64_t(r->cqe.dw0) | (eight ? uint64_t(r->cqe.dw1) << 32 : 0);
}

Status SyncConn::prop_set(uint32_t ofst, uint64_t value, bool eight, uint32_t timeout_ms) {
  nv::SqEntry sqe{};
  auto& c = reinterpret_cast<nv::PropertyCmd&>(sqe);
  c.opc = nv::kOpcFabrics;
  c.fctype = nv::kFctypePropertySet;
  c.attrib = eight ? nv::kPropSize8 : nv::kPropSize4;
  c.ofst = ofst;
  c.value = value;
  auto r = exec(sqe, nullptr, 0, nullptr, 0, timeout_ms);
  if (!r) return r.error();
  if (!r->ok())
    return make_error(Errc::kIo, "Property Set 0x" + std::to_string(ofst) +
                                     " failed: " + status_text(r->status()));
  return {};
}

}  // namespace vdpu::bdev::nvme
