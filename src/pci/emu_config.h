// The static emulation config: the software counterpart of the mlxconfig
// parameters (snap-storage spec §14). A `KEY=VALUE` file, one per line, `#`
// comments, blank lines ignored; unknown keys and out-of-range values are
// errors naming the line and the key.
//
// Thread: any (pure parsing).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "pci/config_space.h"

namespace vdpu::pci {

struct EmuTypeConfig {
  bool enable = false;
  uint32_t num_pf = 0;        // [0-4]
  uint32_t num_vf = 0;        // NVMe [0-256], virtio-blk [0-2000]
  uint32_t num_msix = 0;      // [0-63]
  uint32_t num_vf_msix = 0;   // [0-4095]
  bool uefi = false;          // EXP_ROM_*_UEFI_x86_ENABLE (accepted, informational)
  Identity id;
};

struct EmuConfig {
  bool internal_cpu_model = true;  // INTERNAL_CPU_MODEL
  bool sriov_en = false;           // SRIOV_EN
  bool pci_switch_enable = false;  // PCI_SWITCH_EMULATION_ENABLE
  uint32_t pci_switch_num_port = 0;  // [0,2-32]: hotplug slots + 1
  EmuTypeConfig nvme;        // NVME_EMULATION_*
  EmuTypeConfig virtio_blk;  // VIRTIO_BLK_EMULATION_*
  // Hotplug slots available (PCI_SWITCH_EMULATION_NUM_PORT - 1, 0 if disabled).
  uint32_t hotplug_slots() const {
    return pci_switch_enable && pci_switch_num_port > 0 ? pci_switch_num_port - 1 : 0;
  }
};

// Defaults: identities per spec §14 (NVMe 15b3:6001 class 010802; virtio-blk
// 1af4:1042 class 010000 subsystem 1af4:0002), everything disabled.
EmuConfig default_emu_config();

// Parses the text. Errors: kInvalidArgument "line N: KEY: reason".
// Keys (spec §14 plus identity): INTERNAL_CPU_MODEL, SRIOV_EN,
// PCI_SWITCH_EMULATION_ENABLE, PCI_SWITCH_EMULATION_NUM_PORT,
// {NVME,VIRTIO_BLK}_EMULATION_{ENABLE,NUM_PF,NUM_VF,NUM_MSIX,NUM_VF_MSIX,
// VENDOR_ID,DEVICE_ID,CLASS_CODE,SUBSYSTEM_VENDOR_ID,SUBSYSTEM_ID,REVISION_ID},
// EXP_ROM_NVME_UEFI_x86_ENABLE, EXP_ROM_VIRTIO_BLK_UEFI_x86_ENABLE.
// Cross-checks: a type's NUM_PF > 0 requires its ENABLE=1; NUM_VF > 0 requires
// SRIOV_EN=1; NUM_PORT given requires PCI_SWITCH_EMULATION_ENABLE=1.
Result<EmuConfig> parse_emu_config(std::string_view text);
// Reads and parses a file. Errors: kNotFound/kIo for the file, else as above.
Result<EmuConfig> load_emu_config(const std::string& path);

}  // namespace vdpu::pci
