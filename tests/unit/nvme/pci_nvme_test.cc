// NvmePciFunction: BAR0 registers through region accesses, the doorbell page
// as an mmap area (and through REGION_WRITE), MSI-X through pci::MsixTable.
#include "nvme/pci_nvme.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>

#include "pci/pci_regs.h"
#include "test_host.h"

namespace vdpu::nvme::test {
namespace {

using pci::RegionIndex;

struct Rig {
  ManualEnv env;
  std::unique_ptr<Subsystem> subsys;
  std::unique_ptr<Controller> ctrl;
  std::unique_ptr<NvmePciFunction> fn;
  CountingIrq irq;
  hostmem::MemoryMapPtr map;
  uint8_t* mem = nullptr;
  static constexpr uint64_t kBase = 0x40000000, kSize = 1 << 20;

  Rig() {
    mem = static_cast<uint8_t*>(
        mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    hostmem::Region r;
    r.gpa = kBase;
    r.size = kSize;
    r.hva = mem;
    r.mmap_base = mem;
    r.mmap_len = kSize;
    map = std::make_shared<hostmem::MemoryMap>(std::vector<hostmem::Region>{r});
    subsys = Subsystem::create({"nqn.2022-10.io.vdpu:pci"}).value();
    ControllerOptions o;
    o.name = "PciCtrl";
    ctrl = Controller::create(*subsys, o, env).value();
    pci::FunctionOptions fo;
    fo.name = "nvme-pf0";
    fo.config = pci::nvme_config_options({}, uint16_t(ctrl->num_msix()), "");
    fn = NvmePciFunction::create(fo).value();
  }
  ~Rig() {
    bool done = false;
    ctrl->destroy([&] { done = true; });
    env.run_until_idle();
    fn->unbind();
    ctrl.reset();
  }
  void w32(uint64_t off, uint32_t v) {
    ASSERT_TRUE(fn->region_write(RegionIndex::kBar0, off, {reinterpret_cast<uint8_t*>(&v), 4}).ok());
  }
  uint32_t r32(uint64_t off) {
    uint32_t v = 0;
    EXPECT_TRUE(fn->region_read(RegionIndex::kBar0, off, {reinterpret_cast<uint8_t*>(&v), 4}).ok());
    return v;
  }
  void cfg16(uint32_t off, uint16_t v) {
    ASSERT_TRUE(fn->region_write(RegionIndex::kConfig, off, {reinterpret_cast<uint8_t*>(&v), 2}).ok());
  }
};

TEST(NvmePci, UnboundFunctionReadsZero) {
  Rig rig;
  EXPECT_EQ(rig.r32(kRegVs), 0u);
  rig.w32(kRegCc, 1);  // ignored, no crash
  pci::RegionInfo ri = rig.fn->region_info(RegionIndex::kBar0);
  EXPECT_EQ(ri.size, pci::kNvmeBar0Size);
  ASSERT_EQ(ri.mmap_areas.size(), 1u);
  EXPECT_EQ(ri.mmap_areas[0].first, pci::kNvmeDoorbellOffset);
  EXPECT_GE(ri.mmap_fd, 0);
}

TEST(NvmePci, EnableIdentifyAndMsix) {
  Rig rig;
  ASSERT_TRUE(rig.fn->bind(rig.ctrl.get()).ok());
  EXPECT_EQ(rig.fn->bind(rig.ctrl.get()).error().code, Errc::kBusy);
  rig.fn->attach(rig.map, &rig.irq);
  EXPECT_EQ(rig.r32(kRegVs), kNvmeVersion14);
  // MSI-X on, vector 0 unmasked (table entry 0 vector control at 0x200c).
  uint16_t cap = rig.fn->config().find_cap(pci::kCapIdMsix);
  ASSERT_NE(cap, 0);
  rig.cfg16(pci::kCommand, pci::kCommandMemory | pci::kCommandMaster);
  rig.cfg16(cap + pci::kMsixFlags, pci::kMsixFlagsEnable);
  rig.w32(pci::kNvmeMsixTableOffset + 0, 0xfee00000);
  rig.w32(pci::kNvmeMsixTableOffset + 8, 0x20);
  rig.w32(pci::kNvmeMsixTableOffset + 12, 0);
  // Admin queues at the start of guest memory.
  uint64_t asq = Rig::kBase, acq = Rig::kBase + 0x1000, buf = Rig::kBase + 0x2000;
  rig.w32(kRegAqa, 0x000f000f);
  rig.w32(kRegAsq, uint32_t(asq));
  rig.w32(kRegAsq + 4, 0);
  rig.w32(kRegAcq, uint32_t(acq));
  rig.w32(kRegAcq + 4, 0);
  rig.w32(kRegCc, kCcEn | (6u << 16) | (4u << 20));
  rig.env.run_until_idle();
  ASSERT_EQ(rig.r32(kRegCsts) & kCstsRdy, kCstsRdy);
  SqEntry c{};
  c.opc = kAdmIdentify;
  c.cid = 7;
  c.prp1 = buf;
  c.cdw10 = kCnsController;
  std::memcpy(rig.mem, &c, 64);
  // Doorbell through REGION_WRITE into the mmap area (client did not mmap).
  rig.w32(pci::kNvmeDoorbellOffset, 1);
  rig.env.run_until_idle();
  CqEntry e;
  std::memcpy(&e, rig.mem + 0x1000, 16);
  EXPECT_EQ(e.cid, 7);
  EXPECT_EQ(e.status, 1);  // phase 1, success
  EXPECT_EQ(le16(rig.mem + 0x2000), 0x15b3);  // VID
  EXPECT_EQ(rig.irq.counts[0], 1u);
  // The shared doorbell page is the controller's doorbell array.
  EXPECT_EQ(rig.ctrl->doorbells()[0], 1u);
  // FLR through the function: controller back to power-on registers.
  bool done = false;
  rig.fn->reset([&] { done = true; });
  rig.env.run_until_idle();
  EXPECT_TRUE(done);
  EXPECT_EQ(rig.r32(kRegCc), 0u);
  EXPECT_EQ(rig.r32(kRegCsts), 0u);
}

}  // namespace
}  // namespace vdpu::nvme::test
