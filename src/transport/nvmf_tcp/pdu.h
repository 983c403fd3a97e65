// NVMe/TCP wire format (NVM Express TCP Transport Specification 1.0): the PDU
// common header, every PDU type, header/data digests (CRC32C, crc32c.h), PDU
// builders for the sending side and an incremental, allocation-free receiver
// with strict validation.
//
// Shared by the target (transport/nvmf_tcp) and the initiator (bdev/nvme):
// the initiator may use everything here (Role::kHost selects the PDUs a host
// receives). The API is kept stable; extend it, do not change it.
//
// Threads: no shared state; a PduReceiver belongs to one connection (one
// reactor). Nothing here allocates or makes a syscall.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "nvme/spec.h"
#include "transport/nvmf_tcp/crc32c.h"

namespace vdpu::nvmf_tcp {

// ---------------------------------------------------------------- wire structures (§3.6)
enum class PduType : uint8_t {
  kICReq = 0x00,
  kICResp = 0x01,
  kH2CTermReq = 0x02,
  kC2HTermReq = 0x03,
  kCapsuleCmd = 0x04,
  kCapsuleResp = 0x05,
  kH2CData = 0x06,
  kC2HData = 0x07,
  kR2T = 0x09,
};
const char* pdu_type_name(uint8_t type) noexcept;

// Common header flags (§3.6.1.1 and the per-PDU definitions).
constexpr uint8_t kFlagHdgst = 1u << 0;    // header digest present
constexpr uint8_t kFlagDdgst = 1u << 1;    // data digest present
constexpr uint8_t kFlagLastPdu = 1u << 2;  // H2CData/C2HData: last data PDU of the command
constexpr uint8_t kFlagSuccess = 1u << 3;  // C2HData: command succeeded, no CapsuleResp follows

// ICReq/ICResp DGST field bits.
constexpr uint8_t kDgstHdgstEnable = 1u << 0, kDgstDdgstEnable = 1u << 1;

constexpr uint32_t kDigestLen = 4;
constexpr uint32_t kChLen = 8;
constexpr uint32_t kIcLen = 128;  // ICReq/ICResp HLEN and PLEN
constexpr uint32_t kTermReqHlen = 24;
constexpr uint32_t kTermReqMaxData = 128;  // the offending PDU header (at most 128 bytes)
constexpr uint32_t kCapsuleCmdHlen = 72;   // CH + 64-byte SQE
constexpr uint32_t kCapsuleRespHlen = 24;  // CH + 16-byte CQE
constexpr uint32_t kDataHlen = 24;         // H2CData, C2HData
constexpr uint32_t kR2tHlen = 24;
constexpr uint32_t kMaxHlen = 128;
constexpr uint32_t kMaxHpda = 31;          // HPDA/CPDA: alignment (x+1)*4 bytes
constexpr uint32_t kMinMaxH2cData = 4096;  // MAXH2CDATA is at least 4 KiB
constexpr uint16_t kPfv10 = 0;             // PDU format version 1.0

// Header bytes a sender needs at most before the data: the longest header
// (CapsuleCmd 72) + digest, padded to the largest PDA alignment (128).
constexpr uint32_t kMaxTxHeader = 128;
constexpr uint32_t kMaxTermReqLen = kTermReqHlen + kTermReqMaxData;

#pragma pack(push, 1)
struct CommonHeader {
  uint8_t pdu_type;
  uint8_t flags;
  uint8_t hlen;
  uint8_t pdo;
  uint32_t plen;
};
static_assert(sizeof(CommonHeader) == 8);

struct ICReq {  // §3.6.2.2
  CommonHeader ch;
  uint16_t pfv;
  uint8_t hpda;
  uint8_t dgst;
  uint32_t maxr2t;  // 0's based
  uint8_t rsvd[112];
};
static_assert(sizeof(ICReq) == 128);

struct ICResp {  // §3.6.2.3
  CommonHeader ch;
  uint16_t pfv;
  uint8_t cpda;
  uint8_t dgst;
  uint32_t maxh2cdata;
  uint8_t rsvd[112];
};
static_assert(sizeof(ICResp) == 128);

struct TermReq {  // H2CTermReq §3.6.2.4, C2HTermReq §3.6.2.5
  CommonHeader ch;
  uint16_t fes;
  uint32_t fei;
  uint8_t rsvd[10];
};
static_assert(sizeof(TermReq) == 24 && offsetof(TermReq, fei) == 10);

struct CapsuleCmd {  // §3.6.2.6
  CommonHeader ch;
  nvme::SqEntry sqe;
};
static_assert(sizeof(CapsuleCmd) == 72);

struct CapsuleResp {  // §3.6.2.7
  CommonHeader ch;
  nvme::CqEntry cqe;
};
static_assert(sizeof(CapsuleResp) == 24);

struct H2CData {  // §3.6.2.8
  CommonHeader ch;
  uint16_t cccid;
  uint16_t ttag;
  uint32_t datao;
  uint32_t datal;
  uint8_t rsvd[4];
};
static_assert(sizeof(H2CData) == 24 && offsetof(H2CData, datal) == 16);

struct C2HData {  // §3.6.2.9
  CommonHeader ch;
  uint16_t cccid;
  uint16_t rsvd10;
  uint32_t datao;
  uint32_t datal;
  uint8_t rsvd[4];
};
static_assert(sizeof(C2HData) == 24 && offsetof(C2HData, datal) == 16);

struct R2T {  // §3.6.2.10
  CommonHeader ch;
  uint16_t cccid;
  uint16_t ttag;
  uint32_t r2to;
  uint32_t r2tl;
  uint8_t rsvd[4];
};
static_assert(sizeof(R2T) == 24);
#pragma pack(pop)

// Fatal Error Status of a TermReq (§3.6.2.4 Figure 26). FEI: the byte offset
// of the offending header field for kInvalidHeaderField / kUnsupportedParameter.
enum class Fes : uint16_t {
  kNone = 0,
  kInvalidHeaderField = 0x01,
  kPduSequenceError = 0x02,
  kHeaderDigestError = 0x03,
  kDataOutOfRange = 0x04,
  kDataLimitExceeded = 0x05,  // R2T limit / MAXH2CDATA / in-capsule size exceeded
  kUnsupportedParameter = 0x06,
};
const char* fes_name(Fes f) noexcept;

// FEI values: offsets of the common header fields.
constexpr uint32_t kFeiPduType = 0, kFeiFlags = 1, kFeiHlen = 2, kFeiPdo = 3, kFeiPlen = 4;

// ---------------------------------------------------------------- builders (sending side)
// Each writes a complete header into out (which has room for kMaxTxHeader
// bytes, or kMaxTermReqLen for build_term_req), including the header digest
// when hdgst is set and the zero padding up to the data (PDO, aligned to
// (pda+1)*4 bytes where pda is the peer's HPDA/CPDA). Returns the number of
// bytes to send before the data. The data digest, when enabled, is
// crc32c_iov() of the data, sent as 4 little-endian bytes after it.
struct TxDigests {
  bool hdgst = false;
  bool ddgst = false;
};

uint32_t build_icreq(uint8_t* out, uint8_t hpda, bool hdgst, bool ddgst, uint32_t maxr2t);
uint32_t build_icresp(uint8_t* out, uint8_t cpda, bool hdgst, bool ddgst, uint32_t maxh2cdata);
// type: kH2CTermReq (host) or kC2HTermReq (target); bad_hdr: the offending
// header (truncated to kTermReqMaxData bytes).
uint32_t build_term_req(uint8_t* out, PduType type, Fes fes, uint32_t fei, const uint8_t* bad_hdr,
                        uint32_t bad_hdr_len);
// data_len: in-capsule data bytes (0: none).
uint32_t build_capsule_cmd(uint8_t* out, const nvme::SqEntry& sqe, uint32_t data_len, TxDigests dg,
                           uint8_t cpda);
uint32_t build_capsule_resp(uint8_t* out, const nvme::CqEntry& cqe, bool hdgst);
uint32_t build_h2c_data(uint8_t* out, uint16_t cccid, uint16_t ttag, uint32_t datao, uint32_t datal,
                        bool last, TxDigests dg, uint8_t cpda);
uint32_t build_c2h_data(uint8_t* out, uint16_t cccid, uint32_t datao, uint32_t datal, bool last,
                        bool success, TxDigests dg, uint8_t hpda);
uint32_t build_r2t(uint8_t* out, uint16_t cccid, uint16_t ttag, uint32_t r2to, uint32_t r2tl,
                   bool hdgst);

// The PDO of a data-bearing PDU: header + digest rounded up to (pda+1)*4.
constexpr uint32_t data_offset(uint32_t hlen, bool hdgst, uint8_t pda) {
  uint32_t a = (uint32_t(pda) + 1) * 4, h = hlen + (hdgst ? kDigestLen : 0);
  return (h + a - 1) / a * a;
}

// ---------------------------------------------------------------- receiving side
enum class Role : uint8_t {
  kTarget,  // receives ICReq, CapsuleCmd, H2CData, H2CTermReq
  kHost,    // receives ICResp, CapsuleResp, C2HData, R2T, C2HTermReq
};

// Negotiated and configured limits. Set before feeding; a handler may change
// them from its callbacks (e.g. enable digests after the IC exchange): the
// next PDU is parsed with the new values.
struct RecvParams {
  bool hdgst = false;             // header digests expected
  bool ddgst = false;             // data digests expected
  uint8_t pda = 0;                // alignment we asked of the peer (CPDA for a target)
  uint32_t max_incapsule = 8192;  // target: in-capsule data bytes per CapsuleCmd
  uint32_t max_data = 131072;     // H2CData (MAXH2CDATA) or C2HData data bytes per PDU
};

// A received, validated PDU header.
struct PduView {
  const uint8_t* hdr = nullptr;  // hlen bytes, 8-byte aligned; valid during the callbacks
  PduType type{};
  uint8_t flags = 0;
  uint32_t hlen = 0;
  uint32_t plen = 0;
  uint32_t data_len = 0;  // data bytes carried (0: none)

