// `vdpu-perf net-target`: serves one virtio-net device (two with --socket2)
// over vhost-user with a chosen backend, busy-polling on one core, so that a
// real front-end (DPDK testpmd with --vdev net_virtio_user0,path=SOCK, or
// QEMU) drives it:
//   drop      guest TX is consumed, nothing is received (guest -> backend)
//   gen       guest TX dropped, RX is an endless stream of --pkt-size frames
//             (backend -> guest)
//   loopback  what the guest sends comes back on the same queue pair; with
//             --socket2 the two devices are cross-connected (device-to-device)
//   tap       the TAP representor (en3f0pf0sf<sf>), e.g. for end-to-end tests
//
// Prints per-interval rates (--stats-interval) and a final summary line per
// device:  NET-STATS dev=<i> tx_pkts=… tx_bytes=… rx_pkts=… rx_bytes=…
// rx_dropped=… tx_dropped=… bad_desc=… ctrl_ok=… ctrl_err=…
// Stops on SIGINT/SIGTERM or after --time seconds.
//
// A vhost-user FRONT-END mode (vdpu-perf as the driver) needs the frontend
// library (src/transport/vhost_user/frontend), which does not exist yet.
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/log.h"
#include "perf.h"
#include "runtime/runtime.h"
#include "transport/vhost_user/server.h"
#include "virtio/net/backend_mem.h"
#include "virtio/net/backend_tap.h"
#include "virtio/net/net_device.h"

