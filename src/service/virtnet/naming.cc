#include "service/virtnet/naming.h"

#include <fmt/format.h>

#include "pci/vuid.h"
#include "virtio/net/backend_tap.h"

namespace vdpu::service::virtnet {

using json = nlohmann::json;

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kStaticPf: return "static PF";
    case Kind::kHotplugPf: return "hotplug PF";
    case Kind::kVf: return "VF";
  }
  return "static PF";
}

Result<std::string> rep_name(const std::string& prefix, uint32_t sf_num) {
  return virtio::net::representor_name(prefix, sf_num);
}

std::string vuid_of(const std::string& serial, Kind k, uint32_t pf_index, uint32_t slot, uint32_t vf) {
  pci::VuidParts p;
  p.serial = serial;
  p.type = pci::FunctionType::kVirtioNet;
  switch (k) {
    case Kind::kStaticPf: p.s = 0, p.f = pf_index; break;
    case Kind::kHotplugPf: p.s = slot + 1, p.f = 0; break;
    case Kind::kVf: p.s = 0, p.f = pf_index, p.vf = vf + 1; break;
  }
  return pci::make_vuid(p);
}

uint16_t bdf_of(Kind k, uint32_t pf_index, uint32_t slot, uint32_t vf) {
  switch (k) {
    case Kind::kStaticPf: return uint16_t((0x20 + pf_index) << 8);
    case Kind::kHotplugPf: return uint16_t((0x40 + slot) << 8);
    case Kind::kVf: return uint16_t((0x80 + 4 * pf_index + (vf + 1) / 256) << 8 | ((vf + 1) % 256));
  }
  return 0;
}

std::string bdf_str(uint16_t b) { return fmt::format("{:02x}:{:02x}.{:x}", b >> 8, (b >> 3) & 0x1f, b & 7); }

const char* feature_name(uint32_t bit) {
  switch (bit) {  // §6
    case 0: return "VIRTIO_NET_F_CSUM";
    case 1: return "VIRTIO_NET_F_GUEST_CSUM";
    case 2: return "VIRTIO_NET_F_CTRL_GUEST_OFFLOADS";
    case 3: return "VIRTIO_NET_F_MTU";
    case 5: return "VIRTIO_NET_F_MAC";
    case 11: return "VIRTIO_NET_F_HOST_TSO4";
    case 12: return "VIRTIO_NET_F_HOST_TSO6";
    case 15: return "VIRTIO_F_MRG_RX_BUFFER";
    case 16: return "VIRTIO_NET_F_STATUS";
    case 17: return "VIRTIO_NET_F_CTRL_VQ";
    case 18: return "VIRTIO_NET_F_CTRL_RX";
    case 19: return "VIRTIO_NET_F_CTRL_VLAN";
    case 21: return "VIRTIO_NET_F_GUEST_ANNOUNCE";
    case 22: return "VIRTIO_NET_F_MQ";
    case 23: return "VIRTIO_NET_F_CTRL_MAC_ADDR";
    case 32: return "VIRTIO_F_VERSION_1";
    case 33: return "VIRTIO_F_IOMMU_PLATFORM";
    case 34: return "VIRTIO_F_RING_PACKED";
    case 36: return "VIRTIO_F_ORDER_PLATFORM";
    case 37: return "VIRTIO_F_SR_IOV";
    case 38: return "VIRTIO_F_NOTIFICATION_DATA";
    case 40: return "VIRTIO_F_RING_RESET";
    case 41: return "VIRTIO_F_ADMIN_VQ";
    case 52: return "VIRTIO_NET_F_VQ_NOTF_COAL";
    case 53: return "VIRTIO_NET_F_NOTF_COAL";
    case 56: return "VIRTIO_NET_F_HOST_USO";
    case 57: return "VIRTIO_NET_F_HASH_REPORT";
    case 59: return "VIRTIO_NET_F_GUEST_HDRLEN";
    case 63: return "VIRTIO_NET_F_SPEED_DUPLEX";
    // Bits our device model offers beyond the §6 table (virtio 1.2 names).
    case 7: return "VIRTIO_NET_F_GUEST_TSO4";
    case 8: return "VIRTIO_NET_F_GUEST_TSO6";
    case 9: return "VIRTIO_NET_F_GUEST_ECN";
    case 10: return "VIRTIO_NET_F_GUEST_UFO";
    case 13: return "VIRTIO_NET_F_HOST_ECN";
    case 14: return "VIRTIO_NET_F_HOST_UFO";
    case 20: return "VIRTIO_NET_F_CTRL_RX_EXTRA";
    case 28: return "VIRTIO_F_INDIRECT_DESC";
    case 29: return "VIRTIO_F_EVENT_IDX";
    case 35: return "VIRTIO_F_IN_ORDER";
    case 60: return "VIRTIO_NET_F_RSS";
    default: return nullptr;
  }
}

uint64_t spec_feature_mask() {
  // §6 table (the supported example 0x8b00037700ef982f is a subset).
  constexpr uint32_t kBits[] = {0, 1, 2, 3, 5, 11, 12, 15, 16, 17, 18, 19, 21, 22, 23,
                                32, 33, 34, 36, 37, 38, 40, 41, 52, 53, 56, 57, 59, 63};
  uint64_t m = 0;
  for (uint32_t b : kBits) m |= 1ull << b;
  return m;
}

std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }

json bits_json(uint64_t value, const char* (*name)(uint32_t), uint32_t width_bits) {
  json j = json::object();
  j["value"] = hex(value);
  uint32_t top = 0;
  for (uint32_t b = 0; b < width_bits; ++b)
    if ((value >> b & 1) && name(b)) top = b;
  int w = top >= 10 ? 2 : 1;
  for (uint32_t b = 0; b < width_bits; ++b)
    if ((value >> b & 1) && name(b)) j[fmt::format(" {:>{}}", b, w)] = name(b);
  return j;
}

json features_json(uint64_t f) { return bits_json(f, feature_name, 64); }

namespace {
const char* status_name(uint32_t bit) {
  switch (bit) {
    case 0: return "ACK";
    case 1: return "DRIVER";
    case 2: return "DRIVER_OK";
    case 3: return "FEATURES_OK";
    case 6: return "DEVICE_NEEDS_RESET";
    case 7: return "FAILED";
    default: return nullptr;
  }
}
const char* vq_type_name(uint32_t bit) { return bit == 0 ? "SPLIT" : bit == 1 ? "PACKED" : nullptr; }
const char* event_mode_name(uint32_t bit) { return bit == 0 ? "NO_MSIX_MODE" : bit == 2 ? "MSIX_MODE" : nullptr; }
}  // namespace

json status_json(uint8_t s) { return bits_json(s, status_name, 8); }
json vq_types_json(bool packed) { return bits_json(packed ? 3 : 1, vq_type_name, 2); }
json event_modes_json() { return bits_json(5, event_mode_name, 3); }

}  // namespace vdpu::service::virtnet
