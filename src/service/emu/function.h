// An emulated PCIe function as the emulation manager ("function factory")
// sees it (spec snap-storage §1.4): static PFs and their VFs from the static
// emulation config, and hotplug PFs created by RPC. Plain data; owned by the
// Manager (emu_manager.h) and touched on the control-plane reactor only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vdpu::service::emu {

enum class EmuType : uint8_t { kNvme, kVblk, kVnet };
// "NVME" | "VBLK" | "VNET" (emulation_function_list `emulation_type`).
const char* emu_type_name(EmuType t);
// Parses the names above (case-insensitive). Returns false when unknown.
bool parse_emu_type(const std::string& s, EmuType* out);

// Host-visible hotplug state (spec §4.1 `"hotplug state"`). Static functions
// are always POWER_ON. For a vhost-user function POWER_ON means its socket is
// listening (the host can connect), POWER_OFF that no socket exists.
enum class HotplugState : uint8_t { kPowerOff, kPowerOn, kPowerOffPending };
const char* hotplug_state_name(HotplugState s);

// SR-IOV MSI-X / queue pool of a static PF (spec §9).
struct MsixPool {
  bool reclaimed = false;    // vfs_msix_reclaim ran: VF vectors sit in the pool
  uint32_t free_msix = 0;    // vectors handed out through `vf_num_msix`
  uint32_t free_queues = 0;  // queues handed out through VF `num_queues`
  uint32_t vf_min_msix = 2, vf_max_msix = 64;
  uint32_t vf_min_queues = 0, vf_max_queues = 64;
};

struct Function {
  EmuType type = EmuType::kVblk;
  bool hotplugged = false;   // created by RPC (function_create / device_attach)
  uint32_t slot = 0;         // hotplug slot (1-based), 0 for static
  uint32_t pf_index = 0;     // per emulation type
  int32_t vf_index = -1;     // -1 for a PF
  uint32_t vhca_id = 0;      // small unique integer per function
  std::string vuid;          // stable across restarts (§1.6)
  std::string pci_bdf;       // synthesized "bb:dd.f"
  HotplugState state = HotplugState::kPowerOff;
  uint32_t num_msix = 0;     // MSI-X table size (PF: config; VF: per-VF)
  bool active = true;        // VF: enabled (sriov_numvfs); PF: always true
  std::string ctrl_id;       // controller bound to the function ("" = none)
  std::string socket;        // transport endpoint (vhost-user socket path)
  Function* parent = nullptr;              // the PF of a VF
  std::vector<std::unique_ptr<Function>> vfs;  // VFs of a static PF
  MsixPool pool;             // PF only
  // Per-VF dynamic MSI-X assignment (§9): taken from the PF pool. (§9): vectors taken from the PF pool.
  uint32_t assigned_msix = 0, assigned_queues = 0;

  bool is_vf() const { return vf_index >= 0; }
  uint32_t num_vfs_enabled() const;
};

}  // namespace vdpu::service::emu
