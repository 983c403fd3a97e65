// The 4 KiB (PCIe extended) configuration space of one emulated function:
// a type 0 header, a capability list (PM, PCI Express endpoint with FLR,
// MSI-X, VPD and a vendor-specific capability carrying the VUID) and an
// optional SR-IOV extended capability.
//
// Register semantics follow QEMU's model: every byte has a write mask (bits
// the driver may change) and a write-1-to-clear mask; everything else is
// read-only. BAR sizing (write all-ones, read back the size mask) falls out
// of the BAR write masks.
//
// Thread: control plane (the vfio-user connection's reactor). Callbacks run
// inline on that thread from write().
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

namespace vdpu::pci {

struct Identity {
  uint16_t vendor_id = 0x15b3;  // spec snap-storage §14 defaults (NVMe)
  uint16_t device_id = 0x6001;
  uint32_t class_code = 0x010802;  // base class, subclass, prog-if
  uint8_t revision = 0;
  uint16_t subsystem_vendor_id = 0;
  uint16_t subsystem_id = 0;
};

struct BarDesc {
  uint64_t size = 0;  // 0: not implemented; else a power of two >= 16 (memory) / 4 (io)
  bool is64 = false;  // 64-bit memory BAR: uses this slot and the next
  bool prefetchable = false;
  bool io = false;
};

struct MsixLayout {
  uint16_t vectors = 0;  // 0: no MSI-X capability; else 1..2048
  uint8_t table_bar = 0;
  uint32_t table_offset = 0;  // 8-byte aligned, within the BAR
  uint8_t pba_bar = 0;
  uint32_t pba_offset = 0;
};

struct SriovLayout {
  uint16_t total_vfs = 0;
  uint16_t vf_offset = 1, vf_stride = 1;
  uint16_t vf_device_id = 0;
};

struct ConfigOptions {
  Identity id;
  std::array<BarDesc, 6> bars{};
  MsixLayout msix;
  std::string vuid;          // empty: no VUID capability / VPD
  bool flr = true;           // advertise FLR in DevCap
  std::optional<SriovLayout> sriov;
};

class ConfigSpace {
 public:
  // Validates the layout: BAR sizes powers of two, a 64-bit BAR not in slot
  // 5, MSI-X table/PBA inside implemented memory BARs. Errors:
  // kInvalidArgument with the reason.
  static std::optional<std::string> validate(const ConfigOptions& o);
  // Precondition: validate(o) returned nullopt.
  explicit ConfigSpace(const ConfigOptions& o);

  // Accesses at any offset/size inside [0, 4096); bytes outside are ignored
  // (reads return 0). Never fails: a driver's mistake is answered, not fatal.
  void read(uint32_t offset, std::span<uint8_t> out);
  void write(uint32_t offset, std::span<const uint8_t> in);
  uint32_t read32(uint32_t off) { uint32_t v = 0; read(off, {reinterpret_cast<uint8_t*>(&v), 4}); return v; }
  uint16_t read16(uint32_t off) { uint16_t v = 0; read(off, {reinterpret_cast<uint8_t*>(&v), 2}); return v; }
  void write32(uint32_t off, uint32_t v) { write(off, {reinterpret_cast<const uint8_t*>(&v), 4}); }
  void write16(uint32_t off, uint16_t v) { write(off, {reinterpret_cast<const uint8_t*>(&v), 2}); }

  // Back to power-on state (FLR, device reset): command, status errors, BAR
  // addresses, MSI-X control, PM state, DevCtl and SR-IOV control cleared.
  void reset();

  // Callbacks (set before use; run inline from write()).
  // DevCtl "Initiate FLR" written as 1 (PCIe 4.0 §7.5.3.4) — when flr=true.
  std::function<void()> on_flr;
  // MSI-X Message Control enable / function-mask changed.
  std::function<void(bool enabled, bool masked)> on_msix_control;
  // Command register changed (memory space / bus master enable).
  std::function<void(uint16_t command)> on_command;
  // SR-IOV control written: VF Enable and NumVFs (validated <= TotalVFs).
  std::function<void(bool vf_enable, uint16_t num_vfs)> on_sriov;

  // Current state.
  uint16_t command() const;
  bool bus_master() const { return command() & 0x4; }
  bool msix_enabled() const;
  bool msix_masked() const;
  uint64_t bar_address(int bar) const;
  const ConfigOptions& options() const { return opts_; }
  // Offset of the first capability with this id, 0 if absent.
  uint16_t find_cap(uint8_t id) const;
  uint16_t find_ext_cap(uint16_t id) const;

 private:
  void init();
  uint16_t add_cap(uint8_t id, uint16_t size);
  void set16(uint32_t off, uint16_t v, uint16_t wmask = 0, uint16_t w1c = 0);
  void set32(uint32_t off, uint32_t v, uint32_t wmask = 0, uint32_t w1c = 0);
  uint16_t get16(uint32_t off) const;
  uint32_t get32(uint32_t off) const;
  void build_vpd();
  void vpd_address_written();

  ConfigOptions opts_;
  std::array<uint8_t, 4096> data_{};
  std::array<uint8_t, 4096> wmask_{};
  std::array<uint8_t, 4096> w1cmask_{};
  std::array<uint8_t, 4096> reset_{};  // power-on image
  uint16_t next_cap_ = 0x40;
  uint16_t last_cap_ = 0;
  uint16_t exp_ = 0, msix_ = 0, pm_ = 0, vpd_ = 0, vendor_ = 0, sriov_ = 0;
  std::string vpd_image_;
};

}  // namespace vdpu::pci
