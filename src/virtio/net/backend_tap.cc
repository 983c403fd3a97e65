#include "virtio/net/backend_tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

#include "base/log.h"

namespace vdpu::virtio::net {
namespace {

void bump(std::atomic<uint64_t>& a, uint64_t n = 1) {
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

Error sys_error(const std::string& what) {
  Errc c = (errno == EPERM || errno == EACCES) ? Errc::kPermission : Errc::kIo;
  return make_error(c, what + ": " + strerror(errno));
}

// Netdev ioctls (MTU, flags, index) go through any socket.
Status netdev_ioctl(unsigned long req, ifreq& ifr, const char* what) {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return sys_error("socket");
  int rc = ::ioctl(s, req, &ifr);
  int e = errno;
  ::close(s);
  errno = e;
  if (rc < 0) return sys_error(std::string(what) + " " + ifr.ifr_name);
  return {};
}

}  // namespace

Result<uint32_t> sf_number(FunctionKind kind, uint32_t index) {
  switch (kind) {
    case FunctionKind::kStaticPf:
      if (index > 999) return make_error(Errc::kInvalidArgument, "static PF SF numbers are 1000-1999");
      return 1000 + index;
    case FunctionKind::kHotplugPf:
      if (index > 999) return make_error(Errc::kInvalidArgument, "hotplug PF SF numbers are 2000-2999");
      return 2000 + index;
    case FunctionKind::kVf:
      if (index > 0xffffffu - 3000) return make_error(Errc::kInvalidArgument, "VF index out of range");
      return 3000 + index;
  }
  return make_error(Errc::kInvalidArgument, "unknown function kind");
}

Result<std::string> representor_name(const std::string& prefix, uint32_t sf_num) {
  std::string n = prefix + std::to_string(sf_num);
  if (prefix.empty() || n.size() > IFNAMSIZ - 1)
    return make_error(Errc::kInvalidArgument, "representor name '" + n + "' is empty or longer than 15 characters");
  for (char c : n)
    if (c == '/' || c == ':' || c == ' ' || c == '%')
      return make_error(Errc::kInvalidArgument, "representor name '" + n + "' has an invalid character");
  return n;
}

TapBackend::TapBackend(uint16_t pairs)
    : fds_(pairs, -1), attached_(new std::atomic<bool>[pairs]), opened_(pairs, false), stats_(pairs),
      tx_iov_(size_t(pairs) * kTxIov), rx_iov_(size_t(pairs) * kRxIov), sink_(kMaxGsoFrame + kNetHdrLen) {
  for (uint16_t q = 0; q < pairs; ++q) attached_[q] = false;
}

TapBackend::~TapBackend() {
  for (int fd : fds_)
    if (fd >= 0) ::close(fd);
}

Result<std::unique_ptr<TapBackend>> TapBackend::create(const TapOptions& o) {
  if (o.ifname.empty() || o.ifname.size() > IFNAMSIZ - 1)
    return make_error(Errc::kInvalidArgument, "TAP name '" + o.ifname + "' is empty or longer than 15 characters");
  if (o.pairs == 0 || o.pairs > 256) return make_error(Errc::kInvalidArgument, "TAP queue pairs must be 1-256");
  std::unique_ptr<TapBackend> t(new TapBackend(o.pairs));
  for (uint16_t q = 0; q < o.pairs; ++q) {
    int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return sys_error("open /dev/net/tun");
    t->fds_[q] = fd;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, o.ifname.c_str(), IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE;
    if (::ioctl(fd, TUNSETIFF, &ifr) < 0) return sys_error("TUNSETIFF " + o.ifname);
    t->name_ = ifr.ifr_name;
    t->attached_[q] = true;
  }
  int hl = int(kNetHdrLen);
  if (::ioctl(t->fds_[0], TUNSETVNETHDRSZ, &hl) < 0) return sys_error("TUNSETVNETHDRSZ");
  if (::ioctl(t->fds_[0], TUNSETOFFLOAD, 0u) < 0) return sys_error("TUNSETOFFLOAD");
  // Nobody reads the other queues yet.
  for (uint16_t q = 1; q < o.pairs; ++q) VDPU_TRY(t->set_attached(q, false));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, t->name_.c_str(), IFNAMSIZ - 1);
  if (o.mtu) {
    ifr.ifr_mtu = o.mtu;
    VDPU_TRY(netdev_ioctl(SIOCSIFMTU, ifr, "SIOCSIFMTU"));
  }
  if (o.up) {
    VDPU_TRY(netdev_ioctl(SIOCGIFFLAGS, ifr, "SIOCGIFFLAGS"));
    ifr.ifr_flags |= IFF_UP;
    VDPU_TRY(netdev_ioctl(SIOCSIFFLAGS, ifr, "SIOCSIFFLAGS"));
  }
  if (netdev_ioctl(SIOCGIFINDEX, ifr, "SIOCGIFINDEX")) t->ifindex_ = ifr.ifr_ifindex;
  VDPU_INFO("virtio-net: TAP representor {} ({} queues, ifindex {})", t->name_, o.pairs, t->ifindex_);
  return t;
}

uint64_t TapBackend::offload_features() const {
  return VIRTIO_NET_F_CSUM | VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_HOST_TSO4 | VIRTIO_NET_F_HOST_TSO6 |
         VIRTIO_NET_F_HOST_ECN | VIRTIO_NET_F_GUEST_TSO4 | VIRTIO_NET_F_GUEST_TSO6 | VIRTIO_NET_F_GUEST_ECN;
}

Status TapBackend::set_attached(uint16_t q, bool on) {
  if (attached_[q].load() == on) return {};
  ifreq ifr{};
  ifr.ifr_flags = on ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
  if (::ioctl(fds_[q], TUNSETQUEUE, &ifr) < 0) return sys_error(std::string("TUNSETQUEUE ") + name_);
  attached_[q] = on;
  return {};
}

Status TapBackend::apply_attach(uint16_t q) {
  if (q == 0) return {};
  return set_attached(q, opened_[q] && q < cfg_.active_pairs);
}

Status TapBackend::open_queue(uint16_t q) {
  if (q >= fds_.size()) return make_error(Errc::kInvalidArgument, "TAP " + name_ + ": no queue " + std::to_string(q));
  opened_[q] = true;
  return apply_attach(q);
}

void TapBackend::close_queue(uint16_t q) {
  if (q >= fds_.size()) return;
  opened_[q] = false;
  if (auto st = apply_attach(q); !st) VDPU_WARN("{}", st.error().message);
}

Status TapBackend::configure(const BackendConfig& cfg) {
  cfg_ = cfg;
  int hl = int(cfg.hdr_len);
  if (::ioctl(fds_[0], TUNSETVNETHDRSZ, &hl) < 0) return sys_error("TUNSETVNETHDRSZ");
  unsigned off = 0;
  const uint64_t g = cfg.guest_offloads;
  if (g & VIRTIO_NET_F_GUEST_CSUM) {
    off |= TUN_F_CSUM;  // TSO needs checksum offload too
    if (g & VIRTIO_NET_F_GUEST_TSO4) off |= TUN_F_TSO4;
    if (g & VIRTIO_NET_F_GUEST_TSO6) off |= TUN_F_TSO6;
    if ((g & VIRTIO_NET_F_GUEST_ECN) && (off & (TUN_F_TSO4 | TUN_F_TSO6))) off |= TUN_F_TSO_ECN;
  }
  if (::ioctl(fds_[0], TUNSETOFFLOAD, off) < 0) return sys_error("TUNSETOFFLOAD");
  for (uint16_t q = 1; q < fds_.size(); ++q) VDPU_TRY(apply_attach(q));
  return {};
}

uint32_t TapBackend::tx_burst(uint16_t q, TxPkt* pkts, uint32_t n) noexcept {
  BackendQueueStats& st = stats_[q];
  // A detached queue cannot write; queue 0 always can (the kernel serialises).
  const int fd = attached_[q].load(std::memory_order_relaxed) ? fds_[q] : fds_[0];
  iovec* v = &tx_iov_[size_t(q) * kTxIov];
  uint32_t i = 0;
  uint64_t bytes = 0, errors = 0;
  for (; i < n; ++i) {
    TxPkt& p = pkts[i];
    // The TAP header is as long as the guest's (TUNSETVNETHDRSZ); past the
    // 12 bytes we carry (v1_hash: hash fields) it is zeros.
    static const uint8_t kZero[kNetHdrHashLen - kNetHdrLen] = {};
    const uint32_t hl = cfg_.hdr_len;
    uint32_t h = 1;
    v[0].iov_base = &p.hdr;
    v[0].iov_len = std::min<uint32_t>(hl, sizeof(p.hdr));
    if (hl > sizeof(p.hdr)) v[h++] = {const_cast<uint8_t*>(kZero), hl - sizeof(p.hdr)};
    uint32_t cnt = std::min<uint32_t>(p.iovcnt, kTxIov - h);
    for (uint32_t k = 0; k < cnt; ++k) v[k + h] = p.iov[k];
    ssize_t w = ::writev(fd, v, int(cnt + h));
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;  // TAP full: the rest is dropped
      ++errors;  // refused by the kernel (malformed offload request, link down …)
      VDPU_WARN_RL("TAP {} q{}: write: {}", name_, q, strerror(errno));
      continue;
    }
    bytes += p.len;
  }
  bump(st.tx_packets, i - errors);
  bump(st.tx_bytes, bytes);
  if (errors) bump(st.tx_errors, errors);
  return i;
}

