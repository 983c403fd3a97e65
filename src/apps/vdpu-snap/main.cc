// vdpu-snap: the storage service (SNAP-4 compatible). SPDK application flags,
// the runtime (one reactor per core of the cpumask + the main reactor that
// runs the JSON-RPC server), signals through a signalfd on the main reactor,
// and the start-up sequence (startup.h).
//
// Exit status: 0 after a graceful shutdown (SIGINT/SIGTERM,
// spdk_kill_instance), 1 when start-up fails, 2 on bad flags.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "apps/rpc_cli/cli_args.h"
#include "apps/vdpu-snap/startup.h"
#include "base/log.h"
#include "base/parse.h"
#include "rpc/daemon.h"
#include "rpc/dispatch.h"
#include "rpc/framework.h"
#include "rpc/rpc_log.h"
#include "rpc/schema.h"
#include "rpc/server.h"
#include "runtime/runtime.h"

namespace {

using nlohmann::json;
using namespace vdpu;

// --config-default: what the README's main-job command starts with.
const char* kDefaultConfig = R"({"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_malloc_create",
   "params": {"name": "Malloc0", "num_blocks": 131072, "block_size": 512}}]}]})";

struct Flags {
  std::string cpumask = "0x1";
  std::string rpc_socket = "/var/tmp/spdk.sock";
  std::string json_file;
  bool wait_for_rpc = false;
  std::vector<std::string> logflags;
  uint64_t mem_size_mb = 0;
  std::string huge_dir;
  bool no_huge = true;
  bool event_mode = false;
  bool config_default = false;
  std::string rpc_log;
  size_t max_request = 4u << 20;
};

std::string env(const char* n) {
  const char* v = getenv(n);
  return v ? v : "";
}

// APP_ARGS (snap-storage §7) are SPDK app args given through the environment;
// the command line comes after them and wins.
std::vector<std::string> all_args(int argc, char** argv) {
  std::vector<std::string> args;
  if (auto a = env("APP_ARGS"); !a.empty()) {
    auto words = rpc::cli::split_line(a);
    if (words) args = *words;
  }
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  return args;
}

class App {
 public:
  App(rt::Runtime& rt, Flags f, json config)
      : rt_(rt), flags_(std::move(f)), config_(std::move(config)), daemon_(rt, "vdpu-snap") {}

  // Main reactor: starts the server and the start-up sequence.
  void start(int sigfd) {
    rpc::ServerOptions so;
    so.path = flags_.rpc_socket;
    so.max_request = flags_.max_request;
    auto srv = rpc::Server::start(rt_.main(), so);
    if (!srv) {
      VDPU_ERR("Cannot start the RPC server: {}", srv.error().message);
      return shutdown(1);
    }
    daemon_.set_server(std::move(*srv));
    if (auto path = rpc::rpc_log_path(flags_.rpc_log); !path.empty()) {
      if (auto s = log_.open(path); !s) VDPU_WARN("RPC log disabled: {}", s.error().message);
      else rpc::Dispatcher::get().set_log(&log_);
    }
    for (auto& m : rpc::Dispatcher::get().methods_without_schema())
      VDPU_WARN("RPC method '{}' has no schema: it accepts no parameters", m);
    if (Status s = daemon_.watch_signals(sigfd); !s) VDPU_WARN("signals: {}", s.error().message);

    snap::StartupOptions o;
    o.wait_for_rpc = flags_.wait_for_rpc;
    o.config = config_;
    o.spdk_init_conf = env("SPDK_RPC_INIT_CONF");
    o.snap_init_conf = env("SNAP_RPC_INIT_CONF");
    o.spdk_init_json = env("SPDK_RPC_INIT_CONF_JSON");
    o.snap_init_json_dir = env("SNAP_RPC_INIT_CONF_JSON");
    snap::run_startup(std::move(o), [this](const Error& e) {
      VDPU_ERR("SNAP service failed to start: {}", e.message);
      shutdown(1);
    });
  }

  int exit_code() const { return daemon_.exit_code(); }
  void release() { daemon_.release(); }

 private:
  void shutdown(int code) { daemon_.shutdown(code); }

  rt::Runtime& rt_;
  Flags flags_;
  json config_;
  rpc::RpcLog log_;
  rpc::Daemon daemon_;
};

