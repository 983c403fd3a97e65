#include "pci/msix.h"

#include "pci/pci_regs.h"

namespace vdpu::pci {

MsixTable::MsixTable(uint16_t vectors)
    : n_(vectors),
      entries_(new std::atomic<uint32_t>[size_t(vectors) * 4 + 1]),
      pba_(new std::atomic<uint64_t>[(size_t(vectors) + 63) / 64 + 1]) {
  reset();
}

void MsixTable::reset() {
  enabled_.store(false);
  masked_.store(false);
  for (size_t i = 0; i < size_t(n_) * 4; ++i)
    // PCI 3.0 §6.8.2.9: vector control Mask Bit is set after reset.
    entries_[i].store((i % 4 == 3) ? kMsixEntryCtrlMaskbit : 0, std::memory_order_relaxed);
  for (size_t i = 0; i < (size_t(n_) + 63) / 64; ++i) pba_[i].store(0);
}

void MsixTable::table_read(uint64_t offset, std::span<uint8_t> out) const {
  for (size_t i = 0; i < out.size(); ++i) {
    uint64_t o = offset + i;
    if (o >= table_bytes()) {
      out[i] = 0;
      continue;
    }
    uint32_t dw = entries_[o / 4].load(std::memory_order_relaxed);
    out[i] = uint8_t(dw >> (8 * (o % 4)));
  }
}

void MsixTable::table_write(uint64_t offset, std::span<const uint8_t> in) {
  uint64_t first = UINT64_MAX, last = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    uint64_t o = offset + i;
    if (o >= table_bytes()) break;
    std::atomic<uint32_t>& e = entries_[o / 4];
    uint32_t dw = e.load(std::memory_order_relaxed);
    uint32_t shift = 8 * (o % 4);
    dw = (dw & ~(0xffu << shift)) | (uint32_t(in[i]) << shift);
    // Vector Control: only the Mask Bit is defined; the rest reads 0.
    if (o % 16 >= kMsixEntryVectorCtrl) dw &= kMsixEntryCtrlMaskbit;
    e.store(dw, std::memory_order_seq_cst);
    first = std::min(first, o / 16);
    last = o / 16;
  }
  // An unmasked vector with its pending bit set is delivered now (§6.8.2.9).
  for (uint64_t v = first; first != UINT64_MAX && v <= last; ++v) fire_if_pending(uint16_t(v));
}

void MsixTable::pba_read(uint64_t offset, std::span<uint8_t> out) const {
  for (size_t i = 0; i < out.size(); ++i) {
    uint64_t o = offset + i;
    out[i] = o < pba_bytes() ? uint8_t(pba_[o / 8].load() >> (8 * (o % 8))) : 0;
  }
}

void MsixTable::set_control(bool enabled, bool function_masked) {
  enabled_.store(enabled, std::memory_order_seq_cst);
  masked_.store(function_masked, std::memory_order_seq_cst);
  for (uint16_t v = 0; v < n_; ++v) fire_if_pending(v);
}

bool MsixTable::vector_masked(uint16_t v) const noexcept {
  return v >= n_ || (entries_[size_t(v) * 4 + 3].load() & kMsixEntryCtrlMaskbit);
}

bool MsixTable::pending(uint16_t v) const noexcept {
  return v < n_ && (pba_[v / 64].load() >> (v % 64) & 1);
}

bool MsixTable::deliverable(uint16_t v) const noexcept {
  return enabled_.load() && !masked_.load() && !vector_masked(v) && sink_.load() != nullptr;
}

void MsixTable::fire_if_pending(uint16_t v) noexcept {
  if (v >= n_ || !deliverable(v)) return;
  uint64_t bit = 1ull << (v % 64);
  if (pba_[v / 64].fetch_and(~bit) & bit) {
    IrqSink* s = sink_.load(std::memory_order_acquire);
    if (s) s->raise(v);
  }
}

void MsixTable::raise(uint16_t v) noexcept {
  if (v >= n_) return;
  IrqSink* s = sink_.load(std::memory_order_acquire);
  if (s && deliverable(v)) {
    s->raise(v);
    return;
  }
  // Masked: set the pending bit, then re-check. The unmasking side stores the
  // mask first and then tests pending (both seq_cst), so one of the two sides
  // sees the other and fetch_and makes exactly one of them deliver.
  pba_[v / 64].fetch_or(1ull << (v % 64), std::memory_order_seq_cst);
  fire_if_pending(v);
}

}  // namespace vdpu::pci
