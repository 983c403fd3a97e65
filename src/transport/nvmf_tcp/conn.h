// One NVMe/TCP connection (one queue pair) on its data reactor: receives
// PDUs (PduReceiver, reads into a per-connection buffer or straight into the
// request's data buffer), runs I/O commands on bdev channels of this reactor,
// forwards admin and fabrics commands to the controller on the main reactor,
// and sends PDUs in batches (one sendmsg per poll with every queued PDU).
//
// No allocation per command: requests and their data buffers are allocated
// at Connect (queue depth x max(max_io_size, in-capsule size), lazily backed
// anonymous memory). Teardown: stop receiving -> wait for bdev I/O in flight
// -> destroy channels -> close the socket -> tell the main reactor.
#pragma once

#include <sys/uio.h>

#include <memory>
#include <string>
#include <vector>

#include "transport/nvmf_tcp/internal.h"

namespace vdpu::nvmf_tcp {

struct TcpReq;

struct TxItem {
  iovec v[4];
  uint8_t n = 0;
  bool final = false;     // the request is released once sent
  TcpReq* req = nullptr;  // nullptr: the connection's own PDU (ICResp, TermReq)
  TxItem* next = nullptr;
};

struct TcpReq {
  enum class St : uint8_t { kFree, kH2C, kExec, kTx };
  nvme::SqEntry cmd{};
  St st = St::kFree;
  uint16_t idx = 0;      // TTAG
  uint32_t incap = 0;    // in-capsule data bytes received
  uint32_t xfer = 0;     // data bytes of the command
  uint32_t recvd = 0;    // host -> controller bytes received
  bool to_host = false;  // data direction controller -> host
  uint16_t status = 0;
  uint32_t cdw0 = 0;
  uint8_t* buf = nullptr;
  iovec iov{};
  const NsInfo* ns = nullptr;
  bdev::Channel* ch = nullptr;
  nvme::NvmIo nio{};
  uint32_t step = 0, nsteps = 0;  // Dataset Management ranges
  bool in_submit = false, step_done = false;
  bdev::Io io{};
  Connection* conn = nullptr;
  TcpReq* next_free = nullptr;
  TxItem tx;
  alignas(8) uint8_t hdr[kMaxTxHeader];
  alignas(8) uint8_t resp[32];
  uint8_t ddgst[4];
};

class Connection final : public PduHandler {
 public:
  Connection(Target::Impl& t, uint32_t reactor, int fd, std::string listen_key);
  ~Connection() override;

  // ---- owning reactor ----
  void start();
  // Begins teardown; a TermReq is sent first when fes != kNone.
  void close(const char* why, Fes fes = Fes::kNone, uint32_t fei = 0);
  bool poll() noexcept;

  ConnRef ref() const { return {reactor_, const_cast<Connection*>(this), alive_}; }
  const std::shared_ptr<bool>& alive() const { return alive_; }

  // PduHandler
  PduError on_pdu_header(const PduView& pdu, Placement* place) override;
  PduError on_pdu_done(const PduView& pdu, bool ddgst_ok, bool* pause) override;

 private:
  enum class St : uint8_t { kIcWait, kConnectWait, kConnecting, kReady, kClosing };

  PduError handle_icreq(const PduView& pdu);
  void exec(TcpReq& r);
  void exec_fabrics(TcpReq& r);
  void exec_connect(TcpReq& r);
  void connect_done(TcpReq& r, ConnectReply rep);
  void exec_admin(TcpReq& r);
  void exec_io(TcpReq& r);
  void submit_io(TcpReq& r);
  void dsm_run(TcpReq& r);
  static void io_done(bdev::Io& io, bdev::IoStatus st);
  // The bdev answered kNoMem: r.io is submitted again from the next poll.
  void retry_later(TcpReq& r);
  static void dsm_done(bdev::Io& io, bdev::IoStatus st);
  // Sets up the data transfer of r (SGL1 checks, R2T). Returns false after
  // completing r with an error.
  bool setup_data(TcpReq& r, bool to_host, uint32_t len);
  // Data for a host -> controller command is complete: run it.
  void data_ready(TcpReq& r);
  void complete(TcpReq& r, uint16_t status, uint32_t cdw0 = 0, uint32_t cdw1 = 0);
  void send_c2h(TcpReq& r);
  void send_r2t(TcpReq& r);
  void queue_tx(TxItem& t);
  bool flush_tx() noexcept;
  void release(TcpReq& r);
  TcpReq* alloc();
  bool alloc_pool(uint32_t entries);
  bool recv_some() noexcept;
  void finish_close();
  bool admin() const { return qid_ == 0; }

  Target::Impl& t_;
  const uint32_t reactor_;
  int fd_;
  std::string listen_key_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  St st_ = St::kIcWait;
  PduReceiver rx_{Role::kTarget};
  TxDigests dg_{};
  uint8_t hpda_ = 0;
  uint64_t poller_ = 0;
  bool wake_ = false;  // fd_ registered as the reactor's wake fd (event mode)
  uint16_t qid_ = 0;
  uint32_t qsize_ = 0;
  uint16_t sqhd_ = 0;
  std::shared_ptr<FabricsCtrl> ctrl_;
  std::vector<NsInfo> ns_;
  std::vector<std::unique_ptr<bdev::Channel>> chans_;  // parallel to ns_

  // receive buffer
  std::unique_ptr<uint8_t[]> rbuf_;
  size_t rcap_ = 0, rpos_ = 0, rlen_ = 0;
  bool paused_ = false;
  TcpReq* cur_ = nullptr;  // request whose capsule/H2C data is being received

  // requests
  std::vector<TcpReq> reqs_;
  TcpReq* free_ = nullptr;
  uint8_t* bufs_ = nullptr;
  size_t bufs_len_ = 0;
  uint32_t buf_size_ = 0;
  std::unique_ptr<uint8_t[]> connect_buf_;  // the Connect command's data
  uint32_t bdev_inflight_ = 0;
  TcpReq* retry_head_ = nullptr;  // kNoMem answers waiting for resubmission
  TcpReq* retry_tail_ = nullptr;

  // send queue
  TxItem* tx_head_ = nullptr;
  TxItem* tx_tail_ = nullptr;
  size_t tx_off_ = 0;  // bytes of tx_head_ already sent
  TxItem ctl_tx_;      // ICResp / TermReq
  alignas(8) uint8_t ctl_buf_[kMaxTermReqLen > kIcLen ? kMaxTermReqLen : kIcLen];
  bool ctl_queued_ = false;
  bool close_after_tx_ = false;
  uint64_t close_deadline_ns_ = 0;
};

}  // namespace vdpu::nvmf_tcp
