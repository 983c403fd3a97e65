// The data queues of a virtio-net device (virtio 1.2 §5.1.6): a transmit
// queue pops guest packets and hands them to the backend in bursts; a receive
// queue keeps a stash of popped receive buffers, lets the backend fill them
// (mergeable buffers: one frame may span several), filters, sets
// num_buffers and returns them. Reactor-agnostic: NetDevice drives poll()
// from a reactor poller; tests and benchmarks may call poll() directly.
//
// Threads: constructor and start() on the control plane before the queue is
// handed to its reactor; everything else on that reactor, except counters()
// (relaxed atomics, any thread).
//
// Guest errors: a chain the walker refuses breaks the queue (Virtqueue; the
// driver must reset the device) and is counted once (exceed_max_chain for
// over-long chains, invalid_buffer for addresses outside guest memory,
// bad_desc_errors otherwise). A well-formed chain with a bad packet (header
// cut short, writable buffers on TX, read-only buffers on RX, oversize frame,
// unsupported GSO) is returned with used length 0, counted in
// bad_desc_errors, and the queue keeps running. No allocation, no lock on
// the polled path; at most kBatch packets per poll.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "runtime/reactor.h"
#include "virtio/net/net_backend.h"
#include "virtio/net/net_ctrl.h"
#include "virtio/net/net_filter.h"
#include "virtio/net/net_rss.h"
#include "virtio/virtqueue.h"

namespace vdpu::virtio::net {

// virtnet spec §4.5 RX size buckets: <=64, 65-127, 128-255, 256-511,
// 512-1023, 1024-1522, 1523-2047, 2048-4095, 4096-8191, 8192-9022.
constexpr uint32_t kRxHistBuckets = 10;
uint32_t rx_hist_bucket(uint32_t frame_len) noexcept;  // larger frames count in the last bucket

// Per-queue counters (virtnet spec §4.5 names). Single writer: the queue's
// reactor. Cumulative over restarts of the queue (NetDevice keeps them).
struct alignas(64) NetQueueCounters {
  std::atomic<uint64_t> received_desc{0};   // chains popped from the avail ring
  std::atomic<uint64_t> completed_desc{0};  // chains returned to the used ring
  std::atomic<uint64_t> bad_desc_errors{0};
  std::atomic<uint64_t> error_cqes{0};      // backend refused / failed a packet
  std::atomic<uint64_t> exceed_max_chain{0};
  std::atomic<uint64_t> invalid_buffer{0};
  std::atomic<uint64_t> batch_number{0};    // polls that moved packets
  std::atomic<uint64_t> max_post_desc_number{0};  // largest batch
  std::atomic<uint64_t> handler_schd_number{0};   // polls
  std::atomic<uint64_t> total_bytes{0};     // frame bytes (without virtio header)
  std::atomic<uint64_t> packets{0};
  std::atomic<uint64_t> dropped{0};         // TX: backend full; RX: frame lost (no fit / filtered)
  std::atomic<uint64_t> filtered{0};        // RX: refused by the MAC/VLAN filter
  std::atomic<uint64_t> hist[kRxHistBuckets] = {};
  std::atomic<uint64_t> rss_steered{0};     // RX: frames handed to another queue by RSS
  std::atomic<uint64_t> rss_dropped{0};     // RX: ... lost (that queue's ring full)
  std::atomic<uint64_t> notifications{0};   // used-buffer notifications signalled
};

struct NetQueueParams {
  uint16_t qid = 0;
  uint16_t pair = 0;
  uint32_t hdr_len = kNetHdrLen;
  bool mrg_rxbuf = false;   // RX: VIRTIO_NET_F_MRG_RXBUF negotiated
  uint32_t max_frame = 1518;  // largest frame without the virtio header (MTU + L2, or GSO size)
  uint64_t host_gso = 0;    // TX: VIRTIO_NET_F_HOST_TSO4/6/ECN/UFO negotiated
  bool count_sizes = false;  // RX: keep the size histogram (virtnet -pkt_cnt)
  CoalParams coal;           // notification coalescing (NOTF_COAL) in force
  bool dim = false;          // adaptive coalescing when coal is not active (virtnet -dim)
};

// DIM (virtnet -dim): the coalescing levels the adaptive moderation moves
// between; level 0 notifies at once. A poll that moves a full batch steps
// up, one that moves some packets but less than a quarter of a batch steps
// down (polls that move none leave the level alone; the deadline and the
// flush before sleeping bound the delay when traffic stops).
constexpr uint32_t kDimLevels = 4;
constexpr CoalParams kDimLevel[kDimLevels] = {{0, 0}, {64, 50}, {128, 100}, {256, 200}};

class NetQueueBase {
 public:
  static constexpr uint32_t kBatch = 32;
  static constexpr uint32_t kMaxIov = 64;  // iovecs per chain (more: kTooManySegments)

  explicit NetQueueBase(const NetQueueParams& p, NetBackend* be, NetQueueCounters* c)
      : p_(p), be_(be), c_(c), coal_on_(p.coal.active() || p.dim) {}
  virtual ~NetQueueBase() = default;
  NetQueueBase(const NetQueueBase&) = delete;
  NetQueueBase& operator=(const NetQueueBase&) = delete;

