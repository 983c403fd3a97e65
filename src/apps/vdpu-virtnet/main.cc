// vdpu-virtnet: the virtio-net controller daemon (virtio-net spec §1, §2,
// §11). By default it runs as an HA supervisor that starts the controller
// in a worker process and restarts it (ha.h); `--no-ha` runs the controller
// in this process.
//
// Exit status: 0 after a graceful stop (SIGINT/SIGTERM), 1 when start-up
// fails (bad virtnet.conf, static config, sockets ...), 2 on bad flags.
#include <limits.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "apps/vdpu-virtnet/ha.h"
#include "apps/vdpu-virtnet/worker.h"
#include "base/log.h"

using namespace vdpu::virtnet_app;

int main(int argc, char** argv) {
  WorkerFlags f;
  bool no_ha = false, worker = false, version = false;
  CLI::App cli{"vdpu-virtnet: virtio-net controller (vhost-user-net devices with TAP representors)"};
  cli.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cli.add_option("-c,--config", f.config, "virtnet.conf (JSON; default /opt/mellanox/mlnx_virtnet/virtnet.conf)");
  cli.add_option("--emu-config", f.emu_config,
                 "Static emulation config, KEY=VALUE (spec §1.1; default /etc/vdpu/virtnet-emu.conf if present)");
  cli.add_option("-r,--rpc-socket", f.rpc_socket, "JSON-RPC socket of the virtnet CLI")->capture_default_str();
  cli.add_option("--socket-dir", f.socket_dir, "Directory of the vhost-user-net sockets (default /var/tmp/vdpu-net)");
  cli.add_option("--state-dir", f.state_dir, "State directory (VUID serial)")->capture_default_str();
  cli.add_option("--recovery-dir", f.recovery_dir, "Recovery files (default <state-dir>/recovery)");
  cli.add_option("--rep-prefix", f.rep_prefix, "Representor name prefix")->capture_default_str();
  cli.add_option("--backend", f.backend, "Device backend: tap (representor), drop, loopback")
      ->check(CLI::IsMember({"tap", "drop", "loopback"}))
      ->capture_default_str();
  cli.add_option("-m,--cpumask", f.cpumask, "Data reactor cores (default: dpa_core_start..dpa_core_end)");
  cli.add_flag("-e,--event-mode", f.event_mode, "Data reactors sleep when idle");
  cli.add_flag("--no-ha", no_ha, "Run without the HA supervisor (no restart/update)");
  cli.add_flag("--version", version, "Print the version and exit");
  cli.add_flag("--worker", worker, "(internal) run as the supervised worker");
  cli.add_option("--ha-fd", f.ha_fd, "(internal) link to the HA supervisor");
  cli.add_option("--exe", f.exe, "(internal) path of the installed binary");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = cli.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (version) {
    std::printf("vdpu-virtnet %s\n", kVersion);
    return 0;
  }
  f.config_given = cli.count("--config") > 0;
  vdpu::log::init(3);
  if (f.exe.empty()) {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n > 0) f.exe.assign(buf, size_t(n));
  }
  if (worker || no_ha) return run_worker(f);

  // Supervisor: the worker gets the same options (minus the HA ones).
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--no-ha") continue;
    args.push_back(a);
  }
  return run_supervisor(f.exe, args);
}
