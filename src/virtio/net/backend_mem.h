// In-process backends, for measuring the emulation alone and
// device-to-device forwarding:
//  - DropBackend: consumes every transmitted packet, receives nothing.
//  - GenBackend: drops TX; RX is an endless stream of one template frame
//    (Ethernet/IPv4/UDP to the device's MAC) of a chosen size (backend ->
//    guest benchmark).
//  - LoopbackBackend: what queue pair q of one device transmits is received
//    on queue pair q of the same device (self) or of a peer device (pair).
//    Frames are copied once into a bounded single-producer/single-consumer
//    ring per direction and queue (TX reactor produces, RX reactor
//    consumes); a full ring drops (counted in rx_dropped of the receiver).
//
// Threads: as NetBackend. Offloads: CSUM and GUEST_CSUM everywhere (the
// loopback completes a partial checksum in software for a receiver that did
// not accept GUEST_CSUM); HOST_TSO only on drop/gen (nothing to segment).
#pragma once

#include <memory>
#include <vector>

#include "virtio/net/net_backend.h"

namespace vdpu::virtio::net {

class DropBackend : public NetBackend {
 public:
  explicit DropBackend(uint16_t pairs) : stats_(pairs) {}
  const char* kind() const override { return "drop"; }
  uint64_t offload_features() const override;
  Status open_queue(uint16_t q) override;
  void close_queue(uint16_t q) override {}
  Status configure(const BackendConfig& cfg) override {
    cfg_ = cfg;
    return {};
  }
  uint32_t tx_burst(uint16_t q, TxPkt* pkts, uint32_t n) noexcept override;
  uint32_t rx_burst(uint16_t q, RxSlot* slots, uint32_t n) noexcept override { return 0; }
  const BackendQueueStats& stats(uint16_t q) const override { return stats_[q]; }

 protected:
  BackendConfig cfg_;
  std::vector<BackendQueueStats> stats_;
};

class GenBackend final : public DropBackend {
 public:
  // frame_len: bytes of each generated frame (60..9216+18), dst: its destination MAC.
  GenBackend(uint16_t pairs, uint32_t frame_len, const uint8_t dst[kEthAddrLen]);
  const char* kind() const override { return "gen"; }
  uint32_t rx_burst(uint16_t q, RxSlot* slots, uint32_t n) noexcept override;
  bool rx_always_ready(uint16_t q) const override { return true; }

 private:
  std::vector<uint8_t> frame_;
};

class LoopbackBackend final : public NetBackend {
 public:
  // One device looping to itself.
  static std::unique_ptr<LoopbackBackend> create_self(uint16_t pairs, uint32_t max_frame, uint32_t ring_entries = 512);
  // Two devices cross-connected: a's TX feeds b's RX and the other way round.
  static std::pair<std::unique_ptr<LoopbackBackend>, std::unique_ptr<LoopbackBackend>> create_pair(
      uint16_t pairs, uint32_t max_frame, uint32_t ring_entries = 512);
  ~LoopbackBackend() override;

  const char* kind() const override { return "loopback"; }
  uint64_t offload_features() const override;
  Status open_queue(uint16_t q) override;
  void close_queue(uint16_t q) override {}
  Status configure(const BackendConfig& cfg) override {
    cfg_ = cfg;
    return {};
  }
  uint32_t tx_burst(uint16_t q, TxPkt* pkts, uint32_t n) noexcept override;
  uint32_t rx_burst(uint16_t q, RxSlot* slots, uint32_t n) noexcept override;
  bool rx_always_ready(uint16_t q) const override { return true; }
  const BackendQueueStats& stats(uint16_t q) const override { return stats_[q]; }

  struct Ring;  // SPSC frame ring (backend_mem.cc)

 private:
  explicit LoopbackBackend(uint16_t pairs) : stats_(pairs) {}
  BackendConfig cfg_;
  std::vector<std::shared_ptr<Ring>> out_;  // per queue: where our TX goes
  std::vector<std::shared_ptr<Ring>> in_;   // per queue: where our RX comes from
  std::vector<BackendQueueStats> stats_;
};

// Completes a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM, §5.1.6.2):
// folds the 16-bit ones' complement sum of frame[csum_start..len) into
// frame[csum_start + csum_offset]. False if the offsets are out of range.
bool complete_csum(uint8_t* frame, uint32_t len, uint16_t csum_start, uint16_t csum_offset) noexcept;

}  // namespace vdpu::virtio::net
