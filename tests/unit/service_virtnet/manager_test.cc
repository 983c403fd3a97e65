// The virtnet manager's rules through a fake endpoint (no sockets, no TAP):
// hotplug validation and errnos (§4.1, §5), ids/names/VUIDs, unplug (§4.2),
// list/query fields (§4.3, §4.4), modify (§4.6, §15), recovery (§13).
#include <gtest/gtest.h>

#include <filesystem>

#include "service/virtnet/errors.h"
#include "service/virtnet/manager.h"

namespace vdpu::service::virtnet {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct FakeState {
  std::map<std::string, EndpointConfig> live;  // by name (vuid)
  bool bound = false;
  bool fail_create = false;
  int reconfigures = 0;
};

class FakeEndpoint final : public Endpoint {
 public:
  FakeEndpoint(FakeState& s, EndpointConfig c) : s_(s), c_(std::move(c)) { s_.live[c_.name] = c_; }
  ~FakeEndpoint() override { s_.live.erase(c_.name); }
  EndpointInfo info() const override {
    EndpointInfo i;
    i.connected = s_.bound;
    i.driver_bound = s_.bound;
    i.device_features = 0x1234;
    i.queue_started.assign(2 * c_.net.max_queue_pairs + 1, s_.bound);
    i.enabled_queues = s_.bound ? 2 * c_.net.max_queue_pairs + 1 : 0;
    i.rep_name = c_.rep_name;
    i.rep_ifindex = 42;
    return i;
  }
  std::vector<virtio::net::NetVqStats> vq_stats(std::optional<uint16_t> q) const override {
    std::vector<virtio::net::NetVqStats> v;
    for (uint16_t i = 0; i < 2 * c_.net.max_queue_pairs; ++i)
      if (!q || *q == i) {
        virtio::net::NetVqStats s;
        s.index = i;
        s.rx = i % 2 == 0;
        v.push_back(s);
      }
    return v;
  }
  Status busy() const { return s_.bound ? make_error(Errc::kBusy, "bound") : Status{}; }
  Status set_mac(const virtio::net::MacAddr& m) override {
    VDPU_TRY(busy());
    c_.net.mac = m;
    sync();
    return {};
  }
  Status set_mtu(uint16_t v) override {
    VDPU_TRY(busy());
    c_.net.mtu = v;
    sync();
    return {};
  }
  Status set_speed(uint32_t v) override {
    c_.net.speed = v;
    sync();
    return {};
  }
  void set_link(bool up) override {
    c_.net.link_up = up;
    sync();
  }
  void set_packet_counters(bool on) override {
    c_.net.packet_counters = on;
    sync();
  }
  Status set_hash_types(uint32_t t) override {
    VDPU_TRY(busy());
    c_.net.hash_types = t;
    sync();
    return {};
  }
  void set_dim(bool on) override {
    c_.net.dim = on;
    sync();
  }
  void set_rx_moderation(const virtio::net::CoalParams& p) override {
    c_.net.rx_moderation = p;
    sync();
  }
  void sync() { s_.live[c_.name] = c_; }
  void reconfigure(const virtio::net::NetOptions& o, std::function<void(Status)> done) override {
    if (s_.bound) return done(make_error(Errc::kBusy, "bound"));
    ++s_.reconfigures;
    c_.net = o;
    s_.live[c_.name] = c_;
    done({});
  }
  void destroy(std::function<void()> done) override { done(); }

