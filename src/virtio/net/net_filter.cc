#include "virtio/net/net_filter.h"

#include <cstring>

namespace vdpu::virtio::net {

bool RxFilter::accept(const uint8_t* f, uint32_t len) const noexcept {
  if (len < kEthHdrLen) return false;
  if (promisc) return true;
  if (vlan_filtering && len >= kEthHdrLen + kVlanTagLen) {
    uint16_t type = uint16_t(f[12] << 8 | f[13]);
    if (type == kEthPVlan) {
      uint16_t vid = uint16_t((f[14] << 8 | f[15]) & 0x0fff);
      if (!vlans.test(vid)) return false;
    }
  }
  auto in = [](const std::array<MacAddr, kMacTableMax>& t, uint32_t n, const uint8_t* a) {
    for (uint32_t i = 0; i < n; ++i)
      if (std::memcmp(t[i].data(), a, kEthAddrLen) == 0) return true;
    return false;
  };
  if (f[0] & 1) {  // group address
    static const uint8_t bcast[kEthAddrLen] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    if (std::memcmp(f, bcast, kEthAddrLen) == 0) return !nobcast;
    if (nomulti) return false;
    if (allmulti || multi_overflow) return true;
    return in(multi, n_multi, f);
  }
  if (nouni) return false;
  if (alluni || uni_overflow) return true;
  if (std::memcmp(f, mac.data(), kEthAddrLen) == 0) return true;
  return in(uni, n_uni, f);
}

}  // namespace vdpu::virtio::net
