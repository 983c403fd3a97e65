// One emulated virtio-net function of the virtnet manager (internal to
// src/service/virtnet). Main reactor only.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "service/virtnet/manager.h"

namespace vdpu::service::virtnet {

struct Manager::Dev {
  Kind kind = Kind::kStaticPf;
  uint32_t pf_id = 0;               // id of query/modify/unplug (VF: parent's)
  std::optional<uint32_t> vf_id;    // VF only
  uint32_t pf_index = 0;            // static PF index / hotplug slot
  uint32_t pf_num = 0;              // PCIe function number (§13)
  std::string vuid;
  std::string ib_dev;
  uint16_t bdf = 0;
  uint32_t sf_num = 0;
  std::string rep;                  // representor name
  std::string socket;               // vhost-user socket
  virtio::net::NetOptions net;
  bool transitional = false;
  uint32_t num_msix = 0;
  uint32_t max_vfs = 0;             // PF: VIRTIO_NET_EMULATION_NUM_VF (when SR-IOV)
  uint32_t enabled_vfs = 0;         // PF: VFs created
  uint32_t vhca_id = 0;
  // PF: §15 pools of MSI-X vectors / queue pairs released by its VFs.
  uint32_t msix_pool = 0, qp_pool = 0;

  // Recorded knobs (§4.6, §7): shown by query, saved for recovery.
  // DIM and supported_hash_types live in net (NetOptions dim / hash_types):
  // the device model acts on them.
  bool netdim = false, aarfs = true, drop_counter = false;
  uint64_t drop_base = 0;           // num_desc_drop_pkts baseline (-dc enable resets)
  uint32_t rss_max_key_size = 40;
  // modify queue -e/-n/-c; period and max_count also drive the device's RX
  // notification moderation (net.rx_moderation).
  uint32_t rq_period_mode = 0, rq_period = 0, rq_max_count = 0;
  uint32_t rx_dma_q_num = 0;
  uint32_t recover_counter = 0;     // health_recover_counter: restored from recovery

  std::unique_ptr<Endpoint> ep;

  bool is_pf() const { return kind != Kind::kVf; }
  uint16_t num_queues() const { return uint16_t(2 * net.max_queue_pairs + (net.ctrl_vq ? 1 : 0)); }
};

}  // namespace vdpu::service::virtnet
