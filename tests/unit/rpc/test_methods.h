// Methods and schemas the RPC unit tests register (once per process).
#pragma once

#include <memory>
#include <optional>

#include "rpc/dispatch.h"
#include "rpc/schema.h"

namespace vdpu::rpc::test {

// t_echo {value: any, n: uint (1..10, default 1), flag: bool}: returns params.
// t_startup: startup-only. t_any: any state. t_later: keeps its Responder in
// later() for the test to answer. t_drop: never replies (drops it).
// t_throw: throws. t_twice: replies twice. t_noschema: no schema.
void register_test_methods();
inline std::optional<Responder>& later() {
  static std::optional<Responder> r;
  return r;
}

// Runs a request through the dispatcher; returns the response (null when none).
json dispatch(const json& req);

}  // namespace vdpu::rpc::test
