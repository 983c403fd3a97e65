// The NVMe-oF/TCP target (transport/nvmf_tcp) plugged into the NVMe manager
// as trtype "TCP": nvmf_create_transport -t tcp, listeners of
// nvmf_subsystem_add_listener -t tcp, host checks from the subsystems'
// allow_any_host / nvmf_subsystem_add_host, nvmf_get_stats.
#include "base/log.h"
#include "nvme/env.h"
#include "runtime/runtime.h"
#include "service/nvme/nvme_manager.h"
#include "transport/nvmf_tcp/target.h"

namespace vdpu::service::nvme {
namespace {

std::unique_ptr<nvmf_tcp::Target>& target() {
  static std::unique_ptr<nvmf_tcp::Target> t;
  return t;
}

nv::Env& env() {
  static nv::RuntimeEnv e(*rt::Runtime::get());
  return e;
}

Status create(const json& opts) {
  auto o = nvmf_tcp::TargetOptions::from_json(opts);
  if (!o) return o.error();
  if (target()) {
    // Re-created after nvmf_delete_transport: same target, new options.
    if (!target()->set_options(*o))
      return make_error(Errc::kBusy, "TCP transport still has connections");
    return {};
  }
  nvmf_tcp::TargetHooks hooks;
  hooks.find_subsystem = [](const std::string& nqn) -> nv::Subsystem* {
    Subsys* s = manager().find_subsys(nqn);
    return s ? s->s.get() : nullptr;
  };
  hooks.host_allowed = [](const std::string& sub, const std::string& host) {
    return manager().host_allowed(sub, host);
  };
  target() = std::make_unique<nvmf_tcp::Target>(env(), *o, std::move(hooks));
  return {};
}

struct Registration {
  Registration() {
    TransportHandler h;
    h.trtype = "TCP";
    h.aliases = {"tcp"};
    h.default_opts = nvmf_tcp::TargetOptions{}.to_json();
    h.create = create;
    h.listen = [](nv::Subsystem& s, const ListenAddress& a, Done done) {
      if (!target()) return done(make_error(Errc::kState, "TCP transport not created"));
      done(target()->listen(s.nqn(), a.traddr, a.trsvcid));
    };
    h.stop_listen = [](nv::Subsystem& s, const ListenAddress& a, Done done) {
      if (!target()) return done({});
      target()->stop_listen(s.nqn(), a.traddr, a.trsvcid, [done] { done({}); });
    };
    h.disconnect = [](nv::Subsystem& s, std::function<void()> done) {
      if (!target()) return done();
      target()->disconnect_subsystem(s.nqn(), std::move(done));
    };
    h.stats = [] { return target() ? target()->stats() : json::object(); };
    h.shutdown = [](std::function<void()> done) {
      if (!target()) return done();
      target()->shutdown([done] {
        target().reset();
        done();
      });
    };
    register_transport(std::move(h));
  }
} registration;

}  // namespace
}  // namespace vdpu::service::nvme
