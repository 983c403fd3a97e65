// NVMe/TCP PDU parsing fuzz target: the byte stream a peer sends, fed to the
// PduReceiver in small and large pieces, as a target (host -> controller
// PDUs) or as a host. The first byte picks the role, the digests negotiated
// after the IC exchange, the alignment asked of the peer and the piece size.
// The handler places data in a fixed buffer and checks that the receiver
// never reports more data than the PDU announced.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "transport/nvmf_tcp/pdu.h"

namespace {

using namespace vdpu::nvmf_tcp;

struct Handler : PduHandler {
  uint8_t buf[1 << 17];
  iovec iov[2];
  RecvParams after_ic;
  PduReceiver* rx = nullptr;
  bool split = false;

  PduError on_pdu_header(const PduView& pdu, Placement* place) override {
    if (pdu.hlen > kMaxHlen || pdu.data_len > pdu.plen) abort();
    if (pdu.data_len && pdu.data_len <= sizeof(buf)) {
      if (split && pdu.data_len > 1) {
        iov[0] = {buf, 1};
        iov[1] = {buf + 1, pdu.data_len - 1};
        *place = {iov, 2};
      } else {
        iov[0] = {buf, pdu.data_len};
        *place = {iov, 1};
      }
    }
    // Exercise the typed views.
    switch (pdu.type) {
      case PduType::kH2CData:
      case PduType::kC2HData:
        if (pdu.as<H2CData>().datal != pdu.data_len) abort();
        break;
      default:
        break;
    }
    return {};
  }
  PduError on_pdu_done(const PduView& pdu, bool, bool*) override {
    if (pdu.type == PduType::kICReq || pdu.type == PduType::kICResp) rx->params() = after_ic;
    return {};
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t cfg = data[0];
  ++data;
  --size;
  PduReceiver rx((cfg & 1) ? Role::kHost : Role::kTarget);
  static Handler h;
  h.rx = &rx;
  h.split = cfg & 0x80;
  h.after_ic = {};
  h.after_ic.hdgst = cfg & 2;
  h.after_ic.ddgst = cfg & 4;
  h.after_ic.pda = (cfg & 8) ? 7 : 0;
  h.after_ic.max_incapsule = 8192;
  h.after_ic.max_data = 65536;
  const size_t chunk = (cfg & 0x70) ? size_t(1) << ((cfg >> 4) & 7) : size;
  size_t pos = 0;
  while (pos < size && !rx.failed()) {
    size_t n = chunk < size - pos ? chunk : size - pos;
    size_t k = rx.feed(data + pos, n, h);
    if (k > n) abort();
    pos += k;
    if (k < n && !rx.failed()) break;  // paused (never here)
  }
  if (rx.failed()) {
    uint8_t out[kMaxTermReqLen];
    uint32_t len = build_term_req(out, PduType::kC2HTermReq, rx.error().fes, rx.error().fei,
                                  rx.error_header(), rx.error_header_len());
    if (len > kMaxTermReqLen) abort();
  }
  return 0;
}
