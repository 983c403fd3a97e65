// PciFunctionBase: the generic part of an emulated PCI function. It owns the
// config space, the MSI-X table/PBA and the shared-memory (memfd) areas of the
// BARs (doorbell pages), and routes the transport's region accesses:
//   config region        -> ConfigSpace
//   MSI-X table / PBA    -> MsixTable
//   mmap areas (memfd)   -> the shared memory itself (what a client that did
//                           not mmap would otherwise miss)
//   anything else in BARn-> the BarHandler registered by the device model.
// A device model (NVMe, virtio-pci) derives from it, registers BAR handlers
// and mmap areas in its constructor, and overrides the on_* hooks.
//
// Threads: the Function API runs on the control plane (the transport's
// reactor). msix().raise() may be called from any data reactor. The memory
// returned by add_mmap_area() is shared with the client: data reactors poll
// it (doorbells); treat every word as untrusted.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "pci/config_space.h"
#include "pci/function.h"
#include "pci/msix.h"

namespace vdpu::pci {

struct BarHandler {
  // offset is relative to the BAR start; out.size() is 1..max transfer.
  // Return the number of bytes handled; an error is answered to the client
  // (EINVAL), so reserve it for malformed accesses, not guest register mistakes.
  std::function<Result<size_t>(uint64_t offset, std::span<uint8_t> out)> read;
  std::function<Result<size_t>(uint64_t offset, std::span<const uint8_t> in)> write;
  // Optional: a client wrote into an mmap area through REGION_WRITE instead of
  // its mapping (the bytes are already stored). Lets event-mode models kick.
  std::function<void(uint64_t offset, size_t len)> area_written;
};

struct FunctionOptions {
  std::string name;        // for logs and RPC listings
  ConfigOptions config;    // identity, BARs, MSI-X layout, VUID, SR-IOV
};

// The public-sample NVMe BAR0 layout (nvme-emulation spec §1): 32 KiB BAR0,
// registers 0x0-0xfff, doorbells 0x1000-0x1fff (mmap-able), MSI-X table at
// 0x2000, PBA at 0x3000.
inline constexpr uint64_t kNvmeBar0Size = 0x8000;
inline constexpr uint64_t kNvmeDoorbellOffset = 0x1000;
inline constexpr uint64_t kNvmeDoorbellSize = 0x1000;
inline constexpr uint32_t kNvmeMsixTableOffset = 0x2000;
inline constexpr uint32_t kNvmeMsixPbaOffset = 0x3000;
// ConfigOptions for such a function: 64-bit BAR0 of kNvmeBar0Size, MSI-X
// table/PBA in BAR0 (vectors <= 256 so the table fits in 0x1000).
ConfigOptions nvme_config_options(const Identity& id, uint16_t msix_vectors, std::string vuid);

class PciFunctionBase : public Function {
 public:
  // Precondition: ConfigSpace::validate(opts.config) is nullopt (use
  // PciFunctionBase::check() first when options come from outside).
  explicit PciFunctionBase(FunctionOptions opts);
  ~PciFunctionBase() override;
  static Status check(const FunctionOptions& opts);

  // --- setup, control plane, before the function is served ---
  // Handler for accesses to `bar` not covered by MSI-X or mmap areas.
  Status set_bar_handler(int bar, BarHandler h);
  // Makes [offset, offset+size) of `bar` shared memory (page aligned, inside
  // the BAR, not overlapping MSI-X). Returns our mapping of it (zeroed).
  // Errors: kInvalidArgument (layout), kIo (memfd/mmap failed).
  Result<uint8_t*> add_mmap_area(int bar, uint64_t offset, uint64_t size);

  ConfigSpace& config() { return config_; }
  MsixTable& msix() { return msix_; }
  // The current DMA view (nullptr when detached). Control plane.
  const hostmem::MemoryMapPtr& dma() const { return dma_; }
  bool attached() const { return attached_; }

  // --- Function ---
  std::string name() const override { return opts_.name; }
  RegionInfo region_info(RegionIndex idx) const override;
  Result<size_t> region_read(RegionIndex idx, uint64_t offset, std::span<uint8_t> out) override;
  Result<size_t> region_write(RegionIndex idx, uint64_t offset,
                              std::span<const uint8_t> in) override;
  uint32_t num_msix() const override { return msix_.vectors(); }
  void attach(hostmem::MemoryMapPtr dma, IrqSink* irq) override;
  void dma_changed(hostmem::MemoryMapPtr dma) override;
  // Device reset: on_reset() of the model, then config space and MSI-X back
  // to power-on state, then done().
  void reset(std::function<void()> done) override;
  void detach(std::function<void()> done) override;

 protected:
  // Hooks for the device model (control plane). Defaults do nothing / call done.
  virtual void on_attach(const hostmem::MemoryMapPtr& dma) {}
  virtual void on_dma_changed(const hostmem::MemoryMapPtr& dma) {}
  // Quiesce and return to the reset state; call done when finished (may be later).
  virtual void on_reset(std::function<void()> done) { done(); }
  virtual void on_detach(std::function<void()> done) { done(); }
  // Config space Command register changed (e.g. bus master cleared).
  virtual void on_command(uint16_t command) {}
  // FLR requested through the PCIe capability. Default: reset(nullptr-done).
  virtual void on_flr();
  // SR-IOV VF Enable / NumVFs written by the driver.
  virtual void on_sriov(bool vf_enable, uint16_t num_vfs) {}

 private:
  struct Area {
    uint64_t offset = 0, size = 0;
  };
  struct Bar {
    BarHandler handler;
    std::vector<Area> areas;
    int memfd = -1;
    uint8_t* mem = nullptr;  // whole BAR mapping of the memfd (if any area)
  };
  Result<size_t> bar_access(int bar, uint64_t offset, uint8_t* buf, size_t len, bool write);

  FunctionOptions opts_;
  ConfigSpace config_;
  MsixTable msix_;
  std::array<Bar, 6> bars_;
  hostmem::MemoryMapPtr dma_;
  bool attached_ = false;
};

}  // namespace vdpu::pci