 private:
  FakeState& s_;
  EndpointConfig c_;
};

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char t[] = "/tmp/virtnet-mgr-XXXXXX";
    dir_ = mkdtemp(t);
    opts_.recovery_dir = dir_ + "/recovery";
    opts_.socket_dir = dir_;
    opts_.serial = "TESTSER";
    opts_.supported_features = 0x8b00037700ef982full;
  }
  void TearDown() override {
    m_.reset();
    fs::remove_all(dir_);
  }
  void make(const std::string& emu = "") {
    opts_.emu = *parse_static_conf(emu);
    m_ = std::make_unique<Manager>(opts_, [this](const EndpointConfig& c) -> Result<std::unique_ptr<Endpoint>> {
      if (fake_.fail_create) return make_error(Errc::kIo, "no TAP");
      return std::unique_ptr<Endpoint>(new FakeEndpoint(fake_, c));
    });
    ASSERT_TRUE(m_->start());
  }
  static json hp(const std::string& mac = "0C:C4:7A:FF:22:93") {
    return {{"ib_device", "mlx5_0"}, {"mac", mac}, {"mtu", 1500}, {"num_queues", 3}, {"max_queue_size", 1024}};
  }
  json sync(std::function<void(std::function<void(json)>)> f) {
    json out;
    f([&out](json j) { out = std::move(j); });
    return out;
  }
  json unplug(json p) { return sync([&](auto cb) { m_->unplug(p, cb); }); }
  json modify(json p) { return sync([&](auto cb) { m_->modify(p, cb); }); }

  std::string dir_;
  Options opts_;
  FakeState fake_;
  std::unique_ptr<Manager> m_;
};

TEST_F(ManagerTest, HotplugOutputAndNames) {
  make();
  auto r = m_->hotplug(hp());
  ASSERT_EQ(r["errno"], 0) << r.dump();
  EXPECT_EQ(r["errstr"], "Success");
  EXPECT_EQ(r["id"], 0);
  EXPECT_EQ(r["vuid"], "TESTSERVNETS1D0F0");
  EXPECT_EQ(r["bdf"], "40:00.0");
  EXPECT_EQ(r["transitional"], 0);
  EXPECT_EQ(r["sf_rep_net_device"], "en3f0pf0sf2000");
  EXPECT_EQ(r["mac"], "0C:C4:7A:FF:22:93");
  ASSERT_EQ(fake_.live.count("TESTSERVNETS1D0F0"), 1u);
  auto& c = fake_.live["TESTSERVNETS1D0F0"];
  EXPECT_EQ(c.socket, dir_ + "/TESTSERVNETS1D0F0");
  EXPECT_EQ(c.net.max_queue_pairs, 1);
  EXPECT_TRUE(c.net.ctrl_vq);
  EXPECT_EQ(c.net.queue_size, 1024);
  // Second hotplug: next id, slot, SF number (§1: second hotplug PF -> sf2001).
  auto r2 = m_->hotplug(hp("0C:C4:7A:FF:22:94"));
  EXPECT_EQ(r2["id"], 1);
  EXPECT_EQ(r2["sf_rep_net_device"], "en3f0pf0sf2001");
  EXPECT_EQ(r2["vuid"], "TESTSERVNETS2D0F0");
  // -qp form and explicit SF number.
  auto p = hp("0C:C4:7A:FF:22:95");
  p.erase("num_queues");
  p["max_queue_pairs"] = 4;
  p["sf_num"] = 2500;
  auto r3 = m_->hotplug(p);
  ASSERT_EQ(r3["errno"], 0) << r3.dump();
  EXPECT_EQ(r3["sf_rep_net_device"], "en3f0pf0sf2500");
  EXPECT_EQ(fake_.live[r3["vuid"]].net.max_queue_pairs, 4);
}

