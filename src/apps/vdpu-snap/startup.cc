#include "apps/vdpu-snap/startup.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <vector>

#include "apps/rpc_cli/cli_args.h"
#include "base/log.h"
#include "rpc/dispatch.h"
#include "rpc/framework.h"

namespace vdpu::snap {
namespace {

using json = nlohmann::json;
using Step = std::function<void(std::function<void(Status)> next)>;

// Runs asynchronous steps one after another; a step that completes inline
// continues the loop instead of recursing (init files may have many lines).
void run_steps(std::vector<Step> steps, std::function<void(Status)> done) {
  struct Seq : std::enable_shared_from_this<Seq> {
    std::vector<Step> steps;
    size_t i = 0;
    bool failed = false;
    std::function<void(Status)> done;
    void finish(Status s) {
      auto d = std::move(done);
      done = nullptr;
      if (d) d(std::move(s));
    }
    void next() {
      while (i < steps.size()) {
        auto st = std::make_shared<int>(0);  // 0: inside the step, 1: done, 2: async
        auto self = shared_from_this();
        steps[i++]([self, st](Status r) {
          bool async = *st == 2;
          *st = 1;
          if (!r) {
            self->failed = true;
            self->finish(std::move(r));
          } else if (async) {
            self->next();
          }
        });
        if (*st == 0) {
          *st = 2;  // the step's callback resumes the loop
          return;
        }
        if (failed) return;
      }
      finish({});
    }
  };
  auto seq = std::make_shared<Seq>();
  seq->steps = std::move(steps);
  seq->done = std::move(done);
  seq->next();
}

Error fail(std::string m) { return make_error(Errc::kInvalidArgument, std::move(m)); }

Result<json> read_json_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return make_error(Errc::kNotFound, "cannot read " + path);
  std::string text(std::istreambuf_iterator<char>(f), {});
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return fail(path + ": not valid JSON");
  return j;
}

// One init file (snap-storage §7.3): each line through the CLI parser, then
// the dispatcher, in order; the first failure names file and line.
Step init_file_step(const std::string& path) {
  return [path](std::function<void(Status)> next) {
    std::ifstream f(path);
    if (!f) return next(make_error(Errc::kNotFound, "init file " + path + ": cannot read it"));
    VDPU_INFO("Running RPC init file {}", path);
    std::vector<Step> lines;
    std::string line;
    int n = 0;
    while (std::getline(f, line)) {
      ++n;
      std::string where = path + ":" + std::to_string(n);
      auto call = rpc::cli::parse_line(line);
      if (!call) return next(fail(where + ": " + call.error().message));
      if (call->method.empty()) continue;
      lines.push_back([where, c = *call](std::function<void(Status)> done) {
        auto& d = rpc::Dispatcher::get();
        if (c.method == "framework_start_init" && d.init_started()) {
          VDPU_INFO("{}: framework already initialized, framework_start_init skipped", where);
          return done({});
        }
        d.call(c.method, c.params, [where, m = c.method, done](json resp) {
          if (resp.contains("error")) {
            const json& e = resp["error"];
            return done(fail(where + ": " + m + " failed: " + e.value("message", "?") + " (code " +
                             std::to_string(e.value("code", 0)) + ")"));
          }
          done({});
        });
      });
    }
    run_steps(std::move(lines), std::move(next));
  };
}

// Replays config entries; entries not allowed in the current state are an
// error here (the caller already ran the startup part).
Step config_step(std::string what, std::vector<rpc::ConfigEntry> entries) {
  return [what, entries](std::function<void(Status)> next) {
    if (entries.empty()) return next({});
    VDPU_INFO("Loading JSON configuration {} ({} entries)", what, entries.size());
    rpc::replay_config(entries, [what, next](Status s, std::vector<rpc::ConfigEntry> rest) {
      if (!s) return next(fail(what + ": " + s.error().message));
      if (!rest.empty())
        return next(fail(what + ": " + rest[0].method +
                         " is not allowed after framework initialization"));
      next({});
    });
  };
}

// §10.4: the SPDK JSON config, then SNAP's own snap_config.json, which wins
// for the subsystems it holds (it is the more recent).
void load_init_json(const StartupOptions& o, std::function<void(Status)> next) {
  std::set<std::string> snap_subs;
  json snap;
  std::string snap_path;
  if (!o.snap_init_json_dir.empty()) {
    snap_path = o.snap_init_json_dir + "/snap_config.json";
    if (access(snap_path.c_str(), F_OK) == 0) {
      auto j = read_json_file(snap_path);
      if (!j) return next(j.error());
      snap = *j;
      if (snap.is_object() && snap.contains("subsystems") && snap["subsystems"].is_array())
        for (auto& s : snap["subsystems"])
          if (s.is_object() && s.contains("subsystem") && s["subsystem"].is_string())
            snap_subs.insert(s["subsystem"].get<std::string>());
    }
  }
  std::vector<Step> steps;
  if (!o.spdk_init_json.empty()) {
    auto j = read_json_file(o.spdk_init_json);
    if (!j) return next(fail("SPDK_RPC_INIT_CONF_JSON: " + j.error().message));
    auto e = rpc::parse_config(*j, snap_subs);
    if (!e) return next(fail(o.spdk_init_json + ": " + e.error().message));
    steps.push_back(config_step(o.spdk_init_json, std::move(*e)));
  }
  if (!snap.is_null()) {
    auto e = rpc::parse_config(snap);
    if (!e) return next(fail(snap_path + ": " + e.error().message));
    steps.push_back(config_step(snap_path, std::move(*e)));
  }
  run_steps(std::move(steps), std::move(next));
}

struct Persist {
  std::string dir;
  std::string last;
};
Persist& persist() {
  static Persist p;
  return p;
}

void write_snap_config() {
  Persist& p = persist();
  if (p.dir.empty()) return;
  std::string text = snap_config().dump(2) + "\n";
  if (text == p.last) return;
  std::error_code ec;
  std::filesystem::create_directories(p.dir, ec);
  std::string path = p.dir + "/snap_config.json", tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << text;
    if (!f.good()) {
      VDPU_WARN("cannot write {}", tmp);
      return;
    }
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    VDPU_WARN("cannot replace {}", path);
    return;
  }
  p.last = std::move(text);
}

}  // namespace

