// The seam between the vfio-user transport and an emulated PCI function's
// device model (NVMe controller, virtio-pci). The transport owns the socket,
// DMA regions and IRQ eventfds; the function owns config space semantics and
// BAR register behaviour.
//
// Threads: everything here runs on the control-plane (main) reactor except
// where noted. Doorbell areas are shared memory that data reactors poll.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "base/result.h"
#include "hostmem/hostmem.h"

namespace vdpu::pci {

enum class RegionIndex : uint32_t { kBar0 = 0, kBar1, kBar2, kBar3, kBar4, kBar5, kRom, kConfig, kVga };

struct RegionInfo {
  uint64_t size = 0;
  bool readable = true, writable = true, mmappable = false;
  // Sparse mmap areas (offset, size) inside the region, e.g. the doorbell page.
  std::vector<std::pair<uint64_t, uint64_t>> mmap_areas;
  int mmap_fd = -1;          // memfd backing the mmappable areas
  uint64_t mmap_fd_offset = 0;
};

// Raises interrupts on behalf of a function (MSI-X vector -> eventfd write).
// Safe to call from data reactors (lock-free; the fd table is swapped by
// message).
class IrqSink {
 public:
  virtual ~IrqSink() = default;
  virtual void raise(uint16_t vector) noexcept = 0;
};

class Function {
 public:
  virtual ~Function() = default;
  virtual std::string name() const = 0;
  virtual RegionInfo region_info(RegionIndex idx) const = 0;
  // Region access by the client. Returns bytes handled or an error; a guest
  // mistake is answered (e.g. reads of unimplemented registers return 0),
  // never fatal.
  virtual Result<size_t> region_read(RegionIndex idx, uint64_t offset, std::span<uint8_t> out) = 0;
  virtual Result<size_t> region_write(RegionIndex idx, uint64_t offset, std::span<const uint8_t> in) = 0;
  virtual uint32_t num_msix() const = 0;
  // The transport hands the function its DMA view and interrupt sink.
  virtual void attach(hostmem::MemoryMapPtr dma, IrqSink* irq) = 0;
  virtual void dma_changed(hostmem::MemoryMapPtr dma) = 0;
  // Function level reset / device reset from the client.
  virtual void reset(std::function<void()> done) = 0;
  // The client went away (disconnect): quiesce, keep state for a reconnect.
  virtual void detach(std::function<void()> done) = 0;
};

}  // namespace vdpu::pci
