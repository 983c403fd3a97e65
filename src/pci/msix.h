// MSI-X table and Pending Bit Array living in a BAR (PCI 3.0 §6.8.2).
//
// The device model calls raise(vector) from any data reactor. A vector that is
// masked (per-vector mask bit, function mask, or MSI-X disabled) gets its
// pending bit set instead, and the interrupt is delivered when it is unmasked
// (§6.8.2.9 "pending bits"). Delivery goes to the transport's IrqSink (an
// eventfd write for vfio-user).
//
// Threads: table_read/table_write/pba_read/set_control/reset on the control
// plane; raise() and the sink pointer are lock-free for data reactors.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

#include "pci/function.h"

namespace vdpu::pci {

class MsixTable {
 public:
  // vectors: 1..2048 (0 allowed: every raise is dropped).
  explicit MsixTable(uint16_t vectors);

  uint16_t vectors() const { return n_; }
  uint64_t table_bytes() const { return uint64_t(n_) * 16; }
  uint64_t pba_bytes() const { return ((uint64_t(n_) + 63) / 64) * 8; }

  // BAR accesses, offsets relative to the table / PBA start. Out-of-range
  // bytes read as 0 and writes to them are ignored. PBA is read-only.
  void table_read(uint64_t offset, std::span<uint8_t> out) const;
  void table_write(uint64_t offset, std::span<const uint8_t> in);
  void pba_read(uint64_t offset, std::span<uint8_t> out) const;

  // From the config space's Message Control (enable, function mask).
  void set_control(bool enabled, bool function_masked);
  // Power-on state: every vector masked, control disabled, nothing pending.
  void reset();

  // The transport's interrupt sink (nullptr: interrupts are left pending).
  void set_sink(IrqSink* sink) { sink_.store(sink, std::memory_order_release); }

  // Any thread. Raises or marks pending. Out-of-range vectors are dropped.
  void raise(uint16_t vector) noexcept;
  bool pending(uint16_t vector) const noexcept;
  bool vector_masked(uint16_t vector) const noexcept;

 private:
  bool deliverable(uint16_t v) const noexcept;
  void fire_if_pending(uint16_t v) noexcept;

  const uint16_t n_;
  std::unique_ptr<std::atomic<uint32_t>[]> entries_;  // 4 dwords per vector
  std::unique_ptr<std::atomic<uint64_t>[]> pba_;
  std::atomic<bool> enabled_{false};
  std::atomic<bool> masked_{false};
  std::atomic<IrqSink*> sink_{nullptr};
};

}  // namespace vdpu::pci