uint32_t TapBackend::rx_burst(uint16_t q, RxSlot* slots, uint32_t n) noexcept {
  if (!attached_[q].load(std::memory_order_relaxed)) return 0;
  BackendQueueStats& st = stats_[q];
  const int fd = fds_[q];
  uint32_t i = 0;
  uint64_t pk = 0, bytes = 0, dr = 0;
  for (; i < n; ++i) {
    RxSlot& s = slots[i];
    s.len = 0;
    ssize_t r;
    if (s.iovcnt < kRxIov) {
      iovec* v = &rx_iov_[size_t(q) * kRxIov];
      std::copy(s.iov, s.iov + s.iovcnt, v);
      v[s.iovcnt] = {sink_.data(), sink_.size()};
      r = ::readv(fd, v, int(s.iovcnt + 1));
    } else {
      r = ::readv(fd, s.iov, int(std::min<uint32_t>(s.iovcnt, IOV_MAX)));
    }
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // EFAULT/EINVAL: the frame did not fit the buffers; the kernel dropped it.
      ++dr;
      continue;
    }
    if (uint32_t(r) <= cfg_.hdr_len || uint64_t(r) > s.cap) {  // runt, or did not fit: dropped
      ++dr;
      continue;
    }
    s.len = uint32_t(r);
    ++pk;
    bytes += uint64_t(r) - cfg_.hdr_len;
  }
  if (pk) {
    bump(st.rx_packets, pk);
    bump(st.rx_bytes, bytes);
  }
  if (dr) bump(st.rx_dropped, dr);
  return i;
}

}  // namespace vdpu::virtio::net
