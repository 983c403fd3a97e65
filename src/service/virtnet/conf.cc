#include "service/virtnet/conf.h"

#include <fmt/format.h>

#include <cctype>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

#include "base/parse.h"

namespace vdpu::service::virtnet {
namespace {

using json = nlohmann::json;

Error bad(const std::string& key, const std::string& why) {
  return Error{Errc::kInvalidArgument, key + ": " + why};
}

std::string trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(uint8_t(s[a]))) ++a;
  while (b > a && std::isspace(uint8_t(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

// A JSON integer in [lo, hi] (integral doubles accepted).
Result<uint64_t> get_num(const json& v, const std::string& key, uint64_t lo, uint64_t hi) {
  uint64_t n = 0;
  if (v.is_number_unsigned()) {
    n = v.get<uint64_t>();
  } else if (v.is_number_integer()) {
    if (v.get<int64_t>() < 0) return bad(key, fmt::format("must be in [{}, {}]", lo, hi));
    n = uint64_t(v.get<int64_t>());
  } else if (v.is_number_float() && v.get<double>() >= 0 && v.get<double>() == double(uint64_t(v.get<double>()))) {
    n = uint64_t(v.get<double>());
  } else {
    return bad(key, "must be a number");
  }
  if (n < lo || n > hi) return bad(key, fmt::format("must be in [{}, {}]", lo, hi));
  return n;
}

Result<bool> get_01(const json& v, const std::string& key) {
  if (v.is_boolean()) return v.get<bool>();
  auto n = get_num(v, key, 0, 1);
  if (!n) return bad(key, "must be 0 or 1");
  return *n == 1;
}

Result<std::string> get_string(const json& v, const std::string& key) {
  if (!v.is_string() || v.get<std::string>().empty()) return bad(key, "must be a non-empty string");
  return v.get<std::string>();
}

Result<MacAddr> get_mac(const json& v, const std::string& key) {
  if (!v.is_string()) return bad(key, "must be a MAC string (xx:xx:xx:xx:xx:xx)");
  auto m = parse_mac(v.get<std::string>());
  if (!m) return bad(key, "'" + v.get<std::string>() + "' is not a MAC address (xx:xx:xx:xx:xx:xx)");
  return *m;
}

Result<uint64_t> get_features(const json& v, const std::string& key) {
  if (v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0)) return v.get<uint64_t>();
  if (v.is_string()) {
    auto f = parse_hex_u64(v.get<std::string>());
    if (f) return *f;
  }
  return bad(key, "must be a hex string (\"0x230047082b\") or a number");
}

bool pow2(uint64_t v) { return v && !(v & (v - 1)); }

Status check_keys(const json& obj, const std::string& prefix, const std::set<std::string>& known) {
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (!known.count(it.key()))
      return bad(prefix + it.key(), "unknown parameter");
  return {};
}

Status parse_pf(const json& o, PfDefaults& pf) {
  if (!o.is_object()) return bad("static_pf", "must be an object");
  VDPU_TRY(check_keys(o, "static_pf.", {"mac_base", "features"}));
  if (o.contains("mac_base") && !o["mac_base"].is_null()) {
    auto m = get_mac(o["mac_base"], "static_pf.mac_base");
    if (!m) return m.error();
    pf.mac_base = *m;
  }
  if (o.contains("features")) {
    auto f = get_features(o["features"], "static_pf.features");
    if (!f) return f.error();
    pf.features = *f;
  }
  return {};
}

Status parse_vf(const json& o, VfDefaults& vf) {
  if (!o.is_object()) return bad("vf", "must be an object");
  VDPU_TRY(check_keys(o, "vf.", {"mac_base", "features", "vfs_per_pf", "max_queue_pairs", "max_queue_size"}));
  if (o.contains("mac_base") && !o["mac_base"].is_null()) {
    auto m = get_mac(o["mac_base"], "vf.mac_base");
    if (!m) return m.error();
    vf.mac_base = *m;
  }
  if (o.contains("features")) {
    auto f = get_features(o["features"], "vf.features");
    if (!f) return f.error();
    vf.features = *f;
  }
  if (o.contains("vfs_per_pf")) {
    auto n = get_num(o["vfs_per_pf"], "vf.vfs_per_pf", 1, 1008);
    if (!n) return n.error();
    vf.vfs_per_pf = uint32_t(*n);
  }
  if (o.contains("max_queue_pairs")) {
    auto n = get_num(o["max_queue_pairs"], "vf.max_queue_pairs", 1, 256);
    if (!n) return n.error();
    vf.max_queue_pairs = uint16_t(*n);
  }
  if (o.contains("max_queue_size")) {
    auto n = get_num(o["max_queue_size"], "vf.max_queue_size", 4, 0x8000);
    if (!n || !pow2(*n)) return bad("vf.max_queue_size", "must be a power of 2 in [4, 32768]");
    vf.max_queue_size = uint16_t(*n);
  }
  // §2: vfs_per_pf is mandatory when mac_base is set.
  if (vf.mac_base && vf.vfs_per_pf == 0) return bad("vf.vfs_per_pf", "required when vf.mac_base is set");
  return {};
}

}  // namespace

// ------------------------------------------------------------------ helpers

Result<MacAddr> parse_mac(std::string_view s) {
  // §4.1: "only length validated": exactly 6 two-digit hex octets.
  if (s.size() != 17) return make_error(Errc::kInvalidArgument, "MAC must be xx:xx:xx:xx:xx:xx");
  MacAddr m{};
  for (size_t i = 0; i < 6; ++i) {
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      c = char(std::tolower(uint8_t(c)));
      return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    };
    int hi = hex(s[3 * i]), lo = hex(s[3 * i + 1]);
    if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
      return make_error(Errc::kInvalidArgument, "MAC must be xx:xx:xx:xx:xx:xx");
    m[i] = uint8_t(hi << 4 | lo);
  }
  return m;
}

std::string format_mac(const MacAddr& m, bool upper) {
  return upper ? fmt::format("{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}", m[0], m[1], m[2], m[3], m[4], m[5])
               : fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

MacAddr mac_add(const MacAddr& m, uint64_t n) {
  uint64_t v = 0;
  for (uint8_t b : m) v = v << 8 | b;
  v = (v + n) & 0xffffffffffffull;
  MacAddr r{};
  for (int i = 5; i >= 0; --i, v >>= 8) r[size_t(i)] = uint8_t(v);
  return r;
}

Result<uint64_t> parse_hex_u64(std::string_view s) {
  std::string t = trim(s);
  if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) t = t.substr(2);
  if (t.empty() || t.size() > 16) return make_error(Errc::kInvalidArgument, "not a hex number");
  uint64_t v = 0;
  for (char c : t) {
    if (!std::isxdigit(uint8_t(c))) return make_error(Errc::kInvalidArgument, "not a hex number");
    v = v << 4 | uint64_t(std::isdigit(uint8_t(c)) ? c - '0' : std::tolower(uint8_t(c)) - 'a' + 10);
  }
  return v;
}

std::string VirtnetConf::emulation_manager() const {
  if (is_lag) return ib_dev_lag.value_or("mlx5_bond_0");
  return ib_dev_p0;
}

bool VirtnetConf::is_port_device(const std::string& dev) const {
  if (is_lag) return dev == emulation_manager();
  if (dev == ib_dev_p0 || dev == ib_dev_for_static_pf) return true;
  return !single_port && dev == ib_dev_p1;
}

// ------------------------------------------------------------ virtnet.conf

Result<VirtnetConf> parse_virtnet_conf(std::string_view text) {
  VirtnetConf c;
  if (trim(text).empty()) return c;
  json j = json::parse(text, nullptr, false, /*ignore_comments=*/false);
  if (j.is_discarded()) {
    // Locate the error for the operator (the parser's message has the byte).
    try {
      json again = json::parse(text);
      (void)again;
    } catch (const json::parse_error& e) {
      return make_error(Errc::kInvalidArgument, std::string("invalid JSON: ") + e.what());
    }
    return make_error(Errc::kInvalidArgument, "invalid JSON");
  }
  if (!j.is_object()) return make_error(Errc::kInvalidArgument, "invalid JSON: the top level must be an object");
  static const std::set<std::string> kKeys = {
      "ib_dev_p0", "ib_dev_p1", "ib_dev_for_static_pf", "ib_dev_lag", "static_pf", "is_lag",
      "single_port", "recovery", "sf_pool_percent", "sf_pool_force_destroy", "packed_vq", "mrg_rxbuf",
      "dpa_core_start", "dpa_core_end", "vf", "lm_prov"};
  VDPU_TRY(check_keys(j, "", kKeys));
  auto str = [&](const char* k, std::string& out) -> Status {
    if (!j.contains(k)) return {};
    auto s = get_string(j[k], k);
    if (!s) return s.error();
    out = *s;
    return {};
  };
  auto flag = [&](const char* k, bool& out) -> Status {
    if (!j.contains(k)) return {};
    auto b = get_01(j[k], k);
    if (!b) return b.error();
    out = *b;
    return {};
  };
  VDPU_TRY(str("ib_dev_p0", c.ib_dev_p0));
  VDPU_TRY(str("ib_dev_p1", c.ib_dev_p1));
  VDPU_TRY(str("ib_dev_for_static_pf", c.ib_dev_for_static_pf));
  if (j.contains("ib_dev_lag") && !j["ib_dev_lag"].is_null()) {
    auto s = get_string(j["ib_dev_lag"], "ib_dev_lag");
    if (!s) return s.error();
    c.ib_dev_lag = *s;
  }
  if (j.contains("static_pf")) VDPU_TRY(parse_pf(j["static_pf"], c.static_pf));
  VDPU_TRY(flag("is_lag", c.is_lag));
  VDPU_TRY(flag("single_port", c.single_port));
  if (j.contains("recovery")) {  // §2: "recovery enabled unless 0"
    if (!j["recovery"].is_number_integer() && !j["recovery"].is_boolean())
      return bad("recovery", "must be a number");
    c.recovery = j["recovery"].is_boolean() ? j["recovery"].get<bool>() : j["recovery"].get<int64_t>() != 0;
  }
  if (j.contains("sf_pool_percent")) {
    auto n = get_num(j["sf_pool_percent"], "sf_pool_percent", 0, 100);
    if (!n) return n.error();
    c.sf_pool_percent = uint32_t(*n);
  }
  VDPU_TRY(flag("sf_pool_force_destroy", c.sf_pool_force_destroy));
  VDPU_TRY(flag("packed_vq", c.packed_vq));
  VDPU_TRY(flag("mrg_rxbuf", c.mrg_rxbuf));
  if (j.contains("dpa_core_start")) {
    auto n = get_num(j["dpa_core_start"], "dpa_core_start", 1, 10);
    if (!n) return n.error();
    c.dpa_core_start = uint32_t(*n);
  }
  if (j.contains("dpa_core_end")) {
    auto n = get_num(j["dpa_core_end"], "dpa_core_end", 1, 10);
    if (!n) return n.error();
    c.dpa_core_end = uint32_t(*n);
  }
  if (c.dpa_core_end <= c.dpa_core_start)
    return bad("dpa_core_end", fmt::format("must be greater than dpa_core_start ({}) and less than 11",
                                           c.dpa_core_start));
  if (j.contains("vf")) VDPU_TRY(parse_vf(j["vf"], c.vf));
  if (j.contains("lm_prov")) {
    if (!j["lm_prov"].is_string() || j["lm_prov"].get<std::string>() != "kernel")
      return bad("lm_prov", "the only supported value is \"kernel\"");
    c.lm_prov = "kernel";
  }
  // §2 cross-checks.
  if (c.is_lag && c.single_port) return bad("single_port", "mutually exclusive with is_lag");
  if (c.ib_dev_lag && (j.contains("ib_dev_p0") || j.contains("ib_dev_p1")))
    return bad("ib_dev_lag", "cannot be used together with ib_dev_p0/ib_dev_p1");
  if (c.is_lag && j.contains("ib_dev_for_static_pf") && c.ib_dev_for_static_pf != c.emulation_manager())
    return bad("ib_dev_for_static_pf", "must be the LAG device (" + c.emulation_manager() + ") with is_lag");
  if (c.is_lag && !j.contains("ib_dev_for_static_pf")) c.ib_dev_for_static_pf = c.emulation_manager();
  return c;
}

Result<VirtnetConf> load_virtnet_conf(const std::string& path, bool missing_ok) {
  std::ifstream in(path);
  if (!in) {
    if (missing_ok && errno == ENOENT) return VirtnetConf{};
    return make_error(errno == ENOENT ? Errc::kNotFound : Errc::kIo, path + ": cannot read: " + strerror(errno));
  }
  std::string text(std::istreambuf_iterator<char>(in), {});
  auto c = parse_virtnet_conf(text);
  if (!c) return make_error(c.error().code, path + ": " + c.error().message);
  return c;
}

// ------------------------------------------------------ static emulation §1.1

uint32_t StaticConf::vf_msix() const {
  if (num_vf_msix) return num_vf_msix;
  if (legacy_num_vf_msix) return std::min(legacy_num_vf_msix, num_msix);
  return num_msix;
}

Result<StaticConf> parse_static_conf(std::string_view text) {
  StaticConf c;
  bool port_given = false;
  struct Key {
    const char* name;
    uint32_t lo, hi;
    bool is_bool;
    void* out;
  };
  const Key keys[] = {
      {"VIRTIO_NET_EMULATION_ENABLE", 0, 1, true, &c.emulation_enable},
      {"VIRTIO_NET_EMULATION_NUM_PF", 0, 31, false, &c.num_pf},
      {"VIRTIO_NET_EMULATION_NUM_VF", 0, 1008, false, &c.num_vf},
      {"VIRTIO_NET_EMULATION_NUM_MSIX", 4, 2048, false, &c.num_msix},
      {"VIRTIO_NET_EMULATION_NUM_VF_MSIX", 0, 2048, false, &c.num_vf_msix},
      {"PCI_SWITCH_EMULATION_ENABLE", 0, 1, true, &c.pci_switch_enable},
      {"PCI_SWITCH_EMULATION_NUM_PORT", 0, 31, false, &c.pci_switch_num_port},
      {"PER_PF_NUM_SF", 0, 1, true, &c.per_pf_num_sf},
      {"PF_TOTAL_SF", 0, 4096, false, &c.pf_total_sf},
      {"PF_SF_BAR_SIZE", 0, 16, false, &c.pf_sf_bar_size},
      {"PF_BAR2_ENABLE", 0, 0, true, &c.pf_bar2_enable},
      {"SRIOV_EN", 0, 1, true, &c.sriov_en},
      {"EXP_ROM_VIRTIO_NET_PXE_ENABLE", 0, 1, true, &c.exp_rom_pxe},
      {"EXP_ROM_VIRTIO_NET_UEFI_ARM_ENABLE", 0, 1, true, &c.exp_rom_uefi_arm},
      {"EXP_ROM_VIRTIO_NET_UEFI_x86_ENABLE", 0, 1, true, &c.exp_rom_uefi_x86},
      {"NUM_VF_MSIX", 0, 2048, false, &c.legacy_num_vf_msix},
  };
  size_t line_no = 0, pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string line = trim(text.substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    if (auto h = line.find('#'); h != std::string::npos) line = trim(line.substr(0, h));
    if (line.empty()) {
      if (end == text.size()) break;
      continue;
    }
    auto err = [&](const std::string& key, const std::string& why) {
      return make_error(Errc::kInvalidArgument, fmt::format("line {}: {}: {}", line_no, key, why));
    };
    size_t eq = line.find('=');
    if (eq == std::string::npos) return err(line, "expected KEY=VALUE");
    std::string key = trim(line.substr(0, eq)), val = trim(line.substr(eq + 1));
    const Key* k = nullptr;
    for (auto& kk : keys)
      if (key == kk.name) k = &kk;
    if (!k) return err(key, "unknown key");
    std::optional<uint64_t> v;
    if (k->is_bool && (val == "True" || val == "true" || val == "TRUE")) v = 1;
    else if (k->is_bool && (val == "False" || val == "false" || val == "FALSE")) v = 0;
    else v = parse_u64(val);
    if (!v || *v < k->lo || *v > k->hi) {
      if (key == "PF_BAR2_ENABLE") return err(key, "must be 0 (§1.1)");
      return err(key, fmt::format("'{}' out of range [{}, {}]", val, k->lo, k->hi));
    }
    if (k->is_bool) *static_cast<bool*>(k->out) = *v != 0;
    else *static_cast<uint32_t*>(k->out) = uint32_t(*v);
    if (k->out == &c.pci_switch_num_port) port_given = true;
    if (end == text.size()) break;
  }
  auto err = [](const char* key, const std::string& why) {
    return make_error(Errc::kInvalidArgument, std::string(key) + ": " + why);
  };
  if (c.num_pf > 0 && !c.emulation_enable)
    return err("VIRTIO_NET_EMULATION_NUM_PF", "needs VIRTIO_NET_EMULATION_ENABLE=1");
  if (c.num_vf > 0 && !c.sriov_en) return err("VIRTIO_NET_EMULATION_NUM_VF", "needs SRIOV_EN=1");
  if (port_given && c.pci_switch_num_port > 0 && !c.pci_switch_enable)
    return err("PCI_SWITCH_EMULATION_NUM_PORT", "needs PCI_SWITCH_EMULATION_ENABLE=1");
  // §1: total functions towards the host <= 256; with hotplug + VFs <= 15 hotplug ports.
  uint64_t vfs = c.sriov_en ? uint64_t(c.num_pf) * c.num_vf : 0;
  if (c.num_pf + vfs + c.max_hotplug() > 256)
    return err("VIRTIO_NET_EMULATION_NUM_VF", fmt::format("{} PFs + {} VFs + {} hotplug ports exceed 256 functions",
                                                         c.num_pf, vfs, c.max_hotplug()));
  if (vfs > 0 && c.max_hotplug() > 15)
    return err("PCI_SWITCH_EMULATION_NUM_PORT", "at most 15 hotplug ports together with VFs");
  return c;
}

Result<StaticConf> load_static_conf(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(errno == ENOENT ? Errc::kNotFound : Errc::kIo, path + ": cannot read: " + strerror(errno));
  std::string text(std::istreambuf_iterator<char>(in), {});
  auto c = parse_static_conf(text);
  if (!c) return make_error(c.error().code, path + ": " + c.error().message);
  return c;
}

}  // namespace vdpu::service::virtnet
