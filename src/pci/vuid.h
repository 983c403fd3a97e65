// VUIDs: persistent function identifiers (snap-storage spec §1.6):
// `<serial><TYPE>S<s>D<d>F<f>[VF<n>]`, e.g. `VDPU7F3A9C21NVMES0D0F0VF3`.
// The serial is per instance and stable across restarts: it is generated
// once and stored in a state file.
//
// Thread: any (file I/O only in load_or_create_serial).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"

namespace vdpu::pci {

enum class FunctionType { kNvme, kVirtioBlk, kVirtioNet };

const char* vuid_type_tag(FunctionType t);  // "NVME", "VBLK", "VNET"

struct VuidParts {
  std::string serial;
  FunctionType type = FunctionType::kNvme;
  uint32_t s = 0;  // static (0) / hotplug slot index
  uint32_t d = 0;  // device
  uint32_t f = 0;  // function (PF index)
  std::optional<uint32_t> vf;  // VF number, absent for a PF
};

std::string make_vuid(const VuidParts& p);
// Inverse of make_vuid. Errors: kInvalidArgument when malformed.
Result<VuidParts> parse_vuid(const std::string& vuid);

// The instance serial from `path`; if the file does not exist, generates
// `VDPU` + 8 random hex digits, writes it (atomically: temp file + rename)
// and returns it. Errors: kIo (unreadable/unwritable), kInvalidArgument
// (file content is not [A-Za-z0-9]{1,20}).
Result<std::string> load_or_create_serial(const std::string& path);

}  // namespace vdpu::pci