TEST_F(ManagerTest, HotplugErrors) {
  make();
  auto e = [&](json p) { return m_->hotplug(p)["errno"].get<int>(); };
  auto with = [](const char* k, json v) {
    auto p = hp();
    p[k] = v;
    return p;
  };
  EXPECT_EQ(e(with("mac", "0C:C4:7A:FF:22")), VIRTNET_ERR_INVALID_MAC);
  EXPECT_EQ(e(with("mac", "zz:C4:7A:FF:22:93")), VIRTNET_ERR_INVALID_MAC);
  EXPECT_EQ(e(with("mtu", 67)), VIRTNET_ERR_INVALID_MTU);
  EXPECT_EQ(e(with("mtu", 9217)), VIRTNET_ERR_INVALID_MTU);
  EXPECT_EQ(e(with("max_queue_size", 1000)), VIRTNET_ERR_QUEUE_SIZE_POW2);
  EXPECT_EQ(e(with("max_queue_size", 2)), VIRTNET_ERR_INVALID_QUEUE_SIZE);
  EXPECT_EQ(e(with("max_queue_size", 0x10000)), VIRTNET_ERR_INVALID_QUEUE_SIZE);
  EXPECT_EQ(e(with("num_queues", 1)), VIRTNET_ERR_INVALID_QUEUES);
  EXPECT_EQ(e(with("num_queues", 4)), VIRTNET_ERR_INVALID_QUEUES);  // 2 pairs without ctrl
  EXPECT_EQ(e(with("num_queues", 65)), VIRTNET_ERR_INVALID_QUEUES);  // > NUM_MSIX (64)
  EXPECT_EQ(e(with("max_queue_pairs", 1)), VIRTNET_ERR_INVALID_QUEUES);  // both -n and -qp
  EXPECT_EQ(e(with("sf_num", 1999)), VIRTNET_ERR_HOTPLUG_SF_NUM_RANGE);
  EXPECT_EQ(e(with("sf_num", 3000)), VIRTNET_ERR_HOTPLUG_SF_NUM_RANGE);
  EXPECT_EQ(e(with("features", 1ull << 4)), VIRTNET_ERR_FEATURE_VALIDATE);
  EXPECT_EQ(e(with("ib_device", "mlx5_9")), VIRTNET_ERR_PORT_CTX_NOT_FOUND);
  EXPECT_EQ(e(with("legacy", 1)), VIRTNET_ERR_OPT_NOT_SUPPORTED);
  EXPECT_TRUE(fake_.live.empty());
  ASSERT_EQ(e(with("sf_num", 2100)), 0);
  EXPECT_EQ(e(with("sf_num", 2100)), VIRTNET_ERR_INVALID_MAC);  // MAC must be unique
  auto p = with("sf_num", 2100);
  p["mac"] = "0C:C4:7A:FF:22:99";
  EXPECT_EQ(e(p), VIRTNET_ERR_SF_NUM_IN_USE);
  fake_.fail_create = true;
  EXPECT_EQ(e(hp("0C:C4:7A:FF:22:98")), VIRTNET_ERR_SNAP_HOTPLUG);
  EXPECT_EQ(m_->num_devices(), 1u);
}

TEST_F(ManagerTest, HotplugPortLimit) {
  make("PCI_SWITCH_EMULATION_NUM_PORT=1");
  EXPECT_EQ(m_->hotplug(hp())["errno"], 0);
  EXPECT_EQ(m_->hotplug(hp("0C:C4:7A:FF:22:94"))["errno"], -ENOSPC);
}

TEST_F(ManagerTest, Unplug) {
  make("VIRTIO_NET_EMULATION_NUM_PF=1");
  ASSERT_EQ(m_->hotplug(hp())["id"], 1);  // after the static PF
  EXPECT_EQ(unplug({{"id", 0}})["errno"], VIRTNET_ERR_DEV_NOT_HOTPLUG);
  EXPECT_EQ(unplug({{"id", 7}})["errno"], VIRTNET_ERR_DEV_NOT_FOUND);
  EXPECT_EQ(unplug(json::object())["errno"], -EINVAL);
  fake_.bound = true;
  EXPECT_EQ(unplug({{"id", 1}})["errno"], VIRTNET_ERR_DEV_NOT_READY_UNPLUG);
  fake_.bound = false;
  std::string vuid = "TESTSERVNETS1D0F0";
  EXPECT_TRUE(fs::exists(opts_.recovery_dir + "/" + vuid));
  EXPECT_EQ(unplug({{"vuid", vuid}})["errno"], 0);
  EXPECT_FALSE(fs::exists(opts_.recovery_dir + "/" + vuid));  // §13: file deleted
  EXPECT_EQ(m_->num_devices(), 1u);
}

