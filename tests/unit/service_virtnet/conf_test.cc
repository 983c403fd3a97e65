// virtnet.conf (virtio-net spec §2) and the static emulation config (§1.1):
// every key with a good and a bad value, defaults, cross-checks.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "service/virtnet/conf.h"

namespace vdpu::service::virtnet {
namespace {

Result<VirtnetConf> P(const std::string& s) { return parse_virtnet_conf(s); }

// The error names the key.
void expect_bad(const std::string& text, const std::string& key) {
  auto c = P(text);
  ASSERT_FALSE(c) << text;
  EXPECT_EQ(c.error().code, Errc::kInvalidArgument);
  EXPECT_NE(c.error().message.find(key), std::string::npos) << c.error().message;
}

TEST(VirtnetConf, Defaults) {
  auto c = P("");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->ib_dev_p0, "mlx5_0");
  EXPECT_EQ(c->ib_dev_p1, "mlx5_1");
  EXPECT_EQ(c->ib_dev_for_static_pf, "mlx5_0");
  EXPECT_FALSE(c->ib_dev_lag);
  EXPECT_FALSE(c->is_lag);
  EXPECT_FALSE(c->single_port);
  EXPECT_TRUE(c->recovery);
  EXPECT_EQ(c->sf_pool_percent, 0u);
  EXPECT_FALSE(c->sf_pool_force_destroy);
  EXPECT_FALSE(c->packed_vq);
  EXPECT_FALSE(c->mrg_rxbuf);
  EXPECT_EQ(c->dpa_core_start, 1u);
  EXPECT_EQ(c->dpa_core_end, 10u);
  EXPECT_EQ(c->emulation_manager(), "mlx5_0");
  EXPECT_TRUE(P("{}"));
}

TEST(VirtnetConf, SpecExamples) {
  auto a = P(R"({"ib_dev_p0": "mlx5_0", "ib_dev_p1": "mlx5_1", "ib_dev_for_static_pf": "mlx5_0", "is_lag": 0,
               "static_pf": {"mac_base": "08:11:22:33:44:55", "features": "0x230047082b"}})");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(*a->static_pf.features, 0x230047082bull);
  EXPECT_EQ(format_mac(*a->static_pf.mac_base), "08:11:22:33:44:55");
  auto b = P(R"({"vf": {"mac_base": "06:11:22:33:44:55", "features": "0x230047082b", "vfs_per_pf": 126,
               "max_queue_pairs": 4, "max_queue_size": 256}})");
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(b->vf.vfs_per_pf, 126u);
  EXPECT_EQ(*b->vf.max_queue_pairs, 4);
  EXPECT_EQ(*b->vf.max_queue_size, 256);
  auto l = P(R"({"ib_dev_lag": "mlx5_bond_0", "ib_dev_for_static_pf": "mlx5_bond_0", "is_lag": 1})");
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ(l->emulation_manager(), "mlx5_bond_0");
  EXPECT_TRUE(l->is_port_device("mlx5_bond_0"));
  EXPECT_FALSE(l->is_port_device("mlx5_0"));
  auto s = P(R"({"single_port": 1, "packed_vq": 1, "sf_pool_percent": 0, "sf_pool_force_destroy": 0,
               "vf": {"mac_base": "CC:48:15:FF:00:00", "vfs_per_pf": 126}})");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_TRUE(s->packed_vq);
  EXPECT_FALSE(s->is_port_device("mlx5_1"));  // single port
}

TEST(VirtnetConf, EveryKeyGood) {
  auto c = P(R"({"ib_dev_p0": "p0", "ib_dev_p1": "p1", "ib_dev_for_static_pf": "p0", "recovery": 0,
               "sf_pool_percent": 100, "sf_pool_force_destroy": 1, "packed_vq": 1, "mrg_rxbuf": 1,
               "dpa_core_start": 2, "dpa_core_end": 4, "lm_prov": "kernel", "static_pf": {"features": 12}})");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->ib_dev_p0, "p0");
  EXPECT_FALSE(c->recovery);
  EXPECT_EQ(c->sf_pool_percent, 100u);
  EXPECT_TRUE(c->sf_pool_force_destroy && c->packed_vq && c->mrg_rxbuf);
  EXPECT_EQ(c->dpa_core_start, 2u);
  EXPECT_EQ(c->dpa_core_end, 4u);
  EXPECT_EQ(*c->lm_prov, "kernel");
  EXPECT_EQ(*c->static_pf.features, 12u);
  EXPECT_TRUE(P(R"({"recovery": 5})")->recovery);  // "enabled unless 0"
}

