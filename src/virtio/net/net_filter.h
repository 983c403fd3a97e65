// Receive filtering (virtio 1.2 §5.1.6.5.1-§5.1.6.5.3): RX mode, MAC tables,
// VLAN table. The control plane owns the authoritative copy and sends a copy
// to every RX queue's reactor when it changes (no sharing, no locks).
//
// Semantics follow QEMU's virtio-net receive_filter(): promiscuous accepts
// everything (VLAN table included); tagged frames need their VID in the
// table once CTRL_VLAN is negotiated; broadcast unless NOBCAST; multicast by
// NOMULTI / ALLMULTI / table; unicast by NOUNI / ALLUNI / own MAC / table.
// A MAC table larger than kMacTableMax sets "overflow": the whole class is
// accepted (best effort is what §5.1.6.5.1 asks for).
#pragma once

#include <array>
#include <bitset>
#include <cstdint>

#include "virtio/net/net_spec.h"

namespace vdpu::virtio::net {

using MacAddr = std::array<uint8_t, kEthAddrLen>;

struct RxFilter {
  static constexpr uint32_t kMacTableMax = 64;  // per class (unicast, multicast)

  // RX mode. Reset value (QEMU): promiscuous until the driver says otherwise.
  bool promisc = true;
  bool allmulti = false, alluni = false, nomulti = false, nouni = false, nobcast = false;
  MacAddr mac{};  // the device's current address (config mac or CTRL_MAC_ADDR_SET)
  uint32_t n_uni = 0, n_multi = 0;
  bool uni_overflow = false, multi_overflow = false;
  std::array<MacAddr, kMacTableMax> uni{};
  std::array<MacAddr, kMacTableMax> multi{};
  bool vlan_filtering = false;  // VIRTIO_NET_F_CTRL_VLAN negotiated
  std::bitset<kMaxVlanId + 1> vlans;

  // frame: at least the first 18 bytes when available (shorter frames are
  // judged on what is there; below 14 bytes they are refused).
  bool accept(const uint8_t* frame, uint32_t len) const noexcept;
};

}  // namespace vdpu::virtio::net
