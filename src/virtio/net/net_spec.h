// virtio-net wire structures and constants (virtio 1.2 §5.1), little-endian
// on the wire. Data layout only; no policy.
#pragma once

#include <endian.h>

#include <cstdint>

namespace vdpu::virtio::net {

constexpr uint32_t kVirtioIdNet = 1;  // §5.1.1

// §5.1.3 feature bits (names as the spec; virtnet spec §6 lists what we offer).
constexpr uint64_t VIRTIO_NET_F_CSUM = 1ull << 0;
constexpr uint64_t VIRTIO_NET_F_GUEST_CSUM = 1ull << 1;
constexpr uint64_t VIRTIO_NET_F_CTRL_GUEST_OFFLOADS = 1ull << 2;
constexpr uint64_t VIRTIO_NET_F_MTU = 1ull << 3;
constexpr uint64_t VIRTIO_NET_F_MAC = 1ull << 5;
constexpr uint64_t VIRTIO_NET_F_GUEST_TSO4 = 1ull << 7;
constexpr uint64_t VIRTIO_NET_F_GUEST_TSO6 = 1ull << 8;
constexpr uint64_t VIRTIO_NET_F_GUEST_ECN = 1ull << 9;
constexpr uint64_t VIRTIO_NET_F_GUEST_UFO = 1ull << 10;
constexpr uint64_t VIRTIO_NET_F_HOST_TSO4 = 1ull << 11;
constexpr uint64_t VIRTIO_NET_F_HOST_TSO6 = 1ull << 12;
constexpr uint64_t VIRTIO_NET_F_HOST_ECN = 1ull << 13;
constexpr uint64_t VIRTIO_NET_F_HOST_UFO = 1ull << 14;
constexpr uint64_t VIRTIO_NET_F_MRG_RXBUF = 1ull << 15;
constexpr uint64_t VIRTIO_NET_F_STATUS = 1ull << 16;
constexpr uint64_t VIRTIO_NET_F_CTRL_VQ = 1ull << 17;
constexpr uint64_t VIRTIO_NET_F_CTRL_RX = 1ull << 18;
constexpr uint64_t VIRTIO_NET_F_CTRL_VLAN = 1ull << 19;
constexpr uint64_t VIRTIO_NET_F_CTRL_RX_EXTRA = 1ull << 20;
constexpr uint64_t VIRTIO_NET_F_GUEST_ANNOUNCE = 1ull << 21;
constexpr uint64_t VIRTIO_NET_F_MQ = 1ull << 22;
constexpr uint64_t VIRTIO_NET_F_CTRL_MAC_ADDR = 1ull << 23;
constexpr uint64_t VIRTIO_NET_F_NOTF_COAL = 1ull << 53;
constexpr uint64_t VIRTIO_NET_F_HASH_REPORT = 1ull << 57;
constexpr uint64_t VIRTIO_NET_F_RSS = 1ull << 60;
constexpr uint64_t VIRTIO_NET_F_SPEED_DUPLEX = 1ull << 63;

// Offloads the driver may toggle with VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET
// (§5.1.6.5.6.1: the GUEST_* bits only).
constexpr uint64_t kGuestOffloadMask = VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4 |
                                       VIRTIO_NET_F_GUEST_TSO6 | VIRTIO_NET_F_GUEST_ECN |
                                       VIRTIO_NET_F_GUEST_UFO;

// §5.1.4 config status.
constexpr uint16_t VIRTIO_NET_S_LINK_UP = 1;
constexpr uint16_t VIRTIO_NET_S_ANNOUNCE = 2;

// §5.1.4: max_virtqueue_pairs range with MQ.
constexpr uint16_t VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN = 1;
constexpr uint16_t VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX = 0x8000;

// §5.1.4 struct virtio_net_config.
struct VirtioNetConfig {
  uint8_t mac[6];
  uint16_t status;
  uint16_t max_virtqueue_pairs;
  uint16_t mtu;
  uint32_t speed;
  uint8_t duplex;
  uint8_t rss_max_key_size;
  uint16_t rss_max_indirection_table_length;
  uint32_t supported_hash_types;
} __attribute__((packed));
static_assert(sizeof(VirtioNetConfig) == 24);
constexpr uint32_t kCfgStatusOff = 6;
constexpr uint8_t DUPLEX_HALF = 0, DUPLEX_FULL = 1, DUPLEX_UNKNOWN = 0xff;
constexpr uint32_t SPEED_UNKNOWN = 0xffffffffu;

// §5.1.6 struct virtio_net_hdr (+ num_buffers: the 12-byte form used with
// VIRTIO_F_VERSION_1 or VIRTIO_NET_F_MRG_RXBUF).
constexpr uint8_t VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
constexpr uint8_t VIRTIO_NET_HDR_F_DATA_VALID = 2;
constexpr uint8_t VIRTIO_NET_HDR_F_RSC_INFO = 4;
constexpr uint8_t VIRTIO_NET_HDR_GSO_NONE = 0;
constexpr uint8_t VIRTIO_NET_HDR_GSO_TCPV4 = 1;
constexpr uint8_t VIRTIO_NET_HDR_GSO_UDP = 3;
constexpr uint8_t VIRTIO_NET_HDR_GSO_TCPV6 = 4;
constexpr uint8_t VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
constexpr uint8_t VIRTIO_NET_HDR_GSO_ECN = 0x80;

struct VirtioNetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
  uint16_t num_buffers;
} __attribute__((packed));
static_assert(sizeof(VirtioNetHdr) == 12);
// §5.1.6 struct virtio_net_hdr_v1_hash: the header of both directions when
// VIRTIO_NET_F_HASH_REPORT is negotiated (the device fills hash_value /
// hash_report on receive; the driver leaves them 0 on transmit).
struct VirtioNetHdrHash {
  VirtioNetHdr hdr;
  uint32_t hash_value;
  uint16_t hash_report;
  uint16_t padding_reserved;
} __attribute__((packed));
static_assert(sizeof(VirtioNetHdrHash) == 20);
constexpr uint32_t kNetHdrHashLen = 20;
constexpr uint32_t kHashValueOff = 12;
constexpr uint32_t kNetHdrLegacyLen = 10;  // without num_buffers (legacy, no MRG_RXBUF)
constexpr uint32_t kNetHdrLen = 12;
constexpr uint32_t kNumBuffersOff = 10;

