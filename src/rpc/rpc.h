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

// When a method may be called: before framework_start_init (--wait-for-rpc),
// after it, or both.
enum State : uint32_t { kStartup = 1, kRuntime = 2, kAny = 3 };

// Registers a handler. Duplicate names abort at start-up (programming error).
void register_method(const std::string& name, Handler h, uint32_t states = kRuntime);

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
