// Blocking NVMe/TCP connection setup and admin command execution, used by a
// controller's control thread (never by a reactor): TCP connect with a
// timeout, the ICReq/ICResp exchange, and synchronous capsule commands with
// in-capsule data out and C2HData in (Connect, Property Get/Set, Identify,
// Set Features, Keep Alive). An I/O queue is set up here (ICReq + Connect)
// and its socket then handed to an IoQpair on a reactor.
//
// Threads: one SyncConn belongs to one thread at a time. Errors: kIo
// (unreachable, reset), kTimeout, kProtocol (bad PDU, TermReq from the
// target), kPermission / kState / kInvalidArgument (Connect refused, with
// the NVMe status in the message).
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"
#include "nvme/spec.h"
#include "transport/nvmf_tcp/pdu.h"

namespace vdpu::bdev::nvme {

struct Endpoint {
  std::string traddr, trsvcid, adrfam;  // adrfam "ipv4" / "ipv6"
  std::string hostaddr, hostsvcid;      // optional source address / port
};

// What the ICReq/ICResp exchange settled (§3.6.2.2-3).
struct TcpParams {
  bool hdgst = false, ddgst = false;
  uint8_t cpda = 0;            // controller's PDU data alignment for our data PDUs
  uint32_t maxh2cdata = 4096;  // bytes per H2CData PDU
};

// A completed admin command: the CQE (status decoded) and nothing else.
struct Completion {
  vdpu::nvme::CqEntry cqe{};
  uint16_t status() const { return uint16_t((cqe.status >> 1) & 0x7ff); }  // SCT<<8 | SC
  bool ok() const { return status() == 0; }
};

// Text for an NVMe status ("SCT 1 SC 0x84 (Connect Invalid Host)").
std::string status_text(uint16_t sct_sc);

class SyncConn {
 public:
  SyncConn() = default;
  ~SyncConn();
  SyncConn(const SyncConn&) = delete;
  SyncConn& operator=(const SyncConn&) = delete;

  // TCP connect (timeout_ms), then ICReq/ICResp asking for the digests.
  Status open(const Endpoint& ep, bool hdgst, bool ddgst, uint32_t timeout_ms);
  // Runs one command: data_out (<= 8 KiB, sent in the capsule) or data_in
  // (received through C2HData). The SQE's cid and SGL are filled in here.
  Result<Completion> exec(vdpu::nvme::SqEntry sqe, const void* data_out, uint32_t out_len,
                          void* data_in, uint32_t in_len, uint32_t timeout_ms);
  // Fabrics Connect for queue qid; returns the CNTLID. Refusals become errors
  // naming the status (and for Invalid Parameters the offending field).
  Result<uint16_t> connect(uint16_t qid, uint16_t sqsize, uint32_t kato_ms, uint16_t cntlid,
                           const std::string& subnqn, const std::string& hostnqn,
                           const uint8_t hostid[16], uint32_t timeout_ms);
  Result<uint64_t> prop_get(uint32_t ofst, bool eight, uint32_t timeout_ms);
  Status prop_set(uint32_t ofst, uint64_t value, bool eight, uint32_t timeout_ms);

  // Gives up the socket (an I/O queue's, to its IoQpair). -1 when closed.
  int release();
  void close();
  int fd() const { return fd_; }
  const TcpParams& params() const { return tp_; }

 private:
  Status send_all(const void* p, size_t n, uint64_t deadline_ns);
  Status send_iov(struct iovec* iov, int cnt, uint64_t deadline_ns);
  // Receives until the receiver reports the PDU this exchange waits for.
  Status recv_until(uint64_t deadline_ns, bool* done_flag, nvmf_tcp::PduHandler& h);

  int fd_ = -1;
  uint16_t next_cid_ = 1;
  TcpParams tp_;
  nvmf_tcp::PduReceiver rx_{nvmf_tcp::Role::kHost};
};

}  // namespace vdpu::bdev::nvme
