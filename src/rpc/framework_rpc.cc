// Framework methods: rpc_get_methods, spdk_get_version, framework_start_init,
// framework_wait_init, spdk_kill_instance; shutdown hooks.
#include <signal.h>
#include <unistd.h>

#include "base/log.h"
#include "rpc/dispatch.h"
#include "rpc/framework.h"

#ifndef VDPU_VERSION_MAJOR
#define VDPU_VERSION_MAJOR 0
#define VDPU_VERSION_MINOR 1
#define VDPU_VERSION_PATCH 0
#endif

namespace vdpu::rpc {
namespace {

struct Hook {
  std::string name;
  std::function<void(DoneFn)> fn;
};
std::vector<Hook>& hooks() {
  static std::vector<Hook> v;
  return v;
}
std::function<void(int)>& kill_handler() {
  static std::function<void(int)> f;
  return f;
}

void rpc_get_methods(const json& p, Responder r) {
  r.result(Dispatcher::get().method_names(p.value("current", false), p.value("include_aliases", false)));
}

void spdk_get_version(const json&, Responder r) {
  std::string v = std::to_string(VDPU_VERSION_MAJOR) + "." + std::to_string(VDPU_VERSION_MINOR) +
                  "." + std::to_string(VDPU_VERSION_PATCH);
  r.result({{"version", "vdpu v" + v},
            {"fields",
             {{"major", VDPU_VERSION_MAJOR},
              {"minor", VDPU_VERSION_MINOR},
              {"patch", VDPU_VERSION_PATCH},
              {"suffix", ""}}}});
}

void framework_start_init(const json&, Responder r) {
  Dispatcher::get().start_init([r](Status s) mutable { r.status(s); });
}

void framework_wait_init(const json&, Responder r) {
  Dispatcher::get().wait_init([r]() mutable { r.result(true); });
}

void spdk_kill_instance(const json& p, Responder r) {
  static const std::pair<const char*, int> kSignals[] = {
      {"SIGINT", SIGINT}, {"SIGTERM", SIGTERM}, {"SIGQUIT", SIGQUIT},
      {"SIGHUP", SIGHUP}, {"SIGKILL", SIGKILL}};
  std::string name = p.value("sig_name", "");
  int sig = 0;
  for (auto& [n, s] : kSignals)
    if (name == n || name == n + 3) sig = s;
  if (!sig) return r.error(kInvalidParams, "Invalid parameters: unknown signal '" + name + "'");
  r.result(true);  // answered before the signal, as SPDK does
  if (kill_handler()) kill_handler()(sig);
  else kill(getpid(), sig);
}

}  // namespace

void register_shutdown_hook(std::string name, std::function<void(DoneFn done)> fn) {
  hooks().push_back({std::move(name), std::move(fn)});
}

void set_kill_handler(std::function<void(int)> fn) { kill_handler() = std::move(fn); }

void run_shutdown_hooks(std::function<void()> done) {
  struct Run : std::enable_shared_from_this<Run> {
    std::vector<Hook> list;
    size_t i = 0;
    std::function<void()> done;
    void next() {
      if (i == list.size()) {
        auto d = std::move(done);
        done = nullptr;
        if (d) d();
        return;
      }
      Hook& h = list[list.size() - 1 - i++];
      VDPU_DEBUG("shutdown hook '{}'", h.name);
      auto self = shared_from_this();
      auto called = std::make_shared<bool>(false);
      h.fn([self, called] {
        if (*called) return;  // a hook calling done twice
        *called = true;
        self->next();
      });
    }
  };
  auto run = std::make_shared<Run>();
  run->list = hooks();
  run->done = std::move(done);
  run->next();
}

void register_framework_core_methods() {
  register_method("rpc_get_methods", rpc_get_methods, kAny);
  register_method("spdk_get_version", spdk_get_version, kRuntime);
  register_method("framework_start_init", framework_start_init, kStartup);
  register_method("framework_wait_init", framework_wait_init, kAny);
  register_method("spdk_kill_instance", spdk_kill_instance, kAny);
}

void register_framework_methods() {
  static bool done = false;
  if (done) return;
  done = true;
  register_framework_core_methods();
  register_config_methods();
  register_log_methods();
  register_env_methods();
}

}  // namespace vdpu::rpc
