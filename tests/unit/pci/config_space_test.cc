#include "pci/config_space.h"

#include <gtest/gtest.h>

#include "pci/function_base.h"
#include "pci/pci_regs.h"

namespace vdpu::pci {
namespace {

ConfigOptions nvme_opts() { return nvme_config_options(Identity{}, 32, "VDPU0001NVMES0D0F0"); }

TEST(ConfigSpace, IdentityAndReadOnlyHeader) {
  ConfigSpace c(nvme_opts());
  EXPECT_EQ(c.read16(kVendorId), 0x15b3);
  EXPECT_EQ(c.read16(kDeviceId), 0x6001);
  EXPECT_EQ(c.read32(kRevisionId) >> 8, 0x010802u);
  // PCI 3.0 §6.1: IDs are read-only.
  c.write16(kVendorId, 0x1234);
  c.write16(kDeviceId, 0x5678);
  c.write32(kRevisionId, 0xffffffff);
  EXPECT_EQ(c.read16(kVendorId), 0x15b3);
  EXPECT_EQ(c.read16(kDeviceId), 0x6001);
  EXPECT_EQ(c.read32(kRevisionId) >> 8, 0x010802u);
  EXPECT_EQ(c.read16(kStatus) & kStatusCapList, kStatusCapList);
  c.write16(kStatus, 0);  // Capabilities List is read-only
  EXPECT_EQ(c.read16(kStatus) & kStatusCapList, kStatusCapList);
}

TEST(ConfigSpace, CommandWritableBitsOnly) {
  ConfigSpace c(nvme_opts());
  uint16_t seen = 0;
  c.on_command = [&](uint16_t v) { seen = v; };
  c.write16(kCommand, 0xffff);
  uint16_t cmd = c.read16(kCommand);
  EXPECT_EQ(cmd, kCommandMemory | kCommandMaster | kCommandParity | kCommandSerr | kCommandIntxDisable);
  EXPECT_EQ(seen, cmd);
  EXPECT_TRUE(c.bus_master());
}

TEST(ConfigSpace, StatusErrorBitsAreRw1c) {
  ConfigSpace c(nvme_opts());
  // Software cannot set error bits: writing 1 clears, writing 0 has no effect.
  c.write16(kStatus, 0xffff);
  EXPECT_EQ(c.read16(kStatus), kStatusCapList);
  uint16_t exp = c.find_cap(kCapIdExp);
  ASSERT_NE(exp, 0);
  c.write16(exp + kExpDevSta, 0xffff);
  EXPECT_EQ(c.read16(exp + kExpDevSta), 0);
}

TEST(ConfigSpace, Bar64SizingProtocol) {
  ConfigSpace c(nvme_opts());
  EXPECT_EQ(c.read32(kBaseAddress0), kBarMemType64);
  c.write32(kBaseAddress0, 0xffffffff);
  c.write32(kBaseAddress0 + 4, 0xffffffff);
  // Size mask plus type bits: 32 KiB, 64-bit, non-prefetchable.
  EXPECT_EQ(c.read32(kBaseAddress0), (~uint32_t(kNvmeBar0Size - 1)) | kBarMemType64);
  EXPECT_EQ(c.read32(kBaseAddress0 + 4), 0xffffffffu);
  c.write32(kBaseAddress0, 0xfe000000);
  c.write32(kBaseAddress0 + 4, 0x1);
  EXPECT_EQ(c.bar_address(0), 0x1fe000000ull);
  // Unimplemented BARs read 0 even after writing all-ones.
  c.write32(kBaseAddress0 + 8, 0xffffffff);
  EXPECT_EQ(c.read32(kBaseAddress0 + 8), 0u);
}

TEST(ConfigSpace, Bar32AndIoSizing) {
  ConfigOptions o;
  o.bars[0] = BarDesc{0x1000, false, true, false};
  o.bars[1] = BarDesc{0x20, false, false, true};
  ASSERT_FALSE(ConfigSpace::validate(o));
  ConfigSpace c(o);
  c.write32(kBaseAddress0, 0xffffffff);
  EXPECT_EQ(c.read32(kBaseAddress0), 0xfffff000u | kBarMemPrefetch);
  c.write32(kBaseAddress0 + 4, 0xffffffff);
  EXPECT_EQ(c.read32(kBaseAddress0 + 4), 0xffffffe0u | kBarSpaceIo);
}

TEST(ConfigSpace, ValidateRejectsBadLayouts) {
  ConfigOptions o;
  o.bars[0] = BarDesc{3000, false, false, false};
  EXPECT_TRUE(ConfigSpace::validate(o));
  o.bars[0] = BarDesc{0x1000, true, false, false};
  o.bars[1] = BarDesc{0x1000};
  EXPECT_TRUE(ConfigSpace::validate(o));  // upper half of the 64-bit BAR used
  o.bars[1] = BarDesc{};
  o.bars[5] = BarDesc{0x1000, true};
  EXPECT_TRUE(ConfigSpace::validate(o));  // 64-bit BAR in the last slot
  o.bars[5] = BarDesc{};
  o.msix = MsixLayout{300, 0, 0, 0, 0xf00};
  EXPECT_TRUE(ConfigSpace::validate(o));  // table does not fit
  o.msix = MsixLayout{4, 0, 0, 0, 0x20};
  EXPECT_TRUE(ConfigSpace::validate(o));  // table and PBA overlap
  o.msix = MsixLayout{4, 2, 0, 0, 0x800};
  EXPECT_TRUE(ConfigSpace::validate(o));  // table BAR not implemented
  o.msix = MsixLayout{4, 0, 0, 0, 0x800};
  EXPECT_FALSE(ConfigSpace::validate(o));
}

TEST(ConfigSpace, CapabilityChainWalk) {
  ConfigOptions o = nvme_opts();
  o.sriov = SriovLayout{8, 1, 1, 0x6002};
  ConfigSpace c(o);
  std::vector<uint8_t> ids;
  uint8_t off = c.read16(kCapabilityList) & 0xff;
  for (int guard = 0; off && guard < 48; ++guard) {
    EXPECT_EQ(off % 4, 0);
    EXPECT_GE(off, 0x40);
    ids.push_back(c.read16(off) & 0xff);
    off = c.read16(off) >> 8;
  }
  EXPECT_EQ(ids, (std::vector<uint8_t>{kCapIdPm, kCapIdExp, kCapIdMsix, kCapIdVpd, kCapIdVendor}));
  EXPECT_EQ(c.find_ext_cap(kExtCapIdSriov), 0x100);
  // The chain pointers are read-only.
  uint16_t pm = c.find_cap(kCapIdPm);
  c.write16(pm, 0xffff);
  EXPECT_EQ(c.find_cap(kCapIdPm), pm);
  EXPECT_EQ(c.read16(pm) >> 8, c.find_cap(kCapIdExp));
}

TEST(ConfigSpace, VendorCapabilityCarriesVuid) {
  ConfigSpace c(nvme_opts());
  uint16_t v = c.find_cap(kCapIdVendor);
  ASSERT_NE(v, 0);
  uint8_t len = uint8_t(c.read16(v + 2));
  std::string s;
  for (int i = 3; i < len; ++i) {
    uint8_t b = 0;
    c.read(v + i, {&b, 1});
    if (b) s.push_back(char(b));
  }
  EXPECT_EQ(s, "VU=VDPU0001NVMES0D0F0");
}

TEST(ConfigSpace, VpdReadProtocol) {
  ConfigSpace c(nvme_opts());
  uint16_t vpd = c.find_cap(kCapIdVpd);
  ASSERT_NE(vpd, 0);
  std::string image;
  for (uint16_t a = 0; a < 128; a += 4) {
    c.write16(vpd + kVpdAddr, a);  // F = 0: read request
    uint16_t st = c.read16(vpd + kVpdAddr);
    ASSERT_TRUE(st & kVpdAddrF);
    uint32_t d = c.read32(vpd + kVpdData);
    for (int i = 0; i < 4; ++i) image.push_back(char(d >> (8 * i)));
  }
  EXPECT_EQ(uint8_t(image[0]), 0x82);
  auto pos = image.find("VU");
  ASSERT_NE(pos, std::string::npos);
  EXPECT_EQ(image.substr(pos + 3, 18), "VDPU0001NVMES0D0F0");
  // Checksum: bytes from 0 through RV's checksum byte sum to 0.
  auto rv = image.find("RV");
  uint8_t sum = 0;
  for (size_t i = 0; i <= rv + 3; ++i) sum = uint8_t(sum + uint8_t(image[i]));
  EXPECT_EQ(sum, 0);
}

TEST(ConfigSpace, MsixCapabilityAndControl) {
  ConfigSpace c(nvme_opts());
  uint16_t m = c.find_cap(kCapIdMsix);
  ASSERT_NE(m, 0);
  EXPECT_EQ(c.read16(m + kMsixFlags) & kMsixFlagsQsize, 31);  // N-1
  EXPECT_EQ(c.read32(m + kMsixTable), kNvmeMsixTableOffset | 0u);
  EXPECT_EQ(c.read32(m + kMsixPba), kNvmeMsixPbaOffset | 0u);
  int calls = 0;
  bool en = false, mask = false;
  c.on_msix_control = [&](bool e, bool k) { ++calls, en = e, mask = k; };
  c.write16(m + kMsixFlags, 0xffff);  // Table Size stays read-only
  EXPECT_EQ(c.read16(m + kMsixFlags), kMsixFlagsEnable | kMsixFlagsMaskAll | 31);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(en && mask);
  c.write16(m + kMsixFlags, kMsixFlagsEnable);
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(en && !mask);
  EXPECT_TRUE(c.msix_enabled());
  c.write16(m + kMsixFlags, kMsixFlagsEnable);  // no change, no callback
  EXPECT_EQ(calls, 2);
}

TEST(ConfigSpace, FlrTriggerAndReset) {
  ConfigSpace c(nvme_opts());
  uint16_t e = c.find_cap(kCapIdExp);
  EXPECT_TRUE(c.read32(e + kExpDevCap) & kExpDevCapFlr);
  int flrs = 0;
  c.on_flr = [&] { ++flrs; c.reset(); };
  c.write16(kCommand, kCommandMemory | kCommandMaster);
  c.write16(e + kExpDevCtl, 0x2810 | kExpDevCtlBcrFlr);
  EXPECT_EQ(flrs, 1);
  // Initiate FLR reads 0; the reset cleared Command.
  EXPECT_EQ(c.read16(e + kExpDevCtl) & kExpDevCtlBcrFlr, 0);
  EXPECT_EQ(c.read16(kCommand), 0);
  // A byte write of the upper DevCtl byte triggers too.
  uint8_t hi = 0x80;
  c.write(e + kExpDevCtl + 1, {&hi, 1});
  EXPECT_EQ(flrs, 2);
  // Without FLR capability the bit is ignored.
  ConfigOptions o = nvme_opts();
  o.flr = false;
  ConfigSpace d(o);
  d.on_flr = [&] { ++flrs; };
  d.write16(d.find_cap(kCapIdExp) + kExpDevCtl, kExpDevCtlBcrFlr);
  EXPECT_EQ(flrs, 2);
  EXPECT_FALSE(d.read32(d.find_cap(kCapIdExp) + kExpDevCap) & kExpDevCapFlr);
}

TEST(ConfigSpace, SriovNumVfsAndEnable) {
  ConfigOptions o = nvme_opts();
  o.sriov = SriovLayout{4, 1, 1, 0};
  ConfigSpace c(o);
  uint16_t s = c.find_ext_cap(kExtCapIdSriov);
  ASSERT_EQ(s, 0x100);
  EXPECT_EQ(c.read16(s + kSriovTotalVf), 4);
  std::vector<std::pair<bool, uint16_t>> calls;
  c.on_sriov = [&](bool e, uint16_t n) { calls.emplace_back(e, n); };
  c.write16(s + kSriovNumVf, 9);  // above TotalVFs: refused
  EXPECT_EQ(c.read16(s + kSriovNumVf), 0);
  c.write16(s + kSriovNumVf, 3);
  c.write16(s + kSriovCtrl, kSriovCtrlVfe | kSriovCtrlMse);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], std::make_pair(true, uint16_t(3)));
  c.write16(s + kSriovNumVf, 2);  // NumVFs frozen while VF Enable is set
  EXPECT_EQ(c.read16(s + kSriovNumVf), 3);
  c.write16(s + kSriovCtrl, 0);
  EXPECT_EQ(calls.back(), std::make_pair(false, uint16_t(3)));
}

TEST(ConfigSpace, OutOfRangeAccessIsHarmless) {
  ConfigSpace c(nvme_opts());
  uint8_t buf[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  c.read(4092, buf);
  EXPECT_EQ(buf[4], 0);
  c.write(4094, buf);  // partially outside: ignored beyond 4096
  c.write(5000, buf);
  EXPECT_EQ(c.read16(kVendorId), 0x15b3);
}

}  // namespace
}  // namespace vdpu::pci
