#include "virtio/net/net_rss.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "virtio/net/net_backend.h"

namespace vdpu::virtio::net {

uint32_t toeplitz(const uint8_t* key, uint32_t key_len, const uint8_t* data, uint32_t len) noexcept {
  auto kb = [&](uint32_t i) -> uint32_t { return i < key_len ? key[i] : 0u; };
  // v: the 32 key bits starting at the current input bit.
  uint32_t v = kb(0) << 24 | kb(1) << 16 | kb(2) << 8 | kb(3);
  uint32_t h = 0;
  for (uint32_t i = 0; i < len; ++i) {
    const uint32_t next = kb(i + 4);
    const uint32_t d = data[i];
    for (int b = 7; b >= 0; --b) {
      h ^= v & (0u - ((d >> b) & 1u));
      v = (v << 1) | ((next >> b) & 1u);
    }
  }
  return h;
}

namespace {

constexpr uint16_t kEthIpv4 = 0x0800, kEthIpv6 = 0x86dd, kEthVlan = 0x8100, kEthQinQ = 0x88a8;
constexpr uint8_t kIpTcp = 6, kIpUdp = 17;

uint16_t be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

FrameHash pick(const RssConfig& c, const uint8_t* in, uint32_t ip_len, const uint8_t* ports, uint8_t proto,
               uint32_t t_ip, uint32_t t_tcp, uint32_t t_udp, uint16_t r_ip, uint16_t r_tcp, uint16_t r_udp) {
  uint8_t buf[36];
  std::memcpy(buf, in, ip_len);
  uint16_t rep = VIRTIO_NET_HASH_REPORT_NONE;
  uint32_t n = ip_len;
  if (ports && proto == kIpTcp && (c.hash_types & t_tcp)) rep = r_tcp;
  else if (ports && proto == kIpUdp && (c.hash_types & t_udp)) rep = r_udp;
  else if (c.hash_types & t_ip) rep = r_ip;
  else return {};
  if (rep != r_ip) {
    std::memcpy(buf + ip_len, ports, 4);  // source port, destination port
    n += 4;
  }
  return {toeplitz(c.key, c.key_len, buf, n), rep};
}

}  // namespace

FrameHash hash_frame(const RssConfig& c, const uint8_t* f, uint32_t len) noexcept {
  if (len < kEthHdrLen) return {};
  uint32_t off = kEthHdrLen;
  uint16_t et = be16(f + 12);
  for (int k = 0; k < 2 && (et == kEthVlan || et == kEthQinQ); ++k) {
    if (off + kVlanTagLen > len) return {};
    et = be16(f + off + 2);
    off += kVlanTagLen;
  }
  if (et == kEthIpv4) {
    constexpr uint32_t kAny = VIRTIO_NET_HASH_TYPE_IPv4 | VIRTIO_NET_HASH_TYPE_TCPv4 | VIRTIO_NET_HASH_TYPE_UDPv4;
    if (!(c.hash_types & kAny) || off + 20 > len) return {};
    const uint8_t* ip = f + off;
    const uint32_t ihl = uint32_t(ip[0] & 0xf) * 4;
    if ((ip[0] >> 4) != 4 || ihl < 20 || off + ihl > len) return {};
    const bool frag = (be16(ip + 6) & 0x3fff) != 0;  // MF or a fragment offset: no ports
    const uint32_t l4 = off + ihl;
    const uint8_t* ports = (!frag && l4 + 4 <= len) ? f + l4 : nullptr;
    return pick(c, ip + 12, 8, ports, ip[9], VIRTIO_NET_HASH_TYPE_IPv4, VIRTIO_NET_HASH_TYPE_TCPv4,
                VIRTIO_NET_HASH_TYPE_UDPv4, VIRTIO_NET_HASH_REPORT_IPv4, VIRTIO_NET_HASH_REPORT_TCPv4,
                VIRTIO_NET_HASH_REPORT_UDPv4);
  }
  if (et == kEthIpv6) {
    constexpr uint32_t kAny = VIRTIO_NET_HASH_TYPE_IPv6 | VIRTIO_NET_HASH_TYPE_TCPv6 | VIRTIO_NET_HASH_TYPE_UDPv6;
    if (!(c.hash_types & kAny) || off + 40 > len) return {};
    const uint8_t* ip = f + off;
    if ((ip[0] >> 4) != 6) return {};
    uint8_t nh = ip[6];
    uint32_t l4 = off + 40;
    bool frag = false, known = true;
    for (int k = 0; k < 8 && known; ++k) {
      if (nh == 0 || nh == 43 || nh == 60) {  // hop-by-hop, routing, destination options
        if (l4 + 8 > len) {
          frag = true;  // L4 header not in the frame
          break;
        }
        nh = f[l4];
        l4 += (uint32_t(f[l4 + 1]) + 1) * 8;
      } else if (nh == 44) {  // fragment
        if (l4 + 8 > len) break;
        if (be16(f + l4 + 2) & 0xfff9) frag = true;  // offset or M set
        nh = f[l4];
        l4 += 8;
      } else {
        known = false;
      }
    }
    const uint8_t* ports = (!frag && l4 + 4 <= len) ? f + l4 : nullptr;
    return pick(c, ip + 8, 32, ports, nh, VIRTIO_NET_HASH_TYPE_IPv6, VIRTIO_NET_HASH_TYPE_TCPv6,
                VIRTIO_NET_HASH_TYPE_UDPv6, VIRTIO_NET_HASH_REPORT_IPv6, VIRTIO_NET_HASH_REPORT_TCPv6,
                VIRTIO_NET_HASH_REPORT_UDPv6);
  }
  return {};
}

// ------------------------------------------------------------------ HandoffRing

HandoffRing::HandoffRing(uint32_t bytes)
    : cap_([bytes] {
        uint32_t c = 4096;
        while (c < bytes && c < (1u << 30)) c <<= 1;
        return c;
      }()),
      mask_(cap_ - 1),
      mem_(new uint8_t[cap_]) {}

bool HandoffRing::push(const iovec* iov, uint32_t iovcnt, uint32_t len, const FrameHash& h) noexcept {
  const uint32_t n = need(len);
  uint32_t tail = tail_.load(std::memory_order_relaxed);
  uint32_t off = tail & mask_;
  const uint32_t to_end = cap_ - off;
  const uint32_t total = n <= to_end ? n : to_end + n;
  if (total > cap_) return false;
  if (cap_ - (tail - head_cache_) < total) {
    head_cache_ = head_.load(std::memory_order_acquire);  // space the consumer freed
    if (cap_ - (tail - head_cache_) < total) return false;
  }
  if (n > to_end) {  // no room before the end: a wrap marker (to_end >= 16)
    reinterpret_cast<RecHdr*>(mem_.get() + off)->len = kWrap;
    tail += to_end;
    off = 0;
  }
  auto* r = reinterpret_cast<RecHdr*>(mem_.get() + off);
  r->len = len;
  r->hash_value = h.value;
  r->hash_report = h.report;
  iov_to_buf(iov, iovcnt, 0, r + 1, len);
  tail_.store(tail + n, std::memory_order_release);
  return true;
}

const HandoffRing::RecHdr* HandoffRing::front() noexcept {
  uint32_t head = head_.load(std::memory_order_relaxed);
  const uint32_t tail = tail_.load(std::memory_order_acquire);
  if (head == tail) return nullptr;
  auto* r = reinterpret_cast<const RecHdr*>(mem_.get() + (head & mask_));
  if (r->len == kWrap) {
    head += cap_ - (head & mask_);
    head_.store(head, std::memory_order_release);
    if (head == tail) return nullptr;
    r = reinterpret_cast<const RecHdr*>(mem_.get());
  }
  return r;
}

void HandoffRing::pop() noexcept {
  const uint32_t head = head_.load(std::memory_order_relaxed);
  auto* r = reinterpret_cast<const RecHdr*>(mem_.get() + (head & mask_));
  head_.store(head + need(r->len), std::memory_order_release);
}

// ------------------------------------------------------------------ RssFabric

RssFabric::RssFabric(uint32_t reactors, uint16_t pairs, uint32_t ring_bytes)
    : reactors_(reactors), pairs_(pairs), dst_(new Dst[pairs]) {
  rings_.reserve(size_t(reactors) * pairs);
  for (size_t i = 0; i < size_t(reactors) * pairs; ++i) rings_.push_back(std::make_unique<HandoffRing>(ring_bytes));
  for (uint16_t q = 0; q < pairs; ++q) dst_[q].fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

RssFabric::~RssFabric() {
  for (uint16_t q = 0; q < pairs_; ++q)
    if (dst_[q].fd >= 0) close(dst_[q].fd);
}

bool RssFabric::pending(uint16_t q) noexcept {
  for (uint32_t r = 0; r < reactors_; ++r)
    if (!ring(r, q).empty()) return true;
  return false;
}

bool RssFabric::arm_sleep(uint16_t q) noexcept {
  Dst& d = dst_[q];
  d.armed.store(true, std::memory_order_relaxed);
  // Pairs with the fence in wake(): either we see the producer's frames, or
  // it sees armed and signals the eventfd.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (pending(q)) {
    d.armed.store(false, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void RssFabric::disarm(uint16_t q) noexcept {
  Dst& d = dst_[q];
  if (d.armed.load(std::memory_order_relaxed)) d.armed.store(false, std::memory_order_relaxed);
  if (d.signalled.load(std::memory_order_relaxed) && d.signalled.exchange(false, std::memory_order_relaxed)) {
    uint64_t v;
    [[maybe_unused]] ssize_t r = read(d.fd, &v, sizeof(v));
  }
}

void RssFabric::wake(uint16_t q) noexcept {
  Dst& d = dst_[q];
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!d.armed.load(std::memory_order_relaxed) || !d.armed.exchange(false, std::memory_order_relaxed)) return;
  d.signalled.store(true, std::memory_order_relaxed);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t r = write(d.fd, &one, sizeof(one));
}

}  // namespace vdpu::virtio::net