TEST_F(ManagerTest, ListAndQuery) {
  make("VIRTIO_NET_EMULATION_NUM_PF=1");
  m_->hotplug(hp());
  auto l = m_->list();
  auto& c = l["controller"];
  EXPECT_EQ(c["emulation_manager"], "mlx5_0");
  EXPECT_EQ(c["max_hotplug_devices"], "16");
  EXPECT_EQ(c["max_virt_net_devices"], "17");
  EXPECT_EQ(c["max_virt_queues"], "256");
  EXPECT_EQ(c["supported_features"]["value"], "0x8b00037700ef982f");
  EXPECT_EQ(c["supported_virt_queue_types"]["value"], "0x1");
  EXPECT_EQ(c["supported_event_modes"]["value"], "0x5");
  ASSERT_EQ(l["devices"].size(), 2u);
  auto& d0 = l["devices"][0];
  EXPECT_EQ(d0["pf_id"], 0);
  EXPECT_EQ(d0["function_type"], "static PF");
  EXPECT_EQ(d0["sf_num"], 1000);
  EXPECT_EQ(d0["sf_rep_net_device"], "en3f0pf0sf1000");
  EXPECT_EQ(d0["msix_config_vector"], "0xFFFF");
  EXPECT_EQ(d0["mtu"], "1500");
  EXPECT_EQ(d0["num_queues"], "3");
  EXPECT_EQ(d0["sf_rep_net_ifindex"], 42);
  auto& d1 = l["devices"][1];
  EXPECT_EQ(d1["function_type"], "hotplug PF");
  EXPECT_EQ(d1["mac"], "0C:C4:7A:FF:22:93");
  for (const char* k : {"pf_id", "function_type", "transitional", "vuid", "pci_bdf", "pci_vhca_id", "pci_max_vfs",
                        "enabled_vfs", "msix_num_pool_size", "min_msix_num", "max_msix_num", "min_num_of_qp",
                        "max_num_of_qp", "qp_pool_size", "num_msix", "num_queues", "enabled_queues",
                        "max_queue_size", "msix_config_vector", "mac", "link_status", "max_queue_pairs", "mtu",
                        "speed", "rss_max_key_size", "supported_hash_types", "ctrl_mac", "ctrl_mq", "sf_num",
                        "sf_parent_device", "sf_parent_device_pci_addr", "sf_rep_net_device", "sf_rep_net_ifindex",
                        "sf_rdma_device", "sf_cross_mkey", "sf_vhca_id", "sf_rqt_num", "aarfs", "dim"})
    EXPECT_TRUE(d1.contains(k)) << k;

  auto q = m_->query({{"pf", 1}});
  ASSERT_EQ(q["devices"].size(), 1u);
  auto& qd = q["devices"][0];
  for (const char* k : {"pci_dev_id", "pci_vendor_id", "pci_class_code", "pci_subsys_id", "pci_subsys_vendor_id",
                        "pci_revision_id", "device_feature", "driver_feature", "status", "reset", "enabled",
                        "enabled-queues-info"})
    EXPECT_TRUE(qd.contains(k)) << k;
  EXPECT_EQ(qd["pci_dev_id"], "0x1041");
  EXPECT_EQ(qd["status"]["value"], "0x0");
  EXPECT_TRUE(qd["enabled-queues-info"].empty());  // no driver
  fake_.bound = true;
  auto qb = m_->query({{"vuid", "TESTSERVNETS1D0F0"}});
  auto& qi = qb["devices"][0]["enabled-queues-info"];
  ASSERT_EQ(qi.size(), 3u);
  EXPECT_EQ(qi[0]["index"], "0");
  EXPECT_EQ(qi[0]["size"], "1024");
  EXPECT_EQ(qb["devices"][0]["status"]["value"], "0xf");
  EXPECT_FALSE(m_->query({{"pf", 1}, {"brief", 1}})["devices"][0].contains("enabled-queues-info"));
  EXPECT_EQ(m_->query({{"pf", 1}, {"queue_id", 2}})["devices"][0]["enabled-queues-info"].size(), 1u);
  EXPECT_EQ(m_->query({{"pf", 1}, {"queue_id", 3}})["errno"], VIRTNET_ERR_INVALID_QUEUE_INDEX);
  EXPECT_EQ(m_->query({{"all", 1}})["devices"].size(), 2u);
  EXPECT_EQ(m_->query({{"pf", 1}, {"dbg_stats", 1}})["devices"][0]["jumbo_mtu"], 0);
  EXPECT_EQ(m_->query({{"pf", 1}, {"dbg_stats", 1}})["devices"][0]["rss_steered_pkts"], 0);
  EXPECT_FALSE(m_->query({{"pf", 1}})["devices"][0].contains("rss_steered_pkts")) << "--dbg_stats only";
  // Missing device / bad selection.
  EXPECT_EQ(m_->query({{"pf", 9}}), (json{{"Error", "Device doesn't exist"}}));
  EXPECT_EQ(m_->query({{"pf", 0}, {"vf", 0}}), (json{{"Error", "Device doesn't exist"}}));
  EXPECT_EQ(m_->query({{"vf", 0}})["errno"], -EINVAL);
  EXPECT_EQ(m_->query({{"pf", 0}, {"all", 1}})["errno"], -EINVAL);
  EXPECT_EQ(m_->query(json::object())["errno"], -EINVAL);
  // stats / health.
  auto st = m_->stats({{"pf", 1}});
  EXPECT_EQ(st["device"]["pf_id"], 1);
  EXPECT_EQ(st["device"]["packet_counters"], "Disabled");
  EXPECT_EQ(st["device"]["queues-stats"].size(), 2u);
  EXPECT_EQ(m_->stats({{"pf", 1}, {"queue_id", 5}})["errno"], VIRTNET_ERR_INVALID_QUEUE_INDEX);
  auto h = m_->health({{"pf", 1}});
  EXPECT_EQ(h["health_status"], "Good");
  EXPECT_EQ(h["type"], "hotplug PF");
  EXPECT_TRUE(h["dev_health_details"]["data_plane_errors"].contains("sq_stall"));
}

