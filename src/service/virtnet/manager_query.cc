// Read-only sub-commands of the virtnet manager: list (§4.3), query (§4.4),
// stats (§4.5), health (§4.12). Value typing follows the spec's examples:
// most numbers as strings; pf_id, vf_id, msix/qp pool fields, sf_num and
// sf_rep_net_ifindex as JSON numbers.
#include <cerrno>

#include "service/virtnet/dev.h"
#include "service/virtnet/errors.h"
#include "service/virtnet/params.h"

namespace vdpu::service::virtnet {

namespace vn = virtio::net;

namespace {

std::string s(uint64_t v) { return std::to_string(v); }

// Virtio device status as the host sees it. vhost-user does not forward the
// status register; it follows from what the front-end did.
uint8_t status_of(const EndpointInfo& i) {
  if (i.driver_bound) return 0x0f;  // ACK | DRIVER | DRIVER_OK | FEATURES_OK
  if (i.connected && i.driver_features) return 0x0b;
  return 0;
}

}  // namespace

json Manager::controller_json() const {
  const StaticConf& e = opts_.emu;
  uint64_t vfs = e.sriov_en ? uint64_t(e.num_pf) * e.num_vf : 0;
  json c = json::object();
  c["emulation_manager"] = opts_.conf.emulation_manager();
  c["max_hotplug_devices"] = s(e.max_hotplug());
  c["max_virt_net_devices"] = s(e.num_pf + vfs + e.max_hotplug());
  c["max_virt_queues"] = s(kMaxVirtQueues);
  c["max_tunnel_descriptors"] = s(kMaxTunnelDescriptors);
  c["supported_features"] = features_json(opts_.supported_features);
  c["supported_virt_queue_types"] = vq_types_json(opts_.conf.packed_vq);
  c["supported_event_modes"] = event_modes_json();
  return c;
}

json Manager::device_json(const Dev& d, bool query, bool brief, bool dbg, std::optional<uint16_t> qid) const {
  EndpointInfo in = d.ep->info();
  json j = json::object();
  j["pf_id"] = d.pf_id;
  if (d.vf_id) {
    j["vf_id"] = *d.vf_id;
    j["parent_pf_id"] = d.pf_id;
  }
  j["function_type"] = kind_name(d.kind);
  j["transitional"] = s(d.transitional);
  j["vuid"] = d.vuid;
  j["pci_bdf"] = bdf_str(d.bdf);
  j["pci_vhca_id"] = hex(d.vhca_id);
  if (d.is_pf()) j["pci_max_vfs"] = s(d.max_vfs);
  j["enabled_vfs"] = s(d.enabled_vfs);
  // §15 pools: everything is distributed (pool 0); caps per VF.
  uint32_t vf_msix = opts_.emu.vf_msix();
  j["msix_num_pool_size"] = d.msix_pool;
  j["min_msix_num"] = d.is_pf() && d.max_vfs ? 4 : 0;
  j["max_msix_num"] = d.is_pf() && d.max_vfs ? vf_msix : 0;
  j["min_num_of_qp"] = d.is_pf() && d.max_vfs ? 1 : 0;
  j["max_num_of_qp"] = d.is_pf() && d.max_vfs ? (kMaxVirtQueues - 1) / 2 : 0;
  j["qp_pool_size"] = d.qp_pool;
  j["num_msix"] = s(d.num_msix);
  j["num_queues"] = s(d.num_queues());
  j["enabled_queues"] = s(in.enabled_queues);
  j["max_queue_size"] = s(d.net.queue_size);
  j["msix_config_vector"] = "0xFFFF";
  j["mac"] = format_mac(d.net.mac);
  j["link_status"] = s(d.net.link_up);
  j["max_queue_pairs"] = s(d.net.max_queue_pairs);
  j["mtu"] = s(d.net.mtu);
  j["speed"] = s(d.net.speed);
  j["rss_max_key_size"] = s(d.rss_max_key_size);
  j["supported_hash_types"] = hex(d.net.hash_types);
  j["ctrl_mac"] = format_mac(in.ctrl_mac);
  j["ctrl_mq"] = s(in.ctrl_mq);
  j["sf_num"] = d.sf_num;
  j["sf_parent_device"] = d.ib_dev;
  j["sf_parent_device_pci_addr"] = "N/A";  // no RDMA device behind a TAP representor
  j["sf_rep_net_device"] = d.rep;
  j["sf_rep_net_ifindex"] = in.rep_ifindex;
  j["sf_rdma_device"] = "N/A";
  j["sf_cross_mkey"] = "0x0";
  j["sf_vhca_id"] = hex(d.vhca_id);
  j["sf_rqt_num"] = "0x0";
  j["aarfs"] = d.aarfs ? "enabled" : "disabled";
  j["dim"] = d.net.dim ? "enabled" : "disabled";
  j["vhost_user_socket"] = d.socket;  // vdpu: the socket the front-end connects to
  if (!query) return j;

  // §4.4 query-only fields.
  j["netdim"] = d.netdim ? "enabled" : "disabled";
  j["pci_dev_id"] = d.transitional ? "0x1000" : "0x1041";
  j["pci_vendor_id"] = "0x1af4";
  j["pci_class_code"] = "0x20000";
  j["pci_subsys_id"] = "0x1041";
  j["pci_subsys_vendor_id"] = "0x1af4";
  j["pci_revision_id"] = "1";
  j["device_feature"] = features_json(in.device_features);
  j["driver_feature"] = features_json(in.driver_features);
  j["status"] = status_json(status_of(in));
  j["reset"] = "0";
  j["enabled"] = "1";
  auto stats = d.ep->vq_stats(std::nullopt);
  if (dbg) {
    j["jumbo_mtu"] = d.net.mtu > 1500 ? 1 : 0;
    uint64_t drops = 0;
    for (auto& q : stats)
      if (q.rx) drops += q.backend_dropped;
    j["num_desc_drop_pkts"] = d.drop_counter ? drops - std::min(drops, d.drop_base) : 0;
    // vdpu additions: RSS hand-offs between queues (and those lost to a full
    // ring) and used-buffer notifications signalled (DIM / coalescing).
    uint64_t steered = 0, rss_drops = 0, notifs = 0;
    for (auto& q : stats) {
      steered += q.rss_steered;
      rss_drops += q.rss_dropped;
      notifs += q.notifications;
    }
    j["rss_steered_pkts"] = steered;
    j["rss_dropped_pkts"] = rss_drops;
    j["used_notifications"] = notifs;
  }
  if (brief) return j;
  json qs = json::array();
  for (uint16_t q = 0; q < in.queue_started.size(); ++q) {
    if (!in.queue_started[q] || (qid && *qid != q)) continue;
    json e = json::object();
    e["index"] = s(q);
    e["size"] = s(d.net.queue_size);
    e["msix_vector"] = "0xFFFF";  // vhost-user: interrupts are call eventfds
    e["enable"] = "1";
    e["notify_offset"] = s(q);
    e["descriptor_address"] = "0x0";  // guest addresses stay inside the transport
    e["driver_address"] = "0x0";
    e["device_address"] = "0x0";
    for (auto& st : stats) {
      if (st.index != q) continue;
      e["received_desc"] = s(st.received_desc);
      e["completed_desc"] = s(st.completed_desc);
      e["bad_desc_errors"] = s(st.bad_desc_errors);
      e["error_cqes"] = s(st.error_cqes);
      e["exceed_max_chain"] = s(st.exceed_max_chain);
      e["invalid_buffer"] = s(st.invalid_buffer);
      e["batch_number"] = s(st.batch_number);
      e["dma_q_used_number"] = "0";
      e["handler_schd_number"] = s(st.handler_schd_number);
      e["aux_handler_schd_number"] = "0";
      e["max_post_desc_number"] = s(st.max_post_desc_number);
      e["total_bytes"] = s(st.total_bytes);
    }
    e["rq_cq_max_count"] = s(d.rq_max_count);
    e["rq_cq_period"] = s(d.rq_period);
    e["rq_cq_period_mode"] = hex(d.rq_period_mode);
    qs.push_back(std::move(e));
  }
  j["enabled-queues-info"] = qs;
  return j;
}

json Manager::list() const {
  json devs = json::array();
  for (auto& d : devs_) devs.push_back(device_json(*d, false, false, false, std::nullopt));
  return {{"controller", controller_json()}, {"devices", devs}};
}

json Manager::query(const json& p) const {
  int err = 0;
  auto ds = select(p, &err);
  if (err == VIRTNET_ERR_DEV_NOT_FOUND) return {{"Error", "Device doesn't exist"}};
  if (err) return err_json(err);
  std::optional<uint16_t> qid;
  if (auto q = opt_uint(p, "queue_id")) {
    for (Dev* d : ds)
      if (*q >= d->num_queues()) return err_json(VIRTNET_ERR_INVALID_QUEUE_INDEX);
    qid = uint16_t(*q);
  }
  bool dbg = flag(p, "dbg_stats");
  json out = json::array();
  for (Dev* d : ds) {
    out.push_back(device_json(*d, true, flag(p, "brief"), dbg, qid));
    if (dbg && flag(p, "stats_clear")) {
      // --stats_clear: the RQ drop counter starts again from 0.
      uint64_t drops = 0;
      for (auto& q : d->ep->vq_stats(std::nullopt))
        if (q.rx) drops += q.backend_dropped;
      d->drop_base = drops;
    }
  }
  return {{"devices", out}};
}

json Manager::stats(const json& p) const {
  if (flag(p, "all")) return err_json(-EINVAL);  // §4.5: one device
  int err = 0;
  auto ds = select(p, &err);
  if (err == VIRTNET_ERR_DEV_NOT_FOUND) return {{"Error", "Device doesn't exist"}};
  if (err) return err_json(err);
  const Dev& d = *ds.front();
  std::optional<uint16_t> qid;
  if (auto q = opt_uint(p, "queue_id")) {
    if (*q >= 2u * d.net.max_queue_pairs) return err_json(VIRTNET_ERR_INVALID_QUEUE_INDEX);
    qid = uint16_t(*q);
  }
  json body = vn::stats_json(d.ep->vq_stats(qid), d.net.packet_counters);
  for (auto& q : body["queues-stats"]) {
    q["rq_cq_max_count"] = s(d.rq_max_count);
    q["rq_cq_period"] = s(d.rq_period);
    q["rq_cq_period_mode"] = hex(d.rq_period_mode);
  }
  json dev = json::object();
  dev["pf_id"] = d.pf_id;
  if (d.vf_id) dev["vf_id"] = *d.vf_id;
  dev["packet_counters"] = body["packet_counters"];
  dev["queues-stats"] = body["queues-stats"];
  return {{"device", dev}};
}

json Manager::health(const json& p) const {
  int err = 0;
  auto ds = select(p, &err);
  if (err == VIRTNET_ERR_DEV_NOT_FOUND) return {{"Error", "Device doesn't exist"}};
  if (err) return err_json(err);
  json out = json::array();
  for (Dev* d : ds) {
    EndpointInfo in = d->ep->info();
    uint64_t bad = 0, invalid = 0;
    for (auto& q : d->ep->vq_stats(std::nullopt)) {
      bad += q.bad_desc_errors + q.exceed_max_chain;
      invalid += q.invalid_buffer;
    }
    json h = json::object();
    h["pf_id"] = d->pf_id;
    if (d->vf_id) h["vf_id"] = *d->vf_id;
    h["type"] = kind_name(d->kind);
    h["vuid"] = d->vuid;
    h["dev_status"] = status_json(status_of(in));
    // Software mapping (§4.12): guest-memory access failures are the
    // analogue of dma_q_errors / host_read_errors; malformed vhost-user
    // messages are control-plane errors.
    h["health_status"] = "Good";
    h["health_recover_counter"] = d->recover_counter;
    h["dev_health_details"] = {
        {"control_plane_errors",
         {{"sf_rqt_update_err", 0}, {"sf_drop_create_err", 0}, {"sf_tir_create_err", 0},
          {"steer_rx_domain_err", 0}, {"steer_rx_table_err", 0}, {"sf_flows_apply_err", 0},
          {"aarfs_flow_init_err", 0}, {"vlan_flow_init_err", 0}, {"drop_cnt_config_err", 0},
          {"vhost_user_bad_messages", in.vhost_bad_messages}}},
        {"data_plane_errors",
         {{"sq_stall", 0}, {"dma_q_stall", 0}, {"spurious_db_invoke", 0}, {"aux_not_invoked", 0},
          {"dma_q_errors", bad}, {"host_read_errors", invalid}}}};
    out.push_back(std::move(h));
  }
  return out.size() == 1 ? out.front() : json{{"devices", out}};
}

}  // namespace vdpu::service::virtnet