// §5.1.6.5 control virtqueue: struct virtio_net_ctrl { u8 class; u8 command;
// u8 command-specific-data[]; u8 ack; }.
struct VirtioNetCtrlHdr {
  uint8_t cls;
  uint8_t cmd;
} __attribute__((packed));
static_assert(sizeof(VirtioNetCtrlHdr) == 2);
constexpr uint8_t VIRTIO_NET_OK = 0;
constexpr uint8_t VIRTIO_NET_ERR = 1;

constexpr uint8_t VIRTIO_NET_CTRL_RX = 0;  // §5.1.6.5.1
constexpr uint8_t VIRTIO_NET_CTRL_RX_PROMISC = 0;
constexpr uint8_t VIRTIO_NET_CTRL_RX_ALLMULTI = 1;
constexpr uint8_t VIRTIO_NET_CTRL_RX_ALLUNI = 2;
constexpr uint8_t VIRTIO_NET_CTRL_RX_NOMULTI = 3;
constexpr uint8_t VIRTIO_NET_CTRL_RX_NOUNI = 4;
constexpr uint8_t VIRTIO_NET_CTRL_RX_NOBCAST = 5;

constexpr uint8_t VIRTIO_NET_CTRL_MAC = 1;  // §5.1.6.5.2
constexpr uint8_t VIRTIO_NET_CTRL_MAC_TABLE_SET = 0;
constexpr uint8_t VIRTIO_NET_CTRL_MAC_ADDR_SET = 1;

constexpr uint8_t VIRTIO_NET_CTRL_VLAN = 2;  // §5.1.6.5.3
constexpr uint8_t VIRTIO_NET_CTRL_VLAN_ADD = 0;
constexpr uint8_t VIRTIO_NET_CTRL_VLAN_DEL = 1;

