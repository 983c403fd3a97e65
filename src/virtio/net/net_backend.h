// The seam between the virtio-net device model and what is behind it (a TAP
// representor, a drop sink, a packet generator, a loopback to a peer device).
// Packets cross it in bursts, with their virtio_net_hdr, without allocation:
//
//  - TX (guest -> backend): the device hands packets that still live in guest
//    memory (iovecs). The backend consumes them before tx_burst returns (a
//    writev to the TAP, a copy into a ring, a counter): the device then
//    returns the chains to the guest.
//  - RX (backend -> guest): the device hands "slots", each a list of iovecs
//    into the guest's receive buffers. The backend writes [virtio_net_hdr of
//    hdr_len bytes][frame] into a slot and reports the bytes written; the
//    device sets num_buffers, filters and returns the buffers.
//
// Threads: open_queue/close_queue/configure on the control plane while the
// queue is not polled; rx_burst/tx_burst for queue q only on the reactor that
// owns queue pair q (one caller per queue at a time). A backend shared by
// several queues keeps per-queue state, so different queues may run on
// different reactors.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>

#include "base/result.h"
#include "virtio/net/net_spec.h"

namespace vdpu::virtio::net {

// One guest packet handed to the backend (TX).
struct TxPkt {
  VirtioNetHdr hdr;    // offload request from the guest (num_buffers: 0)
  const iovec* iov;    // the frame (virtio header already stripped)
  uint32_t iovcnt;
  uint32_t len;        // frame bytes
};

// One receive destination (RX): iovecs spanning one or more guest buffers.
struct RxSlot {
  const iovec* iov;
  uint32_t iovcnt;
  uint32_t cap;  // bytes the iovecs hold
  uint32_t len;  // out: header + frame bytes written (0: nothing)
};

// What the device negotiated and the backend must honour.
struct BackendConfig {
  uint32_t hdr_len = kNetHdrLen;  // virtio_net_hdr size in RX slots / TX
  uint64_t guest_offloads = 0;    // VIRTIO_NET_F_GUEST_* the guest accepts now
  uint16_t active_pairs = 1;      // queue pairs the guest uses (CTRL_MQ)
};

// Per-queue backend counters (single writer: the queue's reactor).
struct alignas(64) BackendQueueStats {
  std::atomic<uint64_t> tx_packets{0}, tx_bytes{0}, tx_errors{0};  // into the backend
  std::atomic<uint64_t> rx_packets{0}, rx_bytes{0};                // out of the backend
  std::atomic<uint64_t> rx_dropped{0};  // frames lost: no/too small guest buffer, ring full
};

class NetBackend {
 public:
  virtual ~NetBackend() = default;
  virtual const char* kind() const = 0;
  // Interface name (TAP), or "" for in-process backends.
  virtual std::string ifname() const { return {}; }
  // Offload features (VIRTIO_NET_F_CSUM, HOST_TSO*, GUEST_*) the backend can
  // carry; the device offers at most these.
  virtual uint64_t offload_features() const = 0;

  // Control plane. Prepares queue pair q (TAP: opens its queue fd).
  // Errors: kInvalidArgument (q out of range), kIo (system calls).
  virtual Status open_queue(uint16_t q) = 0;
  virtual void close_queue(uint16_t q) = 0;
  // Control plane, queues quiesced or not: applies negotiated offloads and
  // the number of active pairs (TAP: TUNSETVNETHDRSZ/TUNSETOFFLOAD/TUNSETQUEUE).
  virtual Status configure(const BackendConfig& cfg) = 0;

  // Data path (queue q's reactor). Takes up to n packets; returns how many it
  // accepted (the device counts the rest as drops and returns them anyway).
  virtual uint32_t tx_burst(uint16_t q, TxPkt* pkts, uint32_t n) noexcept = 0;
  // Fills up to n slots in order; returns how many it filled. A slot with
  // len == 0 below the returned count means "this slot got nothing usable"
  // (e.g. the frame did not fit and was dropped).
  virtual uint32_t rx_burst(uint16_t q, RxSlot* slots, uint32_t n) noexcept = 0;
  // The fd whose readability means "rx_burst has work" (TAP), -1 if none.
  virtual int rx_wake_fd(uint16_t q) const { return -1; }
  // True when rx_burst may return packets without an fd signal (generators,
  // rings fed by other reactors): the reactor must keep polling RX.
  virtual bool rx_always_ready(uint16_t q) const { return false; }

  // Any thread.
  virtual const BackendQueueStats& stats(uint16_t q) const = 0;
};

// Small helpers shared by backends and the device, on the per-packet path.
// The common case (the bytes lie in the first iovec) is inline, so that the
// fixed-size header and num_buffers writes compile to plain stores.
uint32_t iov_from_buf_slow(const iovec* iov, uint32_t iovcnt, uint32_t off, const void* src, uint32_t len) noexcept;
uint32_t iov_to_buf_slow(const iovec* iov, uint32_t iovcnt, uint32_t off, void* dst, uint32_t len) noexcept;

// Copies up to len bytes from src (a flat buffer) into the iovecs at byte
// offset `off`; returns bytes copied.
inline uint32_t iov_from_buf(const iovec* iov, uint32_t iovcnt, uint32_t off, const void* src,
                             uint32_t len) noexcept {
  if (iovcnt && uint64_t(off) + len <= iov[0].iov_len) [[likely]] {
    std::memcpy(static_cast<uint8_t*>(iov[0].iov_base) + off, src, len);
    return len;
  }
  return iov_from_buf_slow(iov, iovcnt, off, src, len);
}
// Copies up to len bytes at byte offset `off` of the iovecs into dst.
inline uint32_t iov_to_buf(const iovec* iov, uint32_t iovcnt, uint32_t off, void* dst, uint32_t len) noexcept {
  if (iovcnt && uint64_t(off) + len <= iov[0].iov_len) [[likely]] {
    std::memcpy(dst, static_cast<const uint8_t*>(iov[0].iov_base) + off, len);
    return len;
  }
  return iov_to_buf_slow(iov, iovcnt, off, dst, len);
}

}  // namespace vdpu::virtio::net
