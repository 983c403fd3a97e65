#include "fake_target.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>

namespace vdpu::bdev::nvme::test {

namespace {

bool send_iov(int fd, iovec* v, int n) {
  while (n > 0) {
    msghdr m{};
    m.msg_iov = v;
    m.msg_iovlen = size_t(n);
    ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (w <= 0) return false;
    size_t left = size_t(w);
    while (n > 0 && left >= v->iov_len) {
      left -= v->iov_len;
      ++v;
      --n;
    }
    if (n > 0) {
      v->iov_base = static_cast<uint8_t*>(v->iov_base) + left;
      v->iov_len -= left;
    }
  }
  return true;
}

}  // namespace

class FakeTarget::Handler final : public PduHandler {
 public:
  Handler(FakeTarget& t, int fd, PduReceiver& rx) : t_(t), fd_(fd), rx_(rx) {}
  bool closing = false;

  PduError on_pdu_header(const PduView& pdu, Placement* place) override {
    switch (pdu.type) {
      case PduType::kCapsuleCmd:
        if (pdu.data_len) {
          ic_.resize(pdu.data_len);
          iov_ = {ic_.data(), ic_.size()};
          place->iov = &iov_;
          place->iovcnt = 1;
        }
        return {};
      case PduType::kH2CData: {
        const auto& d = pdu.as<H2CData>();
        auto it = pend_.find(d.cccid);
        if (it == pend_.end() || it->second.ttag != d.ttag)
          return {Fes::kInvalidHeaderField, 8, "H2CData for no R2T"};
        Cmd& c = it->second;
        if (d.datao != c.got || uint64_t(d.datao) + d.datal > c.data.size())
          return {Fes::kDataOutOfRange, 12, "H2CData out of range"};
        iov_ = {c.data.data() + d.datao, d.datal};
        place->iov = &iov_;
        place->iovcnt = 1;
        return {};
      }
      default:
        place->iov = nullptr;
        return {};
    }
  }

  PduError on_pdu_done(const PduView& pdu, bool ddgst_ok, bool* pause) override {
    *pause = false;
    switch (pdu.type) {
      case PduType::kICReq: {
        const auto& r = pdu.as<ICReq>();
        hd_ = r.dgst & kDgstHdgstEnable;
        dd_ = r.dgst & kDgstDdgstEnable;
        alignas(8) uint8_t out[kIcLen];
        uint32_t n = build_icresp(out, 0, hd_, dd_, t_.maxh2cdata);
        send(out, n);
        rx_.params().hdgst = hd_;
        rx_.params().ddgst = dd_;
        rx_.params().max_incapsule = 8192;
        rx_.params().max_data = t_.maxh2cdata;
        break;
      }
      case PduType::kCapsuleCmd: {
        if (!ddgst_ok) return {Fes::kHeaderDigestError, 0, "bad data digest"};
        nv::SqEntry sqe = pdu.as<CapsuleCmd>().sqe;
        handle(sqe, pdu.data_len ? ic_ : std::vector<uint8_t>{}, pdu.data_len != 0);
        break;
      }
      case PduType::kH2CData: {
        if (!ddgst_ok) return {Fes::kHeaderDigestError, 0, "bad data digest"};
        const auto& d = pdu.as<H2CData>();
        Cmd& c = pend_[d.cccid];
        c.got += d.datal;
        if (c.got == c.data.size()) {
          Cmd done = std::move(c);
          pend_.erase(d.cccid);
          exec_io(done.sqe, done.data);
        }
        break;
      }
      case PduType::kH2CTermReq:
        if (getenv("FAKE_TARGET_DEBUG"))
          fprintf(stderr, "fake target: H2CTermReq FES %u\n", unsigned(pdu.as<TermReq>().fes));
        t_.got_h2c_term = true;
        closing = true;
        *pause = true;
        break;
      default:
        break;
    }
    return {};
  }

 private:
  struct Cmd {
    nv::SqEntry sqe{};
    std::vector<uint8_t> data;
    uint32_t got = 0;
    uint16_t ttag = 0;
  };

  void send(const void* p, size_t n) {
    iovec v{const_cast<void*>(p), n};
    send_iov(fd_, &v, 1);
  }