  // Control plane: starts the virtqueue. Errors from Virtqueue::start.
  virtual Status start(const QueueConfig& cfg);
  // Owning reactor.
  virtual rt::Poll poll() noexcept = 0;
  // Event mode: arms notifications; false when work is pending.
  virtual bool prepare_sleep() noexcept;
  // Returns popped-but-unused chains (RX stash) with used length 0 so that
  // the queue can stop with nothing outstanding.
  virtual void release() noexcept { flush_notifications(); }
  void set_running(bool on) { running_ = on; }
  bool running() const { return running_; }
  void set_count_sizes(bool on) { p_.count_sizes = on; }
  Virtqueue& vq() { return vq_; }
  const Virtqueue& vq() const { return vq_; }
  uint16_t qid() const { return p_.qid; }
  uint16_t pair() const { return p_.pair; }
  bool is_rx() const { return (p_.qid & 1) == 0; }
  const NetQueueCounters& counters() const { return *c_; }
  // Owning reactor: coalescing parameters (pending notifications go out first).
  void set_coalescing(const CoalParams& p, bool dim) noexcept;
  // Tests: the clock of coalescing deadlines (default rt::now_ns).
  void set_clock(uint64_t (*now)()) { now_ = now; }
  uint32_t dim_level() const { return level_; }
  // Owning reactor: signals a coalesced notification now, if one is pending.
  void flush_notifications() noexcept {
    if (pending_ || deadline_) fire();
  }

 protected:
  static void bump(std::atomic<uint64_t>& a, uint64_t n = 1) {
    a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // A pop failed with kError: count the reason once.
  void count_broken() noexcept;
  // Publishes the used entries of a poll that completed n packets and
  // notifies the driver, now or (coalescing) later. One branch when off.
  void publish(uint32_t n) noexcept {
    if (!coal_on_) {
      if (vq_.flush_and_notify()) bump(c_->notifications);
      return;
    }
    publish_coalesced(n);
  }
  void publish_coalesced(uint32_t n) noexcept;
  // Start of a poll: signals an expired coalescing deadline.
  void coal_tick() noexcept {
    if (deadline_ && now_() >= deadline_) fire();
  }
  void fire() noexcept;

  NetQueueParams p_;
  NetBackend* be_;
  NetQueueCounters* c_;
  Virtqueue vq_;
  bool running_ = true;
  bool broken_counted_ = false;
  bool coal_on_ = false;
  uint32_t pending_ = 0;    // packets completed since the last notification
  uint64_t deadline_ = 0;   // ns; 0: none
  uint32_t level_ = 0;      // DIM level
  uint64_t (*now_)() = &rt::now_ns;
};

class NetTxQueue final : public NetQueueBase {
 public:
  NetTxQueue(const NetQueueParams& p, NetBackend* be, NetQueueCounters* c);
  rt::Poll poll() noexcept override;

 private:
  std::vector<Chain> chains_;
  std::vector<iovec> iovs_;
  std::array<TxPkt, kBatch> pkts_{};
};

class NetRxQueue final : public NetQueueBase {
 public:
  NetRxQueue(const NetQueueParams& p, NetBackend* be, NetQueueCounters* c);
  Status start(const QueueConfig& cfg) override;
  rt::Poll poll() noexcept override;
  bool prepare_sleep() noexcept override;
  void release() noexcept override;
  // Owning reactor: a new filter from the control plane.
  void set_filter(const RxFilter& f) { filter_ = f; }
  // Control plane before the queue runs: the reactor index it runs on
  // (its producer index in the RSS rings).
  void set_reactor(uint32_t r) { reactor_ = r; }
  // Owning reactor: RSS / hash-report configuration; fab != nullptr turns
  // steering on (frames the table sends elsewhere go through fab's rings).
  void set_rss(const RssConfig& c, RssFabric* fab) noexcept {
    rss_ = c;
    fab_ = c.steer ? fab : nullptr;
  }
  const RssConfig& rss() const { return rss_; }
  // The RSS wake fd this queue's reactor watches (-1: none yet).
  void set_rss_wake_fd(int fd) { rss_wake_fd_ = fd; }
  int rss_wake_fd() const { return rss_wake_fd_; }
  const RxFilter& filter() const { return filter_; }
  // Popped buffers waiting for a frame.
  uint32_t stashed() const { return st_n_; }

 private:
  // Pops buffers until the stash is full or the ring is empty; counts and
  // returns malformed ones. Returns true if it popped anything.
  bool refill() noexcept;
  uint16_t st_pop_front() noexcept;
  void st_push_front(uint16_t e) noexcept;
  void st_push_back(uint16_t e) noexcept;
  // Fills slots_ from the stash; returns how many.
  uint32_t build_slots() noexcept;
  // h: the frame's hash when known (RSS), else computed here if reported.
  void deliver(uint32_t s, uint32_t len, const FrameHash* h) noexcept;
  void unuse(uint32_t s) noexcept;
  void write_hash(const RxSlot& sl, uint32_t frame, const FrameHash* h) noexcept;
  rt::Poll poll_rss(bool busy) noexcept;

  RxFilter filter_;
  uint32_t stash_cap_ = 0;  // power of two
  std::vector<Chain> chains_;   // storage, index = entry
  std::vector<iovec> iovs_;     // kMaxIov per entry
  std::vector<uint16_t> free_;  // free storage entries
  std::vector<uint16_t> stash_; // ring of entries in avail order
  uint32_t st_head_ = 0, st_n_ = 0;
  // Per burst: slots and the entries each one spans.
  std::array<RxSlot, kBatch> slots_{};
  std::array<uint16_t, kBatch> slot_first_{};  // index into burst_entries_
  std::array<uint16_t, kBatch> slot_count_{};
  std::vector<uint16_t> burst_entries_;
  std::vector<iovec> slot_iov_;  // scratch for slots spanning several buffers
  bool waiting_for_buffers_ = false;
  RssConfig rss_;
  RssFabric* fab_ = nullptr;
  uint32_t reactor_ = 0;
  int rss_wake_fd_ = -1;
};

}  // namespace vdpu::virtio::net
