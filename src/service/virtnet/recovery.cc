#include "service/virtnet/recovery.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <type_traits>

namespace vdpu::service::virtnet {

namespace fs = std::filesystem;
using json = nlohmann::json;

json RecoveryRecord::to_json() const {
  json j;
  j["port_ib_dev"] = port_ib_dev;
  j["pf_id"] = pf_id;
  if (vf_id) j["vf_id"] = *vf_id;
  j["function_type"] = function_type;
  j["bdf_raw"] = bdf_raw;
  if (function_type == "pf") j["device_type"] = device_type;
  j["mac"] = mac;
  j["pf_num"] = pf_num;
  j["sf_num"] = sf_num;
  j["mq"] = mq;
  j["vuid"] = vuid;
  j["mtu"] = mtu;
  j["max_queue_pairs"] = max_queue_pairs;
  j["max_queue_size"] = max_queue_size;
  j["ctrl_vq"] = ctrl_vq;
  j["features"] = features;
  j["speed"] = speed;
  j["link_up"] = link_up;
  j["transitional"] = transitional;
  j["num_msix"] = num_msix;
  j["extra"] = extra;
  return j;
}

Result<RecoveryRecord> RecoveryRecord::from_json(const json& j) {
  if (!j.is_object()) return make_error(Errc::kInvalidArgument, "not a JSON object");
  RecoveryRecord r;
  auto need = [&](const char* k, auto& out, bool required = true) -> Status {
    using T = std::decay_t<decltype(out)>;
    if (!j.contains(k)) {
      if (required) return make_error(Errc::kInvalidArgument, std::string("missing entry '") + k + "'");
      return {};
    }
    const json& v = j[k];
    bool ok;
    if constexpr (std::is_same_v<T, std::string>) ok = v.is_string();
    else if constexpr (std::is_same_v<T, bool>) ok = v.is_boolean();
    else ok = v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
    if constexpr (!std::is_same_v<T, std::string> && !std::is_same_v<T, bool>) {
      if (ok && v.get<uint64_t>() > uint64_t(std::numeric_limits<T>::max())) ok = false;
    }
    if (!ok) return make_error(Errc::kInvalidArgument, std::string("entry '") + k + "' has a wrong type");
    out = v.get<T>();
    return {};
  };
  VDPU_TRY(need("port_ib_dev", r.port_ib_dev));
  VDPU_TRY(need("pf_id", r.pf_id));
  VDPU_TRY(need("function_type", r.function_type));
  if (r.function_type != "pf" && r.function_type != "vf")
    return make_error(Errc::kInvalidArgument, "entry 'function_type' must be pf or vf");
  if (r.function_type == "vf") {
    uint32_t v = 0;
    VDPU_TRY(need("vf_id", v));
    r.vf_id = v;
  } else {
    VDPU_TRY(need("device_type", r.device_type));
    if (r.device_type != "static" && r.device_type != "hotplug")
      return make_error(Errc::kInvalidArgument, "entry 'device_type' must be static or hotplug");
  }
  VDPU_TRY(need("bdf_raw", r.bdf_raw));
  VDPU_TRY(need("mac", r.mac));
  VDPU_TRY(need("pf_num", r.pf_num));
  VDPU_TRY(need("sf_num", r.sf_num));
  VDPU_TRY(need("mq", r.mq));
  VDPU_TRY(need("vuid", r.vuid));
  VDPU_TRY(need("mtu", r.mtu, false));
  VDPU_TRY(need("max_queue_pairs", r.max_queue_pairs, false));
  VDPU_TRY(need("max_queue_size", r.max_queue_size, false));
  VDPU_TRY(need("ctrl_vq", r.ctrl_vq, false));
  VDPU_TRY(need("features", r.features, false));
  VDPU_TRY(need("speed", r.speed, false));
  VDPU_TRY(need("link_up", r.link_up, false));
  VDPU_TRY(need("transitional", r.transitional, false));
  VDPU_TRY(need("num_msix", r.num_msix, false));
  if (j.contains("extra") && j["extra"].is_object()) r.extra = j["extra"];
  return r;
}

Status RecoveryStore::save(const RecoveryRecord& r) const {
  if (!enabled_) return {};
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return make_error(Errc::kIo, "cannot create " + dir_ + ": " + ec.message());
  std::string path = path_of(r.vuid), tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return make_error(Errc::kIo, "cannot write " + tmp + ": " + strerror(errno));
    out << r.to_json().dump() << "\n";
    out.flush();
    if (!out) return make_error(Errc::kIo, "cannot write " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return make_error(Errc::kIo, "cannot rename " + tmp + ": " + strerror(e));
  }
  return {};
}

Status RecoveryStore::remove(const std::string& vuid) const {
  if (!enabled_) return {};
  if (::unlink(path_of(vuid).c_str()) != 0 && errno != ENOENT)
    return make_error(Errc::kIo, "cannot delete " + path_of(vuid) + ": " + strerror(errno));
  return {};
}

std::vector<RecoveryRecord> RecoveryStore::load_all(std::vector<std::string>* bad) const {
  std::vector<RecoveryRecord> out;
  if (!enabled_) return out;
  std::error_code ec;
  std::vector<fs::path> files;
  for (auto it = fs::directory_iterator(dir_, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    if (it->is_regular_file() && it->path().extension() != ".tmp" &&
        it->path().filename().string()[0] != '.')  // .emu-signature
      files.push_back(it->path());
  std::sort(files.begin(), files.end());
  for (auto& p : files) {
    std::ifstream in(p);
    std::string text(std::istreambuf_iterator<char>(in), {});
    json j = json::parse(text, nullptr, false);
    auto r = j.is_discarded() ? Result<RecoveryRecord>(make_error(Errc::kInvalidArgument, "invalid JSON"))
                              : RecoveryRecord::from_json(j);
    if (r && r->vuid != p.filename().string())
      r = make_error(Errc::kInvalidArgument, "vuid '" + r->vuid + "' differs from the file name");
    if (!r) {
      if (bad) bad->push_back(p.filename().string() + ": " + r.error().message);
      continue;
    }
    out.push_back(std::move(*r));
  }
  return out;
}

void RecoveryStore::clear() const {
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir_, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    if (it->is_regular_file()) fs::remove(it->path(), ec);
}

}  // namespace vdpu::service::virtnet