  void respond(uint16_t cid, uint16_t status, uint32_t dw0 = 0, uint32_t dw1 = 0, bool io = false) {
    nv::CqEntry cqe{};
    cqe.cid = cid;
    cqe.dw0 = dw0;
    cqe.dw1 = dw1;
    cqe.status = uint16_t(status << 1);
    alignas(8) uint8_t out[kMaxTxHeader];
    uint32_t n = build_capsule_resp(out, cqe, hd_);
    if (io && t_.bad_pdu_after.load() >= 0 && t_.io_resps_++ >= t_.bad_pdu_after.load())
      out[2] = 30;
    send(out, n);
  }

  void send_data(uint16_t cid, const uint8_t* p, uint32_t len, bool success) {
    for (uint32_t off = 0; off < len;) {
      uint32_t n = std::min(len - off, t_.c2h_chunk);
      bool last = off + n == len;
      alignas(8) uint8_t hdr[kMaxTxHeader];
      uint32_t hl = build_c2h_data(hdr, cid, off, n, last, last && success, TxDigests{hd_, dd_}, 0);
      uint8_t dd[4];
      nv::put_le32(dd, crc32c(p + off, n));
      iovec v[3] = {{hdr, hl}, {const_cast<uint8_t*>(p) + off, n}, {dd, 4}};
      send_iov(fd_, v, dd_ ? 3 : 2);
      off += n;
    }
  }

  void handle(const nv::SqEntry& sqe, const std::vector<uint8_t>& data, bool incapsule) {
    ++t_.cmds;
    if (sqe.opc == nv::kOpcFabrics) return fabrics(sqe, data);
    if (qid_ == 0) return admin(sqe);
    if (auto m = t_.misbehave.exchange(Misbehave::kNone); m != Misbehave::kNone)
      return misbehave(m, sqe);
    uint8_t sgl_id = reinterpret_cast<const uint8_t*>(&sqe)[39];
    uint32_t sgl_len = uint32_t(sqe.prp2 & 0xffffffffu);
    bool out = sqe.opc == nv::kIoWrite || sqe.opc == nv::kIoDatasetManagement;
    if (out && !incapsule && sgl_id == nv::kSglIdTransport && sgl_len) {
      Cmd c;
      c.sqe = sqe;
      c.data.resize(sgl_len);
      c.ttag = uint16_t(next_ttag_++);
      alignas(8) uint8_t hdr[kMaxTxHeader];
      uint32_t n = build_r2t(hdr, sqe.cid, c.ttag, 0, sgl_len, hd_);
      pend_[sqe.cid] = std::move(c);
      ++t_.r2ts;
      send(hdr, n);
      return;
    }
    exec_io(sqe, data);
  }

  void misbehave(Misbehave m, const nv::SqEntry& sqe) {
    alignas(8) uint8_t out[kMaxTermReqLen + kMaxTxHeader]{};
    uint32_t n = 0;
    switch (m) {
      case Misbehave::kUnknownCid: {
        static uint8_t data[512];
        uint32_t hl = build_c2h_data(out, 999, 0, 512, true, false, TxDigests{hd_, dd_}, 0);
        uint8_t dd[4];
        nv::put_le32(dd, crc32c(data, 512));
        iovec v[3] = {{out, hl}, {data, 512}, {dd, 4}};
        send_iov(fd_, v, dd_ ? 3 : 2);
        return;
      }
      case Misbehave::kBadHeaderDigest: {
        nv::CqEntry cqe{};
        cqe.cid = sqe.cid;
        n = build_capsule_resp(out, cqe, hd_);
        out[kCapsuleRespHlen] ^= 0xff;
        break;
      }
      case Misbehave::kR2tOutOfRange: {
        uint32_t len = uint32_t(sqe.prp2 & 0xffffffffu);
        n = build_r2t(out, sqe.cid, 7, 0, len + 4096, hd_);
        break;
      }
      case Misbehave::kC2HTermReq:
        n = build_term_req(out, PduType::kC2HTermReq, Fes::kInvalidHeaderField, 0,
                           reinterpret_cast<const uint8_t*>(&sqe), 24);
        break;
      case Misbehave::kBadType: {
        n = build_capsule_cmd(out, sqe, 0, TxDigests{hd_, dd_}, 0);
        break;
      }
      case Misbehave::kNoAnswer:
        return;
      case Misbehave::kTransient:
        return respond(sqe.cid, nv::sc::kTransientTransportError, 0, 0, true);
      case Misbehave::kNone:
        return;
    }
    send(out, n);
  }

