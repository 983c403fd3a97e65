#include "pci/function_base.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include "pci/pci_regs.h"

namespace vdpu::pci {
namespace {

struct TestFn : PciFunctionBase {
  explicit TestFn(FunctionOptions o) : PciFunctionBase(std::move(o)) {}
  int resets = 0, attaches = 0, detaches = 0;
  void on_reset(std::function<void()> done) override { ++resets; done(); }
  void on_attach(const hostmem::MemoryMapPtr&) override { ++attaches; }
  void on_detach(std::function<void()> done) override { ++detaches; done(); }
};

FunctionOptions opts() {
  return FunctionOptions{"test", nvme_config_options(Identity{}, 16, "SERIALNVMES0D0F0")};
}

TEST(PciFunctionBase, RoutesConfigBarMsixAndMmapArea) {
  TestFn f(opts());
  std::vector<std::pair<uint64_t, uint32_t>> writes;
  uint32_t reg = 0x11223344;
  ASSERT_TRUE(f.set_bar_handler(0, BarHandler{
      [&](uint64_t off, std::span<uint8_t> out) -> Result<size_t> {
        for (size_t i = 0; i < out.size(); ++i) out[i] = uint8_t(reg >> (8 * ((off + i) % 4)));
        return out.size();
      },
      [&](uint64_t off, std::span<const uint8_t> in) -> Result<size_t> {
        uint32_t v = 0;
        memcpy(&v, in.data(), std::min<size_t>(4, in.size()));
        writes.emplace_back(off, v);
        return in.size();
      }}));
  auto db = f.add_mmap_area(0, kNvmeDoorbellOffset, kNvmeDoorbellSize);
  ASSERT_TRUE(db);
  // Config region.
  uint16_t vid = 0;
  ASSERT_TRUE(f.region_read(RegionIndex::kConfig, kVendorId, {reinterpret_cast<uint8_t*>(&vid), 2}));
  EXPECT_EQ(vid, 0x15b3);
  // Registers go to the handler.
  uint32_t v = 0;
  ASSERT_TRUE(f.region_read(RegionIndex::kBar0, 0x14, {reinterpret_cast<uint8_t*>(&v), 4}));
  EXPECT_EQ(v, reg);
  uint32_t w = 0x460001;
  ASSERT_TRUE(f.region_write(RegionIndex::kBar0, 0x14, {reinterpret_cast<uint8_t*>(&w), 4}));
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0], std::make_pair(uint64_t(0x14), w));
  // Doorbell writes through REGION_WRITE land in the shared page.
  uint32_t tail = 7;
  ASSERT_TRUE(f.region_write(RegionIndex::kBar0, 0x1008, {reinterpret_cast<uint8_t*>(&tail), 4}));
  EXPECT_EQ(*reinterpret_cast<volatile uint32_t*>(*db + 8), 7u);
  EXPECT_EQ(writes.size(), 1u);
  // MSI-X table: vector 0 control reads masked after reset.
  uint32_t ctrl = 0;
  ASSERT_TRUE(f.region_read(RegionIndex::kBar0, kNvmeMsixTableOffset + 12, {reinterpret_cast<uint8_t*>(&ctrl), 4}));
  EXPECT_EQ(ctrl, 1u);
  // Out-of-range access is an error (the transport answers EINVAL).
  EXPECT_FALSE(f.region_read(RegionIndex::kBar0, kNvmeBar0Size - 2, {reinterpret_cast<uint8_t*>(&v), 4}));
  EXPECT_FALSE(f.region_read(RegionIndex::kBar2, 0, {reinterpret_cast<uint8_t*>(&v), 4}));
  // Region info advertises the sparse doorbell page with the memfd.
  RegionInfo ri = f.region_info(RegionIndex::kBar0);
  EXPECT_EQ(ri.size, kNvmeBar0Size);
  EXPECT_TRUE(ri.mmappable);
  ASSERT_EQ(ri.mmap_areas.size(), 1u);
  EXPECT_EQ(ri.mmap_areas[0], std::make_pair(kNvmeDoorbellOffset, kNvmeDoorbellSize));
  ASSERT_GE(ri.mmap_fd, 0);
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ri.mmap_fd, kNvmeDoorbellOffset);
  ASSERT_NE(p, MAP_FAILED);
  static_cast<volatile uint32_t*>(p)[3] = 42;  // the client's doorbell write
  EXPECT_EQ(reinterpret_cast<volatile uint32_t*>(*db)[3], 42u);
  munmap(p, 4096);
  EXPECT_EQ(f.region_info(RegionIndex::kConfig).size, 4096u);
  EXPECT_EQ(f.region_info(RegionIndex::kBar1).size, 0u);
}