Result<json> build_config(const Flags& f) {
  json cfg;
  if (f.config_default) cfg = json::parse(kDefaultConfig);
  if (!f.json_file.empty()) {
    std::ifstream in(f.json_file);
    if (!in) return make_error(Errc::kNotFound, "cannot read " + f.json_file);
    std::string text(std::istreambuf_iterator<char>(in), {});
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("subsystems") || !j["subsystems"].is_array())
      return make_error(Errc::kInvalidArgument,
                        f.json_file + ": not a JSON configuration ({\"subsystems\": [...]})");
    if (cfg.is_null()) cfg = j;
    else for (auto& s : j["subsystems"]) cfg["subsystems"].push_back(s);
  }
  return cfg;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App cli{"vdpu-snap: NVMe / virtio-blk emulation service (SNAP-4 / SPDK compatible)"};
  cli.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cli.add_option("-m,--cpumask", f.cpumask, "Core mask for reactors: hex (0x3) or list ([0,2-3])")
      ->capture_default_str();
  cli.add_option("-r,--rpc-socket", f.rpc_socket, "RPC listen socket path")->capture_default_str();
  cli.add_option("-c,--json", f.json_file, "JSON configuration to load at start (save_config output)");
  cli.add_flag("--wait-for-rpc", f.wait_for_rpc, "Wait for framework_start_init before initializing");
  cli.add_option("-L,--logflag", f.logflags, "Enable a debug log flag (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cli.add_option("-s,--mem-size", f.mem_size_mb, "Memory size in MB (accepted; no hugepages needed)");
  cli.add_option("--huge-dir", f.huge_dir, "Hugetlbfs mount (accepted; not needed)");
  cli.add_flag("--no-huge", f.no_huge, "Do not use hugepages (always the case)");
  cli.add_flag("-e,--event-mode", f.event_mode,
               "Reactors sleep when idle (also VIRTIO_EMU_PROVIDER=dpu)");
  cli.add_flag("--config-default", f.config_default,
               "Start with the default configuration (64 MiB malloc bdev Malloc0)");
  cli.add_option("--rpc-log", f.rpc_log,
                 "RPC log file (default $SNAP_RPC_LOG_FILE or /var/log/snap-log/rpc-log)");
  cli.add_option("--rpc-max-request", f.max_request, "Largest RPC request accepted, bytes")
      ->capture_default_str();
  auto args = all_args(argc, argv);
  std::reverse(args.begin(), args.end());
  try {
    cli.parse(args);
  } catch (const CLI::ParseError& e) {
    int rc = cli.exit(e);
    return rc == 0 ? 0 : 2;
  }

  log::init(3);
  for (auto& fl : f.logflags) rpc::set_log_flag(fl, true);
  auto cores = parse_cpumask(f.cpumask);
  if (!cores) {
    VDPU_ERR("invalid cpumask '{}'", f.cpumask);
    return 2;
  }
  if (auto& errs = rpc::schema::Registry::get().errors(); !errs.empty()) {
    for (auto& e : errs) VDPU_ERR("RPC schema: {}", e);
    return 1;
  }
  auto config = build_config(f);
  if (!config) {
    VDPU_ERR("{}", config.error().message);
    return 1;
  }
  // snap-storage §1.3: VIRTIO_EMU_PROVIDER=dpu selects event-driven reactors.
  bool event_mode = f.event_mode || env("VIRTIO_EMU_PROVIDER") == "dpu";
  VDPU_INFO("vdpu-snap: cpumask {} ({} reactors), {} mode, rpc socket {}{}", f.cpumask, cores->size(),
            event_mode ? "event" : "polling", f.rpc_socket, f.mem_size_mb ? fmt::format(", mem {} MB", f.mem_size_mb) : "");

  // Signals go to a signalfd read by the main reactor (rpc/daemon.h).
  auto sig = rpc::block_termination_signals();
  if (!sig) {
    VDPU_ERR("{}", sig.error().message);
    return 1;
  }
  int sigfd = *sig;

  rt::Options ro;
  ro.cores = *cores;
  ro.event_mode = event_mode;
  rt::Runtime rt(ro);
  if (auto s = rt.start(); !s) {
    VDPU_ERR("cannot start reactors: {}", s.error().message);
    return 1;
  }
  App app(rt, f, *config);
  rt.main().send_blocking([&] { app.start(sigfd); });
  rt.run_main();
  app.release();
  close(sigfd);
  VDPU_INFO("vdpu-snap exited ({})", app.exit_code());
  return app.exit_code();
}
