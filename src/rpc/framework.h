// App-facing pieces of the framework RPCs: configuration save/replay
// (save_config / load_config / -c), shutdown hooks, log flags and the SNAP
// environment variables (snap-storage §7).
//
// Threads: main reactor only (except snap_env_params, read-only data).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"

namespace vdpu::rpc {

using json = nlohmann::json;

// ---- configuration ----

// The save_config object: {"subsystems": [{"subsystem": s, "config": [...]}, ...]}
// from every writer registered with register_config_writer.
json build_config();
// SPDK's subsystems (the rest are SNAP's: controllers, functions ...).
bool is_spdk_subsystem(const std::string& name);

struct ConfigEntry {
  std::string subsystem;
  std::string method;
  json params;  // null when absent
};
// Flattens a config object in order. Subsystems named in `skip` are left out.
// Errors: kInvalidArgument (bad shape, entry without method, unknown method).
Result<std::vector<ConfigEntry>> parse_config(const json& config,
                                              const std::set<std::string>& skip = {});
// Calls, in order, every entry allowed in the current state, through the
// dispatcher; stops at the first failure (error names the method). done
// receives the entries that were not allowed in the current state.
void replay_config(std::vector<ConfigEntry> entries,
                   std::function<void(Status, std::vector<ConfigEntry> rest)> done);
// rpc.py's load_config: allowed entries, then framework_start_init when still
// in the startup state, then the remaining ones (the rest is skipped with a
// warning).
void load_config(std::vector<ConfigEntry> entries, std::function<void(Status)> done);

// ---- shutdown ----

// Runs the hooks of register_shutdown_hook in reverse order, each after the
// previous one called done; then calls done.
void run_shutdown_hooks(std::function<void()> done);
// For spdk_kill_instance: what to do with the signal (default: kill(getpid())).
void set_kill_handler(std::function<void(int sig)> fn);

// ---- logging ----

// Enables/disables a log flag (-L, log_set_flag, log_clear_flag) and records
// it for log_get_flags.
void set_log_flag(const std::string& flag, bool on);

// ---- environment (snap-storage §7) ----

struct EnvParam {
  const char* name;
  const char* def;  // effective value when unset ("" = none)
};
const std::vector<EnvParam>& snap_env_params();
// snap_global_param_list result: "<NAME> : <set|not set> : <value> " (§7.1).
json snap_global_param_list();

// The framework methods are registered by register_framework_methods()
// (dispatch.h); these are its parts.
void register_framework_core_methods();
void register_config_methods();
void register_log_methods();
void register_env_methods();

}  // namespace vdpu::rpc
