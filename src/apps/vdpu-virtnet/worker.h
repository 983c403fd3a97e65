// The virtio-net controller proper (the "emu" process of spec §11): reads
// virtnet.conf and the static emulation config, starts the runtime and the
// JSON-RPC server, creates/restores the devices (service/virtnet) and serves
// the process-level sub-commands: log (§4.7), version (§4.9), restart
// (§4.11), update (§4.10).
//
// Thread: run_worker() on the process's main thread; it becomes the main
// (control-plane) reactor.
#pragma once

#include <cstdint>
#include <string>

namespace vdpu::virtnet_app {

// virtnet spec §3: the version the CLI and daemon print.
#ifndef VDPU_VIRTNET_VERSION
#define VDPU_VIRTNET_VERSION "v0.1.0"
#endif
inline constexpr const char* kVersion = VDPU_VIRTNET_VERSION;

inline constexpr const char* kDefaultRpcSocket = "/var/run/virtnet.sock";
inline constexpr const char* kDefaultStateDir = "/var/lib/vdpu/virtnet";
inline constexpr const char* kDefaultEmuConfig = "/etc/vdpu/virtnet-emu.conf";

struct WorkerFlags {
  std::string config;            // virtnet.conf
  bool config_given = false;
  std::string emu_config;        // static emulation config (KEY=VALUE)
  std::string rpc_socket = kDefaultRpcSocket;
  std::string socket_dir;        // vhost-user sockets
  std::string state_dir = kDefaultStateDir;
  std::string recovery_dir;      // default <state_dir>/recovery
  std::string rep_prefix = "en3f0pf0sf";
  std::string backend = "tap";   // tap | drop | loopback
  std::string cpumask;           // default: dpa_core_start..end ∩ online CPUs
  bool event_mode = false;
  int ha_fd = -1;                // link to the HA supervisor (-1: none)
  std::string exe;               // this binary (version of the installed one)
};

// Returns the process exit code: 0 graceful stop (also for restart/update,
// the supervisor starts the next worker), 1 start-up failure.
int run_worker(const WorkerFlags& f);

}  // namespace vdpu::virtnet_app
