#include "pci/emu_config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace vdpu::pci {
namespace {

TEST(EmuConfig, GoodFile) {
  auto r = parse_emu_config(R"(# static emulation config
INTERNAL_CPU_MODEL=1
SRIOV_EN = 1
PCI_SWITCH_EMULATION_ENABLE=1
PCI_SWITCH_EMULATION_NUM_PORT=16   # 15 hotplug slots
NVME_EMULATION_ENABLE=1
NVME_EMULATION_NUM_PF=2
NVME_EMULATION_NUM_VF=125
NVME_EMULATION_NUM_MSIX=63
NVME_EMULATION_NUM_VF_MSIX=4
NVME_EMULATION_DEVICE_ID=0x6011
VIRTIO_BLK_EMULATION_ENABLE=1
VIRTIO_BLK_EMULATION_NUM_PF=1
VIRTIO_BLK_EMULATION_NUM_MSIX=33
EXP_ROM_NVME_UEFI_x86_ENABLE=0
)");
  ASSERT_TRUE(r) << r.error().message;
  const EmuConfig& c = *r;
  EXPECT_TRUE(c.sriov_en);
  EXPECT_EQ(c.hotplug_slots(), 15u);
  EXPECT_TRUE(c.nvme.enable);
  EXPECT_EQ(c.nvme.num_pf, 2u);
  EXPECT_EQ(c.nvme.num_vf, 125u);
  EXPECT_EQ(c.nvme.num_msix, 63u);
  EXPECT_EQ(c.nvme.num_vf_msix, 4u);
  EXPECT_EQ(c.nvme.id.device_id, 0x6011);
  EXPECT_EQ(c.nvme.id.vendor_id, 0x15b3);  // §14 default
  EXPECT_EQ(c.nvme.id.class_code, 0x010802u);
  EXPECT_EQ(c.virtio_blk.num_pf, 1u);
  EXPECT_EQ(c.virtio_blk.id.vendor_id, 0x1af4);
}

TEST(EmuConfig, EmptyIsDefaults) {
  auto r = parse_emu_config("\n  \n# nothing\n");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->nvme.enable);
  EXPECT_EQ(r->hotplug_slots(), 0u);
}

void expect_error(const char* text, const char* needle) {
  auto r = parse_emu_config(text);
  ASSERT_FALSE(r) << text;
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
}

TEST(EmuConfig, BadFiles) {
  expect_error("NVME_EMULATION_ENABLE=1\nNVME_EMULATION_NUM_PF=5\n", "line 2: NVME_EMULATION_NUM_PF: 5 out of range [0-4]");
  expect_error("NVME_EMULATION_NUM_MSIX=64", "line 1: NVME_EMULATION_NUM_MSIX");
  expect_error("NVME_EMULATION_NUM_VF_MSIX=4096", "NVME_EMULATION_NUM_VF_MSIX");
  expect_error("SRIOV_EN=1\nNVME_EMULATION_ENABLE=1\nNVME_EMULATION_NUM_PF=1\nNVME_EMULATION_NUM_VF=257", "line 4");
  expect_error("SRIOV_EN=1\nVIRTIO_BLK_EMULATION_ENABLE=1\nVIRTIO_BLK_EMULATION_NUM_PF=1\nVIRTIO_BLK_EMULATION_NUM_VF=2001", "out of range");
  expect_error("PCI_SWITCH_EMULATION_ENABLE=1\nPCI_SWITCH_EMULATION_NUM_PORT=1", "[0,2-32]");
  expect_error("PCI_SWITCH_EMULATION_ENABLE=1\nPCI_SWITCH_EMULATION_NUM_PORT=33", "out of range");
  expect_error("\n\nFOO=1", "line 3: FOO: unknown key");
  expect_error("NVME_EMULATION_ENABLE", "expected KEY=VALUE");
  expect_error("NVME_EMULATION_ENABLE=yes", "'yes' is not a number");
  expect_error("NVME_EMULATION_ENABLE=-1", "not a number");
  expect_error("NVME_EMULATION_ENABLE=1\nNVME_EMULATION_ENABLE=0", "duplicate");
  expect_error("NVME_EMULATION_NUM_PF=1", "requires NVME_EMULATION_ENABLE=1");
  expect_error("NVME_EMULATION_ENABLE=1\nNVME_EMULATION_NUM_PF=1\nNVME_EMULATION_NUM_VF=4", "line 3: NVME_EMULATION_NUM_VF: requires SRIOV_EN=1");
  expect_error("PCI_SWITCH_EMULATION_NUM_PORT=8", "requires PCI_SWITCH_EMULATION_ENABLE=1");
  expect_error("NVME_EMULATION_VENDOR_ID=0x10000", "out of range");
  expect_error("NVME_EMULATION_ENABLE=99999999999999999999999", "not a number");
}

TEST(EmuConfig, LoadFile) {
  EXPECT_EQ(load_emu_config("/nonexistent/emu.conf").error().code, Errc::kNotFound);
  std::string path = ::testing::TempDir() + "/emu_config_test.conf";
  {
    std::ofstream f(path);
    f << "NVME_EMULATION_ENABLE=1\nNVME_EMULATION_NUM_PF=1\n";
  }
  auto r = load_emu_config(path);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->nvme.num_pf, 1u);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace vdpu::pci
