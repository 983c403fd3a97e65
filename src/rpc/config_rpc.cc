// save_config / load_config and the config writers behind them (SPDK's JSON
// config: {"subsystems": [{"subsystem": name, "config": [{method, params}]}]}).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "base/log.h"
#include "rpc/dispatch.h"
#include "rpc/framework.h"

namespace vdpu::rpc {
namespace {

std::map<std::string, std::function<json()>>& writers() {
  static std::map<std::string, std::function<json()>> m;
  return m;
}

// SPDK's subsystem initialization order; SNAP subsystems follow (alphabetical).
const std::vector<std::string>& spdk_order() {
  static const std::vector<std::string> v = {
      "keyring", "iobuf", "sock", "vmd", "accel", "bdev", "scsi", "scheduler", "vhost_scsi",
      "vhost_blk", "ublk", "nbd", "iscsi", "nvmf", "vfu_tgt"};
  return v;
}

size_t rank(const std::string& s) {
  auto& o = spdk_order();
  auto it = std::find(o.begin(), o.end(), s);
  return it == o.end() ? o.size() : size_t(it - o.begin());
}

void save_config(const json&, Responder r) { r.result(build_config()); }

void load_config_rpc(const json& p, Responder r) {
  auto entries = parse_config(p);
  if (!entries) return r.error(entries.error());
  load_config(std::move(*entries), [r](Status s) mutable { r.status(s); });
}

}  // namespace

void register_config_writer(std::string subsystem, std::function<json()> fn) {
  if (writers().count(subsystem)) {
    fprintf(stderr, "vdpu: config writer for '%s' registered twice\n", subsystem.c_str());
    abort();
  }
  writers()[std::move(subsystem)] = std::move(fn);
}

bool is_spdk_subsystem(const std::string& name) { return rank(name) < spdk_order().size(); }

json build_config() {
  std::vector<std::string> names;
  for (auto& [n, fn] : writers()) names.push_back(n);
  std::stable_sort(names.begin(), names.end(), [](auto& a, auto& b) {
    size_t ra = rank(a), rb = rank(b);
    return ra != rb ? ra < rb : a < b;
  });
  json subs = json::array();
  for (auto& n : names) {
    json c = writers()[n]();
    // Writers return the config array; accept {"config": [...]} and null too.
    if (c.is_object() && c.contains("config")) c = c["config"];
    if (c.is_null()) c = json::array();
    subs.push_back({{"subsystem", n}, {"config", c}});
  }
  return {{"subsystems", subs}};
}

Result<std::vector<ConfigEntry>> parse_config(const json& config, const std::set<std::string>& skip) {
  auto bad = [](std::string m) { return make_error(Errc::kInvalidArgument, std::move(m)); };
  if (!config.is_object() || !config.contains("subsystems") || !config["subsystems"].is_array())
    return bad("config must be an object with a \"subsystems\" array");
  std::vector<ConfigEntry> out;
  for (auto& s : config["subsystems"]) {
    if (!s.is_object() || !s.contains("subsystem") || !s["subsystem"].is_string())
      return bad("config: subsystem entry without \"subsystem\" name");
    std::string name = s["subsystem"];
    if (skip.count(name)) continue;
    if (!s.contains("config") || s["config"].is_null()) continue;
    if (!s["config"].is_array()) return bad("config of subsystem '" + name + "' must be an array");
    for (auto& e : s["config"]) {
      if (!e.is_object() || !e.contains("method") || !e["method"].is_string())
        return bad("config of subsystem '" + name + "': entry without \"method\"");
      std::string m = e["method"];
      if (!Dispatcher::get().has_method(m))
        return bad("config of subsystem '" + name + "': unknown method '" + m + "'");
      json params = e.contains("params") ? e["params"] : json(nullptr);
      out.push_back({name, m, params});
    }
  }
  return out;
}

void replay_config(std::vector<ConfigEntry> entries,
                   std::function<void(Status, std::vector<ConfigEntry>)> done) {
  struct Replay : std::enable_shared_from_this<Replay> {
    std::vector<ConfigEntry> entries, rest;
    size_t i = 0;
    bool failed = false;
    std::function<void(Status, std::vector<ConfigEntry>)> done;

    void finish(Status s) {
      auto d = std::move(done);
      done = nullptr;
      if (d) d(std::move(s), std::move(rest));
    }
    // A loop rather than recursion: handlers that reply inline continue it,
    // so a config of thousands of entries does not grow the stack.
    void next() {
      while (i < entries.size()) {
        ConfigEntry& e = entries[i++];
        if (!(Dispatcher::get().method_states(e.method) & Dispatcher::get().state())) {
          rest.push_back(e);
          continue;
        }
        // 0: inside call(), 1: replied, 2: call() returned before the reply.
        auto st = std::make_shared<int>(0);
        auto self = shared_from_this();
        std::string method = e.method;
        Dispatcher::get().call(e.method, e.params, [self, st, method](json resp) {
          bool async = *st == 2;
          *st = 1;
          if (resp.contains("error")) {
            const json& err = resp["error"];
            self->failed = true;
            self->finish(make_error(Errc::kInvalidArgument,
                                    method + " failed: " + err.value("message", "?") + " (code " +
                                        std::to_string(err.value("code", 0)) + ")"));
            return;
          }
          if (async) self->next();
        });
        if (*st == 0) {
          *st = 2;  // the reply callback resumes the loop
          return;
        }
        if (failed) return;
      }
      finish({});
    }
  };
  auto r = std::make_shared<Replay>();
  r->entries = std::move(entries);
  r->done = std::move(done);
  r->next();
}

void load_config(std::vector<ConfigEntry> entries, std::function<void(Status)> done) {
  replay_config(std::move(entries), [done](Status s, std::vector<ConfigEntry> rest) {
    if (!s || rest.empty()) return done(s);
    auto after_init = [done, rest]() {
      replay_config(rest, [done](Status s2, std::vector<ConfigEntry> skipped) {
        for (auto& e : skipped)
          VDPU_WARN("load_config: '{}' skipped: not allowed after framework initialization", e.method);
        done(s2);
      });
    };
    if (Dispatcher::get().state() == kStartup && !Dispatcher::get().init_started()) {
      Dispatcher::get().start_init([done, after_init](Status si) {
        if (!si) return done(si);
        after_init();
      });
    } else {
      after_init();
    }
  });
}

void register_config_methods() {
  register_method("save_config", save_config, kAny);
  register_method("load_config", load_config_rpc, kAny);
}

}  // namespace vdpu::rpc