TEST_F(ManagerTest, Modify) {
  make();
  m_->hotplug(hp());
  auto& live = fake_.live["TESTSERVNETS1D0F0"];
  auto e = [&](json p) {
    p["pf"] = 0;
    return modify(p)["errno"].get<int>();
  };
  EXPECT_EQ(e({{"mac", "02:00:00:00:00:07"}, {"mtu", 9000}}), 0);
  EXPECT_EQ(format_mac(live.net.mac), "02:00:00:00:00:07");
  EXPECT_EQ(live.net.mtu, 9000);
  EXPECT_EQ(e({{"mac", "02:00:00:00:00"}}), VIRTNET_ERR_INVALID_MAC);
  EXPECT_EQ(e({{"mtu", 10000}}), VIRTNET_ERR_INVALID_MTU);
  EXPECT_EQ(e({{"speed", 12345}}), VIRTNET_ERR_INVALID_SPEED);
  EXPECT_EQ(e({{"speed", 25000}}), 0);
  EXPECT_EQ(e({{"link", 0}}), 0);
  EXPECT_FALSE(live.net.link_up);
  EXPECT_EQ(e({{"rss_max_key_size", 52}}), VIRTNET_ERR_INVALID_RSS_KEY_SIZE);
  EXPECT_EQ(e({{"supported_hash_types", 0x400}}), VIRTNET_ERR_INVALID_HASH_TYPES);
  EXPECT_EQ(e({{"supported_hash_types", 0x40}}), VIRTNET_ERR_INVALID_HASH_TYPES) << "_EX types are not hashed";
  EXPECT_EQ(live.net.hash_types, virtio::net::kHashTypesSupported) << "default: every type the device hashes";
  EXPECT_EQ(e({{"supported_hash_types", 0x3}, {"rss_max_key_size", 40}}), 0);
  EXPECT_EQ(live.net.hash_types, 0x3u) << "reaches the device model";
  EXPECT_EQ(m_->query({{"pf", 0}})["devices"][0]["supported_hash_types"], "0x3");
  EXPECT_EQ(m_->query({{"pf", 0}})["devices"][0]["rss_max_key_size"], "40");
  EXPECT_EQ(e({{"features", 1ull << 4}}), VIRTNET_ERR_FEATURE_VALIDATE);
  EXPECT_EQ(e({{"state", 1}}), VIRTNET_ERR_OPT_NOT_SUPPORTED);
  EXPECT_EQ(e({{"max_queue_size", 100}}), VIRTNET_ERR_QUEUE_SIZE_POW2);
  EXPECT_EQ(e({{"max_queue_pairs", 0}}), VIRTNET_ERR_INVALID_QUEUES);
  EXPECT_EQ(e({{"msix_num", 8}}), VIRTNET_ERR_OPT_NOT_SUPPORTED);  // PF: no dynamic MSI-X
  EXPECT_EQ(e({{"msix_num", 8}, {"max_queue_pairs", 2}}), -EINVAL);
  EXPECT_EQ(e(json::object()), -EINVAL);
  EXPECT_EQ(e({{"max_queue_pairs", 2}, {"max_queue_size", 512}}), 0);
  EXPECT_EQ(fake_.reconfigures, 1);
  EXPECT_EQ(live.net.max_queue_pairs, 2);
  EXPECT_EQ(live.net.queue_size, 512);
  EXPECT_EQ(e({{"dim_config", 1}, {"packet_counter", 1}}), 0);
  EXPECT_TRUE(live.net.dim) << "DIM reaches the device model";
  auto q = m_->query({{"pf", 0}, {"brief", 1}})["devices"][0];
  EXPECT_EQ(q["dim"], "enabled");
  EXPECT_EQ(q["max_queue_pairs"], "2");
  EXPECT_EQ(q["mtu"], "9000");
  EXPECT_EQ(m_->stats({{"pf", 0}})["device"]["packet_counters"], "Enabled");
  // Queue moderation.
  EXPECT_EQ(e({{"subcmd", 1}, {"period_mode", "event"}, {"period", 10}, {"max_count", 30}}), 0);
  EXPECT_EQ(live.net.rx_moderation.usecs, 10u);
  EXPECT_EQ(live.net.rx_moderation.max_packets, 30u);
  EXPECT_EQ(e({{"subcmd", 1}, {"period_mode", "never"}}), -EINVAL);
  // §4.6: driver must be unbound for mac/mtu/features/queues; link is fine.
  fake_.bound = true;
  EXPECT_EQ(e({{"mac", "02:00:00:00:00:08"}}), VIRTNET_ERR_DRIVER_LOADED);
  EXPECT_EQ(e({{"mtu", 1500}}), VIRTNET_ERR_DRIVER_LOADED);
  EXPECT_EQ(e({{"max_queue_pairs", 1}}), VIRTNET_ERR_DRIVER_LOADED);
  EXPECT_EQ(e({{"supported_hash_types", 0x3f}}), VIRTNET_ERR_DRIVER_LOADED);
  EXPECT_EQ(e({{"dim_config", 0}}), VIRTNET_ERR_DRIVER_LOADED);
  EXPECT_EQ(live.net.hash_types, 0x3u);
  EXPECT_EQ(e({{"link", 1}}), 0);
  EXPECT_EQ(modify({{"pf", 5}, {"link", 1}})["errno"], VIRTNET_ERR_DEV_NOT_FOUND);
}

