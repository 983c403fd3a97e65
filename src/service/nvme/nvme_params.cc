#include "service/nvme/nvme_params.h"

#include "service/emu/params.h"

namespace vdpu::service::nvme {

using nlohmann::json;

namespace {

Status range(const char* key, uint64_t v, uint64_t lo, uint64_t hi) {
  if (v < lo || v > hi)
    return make_error(Errc::kInvalidArgument, std::string("parameter '") + key + "' out of range [" +
                                                  std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return {};
}

// An optional 0/1 flag: absent keeps `cur`.
Status opt_flag(const json& p, const char* key, std::optional<bool>& cur) {
  if (!p.is_object() || !p.contains(key) || p[key].is_null()) return {};
  auto v = get_flag(p, key);
  if (!v) return v.error();
  cur = *v;
  return {};
}

Status flag(const json& p, const char* key, bool& cur) {
  auto v = get_flag(p, key, cur);
  if (!v) return v.error();
  cur = *v;
  return {};
}

Status uint_in(const json& p, const char* key, uint64_t lo, uint64_t hi, uint32_t& cur) {
  auto v = get_uint(p, key, lo, hi);
  if (!v) return v.error();
  if (*v) cur = uint32_t(**v);
  return {};
}

}  // namespace

Result<CtrlParams> parse_ctrl_params(const json& p, CtrlParams c) {
  auto nqn = get_str(p, "nqn");
  if (!nqn) return nqn.error();
  if (*nqn) c.nqn = **nqn;
  if (c.nqn.empty()) return make_error(Errc::kInvalidArgument, "missing parameter 'nqn'");
  auto sel = get_selector(p);
  if (!sel) return sel.error();
  if (!sel->empty()) c.fn = *sel;
  auto name = get_str_alias(p, "ctrl", "ctrl_id");
  if (!name) return name.error();
  if (*name) {
    if ((*name)->empty()) return make_error(Errc::kInvalidArgument, "parameter 'ctrl' is empty");
    c.ctrl = **name;
  }
  // §6.5 ranges.
  VDPU_TRY(uint_in(p, "num_queues", 1, 31, c.num_queues));
  VDPU_TRY(uint_in(p, "mdts", 1, 7, c.mdts));
  VDPU_TRY(uint_in(p, "fw_slots", 1, 7, c.fw_slots));
  VDPU_TRY(uint_in(p, "quirks", 0, UINT32_MAX, c.quirks));
  VDPU_TRY(opt_flag(p, "write_zeroes", c.write_zeroes));
  VDPU_TRY(opt_flag(p, "compare", c.compare));
  VDPU_TRY(flag(p, "compare_write", c.compare_write));
  VDPU_TRY(flag(p, "write_uncor", c.write_uncor));
  // Not implemented: refused rather than accepted and silently not offered.
  if (c.compare_write)
    return make_error(Errc::kInvalidArgument, "compare_write: fused Compare and Write is not supported yet");
  if (c.write_uncor)
    return make_error(Errc::kInvalidArgument, "write_uncor: Write Uncorrectable is not supported yet");
  VDPU_TRY(flag(p, "suspended", c.suspended));
  VDPU_TRY(flag(p, "dynamic_msix", c.dynamic_msix));
  VDPU_TRY(flag(p, "admin_only", c.admin_only));
  VDPU_TRY(flag(p, "live_update_listener", c.live_update_listener));
  auto vm = get_uint(p, "vf_num_msix", 1, 4095);
  if (!vm) return vm.error();
  if (*vm) c.vf_num_msix = uint32_t(**vm);
  auto snap = get_str(p, "snapshot");
  if (!snap) return snap.error();
  if (*snap) c.snapshot = **snap;
  VDPU_TRY(range("num_queues", c.num_queues, 1, 31));
  return c;
}

json CtrlParams::to_json(const std::string& vuid, const std::string& name) const {
  json j = {{"nqn", nqn}, {"vuid", vuid}, {"ctrl", name}, {"num_queues", num_queues},
            {"mdts", mdts}};
  if (fw_slots != 4) j["fw_slots"] = fw_slots;
  if (write_zeroes) j["write_zeroes"] = *write_zeroes;
  if (compare) j["compare"] = *compare;
  for (auto [k, v] : {std::pair{"compare_write", compare_write}, {"write_uncor", write_uncor},
                      {"dynamic_msix", dynamic_msix}, {"admin_only", admin_only}})
    if (v) j[k] = true;
  if (vf_num_msix) j["vf_num_msix"] = *vf_num_msix;
  if (quirks) j["quirks"] = quirks;
  return j;
}

}  // namespace vdpu::service::nvme
