// Reading the validated JSON-RPC params of the virtnet methods (internal).
// The server already checked types against src/rpc/schema/virtnet.json;
// these helpers also make the manager safe when called without it (tests).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "service/virtnet/errors.h"

namespace vdpu::service::virtnet {

// An unsigned integer parameter (absent, null or not a number: nullopt).
inline std::optional<uint64_t> opt_uint(const nlohmann::json& p, const char* k) {
  if (!p.is_object() || !p.contains(k)) return std::nullopt;
  const auto& v = p[k];
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return uint64_t(v.get<int64_t>());
  if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
  return std::nullopt;
}

inline std::optional<std::string> opt_str(const nlohmann::json& p, const char* k) {
  if (!p.is_object() || !p.contains(k) || !p[k].is_string()) return std::nullopt;
  return p[k].get<std::string>();
}

// A 0/1 (or bool) flag; absent = false.
inline bool flag(const nlohmann::json& p, const char* k) { return opt_uint(p, k).value_or(0) != 0; }

// §4.1 / §4.6 max_queue_size: 0x4-0x8000, power of 2.
inline int check_queue_size(std::optional<uint64_t> qs) {
  if (!qs) return VIRTNET_ERR_INVALID_QUEUE_SIZE;
  if (*qs < 2 || (*qs & (*qs - 1))) return VIRTNET_ERR_QUEUE_SIZE_POW2;
  if (*qs < 4 || *qs > 0x8000) return VIRTNET_ERR_INVALID_QUEUE_SIZE;
  return 0;
}

}  // namespace vdpu::service::virtnet
