// The TAP "representor" backend (virtnet spec §1 software mapping): one
// multi-queue TAP netdev per device (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
// IFF_MULTI_QUEUE), one queue fd per queue pair. What the guest transmits is
// written to the TAP (writev of [virtio_net_hdr][frame] straight from guest
// memory); what the kernel sends to the TAP is read straight into the guest's
// receive buffers (readv; the kernel writes the virtio_net_hdr itself,
// TUNSETVNETHDRSZ = the negotiated header length). TUNSETOFFLOAD follows the
// guest offloads (GUEST_CSUM/TSO4/TSO6/ECN), so the kernel never hands us a
// frame the guest cannot take.
//
// Queue fds of pairs the guest does not use are detached (TUNSETQUEUE), so
// the kernel steers no flow to a queue nobody reads; queue 0 always stays
// attached (device-wide ioctls go through it).
//
// One read/write system call per packet: the TAP interface has no batched
// call; everything else is batched.
//
// Threads: as NetBackend. create() and the control methods on the control
// plane; the fds are non-blocking.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "virtio/net/net_backend.h"

namespace vdpu::virtio::net {

// virtnet spec §1: representor names "<prefix><SF number>", SF numbers by
// function kind: static PF 1000-1999, hotplug PF 2000-2999, VF >= 3000.
constexpr const char* kRepresentorPrefix = "en3f0pf0sf";
enum class FunctionKind { kStaticPf, kHotplugPf, kVf };
// The SF number of the index-th function of a kind. kInvalidArgument when
// the index leaves the kind's range (static/hotplug: 0..999).
Result<uint32_t> sf_number(FunctionKind kind, uint32_t index);
// prefix + decimal sf_num; kInvalidArgument if longer than IFNAMSIZ - 1 (15)
// characters or empty.
Result<std::string> representor_name(const std::string& prefix, uint32_t sf_num);

struct TapOptions {
  std::string ifname;  // <= 15 characters
  uint16_t pairs = 1;  // queue fds
  uint16_t mtu = 0;    // set on the netdev when != 0 (jumbo: up to 9216)
  bool up = false;     // bring the link up (normally the operator's job)
};

class TapBackend final : public NetBackend {
 public:
  // Errors: kInvalidArgument (name, pairs), kIo / kPermission (no
  // /dev/net/tun, no CAP_NET_ADMIN, name in use by a non-TAP device).
  static Result<std::unique_ptr<TapBackend>> create(const TapOptions& o);
  ~TapBackend() override;

  const char* kind() const override { return "tap"; }
  std::string ifname() const override { return name_; }
  int ifindex() const { return ifindex_; }
  uint64_t offload_features() const override;
  Status open_queue(uint16_t q) override;
  void close_queue(uint16_t q) override;
  Status configure(const BackendConfig& cfg) override;
  uint32_t tx_burst(uint16_t q, TxPkt* pkts, uint32_t n) noexcept override;
  uint32_t rx_burst(uint16_t q, RxSlot* slots, uint32_t n) noexcept override;
  int rx_wake_fd(uint16_t q) const override { return q < fds_.size() ? fds_[q] : -1; }
  const BackendQueueStats& stats(uint16_t q) const override { return stats_[q]; }
  // Queue q's fd attached to the TAP (tests).
  bool attached(uint16_t q) const { return q < fds_.size() && attached_[q].load(std::memory_order_relaxed); }

 private:
  explicit TapBackend(uint16_t pairs);
  Status set_attached(uint16_t q, bool on);
  Status apply_attach(uint16_t q);

  std::string name_;
  int ifindex_ = 0;
  std::vector<int> fds_;
  // Written on the control plane, read by the data path.
  std::unique_ptr<std::atomic<bool>[]> attached_;
  std::vector<bool> opened_;
  BackendConfig cfg_;
  std::vector<BackendQueueStats> stats_;
  std::vector<iovec> tx_iov_;  // per queue scratch: header + frame iovecs
  static constexpr uint32_t kTxIov = 66;
  // RX: the slot's iovecs plus a sink, so that a frame larger than the guest
  // buffers shows up as r > cap (the TAP truncates silently) and is dropped.
  std::vector<iovec> rx_iov_;  // per queue
  static constexpr uint32_t kRxIov = 65;
  std::vector<uint8_t> sink_;  // shared by all queues: its content is never read
};

}  // namespace vdpu::virtio::net