TEST(PciFunctionBase, MmapAreaValidation) {
  TestFn f(opts());
  EXPECT_FALSE(f.add_mmap_area(0, 0x100, 0x1000));   // unaligned
  EXPECT_FALSE(f.add_mmap_area(0, 0x2000, 0x1000));  // MSI-X table
  EXPECT_FALSE(f.add_mmap_area(0, 0x7000, 0x2000));  // past the BAR
  EXPECT_FALSE(f.add_mmap_area(1, 0, 0x1000));       // no BAR1
  EXPECT_TRUE(f.add_mmap_area(0, 0x1000, 0x1000));
  EXPECT_FALSE(f.add_mmap_area(0, 0x1000, 0x1000));  // overlap
}

TEST(PciFunctionBase, FlrResetsConfigAndModel) {
  TestFn f(opts());
  auto db = f.add_mmap_area(0, kNvmeDoorbellOffset, kNvmeDoorbellSize);
  ASSERT_TRUE(db);
  (*db)[0] = 5;
  uint16_t cmd = kCommandMemory | kCommandMaster;
  ASSERT_TRUE(f.region_write(RegionIndex::kConfig, kCommand, {reinterpret_cast<uint8_t*>(&cmd), 2}));
  uint16_t exp = f.config().find_cap(kCapIdExp);
  uint16_t flr = kExpDevCtlBcrFlr;
  ASSERT_TRUE(f.region_write(RegionIndex::kConfig, exp + kExpDevCtl, {reinterpret_cast<uint8_t*>(&flr), 2}));
  EXPECT_EQ(f.resets, 1);
  EXPECT_EQ(f.config().command(), 0);
  EXPECT_EQ((*db)[0], 0);
}

TEST(PciFunctionBase, MsixEnableFromConfigDrivesTable) {
  TestFn f(opts());
  struct Sink : IrqSink {
    int n = 0;
    void raise(uint16_t) noexcept override { ++n; }
  } sink;
  f.attach(std::make_shared<hostmem::MemoryMap>(), &sink);
  EXPECT_EQ(f.attaches, 1);
  uint32_t ctrl = 0;
  ASSERT_TRUE(f.region_write(RegionIndex::kBar0, kNvmeMsixTableOffset + 16 + 12, {reinterpret_cast<uint8_t*>(&ctrl), 4}));
  f.msix().raise(1);
  EXPECT_EQ(sink.n, 0);  // MSI-X not enabled yet
  uint16_t m = f.config().find_cap(kCapIdMsix);
  uint16_t en = kMsixFlagsEnable;
  ASSERT_TRUE(f.region_write(RegionIndex::kConfig, m + kMsixFlags, {reinterpret_cast<uint8_t*>(&en), 2}));
  EXPECT_EQ(sink.n, 1);  // pending vector delivered on enable
  bool done = false;
  f.detach([&] { done = true; });
  EXPECT_TRUE(done);
  EXPECT_FALSE(f.attached());
  f.msix().raise(1);
  EXPECT_EQ(sink.n, 1);
}

TEST(PciFunctionBase, CheckRejectsBadOptions) {
  FunctionOptions o = opts();
  o.config.bars[0].size = 1000;
  EXPECT_FALSE(PciFunctionBase::check(o));
  EXPECT_TRUE(PciFunctionBase::check(opts()));
}

}  // namespace
}  // namespace vdpu::pci
