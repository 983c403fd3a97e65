// Generic bdev JSON-RPC methods: bdev_get_bdevs and bdev_get_iostat, with
// SPDK's parameter names, result shapes and errors (-19 "No such device").
#include <memory>

#include "bdev/bdev.h"
#include "rpc/rpc.h"
#include "runtime/reactor.h"

namespace vdpu::bdev {
namespace {

using rpc::json;
using rpc::Responder;

constexpr uint64_t kGetBdevsPollUs = 10000;

Error no_device() { return make_error(Errc::kNotFound, "No such device"); }

// Waits (timer on the control-plane reactor) until `name` exists or the
// deadline passes, as SPDK's bdev_get_bdevs "timeout" (ms) does.
void wait_for_bdev(std::string name, uint64_t deadline_ns, Responder r) {
  if (Bdev* b = Manager::get().find(name)) return r.result(json::array({b->info()}));
  rt::Reactor* re = rt::this_reactor();
  if (!re || rt::now_ns() >= deadline_ns) return r.error(no_device());
  re->add_timer(kGetBdevsPollUs, [name = std::move(name), deadline_ns, r]() mutable {
    wait_for_bdev(std::move(name), deadline_ns, std::move(r));
  });
}

void bdev_get_bdevs(const json& p, Responder r) {
  if (!p.contains("name")) {
    json a = json::array();
    for (Bdev* b : Manager::get().list()) a.push_back(b->info());
    return r.result(std::move(a));
  }
  uint64_t timeout_ms = p.contains("timeout") ? p["timeout"].get<uint64_t>() : 0;
  wait_for_bdev(p["name"].get<std::string>(), rt::now_ns() + timeout_ms * 1000000ull, r);
}
VDPU_RPC_REGISTER("bdev_get_bdevs", bdev_get_bdevs, rpc::kRuntime);

void bdev_get_iostat(const json& p, Responder r) {
  json bdevs = json::array();
  if (p.contains("name")) {
    Bdev* b = Manager::get().find(p["name"].get<std::string>());
    if (!b) return r.error(no_device());
    bdevs.push_back(b->iostat());
  } else {
    for (Bdev* b : Manager::get().list()) bdevs.push_back(b->iostat());
  }
  r.result({{"tick_rate", tick_rate()}, {"ticks", ticks()}, {"bdevs", std::move(bdevs)}});
}
VDPU_RPC_REGISTER("bdev_get_iostat", bdev_get_iostat, rpc::kRuntime);

// save_config: the "bdev" subsystem is the create RPC of every bdev.
[[maybe_unused]] const bool kConfigWriter = [] {
  rpc::register_config_writer("bdev", [] { return Manager::get().write_config(); });
  return true;
}();

}  // namespace
}  // namespace vdpu::bdev