  template <class T>
  const T& as() const {
    return *reinterpret_cast<const T*>(hdr);
  }
};

// A fatal protocol error: answered with a TermReq carrying fes/fei, then the
// connection is closed (§3.6.2.4).
struct PduError {
  Fes fes = Fes::kNone;
  uint32_t fei = 0;
  const char* reason = "";
  explicit operator bool() const { return fes != Fes::kNone; }
};

// Where a PDU's data goes. iov == nullptr: the data is read and discarded
// (digest still checked). The iovecs must cover data_len bytes and stay
// valid until on_pdu_done.
struct Placement {
  const struct iovec* iov = nullptr;
  int iovcnt = 0;
};

class PduHandler {
 public:
  virtual ~PduHandler() = default;
  // A complete header passed the checks of its type (and its digest). For a
  // PDU with data, set *place. Returning a PduError stops the receiver.
  virtual PduError on_pdu_header(const PduView& pdu, Placement* place) = 0;
  // The PDU's data (if any) was placed. ddgst_ok is false on a data digest
  // mismatch (the handler decides: Transient Transport Error or TermReq).
  // pause = true makes feed() return right after this PDU.
  virtual PduError on_pdu_done(const PduView& pdu, bool ddgst_ok, bool* pause) = 0;
};

// Incremental receiver: feed() bytes as they arrive (any split); it assembles
// headers in an internal buffer, checks them, calls the handler, copies data
// into the handler's placement and checks digests. After a fatal error it
// stays failed (error(), error_header() give the TermReq contents).
class PduReceiver {
 public:
  explicit PduReceiver(Role role) : role_(role) {}

