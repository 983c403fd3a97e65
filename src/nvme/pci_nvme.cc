#include "nvme/pci_nvme.h"

#include <cstring>

#include "base/log.h"

namespace vdpu::nvme {

NvmePciFunction::NvmePciFunction(pci::FunctionOptions opts)
    : PciFunctionBase(std::move(opts)), sink_(msix()) {}

NvmePciFunction::~NvmePciFunction() = default;

Result<std::unique_ptr<NvmePciFunction>> NvmePciFunction::create(pci::FunctionOptions opts) {
  VDPU_TRY(PciFunctionBase::check(opts));
  auto f = std::unique_ptr<NvmePciFunction>(new NvmePciFunction(std::move(opts)));
  auto db = f->add_mmap_area(0, pci::kNvmeDoorbellOffset, pci::kNvmeDoorbellSize);
  if (!db.ok()) return db.error();
  f->doorbells_ = *db;
  pci::BarHandler h;
  h.read = [fp = f.get()](uint64_t off, std::span<uint8_t> out) { return fp->bar0_read(off, out); };
  h.write = [fp = f.get()](uint64_t off, std::span<const uint8_t> in) {
    return fp->bar0_write(off, in);
  };
  // A client that did not mmap the doorbell page writes it with REGION_WRITE:
  // the bytes are stored already; let the controller see the doorbell.
  h.area_written = [fp = f.get()](uint64_t off, size_t len) {
    if (!fp->ctrl_ || off < pci::kNvmeDoorbellOffset) return;
    for (uint64_t o = off & ~3ull; o < off + len; o += 4) {
      uint32_t v;
      std::memcpy(&v, fp->doorbells_ + (o - pci::kNvmeDoorbellOffset), 4);
      fp->ctrl_->mmio_write(o, 4, v);
    }
  };
  VDPU_TRY(f->set_bar_handler(0, std::move(h)));
  return f;
}

Status NvmePciFunction::bind(Controller* c) {
  if (ctrl_) return make_error(Errc::kBusy, "function " + name() + " already has a controller");
  if (c->state() != CtrlState::kDisabled)
    return make_error(Errc::kState, "controller " + c->name() + " is not disabled");
  ctrl_ = c;
  c->set_doorbell_memory(reinterpret_cast<volatile uint32_t*>(doorbells_));
  if (attached()) c->attach(dma(), &sink_);
  return {};
}

void NvmePciFunction::unbind() {
  if (!ctrl_) return;
  ctrl_->set_doorbell_memory(nullptr);
  ctrl_ = nullptr;
}

Result<size_t> NvmePciFunction::bar0_read(uint64_t off, std::span<uint8_t> out) {
  size_t n = out.size();
  if (n != 1 && n != 2 && n != 4 && n != 8) {
    std::memset(out.data(), 0, n);
    return n;
  }
  uint64_t v = ctrl_ ? ctrl_->mmio_read(off, unsigned(n)) : 0;
  std::memcpy(out.data(), &v, n);
  return n;
}

Result<size_t> NvmePciFunction::bar0_write(uint64_t off, std::span<const uint8_t> in) {
  size_t n = in.size();
  if (!ctrl_ || (n != 1 && n != 2 && n != 4 && n != 8)) return n;  // ignored
  uint64_t v = 0;
  std::memcpy(&v, in.data(), n);
  ctrl_->mmio_write(off, unsigned(n), v);
  return n;
}

void NvmePciFunction::on_attach(const hostmem::MemoryMapPtr& dma) {
  if (ctrl_) ctrl_->attach(dma, &sink_);
}

void NvmePciFunction::on_dma_changed(const hostmem::MemoryMapPtr& dma) {
  if (ctrl_) ctrl_->dma_changed(dma);
}

void NvmePciFunction::on_reset(std::function<void()> done) {
  if (!ctrl_) return done();
  ctrl_->function_reset(std::move(done));
}

void NvmePciFunction::on_detach(std::function<void()> done) {
  if (!ctrl_) return done();
  ctrl_->detach([this, done = std::move(done)] {
    ctrl_->attach(nullptr, nullptr);
    done();
  });
}

}  // namespace vdpu::nvme
