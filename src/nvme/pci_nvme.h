// NvmePciFunction: an emulated PCIe NVMe function (class 010802h) whose BAR0
// is served by an nvme::Controller. Layout (pci::kNvmeBar0Size etc., the
// DOCA public sample): registers 0x0-0xfff (MMIO through the transport),
// doorbells 0x1000-0x1fff (a memfd page the client mmaps: data reactors poll
// it; REGION_WRITEs to it are stored there too and kick the admin queue),
// MSI-X table 0x2000 and PBA 0x3000 (pci::MsixTable honours mask/pending).
//
// A function can exist without a controller (SNAP: static functions come
// from the emulation config, controllers from nvme_controller_create); BAR0
// then reads 0 and ignores writes.
//
// Threads: control plane (the transport's reactor), like pci::Function.
#pragma once

#include <memory>

#include "nvme/controller.h"
#include "pci/function_base.h"

namespace vdpu::nvme {

class NvmePciFunction final : public pci::PciFunctionBase {
 public:
  // opts.config should come from pci::nvme_config_options(). Errors: the
  // config is invalid or the doorbell page cannot be created.
  static Result<std::unique_ptr<NvmePciFunction>> create(pci::FunctionOptions opts);
  ~NvmePciFunction() override;

  // Binds a controller (not owned; must outlive the binding). The controller
  // must be disabled. Its doorbells move to the shared page, its MSI-X go
  // through this function's table. Errors: kBusy (already bound).
  Status bind(Controller* c);
  // Unbinds after the controller was destroyed or reset (no live queues).
  void unbind();
  Controller* controller() const { return ctrl_; }

 protected:
  void on_attach(const hostmem::MemoryMapPtr& dma) override;
  void on_dma_changed(const hostmem::MemoryMapPtr& dma) override;
  void on_reset(std::function<void()> done) override;
  void on_detach(std::function<void()> done) override;

 private:
  class MsixSink final : public pci::IrqSink {
   public:
    explicit MsixSink(pci::MsixTable& t) : t_(t) {}
    void raise(uint16_t vector) noexcept override { t_.raise(vector); }

   private:
    pci::MsixTable& t_;
  };

  explicit NvmePciFunction(pci::FunctionOptions opts);
  Result<size_t> bar0_read(uint64_t off, std::span<uint8_t> out);
  Result<size_t> bar0_write(uint64_t off, std::span<const uint8_t> in);

  Controller* ctrl_ = nullptr;
  uint8_t* doorbells_ = nullptr;
  MsixSink sink_;
};

}  // namespace vdpu::nvme
