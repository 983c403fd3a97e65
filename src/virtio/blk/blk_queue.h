// One virtio-blk request queue: pops chains from its Virtqueue, turns them
// into bdev I/Os on the reactor's Channel, writes status bytes and used
// entries, interrupts once per batch. Reactor-agnostic: BlkDevice drives it
// from a reactor poller; tests and benchmarks can drive poll() directly.
//
// Threads: constructor and start() on the control plane, before the queue
// is handed to its reactor; everything else on that reactor only, except
// counters() (relaxed atomics, any thread).
//
// Guest errors: a chain the walker refuses breaks the queue (Virtqueue);
// a well-formed chain with a bad request is answered with the status the
// spec names (§5.2.6): IOERR for bad header/length/alignment/range, writes to
// a read-only device and backend errors; UNSUPP for unknown types and
// reserved/unmap flags on discard. A chain without any writable byte cannot
// carry a status: it is returned with used length 0 (rate-limited warning).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "bdev/bdev.h"
#include "runtime/reactor.h"
#include "virtio/blk/blk_spec.h"
#include "virtio/virtqueue.h"

namespace vdpu::virtio::blk {

struct BlkQueueParams {
  uint16_t qid = 0;
  uint32_t seg_max = 1;          // data segments per request (config seg_max)
  bool read_only = false;        // VIRTIO_BLK_F_RO offered
  bool force_in_order = false;   // complete in pop order
  std::array<char, kIdBytes> serial{};  // GET_ID answer, NUL padded
  uint32_t max_discard_sectors = 0;       // config limits the device enforces
  uint32_t max_write_zeroes_sectors = 0;
};

// What a queue submits to. Set on the queue's reactor while nothing is in
// flight. channel == nullptr: no bdev (detached, hot-removed, "none"): every
// I/O request completes with IOERR.
struct Backend {
  bdev::Channel* channel = nullptr;
  uint32_t block_size = 512;
  uint64_t num_blocks = 0;
  bool flush = false;         // bdev supports flush (else FLUSH completes OK at once)
  bool unmap = false;         // bdev supports unmap (else DISCARD completes OK, a no-op)
  bool write_zeroes = false;  // bdev supports write zeroes (else UNSUPP)
};

// Per-queue counters: single writer (the queue's reactor), read by RPCs.
struct alignas(64) BlkQueueCounters {
  std::atomic<uint64_t> read{0}, write{0}, flush{0}, discard{0}, write_zeroes{0};
  std::atomic<uint64_t> get_id{0}, unsupported{0}, errors{0};
};

class BlkQueue {
 public:
  // Requests popped per poll() before the used index is published.
  static constexpr uint32_t kBatch = 32;

  explicit BlkQueue(const BlkQueueParams& p);
  ~BlkQueue();
  BlkQueue(const BlkQueue&) = delete;
  BlkQueue& operator=(const BlkQueue&) = delete;

  // Control plane: sizes the request pool from cfg.size and starts the
  // virtqueue (inflight recovery included). Errors from Virtqueue::start.
  Status start(const QueueConfig& cfg);

  // --- owning reactor ---
  void set_backend(const Backend& b) { be_ = b; }
  const Backend& backend() const { return be_; }
  // Pops and submits up to kBatch requests (when running), publishes used
  // entries of everything completed since the last call, interrupts if the
  // driver wants it. kBusy when it did anything.
  rt::Poll poll() noexcept;
  // Reactor prepare-sleep hook: arms kicks; false if work is pending or
  // requests are in flight (their completions need polling).
  bool prepare_sleep() noexcept;
  // Suspend (false) stops popping; requests in flight still complete.
  void set_running(bool on) { running_ = on; }
  bool running() const { return running_; }
  // Requests handed to the bdev and not yet completed.
  uint32_t inflight() const { return inflight_; }
  // Chains popped and not yet returned (inflight() plus none: requests are
  // either completed at once or in flight).
  uint32_t outstanding() const { return vq_.outstanding(); }
  Virtqueue& vq() { return vq_; }
  const Virtqueue& vq() const { return vq_; }
  uint16_t qid() const { return p_.qid; }

  // Any thread.
  const BlkQueueCounters& counters() const { return counters_; }

 private:
  enum Kind : uint8_t { kRead, kWrite, kFlush, kDiscard, kWriteZeroes, kGetId, kOther };
  struct Req {
    bdev::Io io;
    BlkQueue* q = nullptr;
    uint8_t* status = nullptr;
    uint32_t data_in = 0;  // bytes written into the driver's buffers on success
    Kind kind = kOther;
    bool submitted = false;
    Chain chain;
  };

  void handle(Req* r) noexcept;
  void rw(Req* r, bool write, uint64_t sector, iovec* iov, uint32_t iovcnt, uint64_t len) noexcept;
  void dwz(Req* r, bool write_zeroes, iovec* iov, uint32_t iovcnt, uint64_t len) noexcept;
  void submit(Req* r) noexcept;
  void finish(Req* r, uint8_t status) noexcept;
  static void on_io_done(bdev::Io& io, bdev::IoStatus st);

  BlkQueueParams p_;
  Virtqueue vq_;
  Backend be_;
  bool running_ = true;
  uint32_t inflight_ = 0;
  uint32_t nfree_ = 0;
  uint64_t finished_ = 0;       // completions since start (busy detection)
  uint64_t finished_seen_ = 0;
  std::vector<Req*> free_;
  std::vector<Req> reqs_;
  std::vector<iovec> iovs_;
  BlkQueueCounters counters_;
};

}  // namespace vdpu::virtio::blk