TEST_F(ManagerTest, RecoveryRestoresDevices) {
  make("VIRTIO_NET_EMULATION_NUM_PF=1");
  m_->hotplug(hp());
  modify({{"pf", 1}, {"mtu", 4000}, {"max_queue_pairs", 3}, {"supported_hash_types", 0x7}, {"dim_config", 1}});
  modify({{"pf", 0}, {"mac", "02:11:22:33:44:55"}});
  m_->shutdown([] {});
  EXPECT_TRUE(fake_.live.empty());
  m_.reset();
  make("VIRTIO_NET_EMULATION_NUM_PF=1");  // same static config: restore
  ASSERT_EQ(m_->num_devices(), 2u);
  auto& h = fake_.live["TESTSERVNETS1D0F0"];
  EXPECT_EQ(h.net.mtu, 4000);
  EXPECT_EQ(h.net.max_queue_pairs, 3);
  EXPECT_EQ(h.net.hash_types, 0x7u) << "recovery keeps supported_hash_types";
  EXPECT_TRUE(h.net.dim) << "and DIM";
  EXPECT_EQ(h.rep_name, "en3f0pf0sf2000");
  EXPECT_EQ(format_mac(h.net.mac), "0C:C4:7A:FF:22:93");
  EXPECT_EQ(format_mac(fake_.live["TESTSERVNETS0D0F0"].net.mac), "02:11:22:33:44:55");
  EXPECT_EQ(m_->health({{"pf", 1}})["health_recover_counter"], 1);
  m_->shutdown([] {});
  m_.reset();
  make("VIRTIO_NET_EMULATION_NUM_PF=2");  // §13: a new static config deletes the files
  EXPECT_EQ(m_->num_devices(), 2u);       // the two static PFs only
  EXPECT_EQ(fake_.live.count("TESTSERVNETS1D0F0"), 0u);
}

