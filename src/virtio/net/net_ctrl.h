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
#include "virtio/net/net_rss.h"

namespace vdpu::virtio::net {

// Used-buffer notification coalescing (VIRTIO_NET_CTRL_NOTF_COAL_*_SET):
// notify after max_packets packets or usecs after the first un-notified one.
// max_packets <= 1 or usecs == 0: no coalescing.
struct CoalParams {
  uint32_t max_packets = 0;
  uint32_t usecs = 0;
  bool active() const { return max_packets > 1 && usecs > 0; }
};

struct CtrlState {
  RxFilter filter;
  RssConfig rss;                // RSS_CONFIG / HASH_CONFIG (steer, hash types, key, table)
  CoalParams rx_coal, tx_coal;  // NOTF_COAL RX_SET / TX_SET
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
  kCtrlEffRss = 32,      // RSS / hash configuration
  kCtrlEffCoal = 64,     // notification coalescing parameters
};

// What the device offers, for the checks of RSS_CONFIG / HASH_CONFIG.
struct CtrlLimits {
  uint16_t max_pairs = 1;                        // max_virtqueue_pairs
  uint32_t hash_types = kHashTypesSupported;     // config supported_hash_types
  // Receive queue q (queue pair q) enabled by the driver; nullptr: every
  // queue below max_pairs counts as enabled.
  const bool* rx_enabled = nullptr;
};

struct CtrlResult {
  uint8_t ack = VIRTIO_NET_ERR;
  uint32_t effects = 0;
};

// negotiated: the driver's features; lim: what the device offers.
// data/len: the command-specific data (after class and command).
CtrlResult apply_ctrl(CtrlState& st, uint64_t negotiated, const CtrlLimits& lim, uint8_t cls, uint8_t cmd,
                      const uint8_t* data, uint32_t len) noexcept;
inline CtrlResult apply_ctrl(CtrlState& st, uint64_t negotiated, uint16_t max_pairs, uint8_t cls, uint8_t cmd,
                             const uint8_t* data, uint32_t len) noexcept {
  CtrlLimits lim;
  lim.max_pairs = max_pairs;
  return apply_ctrl(st, negotiated, lim, cls, cmd, data, len);
}

}  // namespace vdpu::virtio::net
