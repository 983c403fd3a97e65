// The virtnet manager (virtio-net spec §1, §4, §13, §15): owns every
// emulated virtio-net function (static PFs from the static emulation config,
// hotplug PFs, SR-IOV VFs), their representors and recovery files, and
// answers the `virtnet` sub-commands. Requests arrive as the JSON-RPC params
// the CLI sends (src/rpc/schema/virtnet.json); answers are the JSON the CLI
// prints: {"errno": N, "errstr": "..."} (+ fields) for mutating commands,
// {"Error": "Device doesn't exist"} for a query of a missing device.
//
// Threads: main (control-plane) reactor only; `done` callbacks run there.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "service/virtnet/conf.h"
#include "service/virtnet/endpoint.h"
#include "service/virtnet/naming.h"
#include "service/virtnet/recovery.h"

namespace vdpu::service::virtnet {

using json = nlohmann::json;

inline constexpr const char* kDefaultSocketDir = "/var/tmp/vdpu-net";
inline constexpr uint32_t kMaxVirtQueues = 256;       // list max_virt_queues
inline constexpr uint32_t kMaxTunnelDescriptors = 6;  // list max_tunnel_descriptors

struct Options {
  VirtnetConf conf;
  StaticConf emu;
  std::string socket_dir = kDefaultSocketDir;
  std::string rep_prefix = "en3f0pf0sf";
  std::string recovery_dir = kDefaultRecoveryDir;
  std::string serial = "VDPU00000000";  // VUID serial
  uint64_t supported_features = 0;      // what the device model can offer (list)
};

class Manager {
 public:
  Manager(Options o, EndpointFactory f);
  ~Manager();

  // Creates the static PFs and restores hotplug PFs and VFs from the
  // recovery files (§13). A device that cannot be restored is logged and its
  // file kept. Errors: a static PF that cannot be created.
  Status start();
  // Destroys every endpoint; recovery files stay (the next start restores).
  void shutdown(std::function<void()> done);

  // ---- sub-commands (§4) ----
  json hotplug(const json& p);
  void unplug(const json& p, std::function<void(json)> done);
  json list() const;
  json query(const json& p) const;
  json stats(const json& p) const;
  json health(const json& p) const;
  void modify(const json& p, std::function<void(json)> done);
  // `virtnet debug`: sriov_numvfs (the host's VF count, X -> 0 / 0 -> X),
  // dump (internal state).
  void debug(const json& p, std::function<void(json)> done);

  size_t num_devices() const { return devs_.size(); }
  const Options& options() const { return opts_; }

  struct Dev;

 private:
  // Function creation (manager.cc).
  Result<Dev*> create(std::unique_ptr<Dev> d, bool save);
  std::unique_ptr<Dev> new_static_pf(uint32_t i) const;
  Status restore(const RecoveryRecord& r);
  int set_num_vfs(Dev& pf, uint32_t n);
  void destroy(Dev* d, bool delete_file, std::function<void()> done);
  void destroy_vfs(Dev& pf, std::function<void()> done);
  RecoveryRecord record_of(const Dev& d) const;
  int save(const Dev& d) const;
  virtio::net::NetOptions net_defaults(Kind k) const;

  // Selection (-p/-v/-u/-a). nullptr + errno when nothing matches.
  std::vector<Dev*> select(const json& p, int* err) const;
  Dev* find_pf(uint32_t pf_id) const;

  // Printing (manager_query.cc).
  json controller_json() const;
  json device_json(const Dev& d, bool query, bool brief, bool dbg, std::optional<uint16_t> qid) const;

  // modify (manager_modify.cc).
  int check_modify(const Dev& d, const json& p) const;
  void apply_modify(Dev& d, const json& p, std::function<void(int)> done);
  void modify_each(std::vector<Dev*> ds, size_t i, json p, std::function<void(json)> done);

  Options opts_;
  EndpointFactory factory_;
  RecoveryStore store_;
  std::vector<std::unique_ptr<Dev>> devs_;  // sorted by (pf_id, vf_id)
};

// The process-wide manager of the daemon (virtnet_rpc.cc). set_manager(nullptr)
// destroys it.
Manager* manager();
void set_manager(std::unique_ptr<Manager> m);

}  // namespace vdpu::service::virtnet
