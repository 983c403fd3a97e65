// Names and printed forms of the virtio-net controller (virtio-net spec §1,
// §4.3, §6): function kinds, SF numbers and representor names, VUIDs, BDFs,
// the {"value": "0x…", " <bit>": "<NAME>"} bit tables of list/query.
//
// Thread: any (pure functions).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"

namespace vdpu::service::virtnet {

enum class Kind { kStaticPf, kHotplugPf, kVf };

// "static PF" | "hotplug PF" | "VF" (list `function_type`).
const char* kind_name(Kind k);

// §1: SF number ranges: static PF 1000-1999, hotplug PF 2000-2999, VF >= 3000.
inline constexpr uint32_t kSfStaticBase = 1000, kSfHotplugBase = 2000, kSfVfBase = 3000;
inline constexpr uint32_t kSfHotplugMax = 2999;
// The representor of a function: prefix + SF number (<= 15 characters).
// Errors: kInvalidArgument (too long / empty).
Result<std::string> rep_name(const std::string& prefix, uint32_t sf_num);

// VUIDs (serial + "VNET" + S<slot>D0F<pf>[VF<n>]): static PF i -> S0D0F<i>;
// hotplug slot k -> S<k+1>D0F0; VF j of PF i -> S0D0F<i>VF<j+1> (§17: "…VF1").
std::string vuid_of(const std::string& serial, Kind k, uint32_t pf_index, uint32_t slot, uint32_t vf);

// Emulated PCI addresses, as uint16 bdf_raw (§13) and "bb:dd.f" (§4.1):
// static PF i on bus 0x20+i, hotplug slot k on bus 0x40+k, VF j of static
// PF i on bus 0x80 + 4i + (j+1)/256, devfn (j+1)%256.
uint16_t bdf_of(Kind k, uint32_t pf_index, uint32_t slot, uint32_t vf);
std::string bdf_str(uint16_t bdf_raw);

// §6 feature names by bit (nullptr for bits the table does not name).
const char* feature_name(uint32_t bit);
// The controller's feature set (§6 table): the union of the named bits.
uint64_t spec_feature_mask();
// {"value": "0x…", " <bit>": "<NAME>"...}: one key per set bit the table
// names; keys are a space plus the bit right-aligned to the widest bit
// printed (" 0" … "63" → "  0" … " 63").
nlohmann::json bits_json(uint64_t value, const char* (*name)(uint32_t bit), uint32_t width_bits);
nlohmann::json features_json(uint64_t features);
// §4.4 status bits: 0 ACK, 1 DRIVER, 2 DRIVER_OK, 3 FEATURES_OK,
// 6 DEVICE_NEEDS_RESET, 7 FAILED.
nlohmann::json status_json(uint8_t status);
// §4.3 supported_virt_queue_types (bit0 SPLIT, bit1 PACKED) and
// supported_event_modes (bit0 NO_MSIX_MODE, bit2 MSIX_MODE).
nlohmann::json vq_types_json(bool packed);
nlohmann::json event_modes_json();

// "0x1f" (lower-case hex), the form the CLI echoes and list prints.
std::string hex(uint64_t v);

}  // namespace vdpu::service::virtnet
