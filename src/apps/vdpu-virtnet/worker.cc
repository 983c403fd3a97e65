#include "apps/vdpu-virtnet/worker.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "apps/vdpu-virtnet/ha.h"
#include "base/log.h"
#include "base/parse.h"
#include "pci/vuid.h"
#include "rpc/daemon.h"
#include "rpc/dispatch.h"
#include "rpc/framework.h"
#include "rpc/rpc.h"
#include "rpc/schema.h"
#include "rpc/server.h"
#include "runtime/runtime.h"
#include "service/virtnet/errors.h"
#include "service/virtnet/manager.h"
#include "virtio/net/backend_mem.h"

namespace vdpu::virtnet_app {
namespace {

using nlohmann::json;
namespace vn = virtio::net;
namespace sv = service::virtnet;

constexpr uint64_t kReplyFlushUs = 100'000;  // let a restart/update reply reach the CLI

// The largest feature set the device model offers with this virtnet.conf
// (list `supported_features`, the bound of hotplug/modify -f).
class ProbeBackend final : public vn::DropBackend {
 public:
  ProbeBackend() : DropBackend(2) {}
  uint64_t offload_features() const override {
    return vn::VIRTIO_NET_F_CSUM | vn::VIRTIO_NET_F_HOST_TSO4 | vn::VIRTIO_NET_F_HOST_TSO6 |
           vn::VIRTIO_NET_F_HOST_ECN | vn::VIRTIO_NET_F_HOST_UFO | vn::kGuestOffloadMask;
  }
};

uint64_t probe_features(rt::Runtime& rt, const sv::VirtnetConf& c) {
  vn::NetOptions o;
  o.max_queue_pairs = 2;
  o.ctrl_vq = true;
  o.mrg_rxbuf = c.mrg_rxbuf;
  o.packed = c.packed_vq;
  auto d = vn::NetDevice::create(o, std::make_unique<ProbeBackend>(), rt);
  return d ? (*d)->device_features() : 0;
}

std::vector<uint32_t> default_cores(const sv::VirtnetConf& c) {
  // §2 mapping: dpa_core_start..dpa_core_end -> the data reactors' cores.
  uint32_t n = std::max(1u, std::thread::hardware_concurrency());
  std::vector<uint32_t> cores;
  for (uint32_t i = c.dpa_core_start; i <= c.dpa_core_end && i < n; ++i) cores.push_back(i);
  if (cores.empty()) cores.push_back(0);
  return cores;
}

std::string installed_version(const std::string& exe) {
  if (exe.empty()) return kVersion;
  std::string cmd = "'" + exe + "' --version 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "unknown";
  char buf[256] = {};
  std::string out = fgets(buf, sizeof(buf), p) ? buf : "";
  ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  auto sp = out.rfind(' ');
  return out.empty() ? "unknown" : out.substr(sp == std::string::npos ? 0 : sp + 1);
}

class Worker {
 public:
  Worker(rt::Runtime& rt, const WorkerFlags& f) : rt_(rt), f_(f), link_(f.ha_fd), daemon_(rt, "virtio-net controller") {}

  // Main reactor.
  void start(int sigfd, sv::Options o) {
    auto hook = [this](const std::string& rep, bool created) {
      if (!link_.active()) return;
      // A restart / live update hands the representors to the next worker.
      if (!created && handover_) return;
      auto r = link_.call((created ? "hold " : "release ") + rep);
      if (!r || *r != "ok")
        VDPU_WARN("virtnet HA: {} {}: {}", created ? "hold" : "release", rep, r ? *r : r.error().message);
    };
    sv::set_manager(std::make_unique<sv::Manager>(std::move(o), sv::vhost_endpoint_factory(rt_, f_.backend, hook)));
    register_methods();
    rpc::set_kill_handler([this](int) { shutdown(0); });
    if (auto s = sv::manager()->start(); !s) {
      VDPU_ERR("virtio-net controller failed to start: {}", s.error().message);
      return shutdown(1);
    }
    rpc::ServerOptions so;
    so.path = f_.rpc_socket;
    auto srv = rpc::Server::start(rt_.main(), so);
    if (!srv) {
      VDPU_ERR("Cannot start the RPC server on {}: {}", f_.rpc_socket, srv.error().message);
      return shutdown(1);
    }
    daemon_.set_server(std::move(*srv));
    if (auto s = daemon_.watch_signals(sigfd); !s) VDPU_WARN("signals: {}", s.error().message);
    if (link_.active()) (void)link_.call("ready");
    VDPU_INFO("virtio-net controller {} started: {} device(s), rpc socket {}", kVersion, sv::manager()->num_devices(),
              f_.rpc_socket);
  }

  int exit_code() const { return daemon_.exit_code(); }
  void release() { daemon_.release(); }

