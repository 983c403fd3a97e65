// The method table and request dispatch behind rpc.h: envelope checks
// (JSON-RPC 2.0), method lookup (with aliases), state check (startup/runtime),
// schema validation, the handler call and its exactly-once reply. The server,
// the init-file replay and load_config all go through Dispatcher::handle.
//
// Threads: main (control-plane) reactor only, except registration, which
// happens during static initialization.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rpc/rpc.h"
#include "rpc/schema.h"

namespace vdpu::rpc {

class RpcLog;

// Receives a whole JSON-RPC response object.
using ReplyFn = std::function<void(json response)>;
// Sees every answered request (after the reply): method, validated params (or
// the raw params if refused) and the response object.
using Observer = std::function<void(const std::string& method, const json& params,
                                    const json& response)>;

json error_response(const json& id, int code, const std::string& message);

// SPDK's state messages (lib/rpc/rpc.c).
inline constexpr const char* kNeedInitMsg =
    "Method may only be called after framework is initialized using framework_start_init RPC.";
inline constexpr const char* kStartupOnlyMsg =
    "Method may only be called before framework is initialized. Use --wait-for-rpc command line "
    "parameter and then issue this RPC before the framework_start_init RPC.";
// JSON-RPC code SPDK uses for a call in the wrong state (SPDK_JSONRPC_ERROR_INVALID_STATE).
inline constexpr int kInvalidState = -1;

class Dispatcher {
 public:
  static Dispatcher& get();

  // Handles one parsed request value. reply receives the response; it is not
  // called for a valid notification (no "id"). Arrays (batches) are refused
  // with -32600 as SPDK does.
  void handle(const json& request, ReplyFn reply);
  // In-process call through the same path (init files, load_config): done
  // receives the response object (never skipped).
  void call(const std::string& method, const json& params, ReplyFn done);

  void add_method(const std::string& name, Handler h, uint32_t states);
  void add_alias(const std::string& alias, const std::string& name);
  bool has_method(const std::string& name) const { return methods_.count(name) != 0; }
  // States of a method (0 when unknown).
  uint32_t method_states(const std::string& name) const;
  // Registered method names (sorted); `current`: only those callable now.
  std::vector<std::string> method_names(bool current, bool include_aliases) const;
  // Registered methods that have no schema (they accept no params).
  std::vector<std::string> methods_without_schema() const;

  State state() const { return state_; }
  void set_state(State s) { state_ = s; }

  // framework_start_init: switches to kRuntime, runs the init hook (the app's
  // remaining start-up work), then marks the framework initialized (on
  // success) and calls done.
  void set_init_hook(std::function<void(std::function<void(Status)>)> hook) {
    init_hook_ = std::move(hook);
  }
  void start_init(std::function<void(Status)> done);
  bool initialized() const { return initialized_; }
  bool init_started() const { return init_started_; }
  // Runs fn once initialized (at once if already).
  void wait_init(std::function<void()> fn);

  void set_log(RpcLog* log) { log_ = log; }
  RpcLog* log() const { return log_; }
  void add_observer(Observer o) { observers_.push_back(std::move(o)); }

  // Delivers a response (called by Responder; logs and notifies observers).
  void deliver(const std::string& method, const json& params, bool notification,
               const ReplyFn& sink, json response);

  // Tests: forgets the init state and observers.
  void reset_for_test();

 private:
  struct Entry {
    Handler handler;
    uint32_t states = kRuntime;
    std::string alias_of;  // non-empty for an alias
  };
  const Entry* resolve(const std::string& name, std::string* canonical) const;

  std::map<std::string, Entry> methods_;
  State state_ = kStartup;
  bool init_started_ = false;
  bool initialized_ = false;
  std::function<void(std::function<void(Status)>)> init_hook_;
  std::vector<std::function<void()>> init_waiters_;
  std::vector<Observer> observers_;
  RpcLog* log_ = nullptr;
};

// Registers the framework methods (rpc_get_methods, spdk_get_version,
// framework_*, save_config/load_config, log_*, snap_*). Idempotent. Called by
// the server so that these methods are linked into every binary using it.
void register_framework_methods();

}  // namespace vdpu::rpc
