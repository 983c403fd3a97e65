#include "virtio/net/backend_mem.h"

#include <algorithm>
#include <cstring>

namespace vdpu::virtio::net {
namespace {

void bump(std::atomic<uint64_t>& a, uint64_t n = 1) {
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

constexpr uint64_t kCsumOffloads = VIRTIO_NET_F_CSUM | VIRTIO_NET_F_GUEST_CSUM;

}  // namespace

bool complete_csum(uint8_t* f, uint32_t len, uint16_t start, uint16_t off) noexcept {
  if (start >= len || uint32_t(start) + off + 2u > len) return false;
  f[start + off] = 0;
  f[start + off + 1] = 0;
  uint64_t sum = 0;
  uint32_t i = start;
  for (; i + 1 < len; i += 2) sum += uint32_t(f[i] << 8 | f[i + 1]);
  if (i < len) sum += uint32_t(f[i] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  uint16_t c = uint16_t(~sum);
  f[start + off] = uint8_t(c >> 8);
  f[start + off + 1] = uint8_t(c);
  return true;
}

// ------------------------------------------------------------------ drop

uint64_t DropBackend::offload_features() const {
  return kCsumOffloads | VIRTIO_NET_F_HOST_TSO4 | VIRTIO_NET_F_HOST_TSO6 | VIRTIO_NET_F_HOST_ECN;
}

Status DropBackend::open_queue(uint16_t q) {
  if (q >= stats_.size()) return make_error(Errc::kInvalidArgument, "drop backend: no queue pair " + std::to_string(q));
  return {};
}

uint32_t DropBackend::tx_burst(uint16_t q, TxPkt* pkts, uint32_t n) noexcept {
  uint64_t b = 0;
  for (uint32_t i = 0; i < n; ++i) b += pkts[i].len;
  bump(stats_[q].tx_packets, n);
  bump(stats_[q].tx_bytes, b);
  return n;
}

// ------------------------------------------------------------------ gen

GenBackend::GenBackend(uint16_t pairs, uint32_t frame_len, const uint8_t dst[kEthAddrLen]) : DropBackend(pairs) {
  frame_len = std::max<uint32_t>(frame_len, 60);
  frame_.assign(frame_len, 0);
  uint8_t* f = frame_.data();
  std::memcpy(f, dst, kEthAddrLen);
  const uint8_t src[kEthAddrLen] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
  std::memcpy(f + 6, src, kEthAddrLen);
  f[12] = 0x08;  // IPv4
  f[13] = 0x00;
  uint8_t* ip = f + kEthHdrLen;
  uint16_t ip_len = uint16_t(std::min<uint32_t>(frame_len - kEthHdrLen, 0xffff));
  ip[0] = 0x45;
  ip[2] = uint8_t(ip_len >> 8);
  ip[3] = uint8_t(ip_len);
  ip[8] = 64;  // TTL
  ip[9] = 17;  // UDP
  const uint8_t sa[4] = {198, 18, 0, 1}, da[4] = {198, 18, 0, 2};
  std::memcpy(ip + 12, sa, 4);
  std::memcpy(ip + 16, da, 4);
  complete_csum(ip, 20, 0, 10);
  uint8_t* udp = ip + 20;
  uint16_t udp_len = uint16_t(ip_len - 20);
  udp[0] = 0x04, udp[1] = 0xd2, udp[2] = 0x16, udp[3] = 0x2e;  // 1234 -> 5678
  udp[4] = uint8_t(udp_len >> 8);
  udp[5] = uint8_t(udp_len);
  for (uint32_t i = kEthHdrLen + 28; i < frame_len; ++i) f[i] = uint8_t(i);
}

uint32_t GenBackend::rx_burst(uint16_t q, RxSlot* slots, uint32_t n) noexcept {
  const uint32_t hl = cfg_.hdr_len, fl = uint32_t(frame_.size());
  uint8_t hdr[kNetHdrHashLen] = {};  // hl is at most the v1_hash header
  uint64_t pk = 0, dr = 0;
  for (uint32_t i = 0; i < n; ++i) {
    RxSlot& s = slots[i];
    if (s.cap < hl + fl) {
      s.len = 0;
      ++dr;
      continue;
    }
    iov_from_buf(s.iov, s.iovcnt, 0, hdr, hl);
    iov_from_buf(s.iov, s.iovcnt, hl, frame_.data(), fl);
    s.len = hl + fl;
    ++pk;
  }
  bump(stats_[q].rx_packets, pk);
  bump(stats_[q].rx_bytes, pk * fl);
  if (dr) bump(stats_[q].rx_dropped, dr);
  return n;
}

// ------------------------------------------------------------------ loopback

struct LoopbackBackend::Ring {
  struct Entry {
    VirtioNetHdr hdr;
    uint32_t len;
    uint32_t pad;
    // data follows
  };
  Ring(uint32_t entries, uint32_t frame_cap)
      : n(entries), mask(entries - 1), stride((sizeof(Entry) + frame_cap + 63) / 64 * 64), cap(frame_cap),
        mem(size_t(entries) * stride) {}
  Entry* at(uint32_t i) { return reinterpret_cast<Entry*>(mem.data() + size_t(i & mask) * stride); }
  static uint8_t* data(Entry* e) { return reinterpret_cast<uint8_t*>(e + 1); }

  const uint32_t n, mask;
  const size_t stride;
  const uint32_t cap;
  std::vector<uint8_t> mem;
  alignas(64) std::atomic<uint32_t> head{0};  // consumer position
  alignas(64) std::atomic<uint32_t> tail{0};  // producer position
  alignas(64) BackendQueueStats* rx_stats = nullptr;  // receiver's stats (drops when full)
};

LoopbackBackend::~LoopbackBackend() = default;

std::unique_ptr<LoopbackBackend> LoopbackBackend::create_self(uint16_t pairs, uint32_t max_frame,
                                                              uint32_t ring_entries) {
  std::unique_ptr<LoopbackBackend> b(new LoopbackBackend(pairs));
  uint32_t e = 1;
  while (e < ring_entries) e <<= 1;
  for (uint16_t q = 0; q < pairs; ++q) {
    auto r = std::make_shared<Ring>(e, max_frame);
    r->rx_stats = &b->stats_[q];
    b->out_.push_back(r);
    b->in_.push_back(r);
  }
  return b;
}

std::pair<std::unique_ptr<LoopbackBackend>, std::unique_ptr<LoopbackBackend>> LoopbackBackend::create_pair(
    uint16_t pairs, uint32_t max_frame, uint32_t ring_entries) {
  std::unique_ptr<LoopbackBackend> a(new LoopbackBackend(pairs)), b(new LoopbackBackend(pairs));
  uint32_t e = 1;
  while (e < ring_entries) e <<= 1;
  for (uint16_t q = 0; q < pairs; ++q) {
    auto ab = std::make_shared<Ring>(e, max_frame), ba = std::make_shared<Ring>(e, max_frame);
    ab->rx_stats = &b->stats_[q];
    ba->rx_stats = &a->stats_[q];
    a->out_.push_back(ab);
    b->in_.push_back(ab);
    b->out_.push_back(ba);
    a->in_.push_back(ba);
  }
  return {std::move(a), std::move(b)};
}

uint64_t LoopbackBackend::offload_features() const { return kCsumOffloads; }

Status LoopbackBackend::open_queue(uint16_t q) {
  if (q >= stats_.size())
    return make_error(Errc::kInvalidArgument, "loopback backend: no queue pair " + std::to_string(q));
  return {};
}

uint32_t LoopbackBackend::tx_burst(uint16_t q, TxPkt* pkts, uint32_t n) noexcept {
  Ring& r = *out_[q];
  BackendQueueStats& st = stats_[q];
  uint32_t tail = r.tail.load(std::memory_order_relaxed);
  const uint32_t head = r.head.load(std::memory_order_acquire);  // entries the consumer freed
  uint32_t room = r.n - (tail - head);
  uint64_t bytes = 0, errors = 0, dropped = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const TxPkt& p = pkts[i];
    if (p.len > r.cap) {  // cannot be delivered by any receiver
      ++errors;
      continue;
    }
    if (room == 0) {  // receiver not keeping up: lost (its rx_dropped)
      ++dropped;
      continue;
    }
    Ring::Entry* e = r.at(tail);
    e->hdr = p.hdr;
    e->len = iov_to_buf(p.iov, p.iovcnt, 0, Ring::data(e), p.len);
    bytes += p.len;
    ++tail;
    --room;
  }
  r.tail.store(tail, std::memory_order_release);  // publishes the entries written above
  bump(st.tx_packets, n - errors - dropped);
  bump(st.tx_bytes, bytes);
  if (errors) bump(st.tx_errors, errors);
  // Two writers (this TX reactor, the receiver's RX reactor): atomic add.
  if (dropped) r.rx_stats->rx_dropped.fetch_add(dropped, std::memory_order_relaxed);
  return n;
}

uint32_t LoopbackBackend::rx_burst(uint16_t q, RxSlot* slots, uint32_t n) noexcept {
  Ring& r = *in_[q];
  BackendQueueStats& st = stats_[q];
  uint32_t head = r.head.load(std::memory_order_relaxed);
  const uint32_t tail = r.tail.load(std::memory_order_acquire);  // entries the producer published
  const uint32_t hl = cfg_.hdr_len;
  uint32_t i = 0;
  uint64_t pk = 0, bytes = 0, dr = 0;
  for (; i < n && head != tail; ++i, ++head) {
    Ring::Entry* e = r.at(head);
    RxSlot& s = slots[i];
    s.len = 0;
    if (s.cap < hl + e->len) {
      ++dr;
      continue;
    }
    VirtioNetHdr h = e->hdr;
    h.num_buffers = 0;
    uint8_t* d = Ring::data(e);
    if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !(cfg_.guest_offloads & VIRTIO_NET_F_GUEST_CSUM)) {
      // §5.1.6.4: without GUEST_CSUM the driver gets complete checksums.
      if (!complete_csum(d, e->len, le16toh(h.csum_start), le16toh(h.csum_offset))) {
        ++dr;
        continue;
      }
      h.flags = 0;
      h.csum_start = h.csum_offset = 0;
    }
    if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE) {  // never offered: nothing to segment
      ++dr;
      continue;
    }
    VirtioNetHdrHash hh{};  // hl is at most the v1_hash header; hash fields 0
    hh.hdr = h;
    iov_from_buf(s.iov, s.iovcnt, 0, &hh, hl);
    iov_from_buf(s.iov, s.iovcnt, hl, d, e->len);
    s.len = hl + e->len;
    ++pk;
    bytes += e->len;
  }
  r.head.store(head, std::memory_order_release);  // frees the entries read above
  bump(st.rx_packets, pk);
  bump(st.rx_bytes, bytes);
  if (dr) st.rx_dropped.fetch_add(dr, std::memory_order_relaxed);
  return i;
}

}  // namespace vdpu::virtio::net