TEST(VirtnetConf, EveryKeyBad) {
  expect_bad(R"({"ib_dev_p0": 1})", "ib_dev_p0");
  expect_bad(R"({"ib_dev_p1": ""})", "ib_dev_p1");
  expect_bad(R"({"ib_dev_for_static_pf": []})", "ib_dev_for_static_pf");
  expect_bad(R"({"ib_dev_lag": 3})", "ib_dev_lag");
  expect_bad(R"({"static_pf": 1})", "static_pf");
  expect_bad(R"({"static_pf": {"mac_base": "08:11:22:33:44"}})", "static_pf.mac_base");
  expect_bad(R"({"static_pf": {"mac_base": "zz:11:22:33:44:55"}})", "static_pf.mac_base");
  expect_bad(R"({"static_pf": {"features": "0xq"}})", "static_pf.features");
  expect_bad(R"({"static_pf": {"colour": 1}})", "static_pf.colour");
  expect_bad(R"({"is_lag": 2})", "is_lag");
  expect_bad(R"({"single_port": "yes"})", "single_port");
  expect_bad(R"({"recovery": "on"})", "recovery");
  expect_bad(R"({"sf_pool_percent": 101})", "sf_pool_percent");
  expect_bad(R"({"sf_pool_percent": -1})", "sf_pool_percent");
  expect_bad(R"({"sf_pool_force_destroy": 3})", "sf_pool_force_destroy");
  expect_bad(R"({"packed_vq": 2})", "packed_vq");
  expect_bad(R"({"mrg_rxbuf": -1})", "mrg_rxbuf");
  expect_bad(R"({"dpa_core_start": 0})", "dpa_core_start");
  expect_bad(R"({"dpa_core_start": 11})", "dpa_core_start");
  expect_bad(R"({"dpa_core_end": 11})", "dpa_core_end");
  expect_bad(R"({"dpa_core_start": 5, "dpa_core_end": 5})", "dpa_core_end");
  expect_bad(R"({"vf": []})", "vf");
  expect_bad(R"({"vf": {"mac_base": "06:11:22:33:44:55"}})", "vf.vfs_per_pf");  // mandatory with mac_base
  expect_bad(R"({"vf": {"vfs_per_pf": 0}})", "vf.vfs_per_pf");
  expect_bad(R"({"vf": {"vfs_per_pf": 2000}})", "vf.vfs_per_pf");
  expect_bad(R"({"vf": {"max_queue_pairs": 0}})", "vf.max_queue_pairs");
  expect_bad(R"({"vf": {"max_queue_size": 100}})", "vf.max_queue_size");
  expect_bad(R"({"vf": {"max_queue_size": 65536}})", "vf.max_queue_size");
  expect_bad(R"({"vf": {"features": true}})", "vf.features");
  expect_bad(R"({"vf": {"speed": 1}})", "vf.speed");
  expect_bad(R"({"lm_prov": "qemu"})", "lm_prov");
  expect_bad(R"({"bogus": 1})", "bogus");
}

TEST(VirtnetConf, CrossChecks) {
  expect_bad(R"({"is_lag": 1, "single_port": 1})", "single_port");
  expect_bad(R"({"ib_dev_lag": "mlx5_bond_0", "ib_dev_p0": "mlx5_0"})", "ib_dev_lag");
  expect_bad(R"({"is_lag": 1, "ib_dev_for_static_pf": "mlx5_0"})", "ib_dev_for_static_pf");
  auto c = P(R"({"is_lag": 1})");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->ib_dev_for_static_pf, "mlx5_bond_0");
}

TEST(VirtnetConf, MalformedJson) {
  auto c = P(R"({"is_lag": 0,})");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("invalid JSON"), std::string::npos);
  EXPECT_FALSE(P("[1, 2]"));
  EXPECT_FALSE(P("42"));
}

