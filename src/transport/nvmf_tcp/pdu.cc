#include "transport/nvmf_tcp/pdu.h"

#include <algorithm>

namespace vdpu::nvmf_tcp {

const char* pdu_type_name(uint8_t type) noexcept {
  switch (static_cast<PduType>(type)) {
    case PduType::kICReq:
      return "ICReq";
    case PduType::kICResp:
      return "ICResp";
    case PduType::kH2CTermReq:
      return "H2CTermReq";
    case PduType::kC2HTermReq:
      return "C2HTermReq";
    case PduType::kCapsuleCmd:
      return "CapsuleCmd";
    case PduType::kCapsuleResp:
      return "CapsuleResp";
    case PduType::kH2CData:
      return "H2CData";
    case PduType::kC2HData:
      return "C2HData";
    case PduType::kR2T:
      return "R2T";
  }
  return "unknown";
}

const char* fes_name(Fes f) noexcept {
  switch (f) {
    case Fes::kNone:
      return "none";
    case Fes::kInvalidHeaderField:
      return "invalid PDU header field";
    case Fes::kPduSequenceError:
      return "PDU sequence error";
    case Fes::kHeaderDigestError:
      return "header digest error";
    case Fes::kDataOutOfRange:
      return "data transfer out of range";
    case Fes::kDataLimitExceeded:
      return "data transfer limit exceeded";
    case Fes::kUnsupportedParameter:
      return "unsupported parameter";
  }
  return "unknown";
}

// ---------------------------------------------------------------- builders
namespace {

void put_ch(uint8_t* out, PduType t, uint8_t flags, uint32_t hlen, uint32_t pdo, uint32_t plen) {
  CommonHeader ch{static_cast<uint8_t>(t), flags, uint8_t(hlen), uint8_t(pdo), plen};
  std::memcpy(out, &ch, sizeof ch);
}

// Appends the header digest (if any) and zero padding; returns bytes before data.
uint32_t finish_hdr(uint8_t* out, uint32_t hlen, bool hdgst, uint32_t pdo) {
  uint32_t n = hlen;
  if (hdgst) {
    nvme::put_le32(out + n, crc32c(out, hlen));
    n += kDigestLen;
  }
  if (pdo > n) {
    std::memset(out + n, 0, pdo - n);
    n = pdo;
  }
  return n;
}

// Data-bearing PDU: header flags, PDO and PLEN.
uint32_t data_pdu(uint8_t* out, PduType t, uint8_t extra_flags, uint32_t hlen, uint32_t datal,
                  TxDigests dg, uint8_t pda) {
  uint8_t flags = extra_flags | (dg.hdgst ? kFlagHdgst : 0);
  uint32_t pdo = 0, plen = hlen + (dg.hdgst ? kDigestLen : 0);
  if (datal) {
    if (dg.ddgst) flags |= kFlagDdgst;
    pdo = data_offset(hlen, dg.hdgst, pda);
    plen = pdo + datal + (dg.ddgst ? kDigestLen : 0);
  }
  put_ch(out, t, flags, hlen, pdo, plen);
  return pdo;
}

}  // namespace

uint32_t build_icreq(uint8_t* out, uint8_t hpda, bool hdgst, bool ddgst, uint32_t maxr2t) {
  ICReq r{};
  r.ch = {static_cast<uint8_t>(PduType::kICReq), 0, kIcLen, 0, kIcLen};
  r.pfv = kPfv10;
  r.hpda = hpda;
  r.dgst = uint8_t((hdgst ? kDgstHdgstEnable : 0) | (ddgst ? kDgstDdgstEnable : 0));
  r.maxr2t = maxr2t;
  std::memcpy(out, &r, sizeof r);
  return kIcLen;
}

uint32_t build_icresp(uint8_t* out, uint8_t cpda, bool hdgst, bool ddgst, uint32_t maxh2cdata) {
  ICResp r{};
  r.ch = {static_cast<uint8_t>(PduType::kICResp), 0, kIcLen, 0, kIcLen};
  r.pfv = kPfv10;
  r.cpda = cpda;
  r.dgst = uint8_t((hdgst ? kDgstHdgstEnable : 0) | (ddgst ? kDgstDdgstEnable : 0));
  r.maxh2cdata = maxh2cdata;
  std::memcpy(out, &r, sizeof r);
  return kIcLen;
}

uint32_t build_term_req(uint8_t* out, PduType type, Fes fes, uint32_t fei, const uint8_t* bad_hdr,
                        uint32_t bad_hdr_len) {
  bad_hdr_len = std::min(bad_hdr_len, kTermReqMaxData);
  if (!bad_hdr) bad_hdr_len = 0;
  TermReq t{};
  t.ch = {static_cast<uint8_t>(type), 0, kTermReqHlen, 0, kTermReqHlen + bad_hdr_len};
  t.fes = static_cast<uint16_t>(fes);
  t.fei = fei;
  std::memcpy(out, &t, sizeof t);
  if (bad_hdr_len) std::memcpy(out + kTermReqHlen, bad_hdr, bad_hdr_len);
  return kTermReqHlen + bad_hdr_len;
}

uint32_t build_capsule_cmd(uint8_t* out, const nvme::SqEntry& sqe, uint32_t data_len, TxDigests dg,
                           uint8_t cpda) {
  uint32_t pdo = data_pdu(out, PduType::kCapsuleCmd, 0, kCapsuleCmdHlen, data_len, dg, cpda);
  std::memcpy(out + kChLen, &sqe, sizeof sqe);
  return finish_hdr(out, kCapsuleCmdHlen, dg.hdgst, pdo);
}

uint32_t build_capsule_resp(uint8_t* out, const nvme::CqEntry& cqe, bool hdgst) {
  data_pdu(out, PduType::kCapsuleResp, 0, kCapsuleRespHlen, 0, {hdgst, false}, 0);
  std::memcpy(out + kChLen, &cqe, sizeof cqe);
  return finish_hdr(out, kCapsuleRespHlen, hdgst, 0);
}

uint32_t build_h2c_data(uint8_t* out, uint16_t cccid, uint16_t ttag, uint32_t datao, uint32_t datal,
                        bool last, TxDigests dg, uint8_t cpda) {
  uint32_t pdo =
      data_pdu(out, PduType::kH2CData, last ? kFlagLastPdu : 0, kDataHlen, datal, dg, cpda);
  H2CData* h = reinterpret_cast<H2CData*>(out);
  h->cccid = cccid;
  h->ttag = ttag;
  h->datao = datao;
  h->datal = datal;
  std::memset(h->rsvd, 0, sizeof h->rsvd);
  return finish_hdr(out, kDataHlen, dg.hdgst, pdo);
}

uint32_t build_c2h_data(uint8_t* out, uint16_t cccid, uint32_t datao, uint32_t datal, bool last,
                        bool success, TxDigests dg, uint8_t hpda) {
  uint8_t f = uint8_t((last ? kFlagLastPdu : 0) | (success ? kFlagSuccess : 0));
  uint32_t pdo = data_pdu(out, PduType::kC2HData, f, kDataHlen, datal, dg, hpda);
  C2HData* h = reinterpret_cast<C2HData*>(out);
  h->cccid = cccid;
  h->rsvd10 = 0;
  h->datao = datao;
  h->datal = datal;
  std::memset(h->rsvd, 0, sizeof h->rsvd);
  return finish_hdr(out, kDataHlen, dg.hdgst, pdo);
}

uint32_t build_r2t(uint8_t* out, uint16_t cccid, uint16_t ttag, uint32_t r2to, uint32_t r2tl,
                   bool hdgst) {
  data_pdu(out, PduType::kR2T, 0, kR2tHlen, 0, {hdgst, false}, 0);
  R2T* h = reinterpret_cast<R2T*>(out);
  h->cccid = cccid;
  h->ttag = ttag;
  h->r2to = r2to;
  h->r2tl = r2tl;
  std::memset(h->rsvd, 0, sizeof h->rsvd);
  return finish_hdr(out, kR2tHlen, hdgst, 0);
}

// ---------------------------------------------------------------- receiver
namespace {

// Per type: fixed HLEN, whether it carries header/data digests, and whether
// data is forbidden / required.
struct TypeInfo {
  uint8_t hlen;
  bool digests;  // HDGST/DDGST apply
  bool may_have_data;
  bool must_have_data;
};

bool type_info(Role role, bool ic_done, uint8_t t, TypeInfo* ti, PduError* e) {
  const bool target = role == Role::kTarget;
  switch (static_cast<PduType>(t)) {
    case PduType::kICReq:
    case PduType::kICResp:
      if ((static_cast<PduType>(t) == PduType::kICReq) != target) break;
      if (ic_done) {
        *e = {Fes::kPduSequenceError, kFeiPduType, "second IC PDU"};
        return false;
      }
      *ti = {kIcLen, false, false, false};
      return true;
    case PduType::kH2CTermReq:
    case PduType::kC2HTermReq:
      if ((static_cast<PduType>(t) == PduType::kH2CTermReq) != target) break;
      *ti = {kTermReqHlen, false, true, false};
      return true;  // a TermReq may come at any time, even before IC
    case PduType::kCapsuleCmd:
      if (!target) break;
      *ti = {kCapsuleCmdHlen, true, true, false};
      goto after_ic;
    case PduType::kH2CData:
      if (!target) break;
      *ti = {kDataHlen, true, true, true};
      goto after_ic;
    case PduType::kCapsuleResp:
      if (target) break;
      *ti = {kCapsuleRespHlen, true, false, false};
      goto after_ic;
    case PduType::kC2HData:
      if (target) break;
      *ti = {kDataHlen, true, true, true};
      goto after_ic;
    case PduType::kR2T:
      if (target) break;
      *ti = {kR2tHlen, true, false, false};
      goto after_ic;
  }
  *e = {Fes::kInvalidHeaderField, kFeiPduType, "PDU type not valid in this direction"};
  return false;
after_ic:
  if (!ic_done) {
    *e = {Fes::kPduSequenceError, kFeiPduType, "PDU before connection initialization"};
    return false;
  }
  return true;
}

}  // namespace

void PduReceiver::reset() {
  state_ = State::kCh;
  ic_done_ = false;
  got_ = 0;
  err_ = {};
  params_ = {};
  pdus_ = 0;
}

void PduReceiver::fail(PduError e) {
  err_ = e;
  state_ = State::kFailed;
}

uint32_t PduReceiver::error_header_len() const {
  uint32_t have = (state_ == State::kFailed) ? std::min<uint32_t>(hdr_have_, kMaxHlen) : 0;
  return std::min(have, kTermReqMaxData);
}

// Common header: type valid for our role and the connection state, fixed
// HLEN, PLEN at least the header (§3.6.1, §3.6.2.x).
PduError PduReceiver::check_ch() {
  const auto* ch = reinterpret_cast<const CommonHeader*>(hdr_);
  TypeInfo ti{};
  PduError e{};
  if (!type_info(role_, ic_done_, ch->pdu_type, &ti, &e)) return e;
  if (ch->hlen != ti.hlen) return {Fes::kInvalidHeaderField, kFeiHlen, "HLEN"};
  has_hd_ = ti.digests && params_.hdgst;
  // HDGSTF must match the negotiated setting (§3.6.1.1).
  if (ti.digests && bool(ch->flags & kFlagHdgst) != params_.hdgst)
    return {Fes::kInvalidHeaderField, kFeiFlags, "HDGSTF does not match the negotiated digest"};
  hdr_total_ = ti.hlen + (has_hd_ ? kDigestLen : 0);
  if (ch->plen < hdr_total_)
    return {Fes::kInvalidHeaderField, kFeiPlen, "PLEN shorter than header"};
  const bool has_data = ch->plen > hdr_total_;
  if (has_data && !ti.may_have_data)
    return {Fes::kInvalidHeaderField, kFeiPlen, "PLEN: this PDU carries no data"};
  if (!has_data && ti.must_have_data)
    return {Fes::kInvalidHeaderField, kFeiPlen, "PLEN: data PDU without data"};
  if (ch->pdu_type == uint8_t(PduType::kICReq) || ch->pdu_type == uint8_t(PduType::kICResp)) {
    if (ch->plen != kIcLen) return {Fes::kInvalidHeaderField, kFeiPlen, "IC PLEN"};
    if (ch->pdo != 0) return {Fes::kInvalidHeaderField, kFeiPdo, "IC PDO"};
  }
  view_.type = static_cast<PduType>(ch->pdu_type);
  view_.flags = ch->flags;
  view_.hlen = ti.hlen;
  view_.plen = ch->plen;
  view_.hdr = hdr_;
  view_.data_len = 0;
  return {};
}

// Whole header: digest, then the data layout (PDO/PLEN) and size limits.
PduError PduReceiver::check_header() {
  const auto* ch = reinterpret_cast<const CommonHeader*>(hdr_);
  if (has_hd_ && nvme::le32(hdr_ + view_.hlen) != crc32c(hdr_, view_.hlen))
    return {Fes::kHeaderDigestError, 0, "header digest mismatch"};
  pad_left_ = 0;
  has_dd_ = false;
  if (ch->plen == hdr_total_) return {};
  const PduType t = view_.type;
  if (t == PduType::kH2CTermReq || t == PduType::kC2HTermReq) {
    // The data (the offending header) follows the header directly.
    view_.data_len = ch->plen - kTermReqHlen;
    if (view_.data_len > kTermReqMaxData)
      return {Fes::kInvalidHeaderField, kFeiPlen, "TermReq PLEN"};
    return {};
  }
  // PDO: after header and digest, a multiple of the alignment we asked for,
  // inside the PDU (§3.6.1.1, §3.6.2.3 CPDA).
  const uint32_t align = (uint32_t(params_.pda) + 1) * 4;
  if (ch->pdo < hdr_total_ || ch->pdo % align != 0)
    return {Fes::kInvalidHeaderField, kFeiPdo, "PDO"};
  has_dd_ = params_.ddgst;
  if (bool(ch->flags & kFlagDdgst) != params_.ddgst)
    return {Fes::kInvalidHeaderField, kFeiFlags, "DDGSTF does not match the negotiated digest"};
  const uint32_t dd = has_dd_ ? kDigestLen : 0;
  if (uint64_t(ch->pdo) + dd >= ch->plen) return {Fes::kInvalidHeaderField, kFeiPlen, "PLEN/PDO"};
  const uint32_t dlen = ch->plen - ch->pdo - dd;
  if (t == PduType::kCapsuleCmd) {
    if (dlen > params_.max_incapsule)
      return {Fes::kDataLimitExceeded, kFeiPlen, "in-capsule data larger than advertised"};
  } else {
    // H2CData / C2HData: DATAL must equal the data carried (§3.6.2.8).
    uint32_t datal = nvme::le32(hdr_ + offsetof(H2CData, datal));
    if (datal != dlen) return {Fes::kInvalidHeaderField, offsetof(H2CData, datal), "DATAL/PLEN"};
    if (dlen > params_.max_data)
      return {Fes::kDataLimitExceeded, offsetof(H2CData, datal), "data PDU larger than MAXH2CDATA"};
    if (t == PduType::kC2HData && (ch->flags & kFlagSuccess) && !(ch->flags & kFlagLastPdu))
      return {Fes::kInvalidHeaderField, kFeiFlags, "C2HData SUCCESS without LAST_PDU"};
  }
  pad_left_ = ch->pdo - hdr_total_;
  view_.data_len = dlen;
  return {};
}

bool PduReceiver::finish_header(PduHandler& h) {
  if (PduError e = check_header()) {
    fail(e);
    return false;
  }
  place_ = {};
  if (PduError e = h.on_pdu_header(view_, &place_)) {
    fail(e);
    return false;
  }
  data_left_ = view_.data_len;
  iov_idx_ = 0;
  iov_off_ = 0;
  ddgst_ = kCrc32cInit;
  got_ = 0;
  state_ = pad_left_ ? State::kPad : (data_left_ ? State::kData : State::kCh);
  return true;
}

bool PduReceiver::finish_pdu(PduHandler& h, bool* pause) {
  bool ok = true;
  if (has_dd_) ok = nvme::le32(dd_buf_) == crc32c_final(ddgst_);
  if (view_.type == PduType::kICReq || view_.type == PduType::kICResp) ic_done_ = true;
  ++pdus_;
  state_ = State::kCh;
  got_ = 0;
  if (PduError e = h.on_pdu_done(view_, ok, pause)) {
    fail(e);
    return false;
  }
  return true;
}

void PduReceiver::advance_data_cursor(size_t n) {
  while (n && place_.iov && iov_idx_ < place_.iovcnt) {
    size_t room = place_.iov[iov_idx_].iov_len - iov_off_;
    size_t k = std::min(room, n);
    iov_off_ += k;
    n -= k;
    if (iov_off_ == place_.iov[iov_idx_].iov_len) {
      ++iov_idx_;
      iov_off_ = 0;
    }
  }
}

void PduReceiver::consume_data(const uint8_t* p, size_t n) {
  if (has_dd_) ddgst_ = crc32c_update(ddgst_, p, n);
  if (place_.iov) {
    while (n && iov_idx_ < place_.iovcnt) {
      const iovec& v = place_.iov[iov_idx_];
      size_t k = std::min(v.iov_len - iov_off_, n);
      std::memcpy(static_cast<uint8_t*>(v.iov_base) + iov_off_, p, k);
      p += k;
      n -= k;
      iov_off_ += k;
      if (iov_off_ == v.iov_len) {
        ++iov_idx_;
        iov_off_ = 0;
      }
    }
    // A placement shorter than the data: the rest is dropped (handler bug,
    // never memory outside the placement).
  }
}

int PduReceiver::data_iov(struct iovec* out, int max) const {
  if (state_ != State::kData || !place_.iov) return 0;
  int n = 0;
  size_t left = data_left_;
  for (int i = iov_idx_; i < place_.iovcnt && n < max && left; ++i) {
    size_t off = (i == iov_idx_) ? iov_off_ : 0;
    size_t k = std::min(place_.iov[i].iov_len - off, left);
    if (!k) continue;
    out[n].iov_base = static_cast<uint8_t*>(place_.iov[i].iov_base) + off;
    out[n].iov_len = k;
    left -= k;
    ++n;
  }
  return n;
}

bool PduReceiver::data_received(size_t n, PduHandler& h) {
  if (state_ != State::kData || n > data_left_) return !failed();
  if (has_dd_) {
    // Digest over the bytes just written in place.
    size_t left = n;
    int i = iov_idx_;
    size_t off = iov_off_;
    while (left && i < place_.iovcnt) {
      size_t k = std::min(place_.iov[i].iov_len - off, left);
      ddgst_ = crc32c_update(ddgst_, static_cast<uint8_t*>(place_.iov[i].iov_base) + off, k);
      left -= k;
      ++i;
      off = 0;
    }
  }
  advance_data_cursor(n);
  data_left_ -= uint32_t(n);
  if (data_left_) return true;
  state_ = State::kDdgst;
  got_ = 0;
  if (has_dd_) return true;  // the digest comes through feed()
  bool pause = false;
  return finish_pdu(h, &pause);
}

size_t PduReceiver::feed(const uint8_t* data, size_t len, PduHandler& h) {
  size_t pos = 0;
  for (;;) {
    switch (state_) {
      case State::kFailed:
        return pos;
      case State::kCh: {
        if (pos == len) return pos;
        uint32_t k = uint32_t(std::min<size_t>(kChLen - got_, len - pos));
        std::memcpy(hdr_ + got_, data + pos, k);
        got_ += k;
        hdr_have_ = got_;
        pos += k;
        if (got_ < kChLen) return pos;
        if (PduError e = check_ch()) {
          fail(e);
          return pos;
        }
        state_ = State::kHdr;
        break;
      }
      case State::kHdr: {
        if (got_ < hdr_total_) {
          if (pos == len) return pos;
          uint32_t k = uint32_t(std::min<size_t>(hdr_total_ - got_, len - pos));
          std::memcpy(hdr_ + got_, data + pos, k);
          got_ += k;
          hdr_have_ = std::min(got_, view_.hlen);
          pos += k;
          if (got_ < hdr_total_) return pos;
        }
        if (!finish_header(h)) return pos;
        if (state_ == State::kCh) {  // no data: the PDU is complete
          state_ = State::kDdgst;    // reuse the completion path below
          got_ = kDigestLen;
          has_dd_ = false;
        }
        break;
      }
      case State::kPad: {
        if (pos == len) return pos;
        uint32_t k = uint32_t(std::min<size_t>(pad_left_, len - pos));
        pad_left_ -= k;
        pos += k;
        if (pad_left_) return pos;
        state_ = data_left_ ? State::kData : State::kCh;
        break;
      }
      case State::kData: {
        if (pos == len) return pos;
        uint32_t k = uint32_t(std::min<size_t>(data_left_, len - pos));
        consume_data(data + pos, k);
        data_left_ -= k;
        pos += k;
        if (data_left_) return pos;
        state_ = State::kDdgst;
        got_ = has_dd_ ? 0 : kDigestLen;
        break;
      }
      case State::kDdgst: {
        if (got_ < kDigestLen) {
          if (pos == len) return pos;
          uint32_t k = uint32_t(std::min<size_t>(kDigestLen - got_, len - pos));
          std::memcpy(dd_buf_ + got_, data + pos, k);
          got_ += k;
          pos += k;
          if (got_ < kDigestLen) return pos;
        }
        bool pause = false;
        if (!finish_pdu(h, &pause)) return pos;
        if (pause) return pos;
        break;
      }
    }
  }
}

}  // namespace vdpu::nvmf_tcp