  void fabrics(const nv::SqEntry& sqe, const std::vector<uint8_t>& data) {
    const auto& f = reinterpret_cast<const nv::FabricsCmd&>(sqe);
    if (f.fctype == nv::kFctypeConnect) {
      const auto& c = reinterpret_cast<const nv::ConnectCmd&>(sqe);
      if (data.size() != sizeof(nv::ConnectData)) return respond(sqe.cid, nv::sc::kInvalidField);
      const auto& d = *reinterpret_cast<const nv::ConnectData*>(data.data());
      if (std::string(d.subnqn, strnlen(d.subnqn, 256)) != t_.nqn)
        return respond(sqe.cid, nv::sc::kConnectInvalidParameters,
                       nv::connect_invalid_param(true, offsetof(nv::ConnectData, subnqn)));
      if (!t_.allowed_host.empty() &&
          std::string(d.hostnqn, strnlen(d.hostnqn, 256)) != t_.allowed_host)
        return respond(sqe.cid, nv::sc::kConnectInvalidHost);
      qid_ = c.qid;
      ++t_.connects;
      if (qid_) {
        ++t_.io_connects;
        rx_.params().max_incapsule = t_.icd;
      }
      return respond(sqe.cid, 0, 1);
    }
    const auto& p = reinterpret_cast<const nv::PropertyCmd&>(sqe);
    if (f.fctype == nv::kFctypePropertyGet) {
      uint64_t v = 0;
      if (p.ofst == nv::kPropCap)
        v = 127 | (1ull << 24) | (1ull << 37);
      else if (p.ofst == nv::kPropVs)
        v = 0x10300;
      else if (p.ofst == nv::kPropCc)
        v = cc_;
      else if (p.ofst == nv::kPropCsts)
        v = cc_ & 1;
      return respond(sqe.cid, 0, uint32_t(v), uint32_t(v >> 32));
    }
    if (f.fctype == nv::kFctypePropertySet) {
      if (p.ofst == nv::kPropCc) cc_ = uint32_t(p.value);
      return respond(sqe.cid, 0);
    }
    respond(sqe.cid, nv::sc::kInvalidOpcode);
  }

  void admin(const nv::SqEntry& sqe) {
    switch (sqe.opc) {
      case nv::kAdmIdentify: {
        std::vector<uint8_t> b(4096, 0);
        uint8_t cns = uint8_t(sqe.cdw10 & 0xff);
        if (cns == nv::kCnsController) {
          auto& id = *reinterpret_cast<nv::IdentifyController*>(b.data());
          memcpy(id.sn, "FAKE0001            ", 20);
          memcpy(id.mn, "fake target                             ", 40);
          id.mdts = t_.mdts;
          id.cntlid = 1;
          id.nn = 1;
          id.oncs = nv::kOncsDsm | nv::kOncsWriteZeroes;
          id.cntrltype = nv::kCntrltypeIo;
          strncpy(id.subnqn, t_.nqn.c_str(), 255);
          auto& fab = *reinterpret_cast<nv::IdentifyFabricsAttrs*>(id.nvmof);
          fab.ioccsz = (t_.icd + 64) / 16;
          fab.iorcsz = 1;
        } else if (cns == nv::kCnsActiveNsList) {
          nv::put_le32(b.data(), 1);
        } else if (cns == nv::kCnsNamespace && sqe.nsid == 1) {
          auto& ns = *reinterpret_cast<nv::IdentifyNamespace*>(b.data());
          ns.nsze = ns.ncap = t_.blocks;
          ns.lbaf[0].lbads = uint8_t(t_.lbads);
        } else {
          return respond(sqe.cid, nv::sc::kInvalidField);
        }
        send_data(sqe.cid, b.data(), 4096, t_.c2h_success);
        if (!t_.c2h_success) respond(sqe.cid, 0);
        return;
      }
      case nv::kAdmSetFeatures:
        if ((sqe.cdw10 & 0xff) == nv::kFidNumberOfQueues)
          return respond(sqe.cid, 0, uint32_t(t_.queues - 1) | (uint32_t(t_.queues - 1) << 16));
        return respond(sqe.cid, nv::sc::kInvalidField);
      case nv::kAdmKeepAlive:
        ++t_.keep_alives;
        return respond(sqe.cid, 0);
      default:
        return respond(sqe.cid, nv::sc::kInvalidOpcode);
    }
  }

