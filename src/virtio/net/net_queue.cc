#include "virtio/net/net_queue.h"

#include <algorithm>
#include <cstring>

#include "base/log.h"

namespace vdpu::virtio::net {

uint32_t rx_hist_bucket(uint32_t n) noexcept {
  static constexpr uint32_t kUpper[kRxHistBuckets - 1] = {64, 127, 255, 511, 1023, 1522, 2047, 4095, 8191};
  for (uint32_t i = 0; i < kRxHistBuckets - 1; ++i)
    if (n <= kUpper[i]) return i;
  return kRxHistBuckets - 1;
}

// ------------------------------------------------------------------ base

Status NetQueueBase::start(const QueueConfig& cfg) { return vq_.start(cfg); }

bool NetQueueBase::prepare_sleep() noexcept {
  // Nothing completed stays un-notified while we sleep.
  if (pending_ || deadline_) fire();
  // Kicks wake the reactor (wake fd); armed notifications that find work
  // already there keep it awake.
  return !vq_.enable_notifications();
}

void NetQueueBase::set_coalescing(const CoalParams& p, bool dim) noexcept {
  flush_notifications();
  p_.coal = p;
  p_.dim = dim;
  coal_on_ = p.active() || dim;
  level_ = 0;
}

void NetQueueBase::fire() noexcept {
  pending_ = 0;
  deadline_ = 0;
  if (vq_.need_notify()) {
    vq_.notify();
    bump(c_->notifications);
  }
}

void NetQueueBase::publish_coalesced(uint32_t n) noexcept {
  vq_.flush();
  CoalParams p = p_.coal;
  if (p_.dim && !p.active()) {
    if (n >= kBatch) {
      if (level_ + 1 < kDimLevels) ++level_;
    } else if (n > 0 && n < kBatch / 4 && level_ > 0) {  // polls that only took buffers say nothing
      --level_;
    }
    p = kDimLevel[level_];
  }
  pending_ += n;
  if (!p.active() || pending_ >= p.max_packets) return fire();
  const uint64_t now = now_();
  if (!deadline_) deadline_ = now + uint64_t(p.usecs) * 1000;
  else if (now >= deadline_) fire();
}

void NetQueueBase::count_broken() noexcept {
  if (broken_counted_) return;
  broken_counted_ = true;
  const ChainError e = vq_.error();
  switch (e) {
    case ChainError::kTooLong:
    case ChainError::kTooManySegments:
      bump(c_->exceed_max_chain);
      break;
    case ChainError::kBadAddress:
    case ChainError::kIndirectOutOfBounds:
      bump(c_->invalid_buffer);
      break;
    default:
      bump(c_->bad_desc_errors);
      break;
  }
  VDPU_WARN_RL("virtio-net q{}: malformed descriptor chain ({}); queue stopped until device reset", p_.qid,
               chain_error_name(e));
}

// ------------------------------------------------------------------ TX

NetTxQueue::NetTxQueue(const NetQueueParams& p, NetBackend* be, NetQueueCounters* c)
    : NetQueueBase(p, be, c), chains_(kBatch), iovs_(size_t(kBatch) * kMaxIov) {
  for (uint32_t i = 0; i < kBatch; ++i) {
    chains_[i].iov = &iovs_[size_t(i) * kMaxIov];
    chains_[i].max_iov = kMaxIov;
  }
}

rt::Poll NetTxQueue::poll() noexcept {
  bump(c_->handler_schd_number);
  if (deadline_) coal_tick();
  if (!running_) return rt::Poll::kIdle;
  if (vq_.notifications_enabled()) vq_.disable_notifications();
  uint32_t n = 0;
  while (n < kBatch) {
    Chain& ch = chains_[n];
    ch.iov = &iovs_[size_t(n) * kMaxIov];
    ch.max_iov = kMaxIov;
    PopStatus st = vq_.pop(ch);
    if (st == PopStatus::kEmpty) break;
    if (st == PopStatus::kError) {
      count_broken();
      break;
    }
    ++n;
  }
  if (n == 0) return rt::Poll::kIdle;
  bump(c_->received_desc, n);

  uint32_t m = 0;
  for (uint32_t i = 0; i < n; ++i) {
    Chain& ch = chains_[i];
    // §5.1.6.2: a transmit buffer is [header][packet], device-readable only.
    if (ch.n_in != 0 || ch.out_len < uint64_t(p_.hdr_len) + kEthHdrLen) {
      bump(c_->bad_desc_errors);
      VDPU_WARN_RL("virtio-net q{}: TX chain {} with {} readable / {} writable bytes refused", p_.qid, ch.id,
                   ch.out_len, ch.in_len);
      continue;
    }
    TxPkt& pk = pkts_[m];
    std::memset(&pk.hdr, 0, sizeof(pk.hdr));
    // With HASH_REPORT the header is virtio_net_hdr_v1_hash: the hash
    // fields mean nothing on transmit.
    iov_to_buf(ch.iov, ch.n_out, 0, &pk.hdr, std::min<uint32_t>(p_.hdr_len, sizeof(pk.hdr)));
    pk.hdr.num_buffers = 0;
    // Strip the header: it may end inside or across descriptors (§5.1.6.6:
    // no assumption on the layout).
    uint32_t k = 0;
    uint64_t off = p_.hdr_len;
    while (k < ch.n_out && off >= ch.iov[k].iov_len) off -= ch.iov[k++].iov_len;
    ch.iov[k].iov_base = static_cast<uint8_t*>(ch.iov[k].iov_base) + off;
    ch.iov[k].iov_len -= off;
    pk.iov = ch.iov + k;
    pk.iovcnt = ch.n_out - k;
    const uint64_t len = ch.out_len - p_.hdr_len;
    // §5.1.6.2.1: the driver MUST NOT set a gso_type it did not negotiate
    // (HOST_TSO4/TSO6/UFO, ECN with HOST_ECN).
    const uint8_t gso = pk.hdr.gso_type & uint8_t(~VIRTIO_NET_HDR_GSO_ECN);
    bool bad = false;
    if (gso == VIRTIO_NET_HDR_GSO_TCPV4) bad = !(p_.host_gso & VIRTIO_NET_F_HOST_TSO4);
    else if (gso == VIRTIO_NET_HDR_GSO_TCPV6) bad = !(p_.host_gso & VIRTIO_NET_F_HOST_TSO6);
    else if (gso == VIRTIO_NET_HDR_GSO_UDP) bad = !(p_.host_gso & VIRTIO_NET_F_HOST_UFO);
    else if (gso != VIRTIO_NET_HDR_GSO_NONE) bad = true;
    if ((pk.hdr.gso_type & VIRTIO_NET_HDR_GSO_ECN) && !(p_.host_gso & VIRTIO_NET_F_HOST_ECN)) bad = true;
    const uint64_t limit = gso == VIRTIO_NET_HDR_GSO_NONE ? p_.max_frame : kMaxGsoFrame;
    if (bad || len > limit) {
      bump(c_->bad_desc_errors);
      VDPU_WARN_RL("virtio-net q{}: TX packet of {} bytes, gso_type {} refused", p_.qid, len, pk.hdr.gso_type);
      continue;
    }
    pk.len = uint32_t(len);
    ++m;
  }
  uint32_t acc = m ? be_->tx_burst(p_.pair, pkts_.data(), m) : 0;
  uint64_t bytes = 0;
  for (uint32_t i = 0; i < acc; ++i) bytes += pkts_[i].len;
  if (acc < m) bump(c_->dropped, m - acc);
  bump(c_->packets, acc);
  bump(c_->total_bytes, bytes);
  // Transmit buffers are returned with used length 0 (nothing written).
  for (uint32_t i = 0; i < n; ++i) vq_.push(chains_[i], 0);
  publish(n);
  bump(c_->completed_desc, n);
  bump(c_->batch_number);
  if (n > c_->max_post_desc_number.load(std::memory_order_relaxed))
    c_->max_post_desc_number.store(n, std::memory_order_relaxed);
  return rt::Poll::kBusy;
}

// ------------------------------------------------------------------ RX

NetRxQueue::NetRxQueue(const NetQueueParams& p, NetBackend* be, NetQueueCounters* c) : NetQueueBase(p, be, c) {}

Status NetRxQueue::start(const QueueConfig& cfg) {
  VDPU_TRY(vq_.start(cfg));
  uint32_t cap = 1;
  while (cap < cfg.size && cap < 256) cap <<= 1;
  stash_cap_ = cap;
  chains_.assign(cap, Chain{});
  iovs_.assign(size_t(cap) * kMaxIov, iovec{});
  free_.clear();
  for (uint32_t i = cap; i-- > 0;) free_.push_back(uint16_t(i));
  stash_.assign(cap, 0);
  burst_entries_.assign(cap, 0);
  slot_iov_.assign(4096, iovec{});
  st_head_ = st_n_ = 0;
  return {};
}

uint16_t NetRxQueue::st_pop_front() noexcept {
  uint16_t e = stash_[st_head_];
  st_head_ = (st_head_ + 1) & (stash_cap_ - 1);
  --st_n_;
  return e;
}
void NetRxQueue::st_push_front(uint16_t e) noexcept {
  st_head_ = (st_head_ - 1) & (stash_cap_ - 1);
  stash_[st_head_] = e;
  ++st_n_;
}
void NetRxQueue::st_push_back(uint16_t e) noexcept {
  stash_[(st_head_ + st_n_) & (stash_cap_ - 1)] = e;
  ++st_n_;
}

bool NetRxQueue::refill() noexcept {
  bool any = false;
  uint32_t popped = 0;
  while (!free_.empty()) {
    uint16_t e = free_.back();
    Chain& ch = chains_[e];
    ch.iov = &iovs_[size_t(e) * kMaxIov];
    ch.max_iov = kMaxIov;
    PopStatus st = vq_.pop(ch);
    if (st == PopStatus::kEmpty) break;
    if (st == PopStatus::kError) {
      count_broken();
      break;
    }
    free_.pop_back();
    any = true;
    ++popped;
    // §5.1.6.3: receive buffers are device-writable and hold at least the header.
    if (ch.n_out != 0 || ch.in_len < p_.hdr_len) {
      bump(c_->bad_desc_errors);
      VDPU_WARN_RL("virtio-net q{}: RX chain {} with {} readable / {} writable bytes refused", p_.qid, ch.id,
                   ch.out_len, ch.in_len);
      vq_.push(ch, 0);
      bump(c_->completed_desc);
      free_.push_back(e);
      continue;
    }
    st_push_back(e);
  }
  if (popped) bump(c_->received_desc, popped);
  return any;
}

void NetRxQueue::unuse(uint32_t s) noexcept {
  for (uint32_t j = slot_count_[s]; j-- > 0;) st_push_front(burst_entries_[slot_first_[s] + j]);
  slot_count_[s] = 0;
}

void NetRxQueue::write_hash(const RxSlot& sl, uint32_t frame, const FrameHash* h) noexcept {
  FrameHash v;
  if (h) {
    v = *h;
  } else if (rss_.hash_types) {
    uint8_t head[kHashPeekLen];
    uint32_t n = iov_to_buf(sl.iov, sl.iovcnt, p_.hdr_len, head, std::min<uint32_t>(frame, sizeof(head)));
    v = hash_frame(rss_, head, n);
  }
  // §5.1.6.4.3.4: hash_value and hash_report (NONE when not calculated).
  struct {
    uint32_t value;
    uint16_t report;
    uint16_t reserved;
  } __attribute__((packed)) w{htole32(v.value), htole16(v.report), 0};
  iov_from_buf(sl.iov, sl.iovcnt, kHashValueOff, &w, sizeof(w));
}

void NetRxQueue::deliver(uint32_t s, uint32_t len, const FrameHash* h) noexcept {
  RxSlot& sl = slots_[s];
  if (len == 0) return unuse(s);
  if (len <= p_.hdr_len || len > sl.cap) {
    bump(c_->error_cqes);
    bump(c_->dropped);
    return unuse(s);
  }
  const uint32_t frame = len - p_.hdr_len;
  uint8_t eh[kEthHdrLen + kVlanTagLen];
  uint32_t got = iov_to_buf(sl.iov, sl.iovcnt, p_.hdr_len, eh, std::min<uint32_t>(frame, sizeof(eh)));
  if (!filter_.accept(eh, got)) {
    bump(c_->filtered);
    bump(c_->dropped);
    return unuse(s);
  }
  if (p_.hdr_len == kNetHdrHashLen) write_hash(sl, frame, h);
  // Buffers the frame occupies, in order (§5.1.6.4: num_buffers of them).
  uint32_t k = 0;
  uint64_t rem = len;
  const uint16_t first = slot_first_[s];
  while (rem && k < slot_count_[s]) rem -= std::min<uint64_t>(rem, chains_[burst_entries_[first + k++]].in_len);
  if (p_.hdr_len >= kNetHdrLen) {
    // §5.1.6.4.1: num_buffers = buffers used; 1 without MRG_RXBUF.
    uint16_t nb = htole16(uint16_t(p_.mrg_rxbuf ? k : 1));
    iov_from_buf(sl.iov, sl.iovcnt, kNumBuffersOff, &nb, sizeof(nb));
  }
  rem = len;
  for (uint32_t j = 0; j < k; ++j) {
    uint16_t e = burst_entries_[first + j];
    uint32_t take = uint32_t(std::min<uint64_t>(rem, chains_[e].in_len));
    vq_.push(chains_[e], take);
    rem -= take;
    free_.push_back(e);
  }
  bump(c_->completed_desc, k);
  // Entries past k stay for the next frame (returned by the caller).
  slot_first_[s] = uint16_t(first + k);
  slot_count_[s] = uint16_t(slot_count_[s] - k);
  bump(c_->packets);
  bump(c_->total_bytes, frame);
  if (p_.count_sizes) bump(c_->hist[rx_hist_bucket(frame)]);
}

uint32_t NetRxQueue::build_slots() noexcept {
  // Slots: one buffer each, or (mergeable) enough buffers for the largest frame.
  const uint64_t need = uint64_t(p_.hdr_len) + p_.max_frame;
  uint32_t ns = 0, nent = 0, scratch = 0;
  while (ns < kBatch && st_n_ > 0) {
    uint16_t e = st_pop_front();
    Chain& ch = chains_[e];
    RxSlot& sl = slots_[ns];
    slot_first_[ns] = uint16_t(nent);
    burst_entries_[nent++] = e;
    slot_count_[ns] = 1;
    sl.iov = ch.iov + ch.n_out;
    sl.iovcnt = ch.n_in;
    sl.cap = uint32_t(std::min<uint64_t>(ch.in_len, UINT32_MAX));
    sl.len = 0;
    if (p_.mrg_rxbuf && sl.cap < need && st_n_ > 0 && scratch + ch.n_in <= slot_iov_.size()) {
      iovec* dst = &slot_iov_[scratch];
      std::copy(sl.iov, sl.iov + sl.iovcnt, dst);
      scratch += sl.iovcnt;
      sl.iov = dst;
      uint64_t cap = sl.cap;
      while (cap < need && st_n_ > 0) {
        uint16_t e2 = stash_[st_head_];
        Chain& c2 = chains_[e2];
        if (scratch + c2.n_in > slot_iov_.size()) break;
        st_pop_front();
        std::copy(c2.iov + c2.n_out, c2.iov + c2.n_out + c2.n_in, &slot_iov_[scratch]);
        scratch += c2.n_in;
        sl.iovcnt += c2.n_in;
        cap += c2.in_len;
        burst_entries_[nent++] = e2;
        ++slot_count_[ns];
      }
      sl.cap = uint32_t(std::min<uint64_t>(cap, UINT32_MAX));
      // Not enough buffers for a full-size frame yet: unless it is the only
      // slot, leave them for the next poll (the ring may refill meanwhile).
      if (cap < need && ns > 0) {
        unuse(ns);
        nent = slot_first_[ns];
        break;
      }
    }
    ++ns;
  }
  return ns;
}

rt::Poll NetRxQueue::poll() noexcept {
  bump(c_->handler_schd_number);
  if (deadline_) coal_tick();
  if (!running_) return rt::Poll::kIdle;
  if (vq_.notifications_enabled()) vq_.disable_notifications();
  bool busy = refill();
  if (fab_) return poll_rss(busy);
  if (st_n_ == 0) {
    waiting_for_buffers_ = true;
    if (busy) publish(0);  // malformed buffers returned
    return busy ? rt::Poll::kBusy : rt::Poll::kIdle;
  }
  waiting_for_buffers_ = false;
  const uint32_t ns = build_slots();
  if (ns == 0) return busy ? rt::Poll::kBusy : rt::Poll::kIdle;
  const uint32_t got = std::min(be_->rx_burst(p_.pair, slots_.data(), ns), ns);
  uint64_t delivered = c_->packets.load(std::memory_order_relaxed);
  for (uint32_t s = 0; s < got; ++s) deliver(s, slots_[s].len, nullptr);
  // Unused buffers go back to the stash front in their original order.
  for (uint32_t s = ns; s-- > 0;) unuse(s);
  delivered = c_->packets.load(std::memory_order_relaxed) - delivered;
  if (delivered || busy) publish(uint32_t(delivered));
  if (got) {
    bump(c_->batch_number);
    if (got > c_->max_post_desc_number.load(std::memory_order_relaxed))
      c_->max_post_desc_number.store(got, std::memory_order_relaxed);
  }
  return (got || busy) ? rt::Poll::kBusy : rt::Poll::kIdle;
}

// RSS steering: first the frames other queues steered here (their hash
// travels with them), then this queue's backend frames, each delivered here
// or pushed to the ring of the queue the indirection table names.
rt::Poll NetRxQueue::poll_rss(bool busy) noexcept {
  fab_->disarm(p_.pair);
  if (st_n_ == 0) {
    waiting_for_buffers_ = true;
    if (busy) publish(0);
    return busy ? rt::Poll::kBusy : rt::Poll::kIdle;
  }
  waiting_for_buffers_ = false;
  const uint64_t before = c_->packets.load(std::memory_order_relaxed);
  uint32_t moved = 0;
  if (fab_->pending(p_.pair)) {
    const uint32_t ns = build_slots();
    const uint32_t biggest = p_.hdr_len + p_.max_frame;
    uint32_t s = 0;
    bool stop = false;
    for (uint32_t r = 0; r < fab_->reactors() && s < ns && !stop; ++r) {
      HandoffRing& ring = fab_->ring(r, p_.pair);
      while (s < ns) {
        const HandoffRing::RecHdr* rec = ring.front();
        if (!rec) break;
        const uint32_t len = rec->len;
        if (len > slots_[s].cap) {
          if (len > biggest) {  // can never fit (not expected: the sender checked)
            bump(c_->error_cqes);
            bump(c_->dropped);
            ring.pop();
            continue;
          }
          stop = true;  // wait for more buffers
          break;
        }
        iov_from_buf(slots_[s].iov, slots_[s].iovcnt, 0, HandoffRing::payload(rec), len);
        const FrameHash h{rec->hash_value, rec->hash_report};
        ring.pop();
        deliver(s, len, &h);
        ++s;
      }
    }
    for (uint32_t k = ns; k-- > 0;) unuse(k);
    moved += s;
  }
  if (st_n_ > 0) {
    const uint32_t ns = build_slots();
    const uint32_t got = ns ? std::min(be_->rx_burst(p_.pair, slots_.data(), ns), ns) : 0;
    uint16_t woken[kBatch];
    uint32_t nw = 0;
    for (uint32_t s = 0; s < got; ++s) {
      const RxSlot& sl = slots_[s];
      const uint32_t len = sl.len;
      if (len <= p_.hdr_len || len > sl.cap) {
        deliver(s, len, nullptr);  // counts the error
        continue;
      }
      uint8_t head[kHashPeekLen];
      const uint32_t n =
          iov_to_buf(sl.iov, sl.iovcnt, p_.hdr_len, head, std::min<uint32_t>(len - p_.hdr_len, sizeof(head)));
      const FrameHash h = hash_frame(rss_, head, n);
      const uint16_t q = rss_queue(rss_, h);
      if (q == p_.pair) {
        deliver(s, len, &h);
        continue;
      }
      if (q < fab_->pairs() && fab_->ring(reactor_, q).push(sl.iov, sl.iovcnt, len, h)) {
        bump(c_->rss_steered);
        if (std::find(woken, woken + nw, q) == woken + nw) woken[nw++] = q;
      } else {
        bump(c_->rss_dropped);
        bump(c_->dropped);
      }
    }
    for (uint32_t k = ns; k-- > 0;) unuse(k);
    for (uint32_t i = 0; i < nw; ++i) fab_->wake(woken[i]);
    moved += got;
  }
  const uint64_t delivered = c_->packets.load(std::memory_order_relaxed) - before;
  if (delivered || busy) publish(uint32_t(delivered));
  if (moved) {
    bump(c_->batch_number);
    if (moved > c_->max_post_desc_number.load(std::memory_order_relaxed))
      c_->max_post_desc_number.store(moved, std::memory_order_relaxed);
  }
  return (moved || busy) ? rt::Poll::kBusy : rt::Poll::kIdle;
}

bool NetRxQueue::prepare_sleep() noexcept {
  if (pending_ || deadline_) fire();
  // RSS: frames other reactors steer here wake us through the fabric.
  if (fab_ && !fab_->arm_sleep(p_.pair)) return false;
  if (be_->rx_always_ready(p_.pair)) return false;
  // Waiting for buffers: a kick brings them. Otherwise the backend's fd wakes us.
  if (waiting_for_buffers_ || st_n_ == 0) return !vq_.enable_notifications();
  return true;
}

void NetRxQueue::release() noexcept {
  flush_notifications();
  if (st_n_ == 0) return;
  uint32_t n = 0;
  while (st_n_) {
    uint16_t e = st_pop_front();
    vq_.push(chains_[e], 0);
    free_.push_back(e);
    ++n;
  }
  bump(c_->completed_desc, n);
  pending_ = 0;
  deadline_ = 0;
  if (vq_.flush_and_notify()) bump(c_->notifications);
}

}  // namespace vdpu::virtio::net