TEST(VirtnetConf, LoadFile) {
  EXPECT_TRUE(load_virtnet_conf("/nonexistent/virtnet.conf", true));  // default path may be missing
  auto m = load_virtnet_conf("/nonexistent/virtnet.conf", false);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::kNotFound);
  char tmpl[] = "/tmp/virtnet-conf-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(tmpl) << R"({"packed_vq": 7})";
  auto b = load_virtnet_conf(tmpl, false);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find(tmpl), std::string::npos);
  EXPECT_NE(b.error().message.find("packed_vq"), std::string::npos);
  unlink(tmpl);
}

TEST(Mac, ParseFormatAdd) {
  auto m = parse_mac("0c:C4:7a:FF:22:93");
  ASSERT_TRUE(m);
  EXPECT_EQ(format_mac(*m), "0C:C4:7A:FF:22:93");
  EXPECT_EQ(format_mac(*m, false), "0c:c4:7a:ff:22:93");
  for (const char* bad : {"", "0C:C4:7A:FF:22", "0C:C4:7A:FF:22:93:11", "0C-C4-7A-FF-22-93", "0G:C4:7A:FF:22:93",
                          "0C:C4:7A:FF:22:9"})
    EXPECT_FALSE(parse_mac(bad)) << bad;
  EXPECT_EQ(format_mac(mac_add(*parse_mac("00:00:00:00:00:ff"), 1)), "00:00:00:00:01:00");
  EXPECT_EQ(format_mac(mac_add(*parse_mac("FF:FF:FF:FF:FF:FF"), 1)), "00:00:00:00:00:00");
}

TEST(Hex, Parse) {
  EXPECT_EQ(*parse_hex_u64("0x230047082b"), 0x230047082bull);
  EXPECT_EQ(*parse_hex_u64("ff"), 0xffu);
  EXPECT_FALSE(parse_hex_u64("0x"));
  EXPECT_FALSE(parse_hex_u64("0x1g"));
  EXPECT_FALSE(parse_hex_u64("0x11112222333344445"));
}

// ---------------------------------------------------------------- §1.1

TEST(StaticConf, DefaultsAndSpecExamples) {
  auto d = parse_static_conf("");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->num_pf, 0u);
  EXPECT_EQ(d->max_hotplug(), 16u);
  auto a = parse_static_conf("VIRTIO_NET_EMULATION_ENABLE=1\nVIRTIO_NET_EMULATION_NUM_PF=4\n"
                             "VIRTIO_NET_EMULATION_NUM_MSIX=64\nPCI_SWITCH_EMULATION_ENABLE=0\nPF_TOTAL_SF=64\n");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->num_pf, 4u);
  EXPECT_EQ(a->max_hotplug(), 0u);
  auto v = parse_static_conf("# 4 PF x 126 VF\nVIRTIO_NET_EMULATION_NUM_PF=2\nSRIOV_EN=True\n"
                             "VIRTIO_NET_EMULATION_NUM_VF=100\nVIRTIO_NET_EMULATION_NUM_VF_MSIX=64\n"
                             "PCI_SWITCH_EMULATION_ENABLE=1\nPCI_SWITCH_EMULATION_NUM_PORT=15\nPF_TOTAL_SF=512\n");
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->vf_msix(), 64u);
  auto all = parse_static_conf(
      "PER_PF_NUM_SF=1\nPF_SF_BAR_SIZE=10\nPF_BAR2_ENABLE=0\nEXP_ROM_VIRTIO_NET_PXE_ENABLE=1\n"
      "EXP_ROM_VIRTIO_NET_UEFI_ARM_ENABLE=1\nEXP_ROM_VIRTIO_NET_UEFI_x86_ENABLE=1\nNUM_VF_MSIX=8\n");
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(all->vf_msix(), 8u);  // min(NUM_VF_MSIX, NUM_MSIX)
}

