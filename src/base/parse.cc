#include "base/parse.h"

#include <algorithm>
#include <cstdlib>
#include <set>
#include <string>

namespace vdpu {

std::optional<uint64_t> parse_u64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return std::nullopt;
    if (v > (UINT64_MAX - d) / base) return std::nullopt;
    v = v * base + d;
  }
  return v;
}

std::optional<int64_t> parse_i64(std::string_view s) {
  bool neg = !s.empty() && s[0] == '-';
  if (neg) s.remove_prefix(1);
  auto u = parse_u64(s);
  if (!u) return std::nullopt;
  if (neg) {
    if (*u > uint64_t(INT64_MAX) + 1) return std::nullopt;
    return int64_t(0 - *u);
  }
  if (*u > uint64_t(INT64_MAX)) return std::nullopt;
  return int64_t(*u);
}

std::optional<std::vector<uint32_t>> parse_cpumask(std::string_view s) {
  constexpr uint32_t kMaxCore = 1024;
  std::set<uint32_t> cores;
  if (!s.empty() && s.front() == '[') {
    if (s.back() != ']') return std::nullopt;
    s = s.substr(1, s.size() - 2);
    while (!s.empty()) {
      auto comma = s.find(',');
      std::string_view item = s.substr(0, comma);
      s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
      auto dash = item.find('-');
      auto lo = parse_u64(item.substr(0, dash));
      auto hi = dash == std::string_view::npos ? lo : parse_u64(item.substr(dash + 1));
      if (!lo || !hi || *lo > *hi || *hi >= kMaxCore) return std::nullopt;
      for (uint64_t c = *lo; c <= *hi; ++c) cores.insert(uint32_t(c));
    }
  } else {
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
    if (s.empty() || s.size() > kMaxCore / 4) return std::nullopt;
    for (size_t i = 0; i < s.size(); ++i) {
      char c = s[s.size() - 1 - i];
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return std::nullopt;
      for (int b = 0; b < 4; ++b)
        if (d & (1 << b)) cores.insert(uint32_t(i * 4 + b));
    }
  }
  if (cores.empty()) return std::nullopt;
  return std::vector<uint32_t>(cores.begin(), cores.end());
}

int64_t env_int(const char* name, int64_t def, bool* set) {
  const char* v = std::getenv(name);
  if (set) *set = v != nullptr;
  if (!v) return def;
  auto p = parse_i64(v);
  return p ? *p : def;
}

}  // namespace vdpu