  void exec_io(const nv::SqEntry& sqe, const std::vector<uint8_t>& data) {
    const uint64_t slba = uint64_t(sqe.cdw10) | (uint64_t(sqe.cdw11) << 32);
    const uint64_t nlb = (sqe.cdw12 & 0xffff) + 1ull;
    const uint32_t bs = 1u << t_.lbads;
    auto in_range = [&](uint64_t lba, uint64_t n) { return lba + n <= t_.blocks; };
    switch (sqe.opc) {
      case nv::kIoRead: {
        if (!in_range(slba, nlb)) return respond(sqe.cid, nv::sc::kLbaOutOfRange, 0, 0, true);
        std::vector<uint8_t> b(nlb * bs);
        {
          std::lock_guard lk(t_.disk_mu_);
          memcpy(b.data(), t_.disk_.data() + slba * bs, b.size());
        }
        bool bad = t_.bad_pdu_after.load() >= 0;
        send_data(sqe.cid, b.data(), uint32_t(b.size()), t_.c2h_success && !bad);
        if (!t_.c2h_success || bad) respond(sqe.cid, 0, 0, 0, true);
        return;
      }
      case nv::kIoWrite: {
        if (!in_range(slba, nlb)) return respond(sqe.cid, nv::sc::kLbaOutOfRange, 0, 0, true);
        if (data.size() != nlb * bs)
          return respond(sqe.cid, nv::sc::kDataSglLengthInvalid, 0, 0, true);
        {
          std::lock_guard lk(t_.disk_mu_);
          memcpy(t_.disk_.data() + slba * bs, data.data(), data.size());
        }
        return respond(sqe.cid, 0, 0, 0, true);
      }
      case nv::kIoWriteZeroes: {
        if (!in_range(slba, nlb)) return respond(sqe.cid, nv::sc::kLbaOutOfRange, 0, 0, true);
        std::lock_guard lk(t_.disk_mu_);
        memset(t_.disk_.data() + slba * bs, 0, nlb * bs);
        return respond(sqe.cid, 0, 0, 0, true);
      }
      case nv::kIoDatasetManagement: {
        uint32_t nr = (sqe.cdw10 & 0xff) + 1;
        if (data.size() < nr * sizeof(nv::DsmRange))
          return respond(sqe.cid, nv::sc::kInvalidField, 0, 0, true);
        for (uint32_t i = 0; i < nr; ++i) {
          nv::DsmRange r;
          memcpy(&r, data.data() + i * sizeof(r), sizeof(r));
          if (!in_range(r.slba, r.nlb)) return respond(sqe.cid, nv::sc::kLbaOutOfRange, 0, 0, true);
          std::lock_guard lk(t_.disk_mu_);
          memset(t_.disk_.data() + r.slba * bs, 0, uint64_t(r.nlb) * bs);
        }
        return respond(sqe.cid, 0, 0, 0, true);
      }
      case nv::kIoFlush:
        return respond(sqe.cid, 0, 0, 0, true);
      default:
        return respond(sqe.cid, nv::sc::kInvalidOpcode, 0, 0, true);
    }
  }

  FakeTarget& t_;
  int fd_;
  PduReceiver& rx_;
  bool hd_ = false, dd_ = false;
  uint16_t qid_ = 0;
  uint32_t cc_ = 0;
  uint32_t next_ttag_ = 1;
  std::vector<uint8_t> ic_;
  iovec iov_{};
  std::map<uint16_t, Cmd> pend_;
};

void FakeTarget::serve(int fd) {
  PduReceiver rx(Role::kTarget);
  Handler h(*this, fd, rx);
  std::vector<uint8_t> buf(65536);
  while (running_ && !h.closing) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) {
      if (getenv("FAKE_TARGET_DEBUG")) fprintf(stderr, "fake target: recv %zd\n", n);
      break;
    }
    size_t off = 0;
    while (off < size_t(n) && !rx.failed() && !h.closing)
      off += rx.feed(buf.data() + off, size_t(n) - off, h);
    if (rx.failed()) {
      fprintf(stderr, "fake target: bad PDU from the host: %s (%s)\n", rx.error().reason,
              fes_name(rx.error().fes));
      break;
    }
  }
}

}  // namespace vdpu::bdev::nvme::test