 private:
  void register_methods() {
    // §4.7 log -l {info,err,debug}.
    rpc::register_method("log", [](const json& p, rpc::Responder r) {
      std::string l = p.value("level", "");
      int lvl = l == "info" ? 3 : l == "err" ? 1 : l == "debug" ? 4 : -1;
      if (lvl < 0 || !log::set_snap_level(lvl)) return r.result(sv::err_json(-EINVAL));
      r.result("Success");
    }, rpc::kAny);
    // §4.9 version: running and installed (on disk) versions.
    rpc::register_method("version", [this](const json&, rpc::Responder r) {
      r.result(json::array({{{"Original Controller", kVersion}},
                            {{"Destination Controller", installed_version(f_.exe)}}}));
    }, rpc::kAny);
    // §4.11 restart: fast restart by the HA supervisor.
    rpc::register_method("restart", [this](const json&, rpc::Responder r) {
      if (!link_.active()) return r.result(sv::err_json(sv::VIRTNET_ERR_OPT_NOT_SUPPORTED));
      if (auto a = link_.call("restart"); !a || *a != "ok") return r.result(sv::err_json(-EIO));
      json j = sv::err_json(0);
      j["pid"] = getpid();
      r.result(j);
      handover_ = true;
      rt_.main().add_timer(kReplyFlushUs, [this] { shutdown(0); });
    }, rpc::kAny);
    // §4.10 update -s / -t.
    rpc::register_method("update", [this](const json& p, rpc::Responder r) {
      bool start = p.value("start", 0) != 0, status = p.value("status", 0) != 0;
      if (start == status) return r.result(sv::err_json(-EINVAL));
      if (!link_.active()) return r.result(sv::err_json(sv::VIRTNET_ERR_OPT_NOT_SUPPORTED));
      if (status) {
        auto a = link_.call("update-status");
        json j = a ? json::parse(*a, nullptr, false) : json();
        if (j.is_discarded() || j.is_null()) return r.result(sv::err_json(-EIO));
        return r.result(j);
      }
      if (auto a = link_.call("update"); !a || *a != "ok") return r.result(sv::err_json(-EIO));
      VDPU_INFO("live update: handing over to {}", f_.exe);
      r.result("Update started, use 'virtnet update -t' or check logs for status");
      handover_ = true;
      rt_.main().add_timer(kReplyFlushUs, [this] { shutdown(0); });
    }, rpc::kAny);
  }

  void shutdown(int code) { daemon_.shutdown(code); }

  rt::Runtime& rt_;
  const WorkerFlags& f_;
  HaLink link_;
  bool handover_ = false;  // restart / update: the supervisor keeps the representors
  rpc::Daemon daemon_;
};

}  // namespace

int run_worker(const WorkerFlags& f) {
  if (auto& errs = rpc::schema::Registry::get().errors(); !errs.empty()) {
    for (auto& e : errs) VDPU_ERR("RPC schema: {}", e);
    return 1;
  }
  const std::string conf_path = f.config.empty() ? sv::kDefaultConfPath : f.config;
  auto conf = sv::load_virtnet_conf(conf_path, !f.config_given);
  if (!conf) {
    VDPU_ERR("virtnet.conf: {}", conf.error().message);
    return 1;
  }
  sv::StaticConf emu;
  std::string emu_path = f.emu_config;
  if (emu_path.empty() && access(kDefaultEmuConfig, R_OK) == 0) emu_path = kDefaultEmuConfig;
  if (!emu_path.empty()) {
    auto e = sv::load_static_conf(emu_path);
    if (!e) {
      VDPU_ERR("static emulation config: {}", e.error().message);
      return 1;
    }
    emu = *e;
  }
  std::error_code ec;
  std::filesystem::create_directories(f.state_dir, ec);
  auto serial = pci::load_or_create_serial(f.state_dir + "/serial");
  if (!serial) {
    VDPU_ERR("VUID serial: {}", serial.error().message);
    return 1;
  }
  std::vector<uint32_t> cores;
  if (!f.cpumask.empty()) {
    auto c = parse_cpumask(f.cpumask);
    if (!c || c->empty()) {
      VDPU_ERR("invalid cpumask '{}'", f.cpumask);
      return 1;
    }
    cores = *c;
  } else {
    cores = default_cores(*conf);
  }

  auto sig = rpc::block_termination_signals();
  if (!sig) {
    VDPU_ERR("{}", sig.error().message);
    return 1;
  }
  int sigfd = *sig;
  rt::Options ro;
  ro.cores = cores;
  ro.event_mode = f.event_mode;
  rt::Runtime rt(ro);
  if (auto s = rt.start(); !s) {
    VDPU_ERR("cannot start reactors: {}", s.error().message);
    return 1;
  }
  sv::Options o;
  o.conf = *conf;
  o.emu = emu;
  o.socket_dir = f.socket_dir.empty() ? sv::kDefaultSocketDir : f.socket_dir;
  o.rep_prefix = f.rep_prefix;
  o.recovery_dir = f.recovery_dir.empty() ? f.state_dir + "/recovery" : f.recovery_dir;
  o.serial = *serial;
  o.supported_features = probe_features(rt, *conf);
  std::filesystem::create_directories(o.socket_dir, ec);
  if (ec) {
    VDPU_ERR("cannot create socket dir {}: {}", o.socket_dir, ec.message());
    return 1;
  }
  VDPU_INFO("virtio-net controller {}: config {}, {} static PF(s), {} hotplug port(s), backend {}, sockets in {}",
            kVersion, conf_path, emu.num_pf, emu.max_hotplug(), f.backend, o.socket_dir);
  Worker w(rt, f);
  rt.main().send_blocking([&] { w.start(sigfd, o); });
  rt.run_main();
  w.release();
  service::virtnet::set_manager(nullptr);
  close(sigfd);
  VDPU_INFO("virtio-net controller exited ({})", w.exit_code());
  return w.exit_code();
}

}  // namespace vdpu::virtnet_app
