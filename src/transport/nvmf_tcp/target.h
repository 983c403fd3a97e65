// The NVMe-oF/TCP target (NVMe over Fabrics in Base 2.0 §3.3/§6, NVMe/TCP
// Transport 1.0): TCP listeners, one connection (queue pair) per socket,
// controllers in the dynamic controller model, the discovery subsystem.
//
// Threads. The Target object, its listeners and its controllers live on the
// main (control-plane) reactor: accept(), Connect validation, admin commands,
// Property Get/Set, keep-alive timers. Each accepted socket is given to a
// data reactor (Env::pick()) and served there by a Connection (PDU receive,
// I/O commands straight to bdev channels of that reactor, batched sends).
// Connections and controllers talk only by message (Env::post).
//
// The target knows nothing about the service layer: subsystems are looked up
// and hosts authorised through TargetHooks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/result.h"
#include "nvme/env.h"
#include "nvme/subsystem.h"

namespace vdpu::nvmf_tcp {

using json = nlohmann::json;

// nvmf_create_transport -t tcp options (SPDK names and defaults).
struct TargetOptions {
  uint32_t max_queue_depth = 128;  // I/O queue entries (CAP.MQES + 1)
  uint32_t max_aq_depth = 128;     // admin queue entries
  uint32_t max_io_qpairs_per_ctrlr = 127;
  uint32_t in_capsule_data_size = 4096;  // I/O queues; the admin queue takes 8 KiB
  uint32_t max_io_size = 131072;         // MDTS is derived from it
  uint32_t io_unit_size = 131072;        // MAXH2CDATA
  bool c2h_success = true;               // C2HData SUCCESS flag instead of a CapsuleResp
  int sock_priority = 0;                 // SO_PRIORITY of accepted sockets (0: unset)
  uint32_t abort_timeout_sec = 1;        // accepted (abort is not implemented)

  // Parses and validates SPDK's option names; unknown keys are ignored
  // (SPDK's RDMA-only options and the like). Errc::kInvalidArgument.
  static Result<TargetOptions> from_json(const json& j);
  json to_json() const;
};

// One discovery log entry as the target reports it.
struct DiscoveryRecord {
  std::string subnqn;
  std::string traddr;
  std::string trsvcid;
  bool ipv6 = false;
  uint16_t portid = 0;
};

// Called on the main reactor.
struct TargetHooks {
  // nullptr: no such subsystem (Connect fails with Invalid Parameters).
  std::function<nvme::Subsystem*(const std::string& nqn)> find_subsystem;
  // Host NQN allowed into the subsystem (allow_any_host or the host list).
  std::function<bool(const std::string& subnqn, const std::string& hostnqn)> host_allowed;
};

class Target {
 public:
  Target(nvme::Env& env, TargetOptions o, TargetHooks hooks);
  // Call shutdown() first and wait for it.
  ~Target();
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  const TargetOptions& options() const { return o_; }
  // New options; false (unchanged) while connections exist.
  bool set_options(const TargetOptions& o);

  // ---- main reactor ----
  // Listens on traddr:trsvcid (IPv4 or IPv6 literal, "0.0.0.0" for any) for
  // subnqn; several subsystems may share one address (one socket). Errors:
  // kInvalidArgument (address), kIo (bind/listen), kExists (same pair).
  Status listen(const std::string& subnqn, const std::string& traddr, const std::string& trsvcid);
  // Stops serving subnqn on that address (the socket closes with its last
  // subsystem) and disconnects the subsystem's controllers that came
  // through it; done runs when their connections are gone.
  void stop_listen(const std::string& subnqn, const std::string& traddr, const std::string& trsvcid,
                   std::function<void()> done);
  // Disconnects every controller of subnqn (before a namespace or the
  // subsystem goes away); done when their connections are gone.
  void disconnect_subsystem(const std::string& subnqn, std::function<void()> done);
  // The port a listener is bound to (trsvcid "0" picks a free port; tests).
  int bound_port(const std::string& traddr, const std::string& trsvcid) const;
  // Every listener with its subsystems, for discovery (filtered per host).
  std::vector<DiscoveryRecord> discovery_records(const std::string& hostnqn) const;
  // nvmf_get_stats poll group fields.
  json stats() const;
  // Closes listeners and every connection; done when all are gone.
  void shutdown(std::function<void()> done);

  // ---- internal (connections, controllers) ----
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  nvme::Env& env_;
  TargetOptions o_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vdpu::nvmf_tcp
