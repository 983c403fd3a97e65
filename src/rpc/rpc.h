// The JSON-RPC method API that every module uses to expose its methods.
//
// Parameter schemas live in src/rpc/schema/<module>.json (one file per module;
// format in docs/rpc-schema.md). The server validates every request against
// the schema of its method (unknown, missing, mistyped or out-of-range
// parameters are refused with -32602 naming the parameter), applies schema
// defaults, and only then calls the handler. The same schema builds the CLI's
// flags (spdk_rpc / snap_rpc) and docs/rpc.md, so the three never disagree.
//
// Threads: handlers run on the main (control-plane) reactor. A handler may
// reply later (after messages to data reactors) by keeping the Responder.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"

namespace vdpu::rpc {

using json = nlohmann::json;

// JSON-RPC 2.0 error codes (SPDK uses the same).
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kInternalError = -32603;

// Errc -> JSON-RPC code: kInvalidArgument -> -32602, others -> -errno as SPDK
// does (kNotFound -19 ENODEV, kExists -17, kBusy -16, kNoMemory -12, kIo -5,
// kUnsupported -95, kState -1, kTimeout -110, kProtocol -71, kPermission -13).
int error_code(Errc e);

// A request waiting for its answer. Reply exactly once (result or error);
// a Responder destroyed without a reply answers -32603 "no response".
class Responder {
 public:
  struct Impl;
  explicit Responder(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  void result(json r);
  void error(int code, const std::string& message);
  void error(const Error& e) { error(error_code(e.code), e.message); }
  // Convenience: a Status becomes `true` or the error.
  void status(const Status& s) { s.ok() ? result(true) : error(s.error()); }

 private:
  std::shared_ptr<Impl> impl_;
};

// params: the validated request parameters with defaults applied (an object,
// possibly empty).
using Handler = std::function<void(const json& params, Responder r)>;

// In a handler whose Responder is `r`: declares `var` as the value of a
// Result-returning `expr`, or replies with its error and returns.
#define VDPU_RPC_GET(var, expr)                  \
  auto var##_r = (expr);                         \
  if (!var##_r) return r.error(var##_r.error()); \
  auto var = std::move(*var##_r)

// When a method may be called: before framework_start_init (--wait-for-rpc),
// after it, or both.
enum State : uint32_t { kStartup = 1, kRuntime = 2, kAny = 3 };

// Registers a handler. Duplicate names abort at start-up (programming error).
void register_method(const std::string& name, Handler h, uint32_t states = kRuntime);

// ---- Added by the RPC server (vdpu_rpc) ----

// Another name for a registered method (e.g. a deprecated or vendor
// spelling). The alias shares the method's handler, states and schema;
// rpc_get_methods lists it with include_aliases. Start-up only.
void register_method_alias(const std::string& alias, const std::string& name);

// save_config asks every writer for the config of its subsystem: a JSON
// array of {"method": ..., "params": {...}} that recreates the current state
// when replayed in order (or null for none). Called on the main reactor.
// Subsystems are emitted in SPDK's dependency order (iobuf, sock, accel,
// bdev, ... then the SNAP ones). Duplicate names abort at start-up.
void register_config_writer(std::string subsystem, std::function<json()> fn);

// Called once on graceful shutdown (SIGINT/SIGTERM, spdk_kill_instance), on the
// main reactor, after the RPC server stopped accepting requests and before
// the reactors stop; hooks run one after another in reverse order of
// registration. A hook calls done() when it has finished (possibly later,
// after messages to data reactors); shutdown goes on after a time limit even
// if it does not.
using DoneFn = std::function<void()>;
void register_shutdown_hook(std::string name, std::function<void(DoneFn done)> fn);

// The current RPC state: kStartup before framework_start_init, else kRuntime.
State current_state();

namespace detail {
struct Registrar {
  Registrar(const char* name, Handler h, uint32_t states) { register_method(name, std::move(h), states); }
};
}  // namespace detail

}  // namespace vdpu::rpc

#define VDPU_RPC_CONCAT2(a, b) a##b
#define VDPU_RPC_CONCAT(a, b) VDPU_RPC_CONCAT2(a, b)
// VDPU_RPC_REGISTER("bdev_malloc_create", handler_fn, vdpu::rpc::kRuntime);
#define VDPU_RPC_REGISTER(name, fn, states) \
  static ::vdpu::rpc::detail::Registrar VDPU_RPC_CONCAT(_vdpu_rpc_reg_, __LINE__)(name, fn, states)