TEST_F(ManagerTest, RecoveryDisabled) {
  opts_.conf.recovery = false;
  make();
  m_->hotplug(hp());
  EXPECT_FALSE(fs::exists(opts_.recovery_dir + "/TESTSERVNETS1D0F0"));
  m_->shutdown([] {});
  m_.reset();
  make();
  EXPECT_EQ(m_->num_devices(), 0u);
}

TEST_F(ManagerTest, VfsAndPools) {
  opts_.conf.vf.mac_base = *parse_mac("CC:48:15:FF:00:00");
  opts_.conf.vf.vfs_per_pf = 2;
  make("SRIOV_EN=1\nVIRTIO_NET_EMULATION_NUM_PF=1\nVIRTIO_NET_EMULATION_NUM_VF=4\nVIRTIO_NET_EMULATION_NUM_VF_MSIX=8\n"
       "PCI_SWITCH_EMULATION_NUM_PORT=2");
  auto dbg = [&](json p) { return sync([&](auto cb) { m_->debug(p, cb); }); };
  EXPECT_EQ(dbg({{"pf", 0}, {"sriov_numvfs", 5}})["errno"], VIRTNET_ERR_ID_OUT_OF_RANGE);
  EXPECT_EQ(dbg({{"pf", 0}, {"sriov_numvfs", 3}})["errno"], 0);
  EXPECT_EQ(dbg({{"pf", 0}, {"sriov_numvfs", 2}})["errno"], -EBUSY);  // X -> 0 / 0 -> X only
  auto l = m_->list()["devices"];
  ASSERT_EQ(l.size(), 4u);
  EXPECT_EQ(l[0]["enabled_vfs"], "3");
  EXPECT_EQ(l[1]["function_type"], "VF");
  EXPECT_EQ(l[1]["vf_id"], 0);
  EXPECT_EQ(l[1]["parent_pf_id"], 0);
  EXPECT_EQ(l[1]["sf_num"], 3000);
  EXPECT_EQ(l[1]["vuid"], "TESTSERVNETS0D0F0VF1");
  EXPECT_EQ(l[1]["mac"], "CC:48:15:FF:00:00");
  EXPECT_EQ(l[3]["mac"], "CC:48:15:FF:00:00");  // vfs_per_pf 2: MACs repeat
  // §15: MSI-X even and >= 4; VF1 -> 4 frees 4 vectors for VF0.
  auto e = [&](json p) { return modify(p)["errno"].get<int>(); };
  EXPECT_EQ(e({{"pf", 0}, {"vf", 1}, {"msix_num", 5}}), VIRTNET_ERR_INVALID_MSIX);
  EXPECT_EQ(e({{"pf", 0}, {"vf", 0}, {"msix_num", 10}}), VIRTNET_ERR_INVALID_MSIX);  // pool empty / cap 8
  EXPECT_EQ(e({{"pf", 0}, {"vf", 1}, {"msix_num", 4}}), 0);
  EXPECT_EQ(m_->list()["devices"][0]["msix_num_pool_size"], 4);
  EXPECT_EQ(e({{"pf", 0}, {"vf", 2}, {"msix_num", 0}}), VIRTNET_WARN_DEV_NOT_FUNCTIONAL);
  EXPECT_EQ(e({{"pf", 0}, {"vf", 0}, {"aarfs", 1}}), VIRTNET_ERR_OPT_NOT_SUPPORTED);
  // Host destroys the VFs: files deleted (§13).
  EXPECT_EQ(dbg({{"pf", 0}, {"sriov_numvfs", 0}})["errno"], 0);
  EXPECT_EQ(m_->num_devices(), 1u);
  EXPECT_FALSE(fs::exists(opts_.recovery_dir + "/TESTSERVNETS0D0F0VF1"));
}

}  // namespace
}  // namespace vdpu::service::virtnet