namespace vdpu::perf {
namespace {

using namespace virtio::net;

struct Cfg {
  std::string socket = "/tmp/vdpu-net.sock";
  std::string socket2;
  std::string backend = "drop";
  uint16_t pairs = 1;
  uint32_t core = 0;
  uint32_t pkt_size = 64;
  std::string tap_name;
  uint32_t sf_num = 2000;
  uint16_t mtu = 1500;
  std::string mac = "02:00:00:00:00:01";
  double time_s = 0;
  double stats_interval = 0;
  uint16_t queue_size = 1024;
  bool no_mrg = false, no_packed = false, no_ctrl = false, event_mode = false, tap_down = false;
  bool pkt_counters = false;
};

bool parse_mac(const std::string& s, MacAddr& m) {
  unsigned v[6];
  if (std::sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return false;
  for (int i = 0; i < 6; ++i) {
    if (v[i] > 0xff) return false;
    m[i] = uint8_t(v[i]);
  }
  return true;
}

struct Totals {
  uint64_t tx_pkts = 0, tx_bytes = 0, rx_pkts = 0, rx_bytes = 0, rx_dropped = 0, tx_dropped = 0, bad = 0;
};
Totals totals(const NetDevice& d) {
  Totals t;
  for (auto& s : d.vq_stats()) {
    if (s.rx) {
      t.rx_pkts += s.packets;
      t.rx_bytes += s.total_bytes;
      t.rx_dropped += s.dropped + s.backend_dropped;
    } else {
      t.tx_pkts += s.packets;
      t.tx_bytes += s.total_bytes;
      t.tx_dropped += s.dropped;
    }
    t.bad += s.bad_desc_errors + s.exceed_max_chain + s.invalid_buffer;
  }
  return t;
}

int run(const Cfg& c) {
  MacAddr mac{};
  if (!parse_mac(c.mac, mac)) {
    std::fprintf(stderr, "bad --mac %s\n", c.mac.c_str());
    return 2;
  }
  if (!c.socket2.empty() && c.backend != "loopback") {
    std::fprintf(stderr, "--socket2 needs --backend loopback\n");
    return 2;
  }
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);  // before any thread starts

  rt::Options ro;
  ro.cores = {c.core};
  ro.event_mode = c.event_mode;
  rt::Runtime rt(ro);

  const uint32_t max_frame = uint32_t(c.mtu) + kEthHdrLen + kVlanTagLen;
  std::vector<std::unique_ptr<NetBackend>> bes;
  if (c.backend == "drop") {
    bes.push_back(std::make_unique<DropBackend>(c.pairs));
  } else if (c.backend == "gen") {
    bes.push_back(std::make_unique<GenBackend>(c.pairs, c.pkt_size, mac.data()));
  } else if (c.backend == "loopback") {
    if (c.socket2.empty()) {
      bes.push_back(LoopbackBackend::create_self(c.pairs, max_frame));
    } else {
      auto [a, b] = LoopbackBackend::create_pair(c.pairs, max_frame);
      bes.push_back(std::move(a));
      bes.push_back(std::move(b));
    }
  } else if (c.backend == "tap") {
    TapOptions to;
    to.pairs = c.pairs;
    to.mtu = c.mtu;
    to.up = !c.tap_down;
    if (!c.tap_name.empty()) {
      to.ifname = c.tap_name;
    } else {
      auto n = representor_name(kRepresentorPrefix, c.sf_num);
      if (!n) {
        std::fprintf(stderr, "%s\n", n.error().message.c_str());
        return 2;
      }
      to.ifname = *n;
    }
    auto t = TapBackend::create(to);
    if (!t) {
      std::fprintf(stderr, "TAP: %s\n", t.error().message.c_str());
      return 1;
    }
    bes.push_back(std::move(*t));
  } else {
    std::fprintf(stderr, "unknown --backend %s (drop|gen|loopback|tap)\n", c.backend.c_str());
    return 2;
  }

  NetOptions no;
  no.mac = mac;
  no.mtu = c.mtu;
  no.max_queue_pairs = c.pairs;
  no.queue_size = c.queue_size;
  no.mrg_rxbuf = !c.no_mrg;
  no.packed = !c.no_packed;
  no.ctrl_vq = !c.no_ctrl;
  no.packet_counters = c.pkt_counters;
  std::vector<std::unique_ptr<NetDevice>> devs;
  std::vector<std::unique_ptr<vhost_user::Server>> srvs;
  const std::vector<std::string> socks = c.socket2.empty() ? std::vector<std::string>{c.socket}
                                                           : std::vector<std::string>{c.socket, c.socket2};
  for (size_t i = 0; i < bes.size(); ++i) {
    if (i) no.mac[5] = uint8_t(no.mac[5] + 1);
    auto d = NetDevice::create(no, std::move(bes[i]), rt);
    if (!d) {
      std::fprintf(stderr, "device: %s\n", d.error().message.c_str());
      return 2;
    }
    devs.push_back(std::move(*d));
    auto s = vhost_user::Server::listen(rt.main(), *devs.back(), socks[i]);
    if (!s) {
      std::fprintf(stderr, "listen %s: %s\n", socks[i].c_str(), s.error().message.c_str());
      return 1;
    }
    srvs.push_back(std::move(*s));
    std::printf("vdpu-perf net-target: dev%zu on %s, backend %s%s%s, %u pair(s), features 0x%llx\n", i,
                socks[i].c_str(), devs.back()->backend().kind(), devs.back()->backend().ifname().empty() ? "" : " ",
                devs.back()->backend().ifname().c_str(), c.pairs,
                (unsigned long long)devs.back()->device_features());
  }
  if (auto st = rt.start(); !st) {
    std::fprintf(stderr, "runtime: %s\n", st.error().message.c_str());
    return 1;
  }
  std::fflush(stdout);

  const auto t0 = std::chrono::steady_clock::now();
  bool stopping = false;
  auto stop = [&] {
    if (stopping) return;
    stopping = true;
    auto left = std::make_shared<size_t>(srvs.size());
    for (auto& s : srvs)
      s->shutdown([&, left] {
        if (--*left) return;
        auto ldev = std::make_shared<size_t>(devs.size());
        for (auto& d : devs)
          d->stop_all([&, ldev] {
            if (--*ldev == 0) rt.stop();
          });
      });
  };
  int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd >= 0)
    (void)rt.main().add_fd(sfd, EPOLLIN, [&](uint32_t) {
      signalfd_siginfo si;
      while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
      }
      stop();
    });
  if (c.time_s > 0) rt.main().add_timer(uint64_t(c.time_s * 1e6), [&] { stop(); });
  std::vector<Totals> last(devs.size());
  auto tl = t0;
  if (c.stats_interval > 0)
    rt.main().add_poller("net_stats", [&] {
      auto now = std::chrono::steady_clock::now();
      double dt = std::chrono::duration<double>(now - tl).count();
      double el = std::chrono::duration<double>(now - t0).count();
      tl = now;
      for (size_t i = 0; i < devs.size(); ++i) {
        Totals t = totals(*devs[i]);
        std::printf("[%7.2fs] dev%zu tx %.3f Mpps %.3f Gbit/s  rx %.3f Mpps %.3f Gbit/s  drops %llu\n", el, i,
                    double(t.tx_pkts - last[i].tx_pkts) / dt / 1e6, double(t.tx_bytes - last[i].tx_bytes) * 8 / dt / 1e9,
                    double(t.rx_pkts - last[i].rx_pkts) / dt / 1e6, double(t.rx_bytes - last[i].rx_bytes) * 8 / dt / 1e9,
                    (unsigned long long)(t.rx_dropped + t.tx_dropped));
        last[i] = t;
      }
      std::fflush(stdout);
      return rt::Poll::kIdle;
    }, uint64_t(c.stats_interval * 1e6));

