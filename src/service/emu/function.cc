#include "service/emu/function.h"

#include <strings.h>

namespace vdpu::service::emu {

const char* emu_type_name(EmuType t) {
  switch (t) {
    case EmuType::kNvme: return "NVME";
    case EmuType::kVblk: return "VBLK";
    case EmuType::kVnet: return "VNET";
  }
  return "UNKNOWN";
}

bool parse_emu_type(const std::string& s, EmuType* out) {
  for (EmuType t : {EmuType::kNvme, EmuType::kVblk, EmuType::kVnet}) {
    if (strcasecmp(s.c_str(), emu_type_name(t)) == 0) {
      *out = t;
      return true;
    }
  }
  return false;
}

const char* hotplug_state_name(HotplugState s) {
  switch (s) {
    case HotplugState::kPowerOff: return "POWER_OFF";
    case HotplugState::kPowerOn: return "POWER_ON";
    case HotplugState::kPowerOffPending: return "POWER_OFF_PENDING";
  }
  return "UNKNOWN";
}

uint32_t Function::num_vfs_enabled() const {
  uint32_t n = 0;
  for (auto& vf : vfs) n += vf->active ? 1 : 0;
  return n;
}

}  // namespace vdpu::service::emu
