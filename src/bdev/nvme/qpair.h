// One NVMe/TCP I/O queue: a TCP connection polled on one reactor, with a
// preallocated request per command slot (CID = slot index). Commands and
// in-capsule data go out in batches (one sendmsg per poll for every PDU
// queued since the last one); C2HData is received straight into the bdev's
// iovecs; R2T is answered with H2CData PDUs of at most MAXH2CDATA bytes.
// Large requests are split into several commands (MDTS, 64 Ki blocks for
// Write Zeroes, 256 ranges per Dataset Management).
//
// The queue outlives its connections: on a transport error it closes the
// socket, puts its in-flight requests back at the head of its wait list and
// tells the controller, which reconnects and hands over a new socket
// (adopt). I/O waits meanwhile, or fails at once after fail_fast().
//
// Threads: everything runs on the owning reactor, except the constructor and
// destructor (control plane, while the queue is not polled).
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bdev/bdev.h"
#include "bdev/nvme/conn.h"
#include "runtime/reactor.h"
#include "transport/nvmf_tcp/pdu.h"

namespace vdpu::bdev::nvme {

class NvmeChannel;

// Per-namespace facts a command needs (copied into the Io's module_ctx).
struct NsInfo {
  uint32_t nsid = 0;
  uint32_t lba_shift = 9;
};

// Limits of the controller, fixed for the queue's life.
struct QueueLimits {
  uint32_t depth = 128;          // commands in flight
  uint32_t icd_max = 0;          // in-capsule data bytes (IOCCSZ*16 - 64)
  uint32_t max_xfer = 1u << 20;  // bytes per read/write command (MDTS)
  bool write_zeroes = false;
  uint64_t timeout_ns = 0;     // per command (bdev_nvme_set_options timeout_us); 0: none
  bool timeout_reset = false;  // action_on_timeout reset/abort: reset the controller
  int32_t retry_count = 3;     // retries of a command failed with a retryable status (-1: no limit)
};

struct QpairStats {
  std::atomic<uint64_t> submitted{0}, completed{0}, errors{0}, retried{0}, reconnects{0};
};

class IoQpair final : public nvmf_tcp::PduHandler {
 public:
  // on_fail runs on the reactor when the connection breaks (the controller
  // then reconnects). Control plane.
  IoQpair(rt::Reactor* r, QueueLimits lim, std::function<void(IoQpair&)> on_fail);
  ~IoQpair() override;

  rt::Reactor* reactor() const { return reactor_; }
  uint16_t qid() const { return qid_; }
  void set_qid(uint16_t q) { qid_ = q; }
  // The controller's name, for log lines.
  void set_name(std::string n) { name_ = std::move(n); }
  const QueueLimits& limits() const { return lim_; }

  // ---- owning reactor ----
  // Starts polling (registers the poller). Call once.
  void start();
  // A connected socket (ICResp and Connect done); requeued I/O restarts.
  void adopt(int fd, const TcpParams& tp);
  // Closes the connection (if any); in-flight commands wait for the next one.
  void disconnect();
  // While set, waiting and new I/O fail with kFailed (fast_io_fail_timeout).
  void fail_fast(bool on);
  // Fails everything with st and stops polling; the queue is dead after it.
  void shutdown(IoStatus st);
  void submit(Io& io, NvmeChannel& ch, const NsInfo& ns) noexcept;
  bool connected() const { return fd_ >= 0; }
  uint32_t inflight() const { return inflight_; }
  const QpairStats& stats() const { return stats_; }

  // For tests: one poll iteration.
  rt::Poll poll() noexcept;
  // Commands older than limits().timeout_ns: logged, and with timeout_reset
  // the connection is dropped so that the controller resets and they are
  // sent again. Runs from a timed poller.
  rt::Poll check_timeouts() noexcept;

 private:
  struct Req;
  enum class Send : uint8_t { kNone, kCapsule, kH2C };

  // PduHandler (receiving side).
  nvmf_tcp::PduError on_pdu_header(const nvmf_tcp::PduView& pdu,
                                   nvmf_tcp::Placement* place) override;
  nvmf_tcp::PduError on_pdu_done(const nvmf_tcp::PduView& pdu, bool ddgst_ok, bool* pause) override;

  bool prepare_sleep() noexcept;
  bool start_io(Io& io) noexcept;  // false: no free request
  void build_cmd(Req& r) noexcept;
  void queue_send(Req& r) noexcept;
  bool flush() noexcept;
  void pdu_sent(Req& r) noexcept;
  bool receive() noexcept;
  void finish_cmd(Req& r, uint16_t status) noexcept;
  void complete(Io& io, IoStatus st) noexcept;
  void release(Req& r) noexcept;
  void conn_error(const char* why) noexcept;
  void drain_waiting() noexcept;
  void push_wait_front(Io& io) noexcept;
  void push_wait_back(Io& io) noexcept;
  Io* pop_wait() noexcept;

  rt::Reactor* reactor_;
  QueueLimits lim_;
  std::function<void(IoQpair&)> on_fail_;
  uint16_t qid_ = 0;
  std::string name_;
  rt::PollerId poller_ = 0, timeout_poller_ = 0;
  int fd_ = -1;
  TcpParams tp_;
  bool fail_fast_ = false, dead_ = false, failing_ = false;

  std::vector<Req> reqs_;
  std::vector<uint16_t> free_;  // free CIDs (stack)
  uint32_t inflight_ = 0;
  Io* wait_head_ = nullptr;
  Io* wait_tail_ = nullptr;

  // Send FIFO of requests with a PDU to send, and bytes of its head sent.
  Req* send_head_ = nullptr;
  Req* send_tail_ = nullptr;
  size_t head_sent_ = 0;

  // Receiving.
  nvmf_tcp::PduReceiver rx_{nvmf_tcp::Role::kHost};
  std::vector<uint8_t> rbuf_;
  size_t rhead_ = 0, rtail_ = 0;
  std::vector<iovec> place_iov_;  // placement of the C2HData being received
  QpairStats stats_;
};

}  // namespace vdpu::bdev::nvme
