// Control virtqueue commands (virtio 1.2 §5.1.6.5): parsing and semantics,
// independent of rings and threads. NetDevice pops a command from the
// control queue, gathers its device-readable bytes, calls apply_ctrl() on the
// control plane and writes the returned ack.
//
// Every command is validated (class/command known, feature negotiated,
// exact payload length, value ranges); anything else is answered
// VIRTIO_NET_ERR and leaves the state unchanged.
#pragma once

#include <cstdint>

#include "virtio/net/net_filter.h"

namespace vdpu::virtio::net {

struct CtrlState {
  RxFilter filter;
  uint16_t pairs = 1;           // active queue pairs (CTRL_MQ VQ_PAIRS_SET)
  uint64_t guest_offloads = 0;  // current GUEST_* offloads (CTRL_GUEST_OFFLOADS)
  uint16_t status = 0;          // config status (ANNOUNCE cleared by ANNOUNCE_ACK)
};

// What a successful command changed (the device propagates it).
enum CtrlEffect : uint32_t {
  kCtrlEffFilter = 1,    // filter (RX mode, MAC tables, VLANs, MAC address)
  kCtrlEffPairs = 2,     // active queue pairs
  kCtrlEffOffloads = 4,  // guest offloads
  kCtrlEffStatus = 8,    // config status (announce acked)
  kCtrlEffMac = 16,      // device MAC address (config space follows)
};

struct CtrlResult {
  uint8_t ack = VIRTIO_NET_ERR;
  uint32_t effects = 0;
};

// negotiated: the driver's features; max_pairs: max_virtqueue_pairs.
// data/len: the command-specific data (after class and command).
CtrlResult apply_ctrl(CtrlState& st, uint64_t negotiated, uint16_t max_pairs, uint8_t cls, uint8_t cmd,
                      const uint8_t* data, uint32_t len) noexcept;

}  // namespace vdpu::virtio::net
