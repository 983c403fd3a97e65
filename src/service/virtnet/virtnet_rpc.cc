// JSON-RPC glue of the virtnet manager: the device sub-commands of the
// virtio-net spec §4 (method name = sub-command; params as
// src/rpc/schema/virtnet.json). Process-level methods (log, version,
// restart, update) belong to the daemon (apps/vdpu-virtnet).
// Main reactor only.
#include "rpc/rpc.h"
#include "service/virtnet/errors.h"
#include "service/virtnet/manager.h"

namespace vdpu::service::virtnet {

namespace {

std::unique_ptr<Manager>& global() {
  static std::unique_ptr<Manager> m;
  return m;
}

using rpc::Responder;

// Every handler needs the manager the daemon installed at start.
#define VIRTNET_MGR(r)                                                              \
  Manager* m = manager();                                                           \
  if (!m) return r.error(rpc::kInternalError, "virtio-net controller not started"); \
  (void)0

void hotplug(const json& p, Responder r) {
  VIRTNET_MGR(r);
  r.result(m->hotplug(p));
}
void unplug(const json& p, Responder r) {
  VIRTNET_MGR(r);
  m->unplug(p, [r](json j) mutable { r.result(std::move(j)); });
}
void list(const json&, Responder r) {
  VIRTNET_MGR(r);
  r.result(m->list());
}
void query(const json& p, Responder r) {
  VIRTNET_MGR(r);
  r.result(m->query(p));
}
void stats(const json& p, Responder r) {
  VIRTNET_MGR(r);
  r.result(m->stats(p));
}
void health(const json& p, Responder r) {
  VIRTNET_MGR(r);
  r.result(m->health(p));
}
void modify(const json& p, Responder r) {
  VIRTNET_MGR(r);
  m->modify(p, [r](json j) mutable { r.result(std::move(j)); });
}
void debug(const json& p, Responder r) {
  VIRTNET_MGR(r);
  m->debug(p, [r](json j) mutable { r.result(std::move(j)); });
}

VDPU_RPC_REGISTER("hotplug", hotplug, rpc::kAny);
VDPU_RPC_REGISTER("unplug", unplug, rpc::kAny);
VDPU_RPC_REGISTER("list", list, rpc::kAny);
VDPU_RPC_REGISTER("query", query, rpc::kAny);
VDPU_RPC_REGISTER("stats", stats, rpc::kAny);
VDPU_RPC_REGISTER("health", health, rpc::kAny);
VDPU_RPC_REGISTER("modify", modify, rpc::kAny);
VDPU_RPC_REGISTER("debug", debug, rpc::kAny);

// Destroy the devices (stop queues, close sockets and representors) before
// the reactors stop; recovery files stay for the next start (§13).
struct Hooks {
  Hooks() {
    rpc::register_shutdown_hook("virtnet", [](rpc::DoneFn done) {
      if (!global()) return done();
      global()->shutdown([done] {
        set_manager(nullptr);
        done();
      });
    });
  }
} hooks;

}  // namespace

Manager* manager() { return global().get(); }
void set_manager(std::unique_ptr<Manager> m) { global() = std::move(m); }

}  // namespace vdpu::service::virtnet