  rt.run_main();
  if (sfd >= 0) close(sfd);
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (size_t i = 0; i < devs.size(); ++i) {
    Totals t = totals(*devs[i]);
    auto& cc = devs[i]->ctrl_counters();
    std::printf("NET-STATS dev=%zu tx_pkts=%llu tx_bytes=%llu rx_pkts=%llu rx_bytes=%llu rx_dropped=%llu "
                "tx_dropped=%llu bad_desc=%llu ctrl_ok=%llu ctrl_err=%llu elapsed=%.2f\n",
                i, (unsigned long long)t.tx_pkts, (unsigned long long)t.tx_bytes, (unsigned long long)t.rx_pkts,
                (unsigned long long)t.rx_bytes, (unsigned long long)t.rx_dropped, (unsigned long long)t.tx_dropped,
                (unsigned long long)t.bad, (unsigned long long)cc.ok, (unsigned long long)cc.err, el);
  }
  std::fflush(stdout);
  srvs.clear();
  devs.clear();
  return 0;
}

VDPU_PERF_SUBCOMMAND("net-target",
                     "serve a virtio-net device over vhost-user (drop|gen|loopback|tap backend) for testpmd/QEMU",
                     [](CLI::App& app) -> std::function<int()> {
                       auto c = std::make_shared<Cfg>();
                       app.add_option("--socket", c->socket, "vhost-user socket path");
                       app.add_option("--socket2", c->socket2, "second device's socket (loopback: cross-connected)");
                       app.add_option("--backend", c->backend, "drop | gen | loopback | tap");
                       app.add_option("--pairs", c->pairs, "queue pairs (1-256)");
                       app.add_option("--core", c->core, "data reactor core");
                       app.add_option("--pkt-size", c->pkt_size, "gen: frame bytes (L2, no FCS)");
                       app.add_option("--tap-name", c->tap_name, "tap: interface name (default en3f0pf0sf<sf>)");
                       app.add_option("--sf-num", c->sf_num, "tap: representor SF number");
                       app.add_option("--mtu", c->mtu, "MTU (68-9216)");
                       app.add_option("--mac", c->mac, "device MAC");
                       app.add_option("--queue-size", c->queue_size, "max queue size");
                       app.add_option("--time", c->time_s, "stop after this many seconds (0: on SIGINT/SIGTERM)");
                       app.add_option("--stats-interval", c->stats_interval, "print rates every N seconds");
                       app.add_flag("--no-mrg-rxbuf", c->no_mrg, "do not offer VIRTIO_NET_F_MRG_RXBUF");
                       app.add_flag("--no-packed", c->no_packed, "do not offer VIRTIO_F_RING_PACKED");
                       app.add_flag("--no-ctrl-vq", c->no_ctrl, "do not offer the control queue");
                       app.add_flag("--event-mode", c->event_mode, "data reactor sleeps when idle");
                       app.add_flag("--tap-down", c->tap_down, "tap: leave the link down");
                       app.add_flag("--pkt-counters", c->pkt_counters, "RX size histogram");
                       return [c] { return run(*c); };
                     });

}  // namespace
}  // namespace vdpu::perf
