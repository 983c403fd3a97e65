// Recovery files (virtio-net spec §13): one JSON file per device, named by
// its VUID, in the recovery directory (the controller uses
// /opt/mellanox/mlnx_virtnet/recovery; ours is configurable, default
// /var/lib/vdpu/virtnet/recovery). Internal: written and read only by the
// daemon. The spec's entries come first; the rest of the device state the
// daemon restores (MTU, queues, features, ...) follows as extra keys.
//
// Files are replaced atomically (temp file + rename), so a crash never leaves
// a half-written record.
//
// Thread: any (file I/O; the manager calls it on the main reactor).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace vdpu::service::virtnet {

inline constexpr const char* kDefaultRecoveryDir = "/var/lib/vdpu/virtnet/recovery";

struct RecoveryRecord {
  // §13 entries.
  std::string port_ib_dev;
  uint32_t pf_id = 0;
  std::optional<uint32_t> vf_id;   // VF only
  std::string function_type;       // "pf" | "vf"
  uint16_t bdf_raw = 0;
  std::string device_type;         // "static" | "hotplug" (PF only)
  std::string mac;                 // lower case, as the example
  uint32_t pf_num = 0;             // PCIe function number
  uint32_t sf_num = 0;
  uint32_t mq = 0;                 // queues created (num_queues)
  // vdpu extensions (what else a restart restores).
  std::string vuid;
  uint16_t mtu = 1500;
  uint16_t max_queue_pairs = 1;
  uint16_t max_queue_size = 256;
  bool ctrl_vq = true;
  uint64_t features = 0;           // 0: the default set
  uint32_t speed = 100000;
  bool link_up = true;
  bool transitional = false;
  uint32_t num_msix = 0;
  nlohmann::json extra = nlohmann::json::object();  // dim, aarfs, counters, queue moderation

  nlohmann::json to_json() const;
  // Errors: kInvalidArgument naming the missing/mistyped entry.
  static Result<RecoveryRecord> from_json(const nlohmann::json& j);
};

class RecoveryStore {
 public:
  // dir is created on first save. enabled = false: saves and removes do nothing
  // and load_all returns nothing (virtnet.conf "recovery": 0).
  RecoveryStore(std::string dir, bool enabled) : dir_(std::move(dir)), enabled_(enabled) {}

  bool enabled() const { return enabled_; }
  const std::string& dir() const { return dir_; }
  std::string path_of(const std::string& vuid) const { return dir_ + "/" + vuid; }

  // Errors: kIo naming the file.
  Status save(const RecoveryRecord& r) const;
  // Missing file: success.
  Status remove(const std::string& vuid) const;
  // Every record of the directory (sorted by file name). A file that does not
  // parse is skipped and reported in `bad` ("<file>: <reason>").
  std::vector<RecoveryRecord> load_all(std::vector<std::string>* bad = nullptr) const;
  // Deletes every record (a new static emulation config took effect, §13).
  void clear() const;

 private:
  std::string dir_;
  bool enabled_;
};

}  // namespace vdpu::service::virtnet
