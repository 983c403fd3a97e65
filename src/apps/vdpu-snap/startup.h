// The start-up sequence of vdpu-snap, run on the main reactor once the RPC
// server listens:
//   1. the JSON config of -c/--json (and --config-default): the entries
//      allowed before framework_start_init;
//   2. framework_start_init (at once, or on RPC with --wait-for-rpc), whose
//      hook runs: the rest of the -c config, the init files
//      SPDK_RPC_INIT_CONF then SNAP_RPC_INIT_CONF (snap-storage §7.3; with
//      --wait-for-rpc they run before init instead, so that they may call
//      startup methods and framework_start_init themselves), then
//      SPDK_RPC_INIT_CONF_JSON and <SNAP_RPC_INIT_CONF_JSON>/snap_config.json
//      (§10.4), and prints "SNAP service started successfully".
// Any failure stops start-up: on_fail is called with the reason.
// Also keeps <SNAP_RPC_INIT_CONF_JSON>/snap_config.json up to date after every
// successful state-changing RPC (§10.4).
//
// Threads: main reactor only.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"

namespace vdpu::snap {

struct StartupOptions {
  bool wait_for_rpc = false;
  nlohmann::json config;         // -c and/or --config-default; null: none
  std::string spdk_init_conf;    // SPDK_RPC_INIT_CONF
  std::string snap_init_conf;    // SNAP_RPC_INIT_CONF
  std::string spdk_init_json;    // SPDK_RPC_INIT_CONF_JSON (file)
  std::string snap_init_json_dir;  // SNAP_RPC_INIT_CONF_JSON (directory)
};

// Starts the sequence; returns at once (the work goes on in the reactor).
void run_startup(StartupOptions opts, std::function<void(const Error&)> on_fail);

// True for methods that may change the configuration (not *_get*, *_list,
// save_config, log_* ...): after those snap_config.json is rewritten.
bool is_state_changing(const std::string& method);

// The part of save_config kept in snap_config.json: SNAP's subsystems.
nlohmann::json snap_config();

}  // namespace vdpu::snap
