#include "pci/emu_config.h"

#include <fstream>
#include <map>
#include <sstream>

#include "base/parse.h"

namespace vdpu::pci {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

struct Key {
  uint64_t min, max;
  std::function<void(EmuConfig&, uint64_t)> set;
  bool port_rule = false;  // [0,2-32]: 1 is not allowed
};

const std::map<std::string, Key, std::less<>>& keys() {
  static const auto* m = [] {
    auto* k = new std::map<std::string, Key, std::less<>>;
    auto flag = [](bool EmuConfig::*f) { return [f](EmuConfig& c, uint64_t v) { c.*f = v; }; };
    (*k)["INTERNAL_CPU_MODEL"] = {0, 1, flag(&EmuConfig::internal_cpu_model)};
    (*k)["SRIOV_EN"] = {0, 1, flag(&EmuConfig::sriov_en)};
    (*k)["PCI_SWITCH_EMULATION_ENABLE"] = {0, 1, flag(&EmuConfig::pci_switch_enable)};
    (*k)["PCI_SWITCH_EMULATION_NUM_PORT"] = {
        0, 32, [](EmuConfig& c, uint64_t v) { c.pci_switch_num_port = uint32_t(v); }, true};
    // snap-storage spec §14 ranges.
    auto type_keys = [k](const std::string& p, EmuTypeConfig EmuConfig::*t, uint64_t max_vf) {
      auto u32 = [t](uint32_t EmuTypeConfig::*f) {
        return [t, f](EmuConfig& c, uint64_t v) { (c.*t).*f = uint32_t(v); };
      };
      auto id16 = [t](uint16_t Identity::*f) {
        return [t, f](EmuConfig& c, uint64_t v) { (c.*t).id.*f = uint16_t(v); };
      };
      (*k)[p + "_ENABLE"] = {0, 1, [t](EmuConfig& c, uint64_t v) { (c.*t).enable = v; }};
      (*k)[p + "_NUM_PF"] = {0, 4, u32(&EmuTypeConfig::num_pf)};
      (*k)[p + "_NUM_VF"] = {0, max_vf, u32(&EmuTypeConfig::num_vf)};
      (*k)[p + "_NUM_MSIX"] = {0, 63, u32(&EmuTypeConfig::num_msix)};
      (*k)[p + "_NUM_VF_MSIX"] = {0, 4095, u32(&EmuTypeConfig::num_vf_msix)};
      (*k)[p + "_VENDOR_ID"] = {0, 0xffff, id16(&Identity::vendor_id)};
      (*k)[p + "_DEVICE_ID"] = {0, 0xffff, id16(&Identity::device_id)};
      (*k)[p + "_SUBSYSTEM_VENDOR_ID"] = {0, 0xffff, id16(&Identity::subsystem_vendor_id)};
      (*k)[p + "_SUBSYSTEM_ID"] = {0, 0xffff, id16(&Identity::subsystem_id)};
      (*k)[p + "_CLASS_CODE"] = {0, 0xffffff, [t](EmuConfig& c, uint64_t v) { (c.*t).id.class_code = uint32_t(v); }};
      (*k)[p + "_REVISION_ID"] = {0, 0xff, [t](EmuConfig& c, uint64_t v) { (c.*t).id.revision = uint8_t(v); }};
    };
    type_keys("NVME_EMULATION", &EmuConfig::nvme, 256);
    type_keys("VIRTIO_BLK_EMULATION", &EmuConfig::virtio_blk, 2000);
    (*k)["EXP_ROM_NVME_UEFI_x86_ENABLE"] = {0, 1, [](EmuConfig& c, uint64_t v) { c.nvme.uefi = v; }};
    (*k)["EXP_ROM_VIRTIO_BLK_UEFI_x86_ENABLE"] = {0, 1, [](EmuConfig& c, uint64_t v) { c.virtio_blk.uefi = v; }};
    return k;
  }();
  return *m;
}

Error line_error(size_t line, std::string_view key, const std::string& why) {
  return make_error(Errc::kInvalidArgument,
                    "emulation config line " + std::to_string(line) + ": " + std::string(key) + ": " + why);
}

}  // namespace

EmuConfig default_emu_config() {
  EmuConfig c;
  c.nvme.id = Identity{0x15b3, 0x6001, 0x010802, 0, 0, 0};
  c.virtio_blk.id = Identity{0x1af4, 0x1042, 0x010000, 1, 0x1af4, 0x0002};
  return c;
}

Result<EmuConfig> parse_emu_config(std::string_view text) {
  EmuConfig c = default_emu_config();
  std::map<std::string, size_t, std::less<>> seen;
  size_t lineno = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++lineno;
    if (size_t h = line.find('#'); h != std::string_view::npos) line = line.substr(0, h);
    line = trim(line);
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return line_error(lineno, line, "expected KEY=VALUE");
    std::string_view key = trim(line.substr(0, eq)), val = trim(line.substr(eq + 1));
    auto it = keys().find(key);
    if (it == keys().end()) return line_error(lineno, key, "unknown key");
    if (auto s = seen.find(key); s != seen.end())
      return line_error(lineno, key, "duplicate (first set on line " + std::to_string(s->second) + ")");
    auto v = parse_u64(val);
    if (!v) return line_error(lineno, key, "'" + std::string(val) + "' is not a number");
    const Key& k = it->second;
    if (*v < k.min || *v > k.max || (k.port_rule && *v == 1))
      return line_error(lineno, key,
                        std::to_string(*v) + " out of range [" + (k.port_rule ? "0,2" : std::to_string(k.min)) +
                            "-" + std::to_string(k.max) + "]");
    k.set(c, *v);
    seen.emplace(std::string(key), lineno);
  }
  // Cross-field rules (spec §14, §1.4: VFs only on static PFs with SR-IOV).
  auto at = [&](const char* key) { auto s = seen.find(key); return s == seen.end() ? 0 : s->second; };
  for (auto [p, t] : {std::pair{"NVME_EMULATION", &c.nvme}, std::pair{"VIRTIO_BLK_EMULATION", &c.virtio_blk}}) {
    std::string pf = std::string(p) + "_NUM_PF", vf = std::string(p) + "_NUM_VF";
    if (t->num_pf && !t->enable) return line_error(at(pf.c_str()), pf, "requires " + std::string(p) + "_ENABLE=1");
    if (t->num_vf && !c.sriov_en) return line_error(at(vf.c_str()), vf, "requires SRIOV_EN=1");
    if (t->num_vf && !t->num_pf) return line_error(at(vf.c_str()), vf, "VFs need at least one static PF");
  }
  if (c.pci_switch_num_port && !c.pci_switch_enable)
    return line_error(at("PCI_SWITCH_EMULATION_NUM_PORT"), "PCI_SWITCH_EMULATION_NUM_PORT",
                      "requires PCI_SWITCH_EMULATION_ENABLE=1");
  return c;
}

Result<EmuConfig> load_emu_config(const std::string& path) {
  std::ifstream f(path);
  if (!f) return make_error(Errc::kNotFound, "emulation config " + path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return make_error(Errc::kIo, "emulation config " + path + ": read error");
  auto r = parse_emu_config(ss.str());
  if (!r) return make_error(r.error().code, path + ": " + r.error().message);
  return r;
}

}  // namespace vdpu::pci
