// virtio-net device model (virtio 1.2 §5.1) behind the virtio::Device seam,
// plus the control API the virtnet service needs (link, announce, MAC/MTU
// while no driver is bound, per-queue stats as `virtnet stats` prints them).
//
// Queues: VQ 2n = receiveq n, 2n+1 = transmitq n, the control queue last
// (2 * max_queue_pairs) when offered (virtnet spec §4.4 numbering). Both
// queues of a pair run on one data reactor, chosen by Runtime::pick() when
// the pair's first queue starts; per reactor, one poller serves all of this
// device's queues there (event mode: kick fds and the backend's RX fds are
// wake fds, prepare_sleep arms guest notifications). The control queue is
// served on the main (control-plane) reactor: on its kick fd, and every
// millisecond for drivers that do not kick.
//
// Active queue pairs: with the control queue running, VIRTIO_NET_CTRL_MQ
// decides (1 after reset, §5.1.6.5.5); without it (vhost-user front-ends
// such as QEMU or DPDK virtio_user handle the control queue themselves and
// enable rings instead) every started pair is active.
//
// Threads: every public method on the control-plane (main) reactor;
// asynchronous results come back there. Lifetime: stop every queue
// (stop_all) and let its callback run before destroying the device.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runtime/runtime.h"
#include "virtio/device.h"
#include "virtio/net/net_backend.h"
#include "virtio/net/net_ctrl.h"
#include "virtio/net/net_queue.h"
#include "virtio/net/net_rss.h"

namespace vdpu::virtio::net {

struct NetOptions {
  MacAddr mac{};                 // config mac (VIRTIO_NET_F_MAC)
  uint16_t mtu = 1500;           // kMinMtu..kMaxMtu (virtnet §8: jumbo up to 9216)
  uint16_t max_queue_pairs = 1;  // 1..256; MQ offered when > 1 (needs ctrl_vq)
  uint16_t queue_size = 256;     // max queue size: power of 2, 4..32768
  uint32_t speed = 100000;       // Mb/s (SPEED_DUPLEX); SPEED_UNKNOWN allowed
  uint8_t duplex = DUPLEX_FULL;
  bool link_up = true;
  bool ctrl_vq = true;           // control queue + CTRL_RX/VLAN/MAC_ADDR/ANNOUNCE/GUEST_OFFLOADS
  bool mrg_rxbuf = true;         // VIRTIO_NET_F_MRG_RXBUF (virtnet.conf mrg_rxbuf)
  bool packed = true;            // VIRTIO_F_RING_PACKED (virtnet.conf packed_vq)
  bool event_idx = true;
  bool indirect = true;
  uint64_t features_mask = 0;    // != 0: offer only these bits (virtnet -f / static_pf.features)
  bool packet_counters = false;  // RX size histogram (virtnet -pkt_cnt)
  // supported_hash_types (virtnet -o): VIRTIO_NET_F_RSS and HASH_REPORT are
  // offered (with the control queue) when != 0; subset of kHashTypesSupported.
  uint32_t hash_types = kHashTypesSupported;
  bool dim = false;              // adaptive notification coalescing (virtnet -dim)
  CoalParams rx_moderation;      // device-side RX coalescing (virtnet modify queue -n/-c)
};
// kInvalidArgument naming the parameter.
Status validate(const NetOptions& o);

// One data VQ's counters (virtnet stats §4.5) plus the backend's view.
struct NetVqStats {
  uint16_t index = 0;
  bool rx = false;
  bool started = false;
  int core = -1;
  uint64_t received_desc = 0, completed_desc = 0, bad_desc_errors = 0, error_cqes = 0;
  uint64_t exceed_max_chain = 0, invalid_buffer = 0, batch_number = 0, max_post_desc_number = 0;
  uint64_t handler_schd_number = 0, total_bytes = 0, packets = 0, dropped = 0, filtered = 0;
  uint64_t hist[kRxHistBuckets] = {};
  uint64_t rss_steered = 0, rss_dropped = 0, notifications = 0;
  uint64_t backend_dropped = 0;  // RX: frames the backend lost (num_desc_drop_pkts)
};
// `virtnet stats` body: {"packet_counters": "Enabled"|"Disabled", "queues-stats": [...]}
// (the service wraps it in {"device": {"pf_id": …, …}}).
nlohmann::json stats_json(const std::vector<NetVqStats>& v, bool packet_counters);

class NetDevice final : public Device {
 public:
  // Control plane. The backend serves max_queue_pairs pairs. Errors:
  // validate()'s, kInvalidArgument (backend missing).
  static Result<std::unique_ptr<NetDevice>> create(const NetOptions& o, std::unique_ptr<NetBackend> backend,
                                                   rt::Runtime& rt);
  ~NetDevice() override;