TEST(StaticConf, BadValuesNameLineAndKey) {
  struct Case {
    const char* text;
    const char* key;
  } cases[] = {
      {"VIRTIO_NET_EMULATION_ENABLE=2", "VIRTIO_NET_EMULATION_ENABLE"},
      {"VIRTIO_NET_EMULATION_NUM_PF=32", "VIRTIO_NET_EMULATION_NUM_PF"},
      {"SRIOV_EN=1\nVIRTIO_NET_EMULATION_NUM_VF=1009", "VIRTIO_NET_EMULATION_NUM_VF"},
      {"VIRTIO_NET_EMULATION_NUM_MSIX=2", "VIRTIO_NET_EMULATION_NUM_MSIX"},
      {"VIRTIO_NET_EMULATION_NUM_VF_MSIX=x", "VIRTIO_NET_EMULATION_NUM_VF_MSIX"},
      {"PCI_SWITCH_EMULATION_ENABLE=maybe", "PCI_SWITCH_EMULATION_ENABLE"},
      {"PCI_SWITCH_EMULATION_NUM_PORT=32", "PCI_SWITCH_EMULATION_NUM_PORT"},
      {"PER_PF_NUM_SF=3", "PER_PF_NUM_SF"},
      {"PF_TOTAL_SF=5000", "PF_TOTAL_SF"},
      {"PF_SF_BAR_SIZE=17", "PF_SF_BAR_SIZE"},
      {"PF_BAR2_ENABLE=1", "PF_BAR2_ENABLE"},
      {"SRIOV_EN=-1", "SRIOV_EN"},
      {"EXP_ROM_VIRTIO_NET_PXE_ENABLE=2", "EXP_ROM_VIRTIO_NET_PXE_ENABLE"},
      {"EXP_ROM_VIRTIO_NET_UEFI_ARM_ENABLE=2", "EXP_ROM_VIRTIO_NET_UEFI_ARM_ENABLE"},
      {"EXP_ROM_VIRTIO_NET_UEFI_x86_ENABLE=2", "EXP_ROM_VIRTIO_NET_UEFI_x86_ENABLE"},
      {"NUM_VF_MSIX=9999", "NUM_VF_MSIX"},
      {"NVME_EMULATION_ENABLE=1", "NVME_EMULATION_ENABLE"},
      {"JUNK", "JUNK"},
  };
  for (auto& c : cases) {
    auto r = parse_static_conf(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message.find(c.key), std::string::npos) << r.error().message;
  }
  auto l = parse_static_conf("# c\n\nPF_BAR2_ENABLE=1\n");
  ASSERT_FALSE(l);
  EXPECT_NE(l.error().message.find("line 3"), std::string::npos) << l.error().message;
}

TEST(StaticConf, CrossChecks) {
  EXPECT_FALSE(parse_static_conf("VIRTIO_NET_EMULATION_ENABLE=0\nVIRTIO_NET_EMULATION_NUM_PF=1"));
  EXPECT_FALSE(parse_static_conf("VIRTIO_NET_EMULATION_NUM_VF=4"));  // needs SRIOV_EN
  EXPECT_FALSE(parse_static_conf("PCI_SWITCH_EMULATION_ENABLE=0\nPCI_SWITCH_EMULATION_NUM_PORT=4"));
  // §1: <= 256 functions; <= 15 hotplug ports together with VFs.
  EXPECT_FALSE(parse_static_conf("SRIOV_EN=1\nVIRTIO_NET_EMULATION_NUM_PF=2\nVIRTIO_NET_EMULATION_NUM_VF=126\n"
                                 "PCI_SWITCH_EMULATION_NUM_PORT=8"));
  EXPECT_FALSE(parse_static_conf("SRIOV_EN=1\nVIRTIO_NET_EMULATION_NUM_PF=1\nVIRTIO_NET_EMULATION_NUM_VF=2\n"
                                 "PCI_SWITCH_EMULATION_NUM_PORT=16"));
  EXPECT_TRUE(parse_static_conf("SRIOV_EN=1\nVIRTIO_NET_EMULATION_NUM_PF=2\nVIRTIO_NET_EMULATION_NUM_VF=110\n"
                                "PCI_SWITCH_EMULATION_NUM_PORT=15"));
}

}  // namespace
}  // namespace vdpu::service::virtnet
