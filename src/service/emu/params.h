// Reading validated JSON-RPC parameters in the service managers. The RPC
// server already checked types and ranges against the schema; these helpers
// also accept SNAP's 0/1 integers for flags (spec snap-storage §2) and make
// handlers safe when called without the server (tests).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/result.h"
#include "service/emu/emu_manager.h"

namespace vdpu::service {

using json = nlohmann::json;

// A flag: JSON bool or integer 0/1 (null / absent = def).
inline Result<bool> get_flag(const json& p, const char* key, bool def = false) {
  if (!p.is_object() || !p.contains(key) || p[key].is_null()) return def;
  const json& v = p[key];
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer() && (v.get<int64_t>() == 0 || v.get<int64_t>() == 1))
    return v.get<int64_t>() == 1;
  return make_error(Errc::kInvalidArgument, std::string("parameter '") + key + "' must be a boolean");
}

inline Result<std::optional<uint64_t>> get_uint(const json& p, const char* key,
                                                uint64_t min = 0, uint64_t max = UINT64_MAX) {
  if (!p.is_object() || !p.contains(key) || p[key].is_null()) return std::optional<uint64_t>{};
  const json& v = p[key];
  bool ok = v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
  if (!ok)
    return make_error(Errc::kInvalidArgument, std::string("parameter '") + key + "' must be an unsigned integer");
  uint64_t n = v.get<uint64_t>();
  if (n < min || n > max)
    return make_error(Errc::kInvalidArgument, std::string("parameter '") + key + "' out of range [" +
                                                  std::to_string(min) + ", " + std::to_string(max) + "]");
  return std::optional<uint64_t>{n};
}

inline Result<std::optional<std::string>> get_str(const json& p, const char* key) {
  if (!p.is_object() || !p.contains(key) || p[key].is_null()) return std::optional<std::string>{};
  if (!p[key].is_string())
    return make_error(Errc::kInvalidArgument, std::string("parameter '") + key + "' must be a string");
  return std::optional<std::string>{p[key].get<std::string>()};
}

// First present key among `key` and its aliases (e.g. ctrl / ctrl_id, §2).
inline Result<std::optional<std::string>> get_str_alias(const json& p, const char* key,
                                                        const char* alias) {
  auto a = get_str(p, key);
  if (!a || *a) return a;
  return get_str(p, alias);
}

// The function selector of a controller-create / detach RPC (§1.4).
inline Result<emu::Selector> get_selector(const json& p) {
  emu::Selector s;
  auto vuid = get_str(p, "vuid");
  if (!vuid) return vuid.error();
  s.vuid = *vuid;
  auto bdf = get_str(p, "pci_bdf");
  if (!bdf) return bdf.error();
  s.pci_bdf = *bdf;
  for (auto [key, dst] : {std::pair{"vhca_id", &s.vhca_id}, std::pair{"pf_id", &s.pf_id},
                          std::pair{"vf_id", &s.vf_id}}) {
    auto v = get_uint(p, key, 0, UINT32_MAX);
    if (!v) return v.error();
    if (*v) *dst = uint32_t(**v);
  }
  return s;
}

}  // namespace vdpu::service