bool is_state_changing(const std::string& m) {
  static const std::set<std::string> kReadOnly = {
      "save_config", "load_config", "framework_wait_init", "framework_start_init",
      "spdk_kill_instance", "snap_global_param_list", "rpc_get_methods", "spdk_get_version",
      "snap_log_level_set"};
  if (kReadOnly.count(m) || m.rfind("log_", 0) == 0) return false;
  if (m.find("_get") != std::string::npos) return false;
  if (m.size() >= 5 && m.compare(m.size() - 5, 5, "_list") == 0) return false;
  return true;
}

json snap_config() {
  json all = rpc::build_config();
  json subs = json::array();
  for (auto& s : all["subsystems"])
    if (!rpc::is_spdk_subsystem(s["subsystem"])) subs.push_back(s);
  return {{"subsystems", subs}};
}

void run_startup(StartupOptions o, std::function<void(const Error&)> on_fail) {
  auto& d = rpc::Dispatcher::get();
  auto opts = std::make_shared<StartupOptions>(std::move(o));
  std::vector<rpc::ConfigEntry> entries;
  if (!opts->config.is_null()) {
    auto e = rpc::parse_config(opts->config);
    if (!e) return on_fail(fail("JSON configuration (-c): " + e.error().message));
    entries = std::move(*e);
  }
  auto text_files = [opts]() {
    std::vector<Step> s;
    if (!opts->spdk_init_conf.empty()) s.push_back(init_file_step(opts->spdk_init_conf));
    if (!opts->snap_init_conf.empty()) s.push_back(init_file_step(opts->snap_init_conf));
    return s;
  };
  auto text_done = std::make_shared<bool>(false);
  // The part of -c that needs the runtime state, filled by phase 1.
  auto deferred = std::make_shared<std::vector<rpc::ConfigEntry>>();

  // framework_start_init's hook: everything that needs the runtime state.
  d.set_init_hook([opts, text_files, text_done, deferred, on_fail](std::function<void(Status)> done) {
    std::vector<Step> steps;
    steps.push_back([deferred](std::function<void(Status)> next) {
      config_step("-c (runtime part)", *deferred)(std::move(next));
    });
    if (!*text_done) {
      *text_done = true;
      for (auto& s : text_files()) steps.push_back(s);
    }
    steps.push_back([opts](std::function<void(Status)> next) { load_init_json(*opts, next); });
    steps.push_back([opts](std::function<void(Status)> next) {
      if (!opts->snap_init_json_dir.empty()) {
        persist().dir = opts->snap_init_json_dir;
        write_snap_config();
      }
      VDPU_INFO("SNAP service started successfully");
      next({});
    });
    run_steps(std::move(steps), [done, on_fail](Status s) {
      if (!s) on_fail(s.error());
      done(s);
    });
  });
  // Keep snap_config.json current (§10.4).
  d.add_observer([](const std::string& method, const json&, const json& resp) {
    if (!persist().dir.empty() && resp.contains("result") && is_state_changing(method))
      write_snap_config();
  });

  // Phase 1 (startup state): the startup part of -c; with --wait-for-rpc the
  // init files too; without it, framework_start_init at once.
  rpc::replay_config(std::move(entries), [opts, text_files, text_done, deferred, on_fail](
                                             Status s, std::vector<rpc::ConfigEntry> rest) {
    if (!s) return on_fail(fail("JSON configuration (-c): " + s.error().message));
    *deferred = std::move(rest);
    auto& disp = rpc::Dispatcher::get();
    if (opts->wait_for_rpc) {
      *text_done = true;
      run_steps(text_files(), [on_fail](Status r) {
        if (!r) return on_fail(r.error());
        if (!rpc::Dispatcher::get().init_started())
          VDPU_INFO("Waiting for framework_start_init RPC (--wait-for-rpc)");
      });
      return;
    }
    // Errors of the hook were reported by it already.
    disp.start_init([](Status) {});
  });
}

}  // namespace vdpu::snap
