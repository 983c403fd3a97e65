// What the virtnet manager drives for one emulated virtio-net function: the
// device model (virtio::net::NetDevice), its TAP representor (or an
// in-process backend) and its transport (a vhost-user-net server on the
// function's socket). The real implementation is endpoint_vhost.cc; unit
// tests use a fake. The manager's rules (ids, names, ranges, recovery,
// "driver must be unbound") are tested through this seam without sockets.
//
// Threads: every method on the control-plane (main) reactor; callbacks run
// there too.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "virtio/net/net_device.h"

namespace vdpu::service::virtnet {

// Everything needed to (re)build the device model.
struct EndpointConfig {
  std::string name;       // the VUID (logs)
  std::string socket;     // vhost-user socket path
  std::string rep_name;   // representor (TAP) name
  virtio::net::NetOptions net;
};

// A snapshot for list/query/health.
struct EndpointInfo {
  bool connected = false;     // a front-end (QEMU, DPDK) is on the socket
  bool driver_bound = false;  // queues started (the guest driver uses the device)
  uint64_t device_features = 0;
  uint64_t driver_features = 0;  // valid once a driver negotiated
  uint32_t enabled_queues = 0;
  std::vector<bool> queue_started;  // per VQ (data queues then ctrl)
  virtio::net::MacAddr ctrl_mac{};
  uint16_t ctrl_mq = 0;
  int rep_ifindex = 0;
  std::string rep_name;
  uint64_t vhost_bad_messages = 0;
};

class Endpoint {
 public:
  virtual ~Endpoint() = default;

  virtual EndpointInfo info() const = 0;
  virtual std::vector<virtio::net::NetVqStats> vq_stats(std::optional<uint16_t> qid) const = 0;

  // Runtime changes the device model allows while no driver is bound
  // (kBusy otherwise).
  virtual Status set_mac(const virtio::net::MacAddr& mac) = 0;
  virtual Status set_mtu(uint16_t mtu) = 0;
  virtual Status set_speed(uint32_t mbps) = 0;
  // Allowed any time (config-change notification).
  virtual void set_link(bool up) = 0;
  virtual void set_packet_counters(bool on) = 0;
  // supported_hash_types (RSS / HASH_REPORT offered when != 0): kBusy while
  // a driver is bound, kInvalidArgument beyond what the device hashes.
  virtual Status set_hash_types(uint32_t types) = 0;
  // DIM (adaptive notification coalescing) and the device-side RX
  // moderation (modify queue -n/-c); running queues follow at once.
  virtual void set_dim(bool on) = 0;
  virtual void set_rx_moderation(const virtio::net::CoalParams& p) = 0;

  // Rebuilds the device model with new options (features, queues, queue
  // size), keeping the representor. The front-end is disconnected and may
  // reconnect. Errors: kBusy (driver bound), the device model's validate().
  virtual void reconfigure(const virtio::net::NetOptions& o, std::function<void(Status)> done) = 0;

  // Stops the queues, closes the socket (unlinks it) and the representor.
  virtual void destroy(std::function<void()> done) = 0;
};

// Creates a plugged endpoint (listening on cfg.socket). Errors: kIo /
// kPermission (TAP, socket), kInvalidArgument (options).
using EndpointFactory = std::function<Result<std::unique_ptr<Endpoint>>(const EndpointConfig& cfg)>;

// The real factory: backend "tap" (representor), "drop" or "loopback"
// (in-process, for tests without CAP_NET_ADMIN). `on_rep` is told when a
// representor is created or destroyed (the HA supervisor holds it open).
EndpointFactory vhost_endpoint_factory(rt::Runtime& rt, std::string backend,
                                       std::function<void(const std::string& rep, bool created)> on_rep);

}  // namespace vdpu::service::virtnet
