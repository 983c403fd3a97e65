#include "virtio/net/net_ctrl.h"

#include <algorithm>
#include <cstring>

#include "base/log.h"

namespace vdpu::virtio::net {
namespace {

uint32_t le32_at(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return le32toh(v);
}
uint16_t le16_at(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return le16toh(v);
}

CtrlResult ok(uint32_t eff) { return CtrlResult{VIRTIO_NET_OK, eff}; }
CtrlResult err() { return CtrlResult{}; }

// §5.1.6.5.1: class VIRTIO_NET_CTRL_RX, one u8 on/off.
CtrlResult rx_mode(CtrlState& st, uint64_t f, uint8_t cmd, const uint8_t* d, uint32_t len) {
  if (!(f & VIRTIO_NET_F_CTRL_RX)) return err();
  if (len != 1 || d[0] > 1) return err();
  const bool on = d[0] == 1;
  // PROMISC and ALLMULTI come with CTRL_RX; the others need CTRL_RX_EXTRA.
  if (cmd > VIRTIO_NET_CTRL_RX_ALLMULTI && !(f & VIRTIO_NET_F_CTRL_RX_EXTRA)) return err();
  RxFilter& r = st.filter;
  switch (cmd) {
    case VIRTIO_NET_CTRL_RX_PROMISC: r.promisc = on; break;
    case VIRTIO_NET_CTRL_RX_ALLMULTI: r.allmulti = on; break;
    case VIRTIO_NET_CTRL_RX_ALLUNI: r.alluni = on; break;
    case VIRTIO_NET_CTRL_RX_NOMULTI: r.nomulti = on; break;
    case VIRTIO_NET_CTRL_RX_NOUNI: r.nouni = on; break;
    case VIRTIO_NET_CTRL_RX_NOBCAST: r.nobcast = on; break;
    default: return err();
  }
  return ok(kCtrlEffFilter);
}

// §5.1.6.5.2: MAC_TABLE_SET = le32 n + n unicast MACs, le32 m + m multicast
// MACs; MAC_ADDR_SET = one MAC.
CtrlResult mac(CtrlState& st, uint64_t f, uint8_t cmd, const uint8_t* d, uint32_t len) {
  if (cmd == VIRTIO_NET_CTRL_MAC_ADDR_SET) {
    if (!(f & VIRTIO_NET_F_CTRL_MAC_ADDR) || len != kEthAddrLen) return err();
    std::memcpy(st.filter.mac.data(), d, kEthAddrLen);
    return ok(kCtrlEffFilter | kCtrlEffMac);
  }
  if (cmd != VIRTIO_NET_CTRL_MAC_TABLE_SET || !(f & VIRTIO_NET_F_CTRL_RX)) return err();
  if (len < 4) return err();
  uint64_t n = le32_at(d);
  uint64_t off = 4 + n * kEthAddrLen;
  if (off + 4 > len) return err();
  uint64_t m = le32_at(d + off);
  if (off + 4 + m * kEthAddrLen != len) return err();
  RxFilter& r = st.filter;
  RxFilter nr = r;
  nr.n_uni = nr.n_multi = 0;
  nr.uni_overflow = n > RxFilter::kMacTableMax;
  nr.multi_overflow = m > RxFilter::kMacTableMax;
  const uint8_t* p = d + 4;
  for (uint64_t i = 0; i < n; ++i, p += kEthAddrLen) {
    if (p[0] & 1) return err();  // "non-multicast MAC addresses"
    if (!nr.uni_overflow) std::memcpy(nr.uni[nr.n_uni++].data(), p, kEthAddrLen);
  }
  p += 4;
  for (uint64_t i = 0; i < m; ++i, p += kEthAddrLen) {
    if (!(p[0] & 1)) return err();
    if (!nr.multi_overflow) std::memcpy(nr.multi[nr.n_multi++].data(), p, kEthAddrLen);
  }
  r = nr;
  return ok(kCtrlEffFilter);
}

// §5.1.6.5.3: VLAN_ADD / VLAN_DEL with a le16 VID.
CtrlResult vlan(CtrlState& st, uint64_t f, uint8_t cmd, const uint8_t* d, uint32_t len) {
  if (!(f & VIRTIO_NET_F_CTRL_VLAN) || len != 2) return err();
  uint16_t vid = le16_at(d);
  if (vid > kMaxVlanId) return err();
  if (cmd == VIRTIO_NET_CTRL_VLAN_ADD) st.filter.vlans.set(vid);
  else if (cmd == VIRTIO_NET_CTRL_VLAN_DEL) st.filter.vlans.reset(vid);
  else return err();
  return ok(kCtrlEffFilter);
}

// §5.1.6.5.7 VIRTIO_NET_CTRL_MQ_RSS_CONFIG: struct virtio_net_rss_config
// { le32 hash_types; le16 indirection_table_mask; rss_rq_id
// unclassified_queue; rss_rq_id indirection_table[mask + 1]; le16 max_tx_vq;
// u8 hash_key_length; u8 hash_key_data[]; }. rss_rq_id (1.3) is the
// receive queue index (virtqueue index / 2) with bit 15 reserved (0).
CtrlResult rss_config(CtrlState& st, uint64_t f, const CtrlLimits& lim, const uint8_t* d, uint32_t len) {
  if (!(f & VIRTIO_NET_F_RSS) || len < 4 + 2 + 2) return err();
  const uint32_t types = le32_at(d);
  const uint32_t mask = le16_at(d + 4);
  const uint32_t n = mask + 1;
  // "The number of entries in indirection_table (indirection_table_mask + 1)
  // MUST be a power of two" and not above rss_max_indirection_table_length.
  if ((n & mask) != 0 || n > kRssMaxIndirLen) return err();
  const uint32_t tail = 4 + 2 + 2 + 2 * n;  // max_tx_vq, key length follow
  if (len < tail + 3) return err();
  const uint32_t key_len = d[tail + 2];
  if (len != tail + 3 + key_len) return err();
  if (key_len > kRssMaxKeySize) return err();     // above rss_max_key_size
  if (types & ~lim.hash_types) return err();      // "MUST NOT set any ... not supported"
  const uint16_t max_tx_vq = le16_at(d + tail);
  if (max_tx_vq < 1 || max_tx_vq > lim.max_pairs) return err();
  // "A driver MUST fill the indirection_table array only with indices of
  // enabled queues"; the same for unclassified_queue.
  auto enabled = [&](uint16_t q) { return q < lim.max_pairs && (!lim.rx_enabled || lim.rx_enabled[q]); };
  RssConfig r = st.rss;
  r.steer = true;
  r.hash_types = types;
  r.mask = uint16_t(mask);
  r.unclassified = le16_at(d + 6);
  if (!enabled(r.unclassified)) return err();
  uint16_t top = r.unclassified;
  for (uint32_t i = 0; i < n; ++i) {
    uint16_t q = le16_at(d + 8 + 2 * i);
    if (!enabled(q)) return err();
    r.table[i] = q;
    top = std::max(top, q);
  }
  r.key_len = uint8_t(key_len);
  std::memset(r.key, 0, sizeof(r.key));
  std::memcpy(r.key, d + tail + 3, key_len);
  st.rss = r;
  // RSS_CONFIG replaces VQ_PAIRS_SET: the driver may use max_tx_vq transmit
  // queues, and every receive queue the table names must run.
  st.pairs = std::max<uint16_t>(max_tx_vq, uint16_t(top + 1));
  return ok(kCtrlEffRss | kCtrlEffPairs);
}

// §5.1.6.5.8 VIRTIO_NET_CTRL_MQ_HASH_CONFIG: struct virtio_net_hash_config
// { le32 hash_types; le16 reserved[4]; u8 hash_key_length; u8 hash_key_data[]; }:
// hash for reporting only, no steering.
CtrlResult hash_config(CtrlState& st, uint64_t f, const CtrlLimits& lim, const uint8_t* d, uint32_t len) {
  if (!(f & VIRTIO_NET_F_HASH_REPORT) || len < 4 + 8 + 1) return err();
  const uint32_t types = le32_at(d);
  const uint32_t key_len = d[12];
  if (len != 13 + key_len || key_len > kRssMaxKeySize || (types & ~lim.hash_types)) return err();
  RssConfig& r = st.rss;
  r.steer = false;
  r.hash_types = types;
  r.key_len = uint8_t(key_len);
  std::memset(r.key, 0, sizeof(r.key));
  std::memcpy(r.key, d + 13, key_len);
  return ok(kCtrlEffRss);
}

// virtio 1.3 §5.1.6.5.9: NOTF_COAL_TX_SET / RX_SET with struct
// virtio_net_ctrl_coal { le32 max_packets; le32 max_usecs; }.
CtrlResult notf_coal(CtrlState& st, uint64_t f, uint8_t cmd, const uint8_t* d, uint32_t len) {
  if (!(f & VIRTIO_NET_F_NOTF_COAL) || len != 8) return err();
  CoalParams p{le32_at(d), le32_at(d + 4)};
  if (cmd == VIRTIO_NET_CTRL_NOTF_COAL_TX_SET) st.tx_coal = p;
  else if (cmd == VIRTIO_NET_CTRL_NOTF_COAL_RX_SET) st.rx_coal = p;
  else return err();
  return ok(kCtrlEffCoal);
}

}  // namespace

CtrlResult apply_ctrl(CtrlState& st, uint64_t f, const CtrlLimits& lim, uint8_t cls, uint8_t cmd,
                      const uint8_t* d, uint32_t len) noexcept {
  const uint16_t max_pairs = lim.max_pairs;
  switch (cls) {
    case VIRTIO_NET_CTRL_RX: return rx_mode(st, f, cmd, d, len);
    case VIRTIO_NET_CTRL_MAC: return mac(st, f, cmd, d, len);
    case VIRTIO_NET_CTRL_VLAN: return vlan(st, f, cmd, d, len);
    case VIRTIO_NET_CTRL_ANNOUNCE:
      // §5.1.6.5.4: the driver acks the announce; the device clears the bit.
      if (!(f & VIRTIO_NET_F_GUEST_ANNOUNCE) || cmd != VIRTIO_NET_CTRL_ANNOUNCE_ACK || len != 0) return err();
      st.status &= uint16_t(~VIRTIO_NET_S_ANNOUNCE);
      return ok(kCtrlEffStatus);
    case VIRTIO_NET_CTRL_MQ: {
      if (cmd == VIRTIO_NET_CTRL_MQ_RSS_CONFIG) return rss_config(st, f, lim, d, len);
      if (cmd == VIRTIO_NET_CTRL_MQ_HASH_CONFIG) return hash_config(st, f, lim, d, len);
      // §5.1.6.5.5: "The device MUST NOT queue packets on receive queues
      // greater than virtqueue_pairs"; out-of-range values are an error.
      if (!(f & VIRTIO_NET_F_MQ) || cmd != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET || len != 2) return err();
      uint16_t n = le16_at(d);
      if (n < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || n > max_pairs) return err();
      st.pairs = n;
      // Automatic steering over the new pairs: RSS steering ends (as QEMU).
      if (st.rss.steer) {
        st.rss.steer = false;
        return ok(kCtrlEffPairs | kCtrlEffRss);
      }
      return ok(kCtrlEffPairs);
    }
    case VIRTIO_NET_CTRL_NOTF_COAL:
      return notf_coal(st, f, cmd, d, len);
    case VIRTIO_NET_CTRL_GUEST_OFFLOADS: {
      // §5.1.6.5.6.2: "A driver MUST NOT enable an offload for which the
      // appropriate feature has not been negotiated."
      if (!(f & VIRTIO_NET_F_CTRL_GUEST_OFFLOADS) || cmd != VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET || len != 8)
        return err();
      uint64_t v;
      std::memcpy(&v, d, 8);
      v = le64toh(v);
      if (v & ~(f & kGuestOffloadMask)) return err();
      st.guest_offloads = v;
      return ok(kCtrlEffOffloads);
    }
    default:
      return err();
  }
}

}  // namespace vdpu::virtio::net