constexpr uint8_t VIRTIO_NET_CTRL_ANNOUNCE = 3;  // §5.1.6.5.4
constexpr uint8_t VIRTIO_NET_CTRL_ANNOUNCE_ACK = 0;

constexpr uint8_t VIRTIO_NET_CTRL_MQ = 4;  // §5.1.6.5.5
constexpr uint8_t VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET = 0;
constexpr uint8_t VIRTIO_NET_CTRL_MQ_RSS_CONFIG = 1;
constexpr uint8_t VIRTIO_NET_CTRL_MQ_HASH_CONFIG = 2;

constexpr uint8_t VIRTIO_NET_CTRL_GUEST_OFFLOADS = 5;  // §5.1.6.5.6
constexpr uint8_t VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET = 0;

constexpr uint8_t VIRTIO_NET_CTRL_NOTF_COAL = 6;  // virtio 1.3 §5.1.6.5.9
constexpr uint8_t VIRTIO_NET_CTRL_NOTF_COAL_TX_SET = 0;
constexpr uint8_t VIRTIO_NET_CTRL_NOTF_COAL_RX_SET = 1;

// §5.1.6.4.3.1 supported / selected hash types.
constexpr uint32_t VIRTIO_NET_HASH_TYPE_IPv4 = 1u << 0;
constexpr uint32_t VIRTIO_NET_HASH_TYPE_TCPv4 = 1u << 1;
constexpr uint32_t VIRTIO_NET_HASH_TYPE_UDPv4 = 1u << 2;
constexpr uint32_t VIRTIO_NET_HASH_TYPE_IPv6 = 1u << 3;
constexpr uint32_t VIRTIO_NET_HASH_TYPE_TCPv6 = 1u << 4;
constexpr uint32_t VIRTIO_NET_HASH_TYPE_UDPv6 = 1u << 5;
constexpr uint32_t VIRTIO_NET_HASH_TYPE_IP_EX = 1u << 6;
constexpr uint32_t VIRTIO_NET_HASH_TYPE_TCP_EX = 1u << 7;
constexpr uint32_t VIRTIO_NET_HASH_TYPE_UDP_EX = 1u << 8;
constexpr uint32_t kHashTypesAll = 0x1ff;  // every type the spec defines
// The types this device computes: the six without IPv6 extension-header
// address substitution (_EX types are not implemented).
constexpr uint32_t kHashTypesSupported = 0x3f;

// §5.1.6.4.3.4 hash_report values.
constexpr uint16_t VIRTIO_NET_HASH_REPORT_NONE = 0;
constexpr uint16_t VIRTIO_NET_HASH_REPORT_IPv4 = 1;
constexpr uint16_t VIRTIO_NET_HASH_REPORT_TCPv4 = 2;
constexpr uint16_t VIRTIO_NET_HASH_REPORT_UDPv4 = 3;
constexpr uint16_t VIRTIO_NET_HASH_REPORT_IPv6 = 4;
constexpr uint16_t VIRTIO_NET_HASH_REPORT_TCPv6 = 5;
constexpr uint16_t VIRTIO_NET_HASH_REPORT_UDPv6 = 6;

// Config rss_max_key_size (virtnet §4.6: only 40) and
// rss_max_indirection_table_length.
constexpr uint8_t kRssMaxKeySize = 40;
constexpr uint16_t kRssMaxIndirLen = 128;

// Ethernet.
constexpr uint32_t kEthAddrLen = 6;
constexpr uint32_t kEthHdrLen = 14;
constexpr uint32_t kVlanTagLen = 4;
constexpr uint16_t kEthPVlan = 0x8100;
constexpr uint16_t kMaxVlanId = 4095;
constexpr uint32_t kMaxGsoFrame = 65535 + kEthHdrLen + kVlanTagLen;  // largest TSO frame
// virtnet spec §8: jumbo MTU up to 9216.
constexpr uint16_t kMinMtu = 68;
constexpr uint16_t kMaxMtu = 9216;

}  // namespace vdpu::virtio::net