  // --- virtio::Device ---
  uint32_t device_id() const override { return kVirtioIdNet; }
  uint64_t device_features() const override { return features_; }
  uint16_t num_queues() const override { return uint16_t(2 * opts_.max_queue_pairs + (opts_.ctrl_vq ? 1 : 0)); }
  uint16_t max_queue_size() const override { return opts_.queue_size; }
  void read_config(uint32_t offset, std::span<uint8_t> out) const override;
  // Every field is read-only for a modern driver (§5.1.4): kUnsupported.
  Status write_config(uint32_t offset, std::span<const uint8_t> in) override;
  // kInvalidArgument for bits not offered or broken dependencies (§5.1.3.1).
  Status set_features(uint64_t features) override;
  void start_queue(uint16_t qid, const QueueConfig& cfg, std::function<void(Status)> done) override;
  void stop_queue(uint16_t qid, std::function<void(QueueState)> done) override;
  void update_memory(hostmem::MemoryMapPtr mem) override;
  void reset() override;

  // --- control API (service layer, main reactor) ---
  // Link status (VIRTIO_NET_S_LINK_UP); fires the config-change hook.
  void set_link(bool up);
  // Asks the driver to announce itself (VIRTIO_NET_S_ANNOUNCE; needs
  // GUEST_ANNOUNCE negotiated, else kState).
  Status announce();
  // Permanent MAC / MTU / speed: kBusy while a driver has queues started.
  Status set_mac(const MacAddr& mac);
  Status set_mtu(uint16_t mtu);
  Status set_speed(uint32_t mbps, uint8_t duplex);
  void set_packet_counters(bool on);
  // supported_hash_types: kBusy while a driver has queues started,
  // kInvalidArgument for types this device cannot hash.
  Status set_hash_types(uint32_t types);
  // DIM on/off and the device-side RX moderation; applied to running queues.
  void set_dim(bool on);
  void set_rx_moderation(const CoalParams& p);
  // A transport that can signal config changes (virtio-pci MSI-X, vhost-user
  // CONFIG_CHANGE_MSG) registers here.
  void set_config_change_hook(std::function<void()> fn) { config_hook_ = std::move(fn); }
  // Stops every started queue (device destroy); done on main.
  void stop_all(std::function<void()> done);

  const NetOptions& options() const { return opts_; }
  NetBackend& backend() { return *be_; }
  uint64_t negotiated_features() const { return negotiated_; }
  const CtrlState& ctrl_state() const { return ctrl_; }  // ctrl_mac, ctrl_mq, rx mode
  uint16_t active_pairs() const;
  uint32_t hdr_len() const { return hdr_len_; }
  bool queue_started(uint16_t qid) const { return qid < slots_.size() && slots_[qid].q; }
  uint32_t enabled_queues() const;
  bool packet_counters() const { return packet_counters_; }
  // Control-queue commands answered (OK / ERR) and malformed ones.
  struct CtrlCounters {
    uint64_t ok = 0, err = 0, bad = 0;
  };
  const CtrlCounters& ctrl_counters() const { return ctrl_counters_; }
  // Synchronous snapshot of every data VQ (relaxed atomics); qid filters one.
  std::vector<NetVqStats> vq_stats(std::optional<uint16_t> qid = std::nullopt) const;

 private:
  struct Group;  // this device's queues on one reactor
  struct Slot {
    std::unique_ptr<NetQueueBase> q;
    uint32_t reactor = 0;
    bool stopping = false;
    std::vector<std::function<void(QueueState)>> waiters;
  };
  struct Ctrl;  // the control queue (main reactor)

  NetDevice(const NetOptions& o, std::unique_ptr<NetBackend> be, rt::Runtime& rt);
  uint64_t compute_features() const;
  CoalParams coal_for(bool rx) const;
  RssConfig rss_for_queues() const;
  RssFabric* ensure_fabric();
  void fill_config();
  void reset_ctrl_state();
  uint32_t max_rx_frame() const;
  NetQueueParams queue_params(uint16_t qid) const;
  BackendConfig backend_config() const;
  void apply_backend_config();
  void to_main(std::function<void()> fn);
  // Runs work on the reactor of every started data queue; all_done on main.
  void for_each_queue(std::function<void(NetQueueBase&)> work, std::function<void()> all_done);
  void start_ctrl(const QueueConfig& cfg, std::function<void(Status)> done);
  void stop_ctrl(std::function<void(QueueState)> done);
  void ctrl_poll();
  void propagate(uint32_t effects, std::function<void()> done);
  void config_changed();
  void update_rx_running();

  NetOptions opts_;
  std::unique_ptr<NetBackend> be_;
  rt::Runtime& rt_;
  uint64_t features_ = 0;
  uint64_t negotiated_ = 0;
  uint32_t hdr_len_ = kNetHdrLen;
  bool packet_counters_ = false;
  VirtioNetConfig config_{};
  CtrlState ctrl_;
  CtrlCounters ctrl_counters_;
  std::vector<Slot> slots_;                       // data VQs
  std::unique_ptr<NetQueueCounters[]> counters_;  // per data VQ, cumulative
  std::vector<int> pair_reactor_;                 // -1: pair not placed
  std::vector<std::unique_ptr<Group>> groups_;    // index: reactor
  std::unique_ptr<Ctrl> cq_;
  std::unique_ptr<RssFabric> fabric_;             // RSS rings, created on the first RSS_CONFIG
  std::function<void()> config_hook_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace vdpu::virtio::net
