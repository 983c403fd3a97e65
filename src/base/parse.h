// Checked parsing of numbers and lists from untrusted text (CLI, config files,
// environment). Nothing here throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace vdpu {

// Decimal, or hex with 0x prefix. Rejects trailing garbage, signs and overflow.
std::optional<uint64_t> parse_u64(std::string_view s);
std::optional<int64_t> parse_i64(std::string_view s);

// A core mask as SPDK takes it: hex ("0x3", "3") or a list ("[0,1]", "[0-3,6]").
// Returns the sorted core ids, or nullopt on malformed input or cores >= 1024.
std::optional<std::vector<uint32_t>> parse_cpumask(std::string_view s);

// Environment variable as integer with a default; `set` reports presence.
int64_t env_int(const char* name, int64_t def, bool* set = nullptr);

}  // namespace vdpu