  RecvParams& params() { return params_; }
  const RecvParams& params() const { return params_; }
  Role role() const { return role_; }

  // Consumes bytes; returns how many (less than len after an error or a
  // pause). Never reads beyond data[len).
  size_t feed(const uint8_t* data, size_t len, PduHandler& h);

  bool failed() const { return bool(err_); }
  const PduError& error() const { return err_; }
  // The header bytes received for the PDU that failed (for the TermReq data).
  const uint8_t* error_header() const { return hdr_; }
  uint32_t error_header_len() const;

  // True between PDUs (nothing of a PDU buffered).
  bool at_pdu_boundary() const { return state_ == State::kCh && got_ == 0; }
  // Zero copy: while a PDU's data is being received, the still missing part
  // of its placement (up to max iovecs); the caller may read() into it and
  // report with data_received(). Returns 0 outside the data phase or when
  // the data is discarded.
  int data_iov(struct iovec* out, int max) const;
  size_t data_remaining() const { return state_ == State::kData ? data_left_ : 0; }
  // n bytes were written into data_iov() directly (n <= data_remaining()).
  // Completes the PDU (on_pdu_done) when the data is whole and no data
  // digest follows. Returns false when the receiver failed.
  bool data_received(size_t n, PduHandler& h);

  // Back to the initial state (a new connection).
  void reset();

  // Counters.
  uint64_t pdus() const { return pdus_; }

 private:
  enum class State : uint8_t { kCh, kHdr, kPad, kData, kDdgst, kFailed };

  PduError check_ch();
  PduError check_header();
  void fail(PduError e);
  bool finish_header(PduHandler& h);
  bool finish_pdu(PduHandler& h, bool* pause);
  void consume_data(const uint8_t* p, size_t n);
  void advance_data_cursor(size_t n);

  const Role role_;
  RecvParams params_;
  State state_ = State::kCh;
  bool ic_done_ = false;
  alignas(8) uint8_t hdr_[kMaxHlen + kDigestLen]{};
  uint32_t got_ = 0;        // bytes of the current stage received
  uint32_t hdr_have_ = 0;   // header bytes of the current PDU in hdr_
  uint32_t hdr_total_ = 0;  // hlen + header digest
  uint32_t pad_left_ = 0;
  uint32_t data_left_ = 0;
  uint32_t ddgst_ = kCrc32cInit;
  uint8_t dd_buf_[kDigestLen]{};
  bool has_hd_ = false, has_dd_ = false;
  PduView view_{};
  Placement place_{};
  int iov_idx_ = 0;
  size_t iov_off_ = 0;
  PduError err_{};
  uint64_t pdus_ = 0;
};

}  // namespace vdpu::nvmf_tcp
